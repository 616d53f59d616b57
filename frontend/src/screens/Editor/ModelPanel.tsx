// Model and parameters (from GET /workspaces/{ws}/models, with prices) and the estimate before running.
import { useId } from "react";
import { useModels } from "../../api/usage";
import type { Estimate, ModelConfig } from "../../api/types";
import { ErrorBox } from "../../components/States";
import { StopSequencesField } from "./StopSequencesField";

type Props = {
  ws: string;
  config: ModelConfig;
  readOnly: boolean;
  onChange: (config: ModelConfig) => void;
  estimate: Estimate | undefined;
  estimateError: unknown;
};

export function ModelPanel({ ws, config, readOnly, onChange, estimate, estimateError }: Props) {
  const id = useId();
  const models = useModels(ws);
  const current = `${config.provider}/${config.model}`;
  const list = models.data ?? [];
  const known = list.some((m) => `${m.provider}/${m.model}` === current);
  const selected = list.find((m) => `${m.provider}/${m.model}` === current);
  const number = (value: string) => (value === "" ? null : Number(value));
  return (
    <section className="panel" aria-label="Model">
      <h2 className="panel-title">Model</h2>
      <ErrorBox error={models.error} />
      <div className="field">
        <label htmlFor={`${id}-model`}>Model</label>
        <select
          id={`${id}-model`}
          data-testid="model-select"
          value={current}
          disabled={readOnly}
          onChange={(e) => {
            const [provider = "", ...rest] = e.target.value.split("/");
            onChange({ ...config, provider, model: rest.join("/") });
          }}
        >
          {!known && <option value={current}>{current}</option>}
          {list.map((m) => (
            <option key={`${m.provider}/${m.model}`} value={`${m.provider}/${m.model}`} disabled={!m.available}>
              {m.provider} · {m.label}
              {m.price ? ` — $${m.price.input_per_mtok} / $${m.price.output_per_mtok} per Mtok` : " — no price"}
              {m.available ? "" : " (no key)"}
            </option>
          ))}
        </select>
      </div>
      <div className="field-row">
        <div className="field">
          <label htmlFor={`${id}-max`}>Max tokens</label>
          <input
            id={`${id}-max`}
            type="number"
            min={1}
            max={selected?.max_output_tokens ?? undefined}
            value={config.max_tokens}
            disabled={readOnly}
            onChange={(e) => onChange({ ...config, max_tokens: Math.max(1, Number(e.target.value) || 1) })}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-temp`}>Temperature</label>
          <input
            id={`${id}-temp`}
            type="number"
            min={0}
            max={2}
            step={0.1}
            value={config.temperature ?? ""}
            disabled={readOnly}
            onChange={(e) => onChange({ ...config, temperature: number(e.target.value) })}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-top-p`}>Top p</label>
          <input
            id={`${id}-top-p`}
            type="number"
            min={0}
            max={1}
            step={0.05}
            value={config.top_p ?? ""}
            disabled={readOnly}
            onChange={(e) => onChange({ ...config, top_p: number(e.target.value) })}
          />
        </div>
      </div>
      <div className="field-row">
        <div className="field">
          <label htmlFor={`${id}-top-k`}>Top k</label>
          <input
            id={`${id}-top-k`}
            type="number"
            min={1}
            step={1}
            value={config.top_k ?? ""}
            disabled={readOnly}
            onChange={(e) => onChange({ ...config, top_k: number(e.target.value) })}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-thinking`}>Thinking budget</label>
          <input
            id={`${id}-thinking`}
            data-testid="thinking-budget"
            type="number"
            min={1024}
            step={1}
            placeholder="off"
            value={config.thinking_budget ?? ""}
            disabled={readOnly}
            onChange={(e) => onChange({ ...config, thinking_budget: number(e.target.value) })}
          />
        </div>
        <StopSequencesField
          id={`${id}-stop`}
          value={config.stop_sequences ?? []}
          readOnly={readOnly}
          onChange={(stop_sequences) => onChange({ ...config, stop_sequences })}
        />
      </div>
      <p className="estimate" aria-live="polite">
        {estimate
          ? `Estimate: ${estimate.input_tokens} input tokens, up to ${estimate.max_output_tokens} output tokens, at most $${estimate.max_cost_usd}`
          : estimateError
            ? `No estimate: ${estimateError instanceof Error ? estimateError.message : String(estimateError)}`
            : "Estimate: —"}
      </p>
    </section>
  );
}
