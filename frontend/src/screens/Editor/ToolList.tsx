// The tools as a form: a row per tool (name, description, input schema), each field checked as it is typed
// with its problem beside it. Rows that pass go into the draft at once; the meta-schema check follows.
import { useEffect, useId, useRef, useState } from "react";
import type { Tools } from "../../lib/jsonField";
import { checkRows, emptyRow, firstToolError, MAX_TOOLS, rowsOf, schemaErrors, type ToolErrors, type ToolRow } from "../../lib/toolForm";

type Props = {
  tools: Tools;
  readOnly: boolean;
  onChange: (tools: Tools) => void;
  onProblem: (problem: string | null) => void;
};

export function ToolList({ tools, readOnly, onChange, onProblem }: Props) {
  const id = useId();
  const [rows, setRows] = useState<ToolRow[]>(() => rowsOf(tools));
  const [errors, setErrors] = useState<ToolErrors[]>([]);
  const [meta, setMeta] = useState<ToolErrors[]>([]);
  const turn = useRef(0);
  const report = useRef(onProblem);
  report.current = onProblem;

  const checkMeta = (checked: Tools | null) => {
    const mine = ++turn.current;
    setMeta([]);
    if (checked?.length) void schemaErrors(checked).then((found) => mine === turn.current && setMeta(found));
  };
  const key = JSON.stringify(tools);
  useEffect(() => {
    // The draft changed from elsewhere (a version loaded, the JSON view, discarded changes): show it.
    const mine = checkRows(rows);
    if (!mine.tools || JSON.stringify(mine.tools) !== key) {
      setRows(rowsOf(tools));
      setErrors([]);
    }
    checkMeta(tools);
  }, [key]);
  const shown = rows.map((_, i) => ({ ...meta[i], ...errors[i] }));
  const problem = firstToolError(shown);
  useEffect(() => report.current(problem), [problem]);
  useEffect(() => () => report.current(null), []);

  const update = (next: ToolRow[]) => {
    setRows(next);
    const checked = checkRows(next);
    setErrors(checked.errors);
    if (checked.tools) onChange(checked.tools);
    checkMeta(checked.tools);
  };
  const edit = (index: number, change: Partial<ToolRow>) => update(rows.map((r, i) => (i === index ? { ...r, ...change } : r)));

  return (
    <div className="tool-list" data-testid="tool-list">
      {rows.length === 0 && <p className="muted">No tools: the model answers in text.</p>}
      {rows.map((row, i) => {
        const e = shown[i] ?? {};
        const f = `${id}-${i}`;
        return (
          <fieldset className="tool-row" key={i} data-testid={`tool-${i}`}>
            <legend>Tool {i + 1}</legend>
            <div className="field">
              <label htmlFor={`${f}-name`}>Name</label>
              <input
                id={`${f}-name`}
                data-testid={`tool-name-${i}`}
                value={row.name}
                readOnly={readOnly}
                placeholder="search"
                spellCheck={false}
                aria-invalid={!!e.name}
                aria-describedby={e.name ? `${f}-name-error` : undefined}
                onChange={(ev) => edit(i, { name: ev.target.value })}
              />
              <FieldError id={`${f}-name-error`} testId={`tool-name-${i}-error`} message={e.name} />
            </div>
            <div className="field">
              <label htmlFor={`${f}-description`}>Description</label>
              <textarea
                id={`${f}-description`}
                data-testid={`tool-description-${i}`}
                rows={2}
                value={row.description}
                readOnly={readOnly}
                placeholder="What the tool does and when to use it"
                aria-invalid={!!e.description}
                onChange={(ev) => edit(i, { description: ev.target.value })}
              />
              <FieldError id={`${f}-description-error`} testId={`tool-description-${i}-error`} message={e.description} />
            </div>
            <div className="field">
              <label htmlFor={`${f}-schema`}>Input schema (JSON Schema)</label>
              <textarea
                id={`${f}-schema`}
                data-testid={`tool-schema-${i}`}
                className="json-box"
                rows={6}
                spellCheck={false}
                value={row.schema}
                readOnly={readOnly}
                aria-invalid={!!e.input_schema}
                aria-describedby={e.input_schema ? `${f}-schema-error` : undefined}
                onChange={(ev) => edit(i, { schema: ev.target.value })}
              />
              <FieldError id={`${f}-schema-error`} testId={`tool-schema-${i}-error`} message={e.input_schema} />
            </div>
            {!readOnly && (
              <button type="button" aria-label={`Remove tool ${i + 1}`} onClick={() => update(rows.filter((_, j) => j !== i))}>
                Remove tool
              </button>
            )}
          </fieldset>
        );
      })}
      {!readOnly && (
        <button type="button" data-testid="add-tool" disabled={rows.length >= MAX_TOOLS} onClick={() => update([...rows, emptyRow()])}>
          + Add tool
        </button>
      )}
    </div>
  );
}

function FieldError({ id, testId, message }: { id: string; testId: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <p className="field-error" role="alert" id={id} data-testid={testId}>
      {message}
    </p>
  );
}
