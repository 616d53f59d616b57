// Run history, newest first, filtered by prompt, status and date (filters live in the URL).
import { Link, useParams, useSearchParams } from "react-router";
import { usePrompts } from "../../api/prompts";
import { formatUsd, useRuns } from "../../api/runs";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { formatDate, formatMs, shortId } from "../../lib/format";
import { RunFilters } from "./RunFilters";

export function RunsScreen() {
  const { ws = "" } = useParams();
  const [params] = useSearchParams();
  const filters = {
    prompt_id: params.get("prompt_id") ?? undefined,
    status: params.get("status") ?? undefined,
    from: params.get("from") ? new Date(params.get("from")!).toISOString() : undefined,
  };
  const runs = useRuns(ws, filters);
  const prompts = usePrompts(ws);
  const promptName = (id: string) => prompts.data?.items.find((p) => p.id === id)?.name ?? shortId(id);
  const items = runs.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="page">
      <div className="page-head">
        <h1>Runs</h1>
      </div>
      <RunFilters prompts={prompts.data?.items ?? []} />
      {runs.isPending && <Loading what="Loading runs" />}
      <ErrorBox error={runs.error} />
      {runs.data && items.length === 0 && <Empty>No runs match. Run a prompt from its editor.</Empty>}
      {items.length > 0 && (
        <table className="table" aria-label="Runs">
          <thead>
            <tr>
              <th>Run</th>
              <th>Prompt</th>
              <th>Status</th>
              <th>Model</th>
              <th>Tokens in / out</th>
              <th>Cost</th>
              <th>TTFT</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.id}>
                <td>
                  <Link to={`/w/${ws}/runs/${r.id}`}>{shortId(r.id)}</Link>
                </td>
                <td>
                  {promptName(r.prompt_id)} v{r.version}
                </td>
                <td>
                  <span className={`status status-${r.status}`}>{r.status}</span>
                </td>
                <td>{r.model}</td>
                <td>
                  {r.usage.input_tokens ?? "—"} / {r.usage.output_tokens ?? "—"}
                </td>
                <td>{formatUsd(r.cost_usd)}</td>
                <td>{formatMs(r.ttft_ms)}</td>
                <td>{formatDate(r.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs.hasNextPage && (
        <button type="button" onClick={() => void runs.fetchNextPage()} disabled={runs.isFetchingNextPage}>
          Load more
        </button>
      )}
    </section>
  );
}
