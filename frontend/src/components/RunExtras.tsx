// What a rich run carries beside its text: the model's thinking (collapsible), its tool calls (one card
// each, input as pretty JSON) and whether the output matches the version's output schema.
import type { ToolUse } from "../api/runs";

type Props = {
  thinking: string;
  toolUses: ToolUse[];
  outputValid: boolean | null | undefined;
  live?: boolean;
};

export function RunExtras({ thinking, toolUses, outputValid, live = false }: Props) {
  return (
    <>
      {outputValid !== null && outputValid !== undefined && (
        <p>
          <span className={`badge ${outputValid ? "badge-ok" : "badge-bad"}`} data-testid="run-output-valid">
            {outputValid ? "matches schema" : "does not match schema"}
          </span>
        </p>
      )}
      {thinking !== "" && (
        <details className="run-thinking" data-testid="run-thinking" open={live || undefined}>
          <summary>Thinking</summary>
          <pre tabIndex={0} aria-label="Thinking">
            {thinking}
          </pre>
        </details>
      )}
      {toolUses.length > 0 && (
        <div className="tool-uses" aria-label="Tool calls">
          {toolUses.map((t, i) => (
            <div className="tool-use-card" data-testid="tool-use" key={t.id || i}>
              <div className="tool-use-head">
                <span className="muted">Tool call</span> <strong data-testid="tool-use-name">{t.name}</strong>
                {t.id && <span className="muted"> · {t.id}</span>}
              </div>
              <pre data-testid="tool-use-input">{prettyJson(t.input)}</pre>
            </div>
          ))}
        </div>
      )}
    </>
  );
}

export function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}
