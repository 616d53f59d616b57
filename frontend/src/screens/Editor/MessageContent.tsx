// One message's content: plain text in one editor, or its blocks — text editors, image previews with
// remove, tool calls as cards and tool results with a box to type each result in — plus "Attach image"
// on user messages, or an image pasted or dropped into one (checked in the browser before anything is sent).
import type { ClipboardEvent, DragEvent } from "react";
import type { Message } from "../../api/types";
import { CodeEditor } from "../../components/CodeEditor";
import { prettyJson } from "../../components/RunExtras";
import { asBlocks, type Block, formatBytes, simplify } from "../../lib/blocks";
import { ImageAttach, useImageAttach } from "./ImageAttach";
import { ToolResultCard } from "./ToolResultCard";

type Props = {
  index: number;
  message: Message;
  messages: readonly Message[]; // all of them: tool names for results, the images' total size
  readOnly: boolean;
  // The new content, or how to make it from the current one (for changes that land after an await).
  onChange: (content: Message["content"] | ((current: Message["content"]) => Message["content"])) => void;
  onRun: () => void;
};

export function MessageContent({ index, message, messages, readOnly, onChange, onRun }: Props) {
  const n = index + 1;
  const label = `Message ${n} (${message.role})`;
  const images = useImageAttach(messages, (image) =>
    onChange((current) => (typeof current === "string" ? simplify([...asBlocks(current), image]) : [...current, image])),
  );
  const takesImages = message.role === "user" && !readOnly;
  const onPaste = (e: ClipboardEvent) => {
    // A screenshot pasted into the message is attached (the first image of the clipboard).
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (!file || !takesImages) return;
    e.preventDefault();
    void images.attach(file);
  };
  // An image file dropped on the message is attached. Caught on the way down, so the text editor under it
  // does not read the file in as text.
  const dragged = (e: DragEvent) => takesImages && [...e.dataTransfer.items].some((i) => i.kind === "file" && i.type.startsWith("image/"));
  const drop = {
    onDragOverCapture: (e: DragEvent) => dragged(e) && e.preventDefault(),
    onDropCapture: (e: DragEvent) => {
      const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
      if (!file || !takesImages) return;
      e.preventDefault();
      e.stopPropagation();
      void images.attach(file);
    },
  };
  if (typeof message.content === "string") {
    return (
      <div className="message-content" onPaste={onPaste} {...drop}>
        <CodeEditor
          testId={`message-editor-${index}`}
          label={label}
          placeholder="Write the message; {{name}} becomes a variable."
          value={message.content}
          readOnly={readOnly}
          onChange={onChange}
          onSubmit={onRun}
        />
        {takesImages && <ImageAttach index={index} {...images} />}
      </div>
    );
  }
  const blocks = message.content;
  const setBlock = (j: number, block: Block) => onChange(blocks.map((b, k) => (k === j ? block : b)));
  const remove = (j: number) => onChange(simplify(blocks.filter((_, k) => k !== j)));
  const firstText = blocks.findIndex((b) => b.type === "text");
  const names = toolNames(messages);
  const before = messages[index - 1];
  const answered = new Set(
    before?.role === "assistant" && Array.isArray(before.content) ? before.content.flatMap((b) => (b.type === "tool_use" ? [b.id] : [])) : [],
  );
  let shown = 0;
  return (
    <div className="blocks message-content" onPaste={onPaste} {...drop}>
      {blocks.map((block, j) => {
        switch (block.type) {
          case "text":
            return (
              <div className="block" key={j}>
                <CodeEditor
                  testId={j === firstText ? `message-editor-${index}` : `message-editor-${index}-${j}`}
                  label={j === firstText ? label : `Message ${n}, text ${j + 1}`}
                  placeholder="Write the message; {{name}} becomes a variable."
                  value={block.text}
                  readOnly={readOnly}
                  onChange={(text) => setBlock(j, { ...block, text })}
                  onSubmit={onRun}
                />
                {!readOnly && blocks.length > 1 && (
                  <button type="button" className="link" aria-label={`Remove text ${j + 1} of message ${n}`} onClick={() => remove(j)}>
                    Remove text
                  </button>
                )}
              </div>
            );
          case "image": {
            shown += 1;
            const { media_type, data } = block.source;
            return (
              <figure className="block image-block" key={j} data-testid={`image-block-${index}-${j}`}>
                <img src={`data:${media_type};base64,${data}`} alt={`Image ${shown} of message ${n}`} />
                <figcaption>
                  {media_type.replace("image/", "").toUpperCase()} · {formatBytes(Math.floor((data.length * 3) / 4))}
                  {!readOnly && (
                    <button type="button" className="link" aria-label={`Remove image ${shown} of message ${n}`} onClick={() => remove(j)}>
                      Remove
                    </button>
                  )}
                </figcaption>
              </figure>
            );
          }
          case "tool_use":
            return (
              <div className="block tool-use-card" key={j} data-testid="tool-use-block">
                <div className="tool-use-head">
                  <span className="muted">Tool call</span> <strong>{block.name}</strong> <span className="muted">· {block.id}</span>
                </div>
                <pre>{prettyJson(block.input ?? {})}</pre>
              </div>
            );
          case "tool_result":
            return (
              <ToolResultCard
                key={j}
                testId={`tool-result-${index}-${j}`}
                name={names.get(block.tool_use_id)}
                orphan={!answered.has(block.tool_use_id)}
                block={block}
                readOnly={readOnly}
                onChange={(b) => setBlock(j, b)}
              />
            );
          default:
            return null;
        }
      })}
      {!readOnly && (
        <div className="block-actions">
          {firstText === -1 && (
            <button type="button" aria-label={`Add text to message ${n}`} onClick={() => onChange([...blocks, { type: "text", text: "" }])}>
              + Text
            </button>
          )}
          {takesImages && <ImageAttach index={index} {...images} />}
        </div>
      )}
    </div>
  );
}

/** The name of each tool call in a conversation, by its id. */
function toolNames(messages: readonly Message[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of messages) if (Array.isArray(m.content)) for (const b of m.content) if (b.type === "tool_use") names.set(b.id, b.name);
  return names;
}
