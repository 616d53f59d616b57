// Tools (a JSON array), tool choice and the output schema (a JSON Schema object) of the draft. Text that
// does not parse stays in its box with the reason and leaves the draft as it was; the server checks the
// rest (its 422 detail shows in the estimate, the run and the save).
import { useEffect, useId, useState } from "react";
import type { VersionContent } from "../../api/types";
import { jsonText, type Parsed, parseSchema, parseTools, type Tools } from "../../lib/jsonField";

type ToolChoice = VersionContent["tool_choice"];

type Props = {
  tools: Tools;
  toolChoice: ToolChoice;
  outputSchema: Record<string, unknown> | null;
  readOnly: boolean;
  onChange: (change: { tools?: Tools; tool_choice?: ToolChoice; output_schema?: Record<string, unknown> | null }) => void;
};

function JsonBox<T>({ id, label, testId, value, parse, readOnly, placeholder, onValid }: {
  id: string;
  label: string;
  testId: string;
  value: T;
  parse: (text: string) => Parsed<T>;
  readOnly: boolean;
  placeholder: string;
  onValid: (value: T) => void;
}) {
  const [text, setText] = useState(() => jsonText(value));
  const [error, setError] = useState<string | null>(null);
  const key = JSON.stringify(value ?? null);
  useEffect(() => {
    // The draft changed from elsewhere (a version loaded, changes discarded): show it.
    const mine = parse(text);
    if (!mine.ok || JSON.stringify(mine.value ?? null) !== key) {
      setText(jsonText(value));
      setError(null);
    }
  }, [key]);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        data-testid={testId}
        className="json-box"
        rows={5}
        spellCheck={false}
        value={text}
        placeholder={placeholder}
        readOnly={readOnly}
        aria-invalid={error !== null}
        onChange={(e) => {
          setText(e.target.value);
          const parsed = parse(e.target.value);
          setError(parsed.ok ? null : parsed.error);
          if (parsed.ok) onValid(parsed.value);
        }}
      />
      {error && (
        <p className="field-error" role="alert" data-testid={`${testId}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

export function ToolsPanel({ tools, toolChoice, outputSchema, readOnly, onChange }: Props) {
  const id = useId();
  // Folded away until used, so the run panel stays in view; open when the draft has tools or a schema.
  const [open, setOpen] = useState(() => tools.length > 0 || outputSchema !== null);
  const used = tools.length > 0 || outputSchema !== null;
  useEffect(() => {
    if (used) setOpen(true);
  }, [used]);
  const choice = toolChoice ? (toolChoice.type === "tool" ? `tool:${toolChoice.name ?? ""}` : toolChoice.type) : "";
  return (
    <details
      className="panel"
      aria-label="Tools and output"
      data-testid="tools-panel"
      open={open}
      onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}
    >
      <summary className="panel-title">Tools and output</summary>
      <JsonBox
        id={`${id}-tools`}
        label="Tools (JSON)"
        testId="tools-json"
        value={tools}
        parse={parseTools}
        readOnly={readOnly}
        placeholder='[{"name": "search", "description": "…", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]'
        onValid={(value) => onChange(value.length ? { tools: value } : { tools: [], tool_choice: null })}
      />
      <div className="field">
        <label htmlFor={`${id}-choice`}>Tool choice</label>
        <select
          id={`${id}-choice`}
          data-testid="tool-choice"
          value={choice}
          disabled={readOnly || tools.length === 0}
          onChange={(e) => {
            const v = e.target.value;
            onChange({
              tool_choice: v === "" ? null : v.startsWith("tool:") ? { type: "tool", name: v.slice(5) } : { type: v as "auto" | "any" | "none" },
            });
          }}
        >
          <option value="">default (auto)</option>
          <option value="auto">auto</option>
          <option value="any">any (must call one)</option>
          <option value="none">none</option>
          {tools.map((t) => (
            <option key={t.name} value={`tool:${t.name}`}>
              {t.name}
            </option>
          ))}
        </select>
      </div>
      <JsonBox
        id={`${id}-schema`}
        label="Output schema (JSON Schema)"
        testId="output-schema-json"
        value={outputSchema}
        parse={parseSchema}
        readOnly={readOnly}
        placeholder='{"type": "object", "properties": {"answer": {"type": "string"}}}'
        onValid={(value) => onChange({ output_schema: value })}
      />
    </details>
  );
}
