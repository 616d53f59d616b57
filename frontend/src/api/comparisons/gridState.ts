// What a tab knows about a grid, folded from the one multiplexed event stream (pure: unit-tested).
// Each cell's run events are folded with the run stream's own `applyEvent`; this adds what a grid needs:
// which run a cell shows (a rerun starts a new generation), dropping text already held (a replayed delta,
// told by its `offset`), the last event id per cell (to reopen with `?positions=`), and `comparison.completed`.
import type { components } from "../schema";
import { applyEvent, initialStreamState, type StreamState } from "../runs/streamState";
import { TERMINAL_STATUSES, type RunStatus } from "../types";

type S = components["schemas"];
export type Comparison = S["ComparisonOut"];
export type ComparisonCell = S["Cell"];
export type AssertionResult = S["AssertionResult"];

export type CellLive = {
  position: number;
  generation: number;
  runId: string;
  chars: number; // code points of run.text (the server's delta offsets count code points)
  run: StreamState;
};

export type Completed = { status: string; progress: { done: number; total: number }; totals: S["Totals"] };

export type GridState = {
  cells: Record<number, CellLive>;
  positions: Record<number, string>; // last event id heard per cell
  completed: Completed | null;
};

export type GridEvent = { type: string; id: string | null; data: unknown };

export const GRID_EVENT_TYPES = [
  "run.queued", "run.started", "run.delta", "run.thinking", "run.tool_use", "run.usage", "run.flagged",
  "run.completed", "run.failed", "run.cancelled", "comparison.completed",
] as const;

export function emptyGrid(): GridState {
  return { cells: {}, positions: {}, completed: null };
}

/** "<position>:<generation>:<seq>-<offset>" → its cell and generation; null for `completed` or anything else. */
export function parseGridEventId(id: string | null): { position: number; generation: number } | null {
  const match = id ? /^(\d+):(\d+):\d+-\d+$/.exec(id) : null;
  return match ? { position: Number(match[1]), generation: Number(match[2]) } : null;
}

export function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** The last `count` code points of `text`. */
function lastCodePoints(text: string, count: number): string {
  if (count <= 0) return "";
  const points = [...text];
  return points.slice(Math.max(0, points.length - count)).join("");
}

export function applyGridEvent(state: GridState, event: GridEvent, nowMs: number): GridState {
  if (event.type === "comparison.completed") return { ...state, completed: event.data as Completed };
  const data = (event.data ?? {}) as Record<string, unknown>;
  const where = parseGridEventId(event.id);
  const position = typeof data.cell === "number" ? data.cell : where?.position;
  const runId = typeof data.run_id === "string" ? data.run_id : null;
  if (position === undefined || runId === null) return state;
  const known = state.cells[position];
  const generation = where?.generation ?? known?.generation ?? 0;
  if (known && generation < known.generation) return state; // a late event of a run the cell has replaced
  let cell: CellLive =
    known && known.generation === generation && known.runId === runId
      ? known
      : { position, generation, runId, chars: 0, run: initialStreamState("", runId, null, nowMs) };
  const positions = event.id && where ? { ...state.positions, [position]: event.id } : state.positions;

  if (event.type === "run.delta") {
    const text = String(data.text ?? "");
    const offset = typeof data.offset === "number" ? data.offset : cell.chars + codePoints(text);
    if (offset <= cell.chars) return { ...state, positions }; // held already (a replay)
    const start = offset - codePoints(text);
    const fresh = start < cell.chars ? lastCodePoints(text, offset - cell.chars) : text;
    cell = { ...cell, chars: offset, run: applyEvent(cell.run, { ...event, data: { ...data, text: fresh } }, nowMs) };
  } else {
    const run = applyEvent(cell.run, event, nowMs);
    cell = { ...cell, run, chars: run.text === cell.run.text ? cell.chars : codePoints(run.text) };
  }
  return { ...state, positions, cells: { ...state.cells, [position]: cell } };
}

/** What the grid shows for one cell: the summary's cell, brought up to date by the stream when it is ahead. */
export type CellView = {
  position: number;
  version: number;
  provider: string;
  model: string;
  rowIndex: number;
  runId: string | null;
  status: RunStatus | "deleted";
  output: string;
  costUsd: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  ttftMs: number | null;
  durationMs: number | null;
  stopReason: string | null;
  error: string | null;
  earlierRunIds: string[];
  /** The summary's evaluation of this cell's current run (empty while the summary still knows an earlier run). */
  assertions: AssertionResult[];
  ratings: S["RatingOut"][];
  live: boolean; // the stream knows this run
};

