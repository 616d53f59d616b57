import { useId } from "react";
import { useSearchParams } from "react-router";
import type { Prompt } from "../../api/types";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];

export function RunFilters({ prompts }: { prompts: Prompt[] }) {
  const id = useId();
  const [params, setParams] = useSearchParams();
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  return (
    <form className="inline-form filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      <label htmlFor={`${id}-prompt`}>Prompt</label>
      <select id={`${id}-prompt`} value={params.get("prompt_id") ?? ""} onChange={(e) => set("prompt_id", e.target.value)}>
        <option value="">All prompts</option>
        {prompts.map((p) => (
          <option key={p.id} value={p.id}>
            {p.name}
          </option>
        ))}
      </select>
      <label htmlFor={`${id}-status`}>Status</label>
      <select id={`${id}-status`} value={params.get("status") ?? ""} onChange={(e) => set("status", e.target.value)}>
        <option value="">Any status</option>
        {STATUSES.map((s) => (
          <option key={s}>{s}</option>
        ))}
      </select>
      <label htmlFor={`${id}-from`}>Since</label>
      <input id={`${id}-from`} type="date" value={params.get("from") ?? ""} onChange={(e) => set("from", e.target.value)} />
    </form>
  );
}
