// Per version: cells done, cost, mean TTFT and duration, pass rate of the rule checks and (apart, marked)
// of the model-graded ones, ratings.
import { Link } from "react-router";
import { type AssertionOut, passRate, type Rate, type VersionAggregate } from "../../api/comparisons";
import { formatUsd } from "../../api/runs";
import { formatMs } from "../../lib/format";

export function formatRate(rate: Rate): string {
  const r = passRate(rate);
  return r === null ? "—" : `${Math.round(r * 100)}% (${rate.passed}/${rate.evaluated})`;
}

export function VersionTable({ ws, promptId, aggregates, assertions }: { ws: string; promptId: string; aggregates: VersionAggregate[]; assertions: AssertionOut[] }) {
  const graded = assertions.some((a) => a.model_graded);
  return (
    <table className="table compact spaced" aria-label="By version" data-testid="compare-versions-table">
      <thead>
        <tr>
          <th>Version</th>
          <th>Cells done</th>
          <th>Cost</th>
          <th>Mean TTFT</th>
          <th>Mean duration</th>
          <th>Checks passed</th>
          {graded && <th>Model-graded passed</th>}
          <th>Ratings</th>
        </tr>
      </thead>
      <tbody>
        {aggregates.map((v) => (
          <tr key={v.version} data-testid={`compare-version-${v.version}`}>
            <td>
              <Link to={`/w/${ws}/prompts/${promptId}/versions/${v.version}`}>v{v.version}</Link>
            </td>
            <td>
              {v.done}/{v.cells}
            </td>
            <td>{formatUsd(v.costUsd)}</td>
            <td>{formatMs(v.meanTtftMs)}</td>
            <td>{formatMs(v.meanDurationMs)}</td>
            <td data-testid={`compare-pass-rate-${v.version}`}>{formatRate(v.rules)}</td>
            {graded && <td data-testid={`compare-graded-rate-${v.version}`}>{formatRate(v.graded)}</td>}
            <td data-testid={`compare-ratings-${v.version}`}>
              {v.ratings === 0
                ? "—"
                : `▲ ${v.thumbsUp} · ▼ ${v.thumbsDown}${v.meanScore !== null ? ` · mean ${v.meanScore.toFixed(1)}/5` : ""} (${v.ratings})`}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
