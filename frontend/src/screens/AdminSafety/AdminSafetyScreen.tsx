// Safety dashboard: open flags by kind, flags per day, refusal rate per model, and the flags to review.
import { useParams, useSearchParams } from "react-router";
import { useFlags, useSafetySummary } from "../../api/safety";
import { ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { FlagList } from "./FlagList";
import { SafetySummaryView } from "./SafetySummaryView";

const KINDS = ["pii", "secret", "injection", "refusal"];

export function AdminSafetyScreen() {
  const { ws = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const admin = atLeast(useMembership(), "admin");
  const filters = { status: params.get("status") ?? "open", kind: params.get("kind") ?? undefined };
  const flags = useFlags(ws, filters);
  const summary = useSafetySummary(ws);
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    next.set(key, value);
    if (!value) next.delete(key);
    setParams(next, { replace: true });
  };
  return (
    <section className="page">
      <div className="page-head">
        <h1>Safety</h1>
        <form className="inline-form range" aria-label="Filter flags" onSubmit={(e) => e.preventDefault()}>
          <label>
            Status
            <select value={filters.status} onChange={(e) => set("status", e.target.value)}>
              <option value="open">open</option>
              <option value="resolved">resolved</option>
            </select>
          </label>
          <label>
            Kind
            <select value={filters.kind ?? ""} onChange={(e) => set("kind", e.target.value)}>
              <option value="">any kind</option>
              {KINDS.map((k) => (
                <option key={k}>{k}</option>
              ))}
            </select>
          </label>
        </form>
      </div>
      <ErrorBox error={summary.error} />
      {summary.data && <SafetySummaryView summary={summary.data} />}
      {flags.isPending && <Loading what="Loading flags" />}
      <ErrorBox error={flags.error} />
      <FlagList ws={ws} flags={flags.data?.items ?? []} loaded={!!flags.data} admin={admin} />
    </section>
  );
}
