// The differences between two cells' outputs (GET .../diff: the server's unified diff), lines marked.
import { type CellView, useCellDiff } from "../../api/comparisons";
import { ErrorBox, Loading } from "../../components/States";

export function CellDiff({ ws, comparisonId, a, b, onClose }: { ws: string; comparisonId: string; a: CellView; b: CellView; onClose: () => void }) {
  const diff = useCellDiff(ws, comparisonId, a.runId && b.runId ? [a.runId, b.runId] : null);
  const label = (c: CellView) => `v${c.version} ${c.model}, case ${c.rowIndex + 1}`;
  return (
    <section className="panel cell-diff" aria-label="Diff of two cells" data-testid="compare-diff">
      <div className="page-head">
        <h2 className="panel-title">
          {label(a)} → {label(b)}
        </h2>
        <button type="button" onClick={onClose}>
          Close diff
        </button>
      </div>
      {diff.isPending && <Loading what="Comparing" />}
      <ErrorBox error={diff.error} />
      {diff.data?.identical && <p data-testid="compare-diff-identical">The two outputs are identical.</p>}
      {diff.data && !diff.data.identical && (
        <pre className="unified-diff" data-testid="compare-diff-text">
          {diff.data.unified.split("\n").map((line, i) => (
            <span key={i} className={line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : undefined}>
              {line}
              {"\n"}
            </span>
          ))}
        </pre>
      )}
    </section>
  );
}
