// A tool result in a user message: which call it answers, a box for what the tool returned, is_error, and
// a warning when the assistant message just before has no call with its id.
import { useId } from "react";
import type { Block } from "../../lib/blocks";

type ResultBlock = Extract<Block, { type: "tool_result" }>;

export function ToolResultCard({ testId, name, orphan, block, readOnly, onChange }: {
  testId: string;
  name: string | undefined;
  orphan: boolean; // no call with its id in the assistant message just before
  block: ResultBlock;
  readOnly: boolean;
  onChange: (block: ResultBlock) => void;
}) {
  const id = useId();
  return (
    <div className="block tool-use-card tool-result" data-testid={testId}>
      <label htmlFor={id} className="tool-use-head">
        <span className="muted">Result of</span> <strong>{name ?? "tool call"}</strong> <span className="muted">· {block.tool_use_id}</span>
      </label>
      <textarea
        id={id}
        rows={3}
        value={block.content}
        readOnly={readOnly}
        placeholder="What the tool returned (text or JSON)"
        data-testid={`${testId}-input`}
        onChange={(e) => onChange({ ...block, content: e.target.value })}
      />
      <label className="inline">
        <input type="checkbox" checked={!!block.is_error} disabled={readOnly} onChange={(e) => onChange({ ...block, is_error: e.target.checked })} />
        The tool failed (is_error)
      </label>
      {orphan && (
        <p className="field-error" role="status" data-testid={`${testId}-orphan`}>
          No tool call with this id in the assistant message just before: providers refuse a result without its call.
        </p>
      )}
    </div>
  );
}
