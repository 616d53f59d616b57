// One cell of the grid: its run's status, streamed output, cost, TTFT and duration, assertion results,
// ratings; select it for a diff, rerun it.
import { memo } from "react";
import { Link } from "react-router";
import type { CellView, Comparison } from "../../api/comparisons";
import { formatUsd } from "../../api/runs";
import { formatMs, shortId } from "../../lib/format";
import { CellRating } from "./CellRating";

type Props = {
  ws: string;
  comparison: Comparison;
  cell: CellView;
  canEdit: boolean;
  selected: boolean;
  rerunning: boolean;
  onToggleDiff: (runId: string) => void;
  onRerun: (runId: string) => void;
};

export const GridCell = memo(function GridCell({ ws, comparison, cell, canEdit, selected, rerunning, onToggleDiff, onRerun }: Props) {
  const finished = ["succeeded", "failed", "cancelled"].includes(cell.status);
  const assertionKind = new Map(comparison.assertions.map((a) => [a.id, a]));
  return (
    <div role="cell" className={`compare-cell${selected ? " selected" : ""}`} data-testid={`compare-cell-${cell.position}`} data-run-id={cell.runId ?? ""}>
      <div className="cell-head">
        <span className={`status status-${cell.status}`} data-testid="cell-status">
          {cell.status}
        </span>
        <span className="muted small cell-stats">
          <span data-testid="cell-cost">{formatUsd(cell.costUsd)}</span> · TTFT <span data-testid="cell-ttft">{formatMs(cell.ttftMs)}</span> ·{" "}
          <span data-testid="cell-duration">{formatMs(cell.durationMs)}</span> · {cell.outputTokens ?? 0} tok
        </span>
      </div>
      <pre className="run-output" data-testid="cell-output" tabIndex={0} aria-label={`Output of v${cell.version}, case ${cell.rowIndex + 1}`}>
        {cell.output}
      </pre>
      {cell.error && <p className="field-error">{cell.error}</p>}
      {cell.stopReason && cell.stopReason !== "end_turn" && <p className="muted small">stopped: {cell.stopReason}</p>}
      {cell.assertions.length > 0 && (
        <ul className="cell-checks" aria-label="Checks" data-testid="cell-checks">
          {cell.assertions.map((r) => {
            const a = assertionKind.get(r.assertion_id);
            const verdict = r.passed === null ? "not evaluated" : r.passed ? "pass" : "fail";
            return (
              <li key={r.assertion_id} className={`check check-${r.passed === null ? "none" : r.passed ? "pass" : "fail"}`} title={r.error ?? undefined} data-testid={`cell-check-${r.assertion_id}`}>
                {r.model_graded && <span className="model-graded">model-graded</span>} {a ? describeAssertion(a) : "check"}: <strong>{verdict}</strong>
                {r.grader_run_id && (
                  <Link to={`/w/${ws}/runs/${r.grader_run_id}`} className="small">
                    {" "}
                    grading run
                  </Link>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <CellRating ws={ws} comparisonId={comparison.id} cell={cell} canEdit={canEdit && finished} />
      <div className="cell-actions">
        {cell.runId && (
          <label className="checkbox">
            <input type="checkbox" checked={selected} onChange={() => onToggleDiff(cell.runId!)} data-testid="cell-diff-select" />
            Diff
          </label>
        )}
        {canEdit && cell.runId && finished && (
          <button type="button" className="link" onClick={() => onRerun(cell.runId!)} disabled={rerunning} data-testid="cell-rerun">
            Rerun
          </button>
        )}
        {cell.runId && (
          <Link to={`/w/${ws}/runs/${cell.runId}`} className="small">
            run {shortId(cell.runId)}
          </Link>
        )}
        {cell.earlierRunIds.length > 0 && <span className="muted small">reruns: {cell.earlierRunIds.length}</span>}
      </div>
    </div>
  );
});

export function describeAssertion(a: { kind: string; value: string | null; model_graded?: boolean }): string {
  switch (a.kind) {
    case "contains":
      return `contains “${a.value}”`;
    case "not_contains":
      return `does not contain “${a.value}”`;
    case "regex":
      return `matches /${a.value}/`;
    case "is_json":
      return "is valid JSON";
    case "equals_expected":
      return "equals the expected output";
    case "model_graded":
      return "rubric";
    default:
      return a.kind;
  }
}
