// A comparison: one column per version and model, one row per case; each cell a run with its output,
// cost and timings; totals and per-version figures above.
import { Link, useParams } from "react-router";
import { ApiError } from "../../api/client";
import { type ComparisonCell, useCancelComparison, useComparison } from "../../api/comparisons";
import { formatUsd } from "../../api/runs";
import { ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { formatMs, shortId } from "../../lib/format";
import { NotFoundScreen } from "../NotFound/NotFoundScreen";

export function CompareScreen() {
  const { ws = "", comparisonId = "" } = useParams();
  const comparison = useComparison(ws, comparisonId);
  const cancel = useCancelComparison(ws);
  const canEdit = atLeast(useMembership(), "editor");
  if (comparison.error instanceof ApiError && comparison.error.status === 404) return <NotFoundScreen what="comparison" />;
  if (comparison.error) return <ErrorBox error={comparison.error} />;
  if (!comparison.data) return <Loading what="Loading the comparison" />;
  const c = comparison.data;
  const columns = [...new Map(c.cells.map((cell) => [`${cell.version}|${cell.provider}/${cell.model}`, cell])).values()];
  const cellAt = (column: ComparisonCell, row: number) =>
    c.cells.find((x) => x.version === column.version && x.provider === column.provider && x.model === column.model && x.row_index === row);
  return (
    <section className="page">
      <div className="page-head">
        <h1>{c.name || `Comparison ${shortId(c.id)}`}</h1>
        <span className={`status status-${c.status === "completed" ? "succeeded" : "running"}`} data-testid="compare-status">
          {c.status} · {c.progress.done}/{c.progress.total}
        </span>
        <Link to={`/w/${ws}/prompts/${c.prompt_id}`}>Open the prompt</Link>
        {canEdit && c.status !== "completed" && (
          <button type="button" onClick={() => cancel.mutate(c.id)} disabled={cancel.isPending}>
            Cancel all
          </button>
        )}
      </div>
      <ErrorBox error={cancel.error} />
      <p className="muted">
        Total <span data-testid="compare-cost">{formatUsd(c.totals.cost_usd)}</span> · {c.totals.input_tokens} tokens in ·{" "}
        {c.totals.output_tokens} out
      </p>
      <table className="table compact spaced" aria-label="By version">
        <thead>
          <tr>
            <th>Version</th>
            <th>Cells done</th>
            <th>Cost</th>
            <th>Mean TTFT</th>
            <th>Mean duration</th>
            <th>Checks passed</th>
          </tr>
        </thead>
        <tbody>
          {c.by_version.map((v) => (
            <tr key={v.version}>
              <td>
                <Link to={`/w/${ws}/prompts/${c.prompt_id}/versions/${v.version}`}>v{v.version}</Link>
              </td>
              <td>
                {v.done}/{v.cells}
              </td>
              <td>{formatUsd(v.cost_usd)}</td>
              <td>{formatMs(v.mean_ttft_ms)}</td>
              <td>{formatMs(v.mean_duration_ms)}</td>
              <td>{v.assertions_evaluated ? `${v.assertions_passed}/${v.assertions_evaluated}` : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="compare-grid" data-testid="compare-grid" role="table" aria-label="Cells">
        <div role="row" className="compare-row" style={{ gridTemplateColumns: `8rem repeat(${columns.length}, minmax(0, 1fr))` }}>
          <div role="columnheader">Case</div>
          {columns.map((col) => (
            <div role="columnheader" key={`${col.version}${col.provider}${col.model}`}>
              v{col.version} · {col.provider}/{col.model}
            </div>
          ))}
        </div>
        {c.cases.map((_case, row) => (
          <div role="row" className="compare-row" key={row} style={{ gridTemplateColumns: `8rem repeat(${columns.length}, minmax(0, 1fr))` }}>
            <div role="rowheader">#{row + 1}</div>
            {columns.map((col) => {
              const cell = cellAt(col, row);
              return (
                <div role="cell" className="compare-cell" key={`${col.version}${col.provider}${col.model}`}>
                  {cell && (
                    <>
                      <span className={`status status-${cell.status}`}>{cell.status}</span>{" "}
                      <span className="muted small">
                        {formatUsd(cell.cost_usd)} · TTFT {formatMs(cell.ttft_ms)}
                      </span>
                      <pre className="run-output">{cell.output}</pre>
                      {cell.run_id && <Link to={`/w/${ws}/runs/${cell.run_id}`}>run {shortId(cell.run_id)}</Link>}
                    </>
                  )}
                </div>
              );
            })}
          </div>
        ))}
      </div>
    </section>
  );
}
