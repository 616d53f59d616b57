import { useEffect, useState } from "react";

type Props = { id: string; value: string[]; readOnly: boolean; onChange: (value: string[]) => void };

const lines = (text: string) => text.split("\n").filter((line) => line !== "");

/** One stop sequence per line; blank lines are kept while typing but never sent. */
export function StopSequencesField({ id, value, readOnly, onChange }: Props) {
  const [text, setText] = useState(value.join("\n"));
  useEffect(() => {
    // The draft changed elsewhere (another version opened): show its sequences.
    setText((current) => (lines(current).join("\n") === value.join("\n") ? current : value.join("\n")));
  }, [value]);
  return (
    <div className="field wide">
      <label htmlFor={id}>Stop sequences (one per line)</label>
      <textarea
        id={id}
        rows={1}
        value={text}
        disabled={readOnly}
        onChange={(e) => {
          setText(e.target.value);
          onChange(lines(e.target.value));
        }}
      />
    </div>
  );
}
