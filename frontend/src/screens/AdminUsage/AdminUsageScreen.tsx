// Usage dashboard: spend by day, model, user and prompt; the month's budget; latency per model.
import { useState } from "react";
import { useParams } from "react-router";
import { usePrompts } from "../../api/prompts";
import { useMembers } from "../../api/settings";
import { type GroupBy, useUsage } from "../../api/usage";
import { formatUsd } from "../../api/runs";
import { ErrorBox, Loading } from "../../components/States";
import { BudgetGauge } from "./BudgetGauge";
import { LatencyTable } from "./LatencyTable";
import { SpendChart } from "./SpendChart";

const GROUPS: GroupBy[] = ["day", "model", "user", "prompt"];

export function AdminUsageScreen() {
  const { ws = "" } = useParams();
  const [groupBy, setGroupBy] = useState<GroupBy>("day");
  const [range, setRange] = useState({ from: "", to: "" });
  const usage = useUsage(ws, groupBy, range.from || undefined, range.to || undefined);
  const members = useMembers(ws);
  const prompts = usePrompts(ws);
  // Rows are keyed by ids for users and prompts: show names where this workspace knows them.
  const names: Record<string, string> = Object.fromEntries([
    ...(members.data ?? []).map((m) => [m.user_id, m.name || m.email]),
    ...(prompts.data?.items ?? []).map((p) => [p.id, p.name]),
  ]);
  return (
    <section className="page">
      <div className="page-head">
        <h1>Usage</h1>
        {usage.data && (
          <span className="muted">
            {usage.data.from} – {usage.data.to} (end excluded)
          </span>
        )}
        <form className="inline-form range" aria-label="Period" onSubmit={(e) => e.preventDefault()}>
          <label>
            From
            <input type="date" value={range.from} onChange={(e) => setRange({ ...range, from: e.target.value })} />
          </label>
          <label>
            To (excluded)
            <input type="date" value={range.to} onChange={(e) => setRange({ ...range, to: e.target.value })} />
          </label>
        </form>
      </div>
      {usage.isPending && <Loading what="Loading usage" />}
      <ErrorBox error={usage.error} />
      {usage.data && (
        <>
          <div className="kpis">
            <div className="kpi">
              <span>Spend</span>
              <strong data-testid="usage-total-cost">{formatUsd(usage.data.total.cost_usd)}</strong>
            </div>
            <div className="kpi">
              <span>Runs</span>
              <strong>{usage.data.total.runs}</strong>
            </div>
            <div className="kpi">
              <span>Tokens in / out</span>
              <strong>
                {usage.data.total.input_tokens} / {usage.data.total.output_tokens}
              </strong>
            </div>
            <BudgetGauge budget={usage.data.budget} />
          </div>
          <div className="tabs" role="group" aria-label="Group spend by">
            {GROUPS.map((g) => (
              <button key={g} type="button" aria-pressed={g === groupBy} onClick={() => setGroupBy(g)}>
                By {g}
              </button>
            ))}
          </div>
          <SpendChart rows={usage.data.rows} groupBy={groupBy} names={names} />
        </>
      )}
      <LatencyTable ws={ws} names={names} />
    </section>
  );
}
