// Comparisons in history (newest first: status, progress, cost) and the form that starts a new one.
import { Link, useParams, useSearchParams } from "react-router";
import { useComparisons } from "../../api/comparisons";
import { usePrompts } from "../../api/prompts";
import { formatUsd } from "../../api/runs";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { formatDate, shortId } from "../../lib/format";
import { NewComparisonForm } from "./NewComparisonForm";

export function ComparisonsScreen() {
  const { ws = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const only = params.get("history_prompt") ?? "";
  const comparisons = useComparisons(ws, only || undefined);
  const prompts = usePrompts(ws);
  const canEdit = atLeast(useMembership(), "editor");
  const promptName = (id: string) => prompts.data?.items.find((p) => p.id === id)?.name ?? shortId(id);
  const items = comparisons.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="page">
      <div className="page-head">
        <h1>Compare</h1>
        <span className="muted">Run prompt versions side by side on the same cases.</span>
      </div>
      {canEdit && <NewComparisonForm ws={ws} initialPrompt={params.get("prompt")} initialDataset={params.get("dataset")} />}
      <div className="page-head">
        <h2>History</h2>
        <label className="field inline">
          Prompt
          <select
            value={only}
            onChange={(e) => {
              const next = new URLSearchParams(params);
              if (e.target.value) next.set("history_prompt", e.target.value);
              else next.delete("history_prompt");
              setParams(next, { replace: true });
            }}
            data-testid="comparison-filter-prompt"
          >
            <option value="">All prompts</option>
            {(prompts.data?.items ?? []).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      {comparisons.isPending && <Loading what="Loading comparisons" />}
      <ErrorBox error={comparisons.error} />
      {comparisons.data && items.length === 0 && <Empty>{only ? "No comparisons of this prompt yet." : "No comparisons yet."}</Empty>}
      {items.length > 0 && (
        <table className="table" aria-label="Comparisons" data-testid="comparison-list">
          <thead>
            <tr>
              <th>Comparison</th>
              <th>Prompt</th>
              <th>Versions</th>
              <th>Cells</th>
              <th>Status</th>
              <th>Cost</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.id}>
                <td>
                  <Link to={`/w/${ws}/compare/${c.id}`}>{c.name || shortId(c.id)}</Link>
                </td>
                <td>{promptName(c.prompt_id)}</td>
                <td>
                  {c.versions.map((v) => `v${v}`).join(", ")}
                  {c.models && <span className="muted small"> on {c.models.map((m) => m.model).join(", ")}</span>}
                </td>
                <td>{c.cell_count}</td>
                <td>
                  <span className={`status status-${c.status === "completed" ? "succeeded" : c.status}`}>{c.status}</span>{" "}
                  <span className="muted small">
                    {c.progress.done}/{c.progress.total}
                  </span>
                </td>
                <td>{formatUsd(c.cost_usd)}</td>
                <td>{formatDate(c.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {comparisons.hasNextPage && (
        <button type="button" onClick={() => void comparisons.fetchNextPage()} disabled={comparisons.isFetchingNextPage}>
          Load more
        </button>
      )}
    </section>
  );
}