function isTerminalStatus(status: string): boolean {
  return status === "deleted" || (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export function cellView(cell: ComparisonCell, live: CellLive | undefined): CellView {
  const summaryGeneration = cell.earlier_run_ids.length;
  const base: CellView = {
    position: cell.position,
    version: cell.version,
    provider: cell.provider,
    model: cell.model,
    rowIndex: cell.row_index,
    runId: cell.run_id,
    status: cell.status as CellView["status"],
    output: cell.output,
    costUsd: cell.cost_usd,
    inputTokens: cell.usage?.input_tokens ?? null,
    outputTokens: cell.usage?.output_tokens ?? null,
    ttftMs: cell.ttft_ms,
    durationMs: cell.duration_ms,
    stopReason: cell.stop_reason,
    error: errorMessage(cell.error),
    earlierRunIds: cell.earlier_run_ids,
    assertions: cell.assertions ?? [],
    ratings: cell.ratings ?? [],
    live: false,
  };
  if (!live || live.generation < summaryGeneration) return base;
  if (live.generation === summaryGeneration && live.runId !== cell.run_id) return base;
  const sameRun = live.runId === cell.run_id;
  const final = live.run.run;
  const earlier = sameRun ? cell.earlier_run_ids : [...cell.earlier_run_ids, ...(cell.run_id ? [cell.run_id] : [])];
  // Both sources hold a prefix of the same output: the longer one is the newer. A finished status wins
  // over a replayed "queued" or "running".
  const status: CellView["status"] =
    sameRun && isTerminalStatus(cell.status) && !final ? base.status : (final?.status ?? live.run.status);
  return {
    ...base,
    runId: live.runId,
    status,
    output: sameRun && cell.output.length > live.run.text.length ? cell.output : live.run.text,
    costUsd: final?.cost_usd ?? (sameRun ? cell.cost_usd : null),
    inputTokens: final?.usage?.input_tokens ?? live.run.inputTokens ?? (sameRun ? base.inputTokens : null),
    outputTokens: final?.usage?.output_tokens ?? (live.run.outputTokens ?? (live.run.deltas || (sameRun ? base.outputTokens : null))),
    ttftMs: final?.ttft_ms ?? (sameRun ? cell.ttft_ms : null),
    durationMs: final?.duration_ms ?? (sameRun ? cell.duration_ms : null),
    stopReason: final?.stop_reason ?? (sameRun ? cell.stop_reason : null),
    error: final ? errorMessage(final.error) : sameRun ? base.error : null,
    earlierRunIds: earlier,
    assertions: sameRun ? base.assertions : [],
    ratings: sameRun ? base.ratings : [],
    live: true,
  };
}

function errorMessage(error: unknown): string | null {
  if (!error || typeof error !== "object") return null;
  const e = error as Record<string, unknown>;
  return String(e.message ?? e.detail ?? e.type ?? "failed");
}

export function isDone(cell: CellView): boolean {
  return isTerminalStatus(cell.status);
}

// Money: decimal strings summed exactly (in 1e-12 dollars), so a total equals its cells' costs to the digit.
const SCALE = 12;

function toUnits(value: string): bigint {
  const negative = value.startsWith("-");
  const [whole = "0", fraction = ""] = value.replace(/^[-+]/, "").split(".");
  const units = BigInt(whole || "0") * 10n ** BigInt(SCALE) + BigInt((fraction + "0".repeat(SCALE)).slice(0, SCALE) || "0");
  return negative ? -units : units;
}

function fromUnits(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const whole = abs / 10n ** BigInt(SCALE);
  const fraction = (abs % 10n ** BigInt(SCALE)).toString().padStart(SCALE, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

export function sumUsd(values: (string | null | undefined)[]): string {
  return fromUnits(values.reduce<bigint>((total, v) => (v && /^[-+]?\d*\.?\d*$/.test(v) ? total + toUnits(v) : total), 0n));
}

export type Totals = { costUsd: string; inputTokens: number; outputTokens: number; done: number; total: number };

export function gridTotals(cells: CellView[]): Totals {
  return {
    costUsd: sumUsd(cells.map((c) => c.costUsd)),
    inputTokens: cells.reduce((n, c) => n + (c.inputTokens ?? 0), 0),
    outputTokens: cells.reduce((n, c) => n + (c.outputTokens ?? 0), 0),
    done: cells.filter(isDone).length,
    total: cells.length,
  };
}

export type Rate = { passed: number; evaluated: number };

export type VersionAggregate = {
  version: number;
  cells: number;
  done: number;
  costUsd: string;
  meanTtftMs: number | null;
  meanDurationMs: number | null;
  rules: Rate; // contains, regex, ... results
  graded: Rate; // model-graded results, kept apart
  byAssertion: Record<string, Rate>;
  thumbsUp: number;
  thumbsDown: number;
  ratings: number;
  meanScore: number | null;
};

function mean(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length ? present.reduce((a, b) => a + b, 0) / present.length : null;
}

export function passRate(rate: Rate): number | null {
  return rate.evaluated ? rate.passed / rate.evaluated : null;
}

/** Per version, in the order versions first appear: progress, cost, latency, assertion pass rates, ratings. */
export function versionAggregates(cells: CellView[]): VersionAggregate[] {
  const versions = [...new Set(cells.map((c) => c.version))];
  return versions.map((version) => {
    const mine = cells.filter((c) => c.version === version);
    const finished = mine.filter((c) => c.status === "succeeded" || c.status === "failed" || c.status === "cancelled");
    const rules: Rate = { passed: 0, evaluated: 0 };
    const graded: Rate = { passed: 0, evaluated: 0 };
    const byAssertion: Record<string, Rate> = {};
    for (const cell of mine) {
      for (const result of cell.assertions) {
        if (result.passed === null) continue;
        const rate = result.model_graded ? graded : rules;
        const one = (byAssertion[result.assertion_id] ??= { passed: 0, evaluated: 0 });
        for (const r of [rate, one]) {
          r.evaluated += 1;
          if (result.passed) r.passed += 1;
        }
      }
    }
    const ratings = mine.flatMap((c) => c.ratings);
    return {
      version,
      cells: mine.length,
      done: mine.filter(isDone).length,
      costUsd: sumUsd(mine.map((c) => c.costUsd)),
      meanTtftMs: mean(finished.map((c) => c.ttftMs)),
      meanDurationMs: mean(finished.map((c) => c.durationMs)),
      rules,
      graded,
      byAssertion,
      thumbsUp: ratings.filter((r) => r.thumbs === "up").length,
      thumbsDown: ratings.filter((r) => r.thumbs === "down").length,
      ratings: ratings.length,
      meanScore: mean(ratings.map((r) => r.score)),
    };
  });
}
