// A comparison: one column per version and model, one row per case, each cell a run. A running grid
// streams over ONE EventSource (all cells multiplexed); the summary (assertion results, ratings) is re-read
// as cells finish. Totals, per-version figures, assertions, ratings, diff of two cells, rerun of one.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { ApiError } from "../../api/client";
import {
  type Comparison,
  type CellView,
  cellView,
  comparisonKeys,
  gridTotals,
  useCancelComparison,
  useComparison,
  useGridStream,
  useRerunCell,
  versionAggregates,
} from "../../api/comparisons";
import { formatUsd } from "../../api/runs";
import { ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { shortId } from "../../lib/format";
import { NotFoundScreen } from "../NotFound/NotFoundScreen";
import { AssertionsPanel } from "./AssertionsPanel";
import { CellDiff } from "./CellDiff";
import { GridCell } from "./GridCell";
import { VersionTable } from "./VersionTable";

export function CompareScreen() {
  const { ws = "", comparisonId = "" } = useParams();
  const comparison = useComparison(ws, comparisonId);
  if (comparison.error instanceof ApiError && comparison.error.status === 404) return <NotFoundScreen what="comparison" />;
  if (comparison.error && !comparison.data) return <ErrorBox error={comparison.error} />;
  if (!comparison.data) return <Loading what="Loading the comparison" />;
  return <Grid key={comparisonId} ws={ws} comparison={comparison.data} />;
}

// Finished cells bring the summary up to date at most this often (a big grid's summary costs more to read).
const summaryEveryMs = (cells: number) => Math.max(1000, cells * 10);

function Grid({ ws, comparison: c }: { ws: string; comparison: Comparison }) {
  const canEdit = atLeast(useMembership(), "editor");
  const client = useQueryClient();
  const { state, streamer } = useGridStream(ws, c.id, c.status !== "completed");
  const cancel = useCancelComparison(ws, c.id);
  const rerun = useRerunCell(ws, c.id);
  const [pair, setPair] = useState<string[]>([]);

  // A view is rebuilt only for a cell whose summary or stream changed, so only that cell re-renders.
  const views = useRef(new WeakMap<object, { live: unknown; view: CellView }>());
  const cells = useMemo(
    () =>
      c.cells.map((cell) => {
        const live = state.cells[cell.position];
        const known = views.current.get(cell);
        if (known && known.live === live) return known.view;
        const view = cellView(cell, live);
        views.current.set(cell, { live, view });
        return view;
      }),
    [c.cells, state.cells],
  );
  const totals = gridTotals(cells);
  const aggregates = versionAggregates(cells);
  const running = totals.done < totals.total;
  const word = !running ? "completed" : c.status === "queued" && totals.done === 0 && !cells.some((x) => x.status === "running") ? "queued" : "running";

  // Each finished cell (and the end of the stream) asks for the summary again, a second apart at most.
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      void client.invalidateQueries({ queryKey: comparisonKeys.detail(ws, c.id), exact: true });
    }, summaryEveryMs(c.cells.length));
  }, [totals.done, state.completed, client, ws, c.id, c.cells.length]);
  useEffect(() => () => (timer.current ? clearTimeout(timer.current) : undefined), []);

  const columns = [...new Map(cells.map((cell) => [columnKey(cell), cell])).values()];
  const byPlace = new Map(cells.map((cell) => [`${columnKey(cell)}#${cell.rowIndex}`, cell]));
  const template = { gridTemplateColumns: `10rem repeat(${columns.length}, minmax(16rem, 1fr))` };
  const toggleDiff = useCallback(
    (runId: string) => setPair((p) => (p.includes(runId) ? p.filter((x) => x !== runId) : [...p, runId].slice(-2))),
    [],
  );
  const rerunCell = rerun.mutate;
  const doRerun = useCallback(
    (runId: string) =>
      rerunCell(runId, {
        onSuccess: () => {
          setPair((p) => p.filter((x) => x !== runId));
          streamer.open(); // a finished grid's stream closed: reopen it (each cell resumes) to stream the new run
        },
      }),
    [rerunCell, streamer],
  );

  return (
    <section className="page compare-page">
      <div className="page-head">
        <h1>{c.name || `Comparison ${shortId(c.id)}`}</h1>
        <span className={`status status-${word === "completed" ? "succeeded" : word}`} data-testid="compare-status">
          {word} · {totals.done}/{totals.total}
        </span>
        <Link to={`/w/${ws}/prompts/${c.prompt_id}`}>Open the prompt</Link>
        {c.dataset_id && <Link to={`/w/${ws}/datasets/${c.dataset_id}`}>The dataset</Link>}
        {canEdit && running && (
          <button type="button" onClick={() => cancel.mutate(undefined)} disabled={cancel.isPending} data-testid="compare-cancel">
            Cancel all
          </button>
        )}
      </div>
      <ErrorBox error={cancel.error} title="Not cancelled" />
      <ErrorBox error={rerun.error} title="Not rerun" />
      {state.error && <ErrorBox error={state.error} title="Stream interrupted" />}
      <div className="kpis">
        <div className="kpi">
          <span>Progress</span>
          <strong data-testid="compare-progress">
            {totals.done}/{totals.total}
          </strong>
          <progress max={totals.total} value={totals.done} aria-label="Cells finished" />
        </div>
        <div className="kpi">
          <span>Cost</span>
          <strong data-testid="compare-cost">{formatUsd(totals.costUsd)}</strong>
        </div>
        <div className="kpi">
          <span>Tokens in / out</span>
          <strong data-testid="compare-tokens">
            {totals.inputTokens} / {totals.outputTokens}
          </strong>
        </div>
        {c.assertions.some((a) => a.model_graded) && (
          <div className="kpi">
            <span>Model-graded checks cost</span>
            <strong data-testid="compare-grading-cost">{formatUsd(c.totals.grading_cost_usd)}</strong>
          </div>
        )}
      </div>
      <VersionTable ws={ws} promptId={c.prompt_id} aggregates={aggregates} assertions={c.assertions} />
      <AssertionsPanel ws={ws} comparison={c} canEdit={canEdit} running={running} />
      {pair.length === 2 && (
        <CellDiff ws={ws} comparisonId={c.id} a={cells.find((x) => x.runId === pair[0])!} b={cells.find((x) => x.runId === pair[1])!} onClose={() => setPair([])} />
      )}
      {pair.length === 1 && <p className="notice">Choose a second cell to see the two outputs' differences.</p>}
      <div className="compare-grid" data-testid="compare-grid" role="table" aria-label="Cells">
        <div role="row" className="compare-row" style={template}>
          <div role="columnheader">Case</div>
          {columns.map((col) => (
            <div role="columnheader" key={columnKey(col)}>
              v{col.version} · {col.provider}/{col.model}
            </div>
          ))}
        </div>
        {c.cases.map((item, row) => (
          <div role="row" className="compare-row" key={row} style={template}>
            <CaseHeader index={row} item={item} />
            {columns.map((col) => {
              const cell = byPlace.get(`${columnKey(col)}#${row}`);
              return cell ? (
                <GridCell
                  key={columnKey(col)}
                  ws={ws}
                  comparison={c}
                  cell={cell}
                  canEdit={canEdit}
                  selected={cell.runId !== null && pair.includes(cell.runId)}
                  onToggleDiff={toggleDiff}
                  onRerun={doRerun}
                  rerunning={rerun.isPending && rerun.variables === cell.runId}
                />
              ) : (
                <div role="cell" key={columnKey(col)} />
              );
            })}
          </div>
        ))}
      </div>
    </section>
  );
}

function columnKey(cell: CellView): string {
  return `${cell.version}|${cell.provider}/${cell.model}`;
}

function CaseHeader({ index, item }: { index: number; item: Record<string, unknown> }) {
  const variables = (item.variables ?? {}) as Record<string, string>;
  const expected = typeof item.expected === "string" ? item.expected : null;
  return (
    <div role="rowheader" className="case-head">
      <strong>#{index + 1}</strong>
      {Object.entries(variables).map(([name, value]) => (
        <span key={name} className="case-var" title={value}>
          <span className="muted">{name}:</span> {value.length > 80 ? `${value.slice(0, 80)}…` : value}
        </span>
      ))}
      {expected !== null && (
        <span className="case-var" title={expected}>
          <span className="muted">expected:</span> {expected.length > 80 ? `${expected.slice(0, 80)}…` : expected}
        </span>
      )}
    </div>
  );
}
