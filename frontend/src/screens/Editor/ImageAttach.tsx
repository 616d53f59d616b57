// "Attach image" with its file picker and the error of the last try; the reading and checking (the
// server's rules, told before anything is sent) is a hook, so a paste or a drop can attach the same way.
import { useRef, useState } from "react";
import type { Message } from "../../api/types";
import { type Block, IMAGE_ACCEPT, readImage } from "../../lib/blocks";

/** Reading and checking an image file into a block for `onImage`, with what went wrong. */
export function useImageAttach(messages: readonly Message[], onImage: (block: Block) => void) {
  const [error, setError] = useState<string | null>(null);
  const [reading, setReading] = useState(false);
  const attach = async (file: File) => {
    setReading(true);
    const read = await readImage(file, messages).catch(() => ({ ok: false as const, error: `${file.name} could not be read.` }));
    setReading(false);
    setError(read.ok ? null : read.error);
    if (read.ok) onImage(read.block);
  };
  return { attach, error, reading };
}

export function ImageAttach({ index, attach, error, reading }: { index: number } & ReturnType<typeof useImageAttach>) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <div className="image-attach">
      <button type="button" data-testid={`attach-image-${index}`} disabled={reading} onClick={() => input.current?.click()}>
        {reading ? "Reading…" : "Attach image"}
      </button>
      <span className="muted small"> PNG, JPEG, GIF or WebP, up to 1 MiB; or paste or drop one here</span>
      <input
        ref={input}
        type="file"
        className="visually-hidden"
        tabIndex={-1}
        accept={IMAGE_ACCEPT}
        aria-label={`Image file for message ${index + 1}`}
        data-testid={`image-file-${index}`}
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = ""; // the same file can be picked again
          if (file) void attach(file);
        }}
      />
      {error && (
        <p className="field-error" role="alert" data-testid={`image-error-${index}`}>
          {error}
        </p>
      )}
    </div>
  );
}
