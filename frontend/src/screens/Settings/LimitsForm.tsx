import { type FormEvent, useEffect, useState } from "react";
import { useLimits, usePutLimits } from "../../api/settings";
import type { Limits } from "../../api/types";
import { ErrorBox, Loading } from "../../components/States";

const FIELDS: { key: keyof Limits; label: string }[] = [
  { key: "monthly_budget_usd", label: "Monthly budget (USD, empty = none)" },
  { key: "runs_per_minute", label: "Runs per minute (workspace)" },
  { key: "member_runs_per_minute", label: "Runs per minute (each member)" },
  { key: "max_concurrent_runs", label: "Concurrent runs" },
  { key: "max_queued_runs", label: "Queued runs" },
];

export function LimitsForm({ ws, admin }: { ws: string; admin: boolean }) {
  const limits = useLimits(ws);
  const put = usePutLimits(ws);
  const [values, setValues] = useState<Record<string, string>>({});
  useEffect(() => {
    if (limits.data) setValues(Object.fromEntries(FIELDS.map((f) => [f.key, String(limits.data[f.key] ?? "")])));
  }, [limits.data]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    put.mutate({
      monthly_budget_usd: values.monthly_budget_usd || null,
      runs_per_minute: Number(values.runs_per_minute),
      member_runs_per_minute: Number(values.member_runs_per_minute),
      max_concurrent_runs: Number(values.max_concurrent_runs),
      max_queued_runs: Number(values.max_queued_runs),
    });
  };
  return (
    <section className="panel" aria-label="Limits">
      <h2 className="panel-title">Limits</h2>
      {limits.isPending && <Loading what="Loading limits" />}
      <ErrorBox error={limits.error} />
      {limits.data && (
        <form onSubmit={submit}>
          {FIELDS.map((f) => (
            <label key={f.key}>
              {f.label}
              <input
                inputMode="decimal"
                disabled={!admin}
                value={values[f.key] ?? ""}
                onChange={(e) => setValues({ ...values, [f.key]: e.target.value })}
              />
            </label>
          ))}
          {admin && (
            <button type="submit" disabled={put.isPending}>
              Save limits
            </button>
          )}
          {put.isSuccess && <span role="status"> Saved.</span>}
          <ErrorBox error={put.error} title="Could not save the limits" />
        </form>
      )}
    </section>
  );
}
