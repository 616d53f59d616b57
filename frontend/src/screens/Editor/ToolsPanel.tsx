// Tools (a form per tool, or the whole list as JSON), tool choice and the output schema (a JSON Schema
// object) of the draft. What does not pass the checks stays where it was typed with the reason beside it,
// leaves the draft as it was, and is reported up (`onProblem`) so the editor holds back runs and saves.
import { useEffect, useId, useState } from "react";
import type { VersionContent } from "../../api/types";
import { parseSchema, parseTools, type Tools } from "../../lib/jsonField";
import { metaSchemaProblem } from "../../lib/schemaCheck";
import { firstToolError, schemaErrors } from "../../lib/toolForm";
import { JsonBox } from "./JsonBox";
import { ToolList } from "./ToolList";

type ToolChoice = VersionContent["tool_choice"];
type Change = { tools?: Tools; tool_choice?: ToolChoice; output_schema?: Record<string, unknown> | null };

type Props = {
  tools: Tools;
  toolChoice: ToolChoice;
  outputSchema: Record<string, unknown> | null;
  readOnly: boolean;
  onChange: (change: Change) => void;
  onProblem?: (problem: string | null) => void;
};

const checkTools = async (tools: Tools) => firstToolError(await schemaErrors(tools));
const checkSchema = async (schema: Record<string, unknown> | null) => {
  const problem = schema ? await metaSchemaProblem(schema) : null;
  return problem ? `The output schema ${problem}` : null;
};

export function ToolsPanel({ tools, toolChoice, outputSchema, readOnly, onChange, onProblem }: Props) {
  const id = useId();
  // Folded away until used, so the run panel stays in view; open when the draft has tools or a schema.
  const [open, setOpen] = useState(() => tools.length > 0 || outputSchema !== null);
  const used = tools.length > 0 || outputSchema !== null;
  useEffect(() => {
    if (used) setOpen(true);
  }, [used]);
  const [view, setView] = useState<"form" | "json">("form");
  const [toolsProblem, setToolsProblem] = useState<string | null>(null);
  const [schemaProblem, setSchemaProblem] = useState<string | null>(null);
  const problem = toolsProblem ?? schemaProblem;
  useEffect(() => onProblem?.(problem), [problem]);

  const setTools = (next: Tools) => {
    const named = toolChoice?.type === "tool" && !next.some((t) => t.name === toolChoice.name);
    onChange(next.length === 0 ? { tools: [], tool_choice: null } : named ? { tools: next, tool_choice: null } : { tools: next });
  };
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
      <div className="tabs" role="group" aria-label="Edit tools as">
        <button type="button" aria-pressed={view === "form"} data-testid="tools-view-form" onClick={() => setView("form")}>
          Form
        </button>
        <button type="button" aria-pressed={view === "json"} data-testid="tools-view-json" onClick={() => setView("json")}>
          JSON
        </button>
      </div>
      {view === "form" ? (
        <ToolList tools={tools} readOnly={readOnly} onChange={setTools} onProblem={setToolsProblem} />
      ) : (
        <JsonBox
          id={`${id}-tools`}
          label="Tools (JSON)"
          testId="tools-json"
          value={tools}
          parse={parseTools}
          check={checkTools}
          readOnly={readOnly}
          rows={8}
          placeholder='[{"name": "search", "description": "…", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]'
          onValid={setTools}
          onProblem={setToolsProblem}
        />
      )}
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
        check={checkSchema}
        readOnly={readOnly}
        placeholder='{"type": "object", "properties": {"answer": {"type": "string"}}}'
        onValid={(value) => onChange({ output_schema: value })}
        onProblem={setSchemaProblem}
      />
    </details>
  );
}
