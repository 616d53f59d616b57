import { describe, expect, it } from "vitest";
import {
  applyGridEvent,
  type CellView,
  cellView,
  type ComparisonCell,
  emptyGrid,
  type GridEvent,
  type GridState,
  gridTotals,
  parseGridEventId,
  passRate,
  sumUsd,
  versionAggregates,
} from "./gridState";

const RUN_A = "aaaaaaaa-0000-0000-0000-000000000000";
const RUN_B = "bbbbbbbb-0000-0000-0000-000000000000";
const RUN_A2 = "aaaaaaaa-2222-0000-0000-000000000000";

const delta = (cell: number, gen: number, seq: number, text: string, offset: number, runId = RUN_A): GridEvent => ({
  type: "run.delta",
  id: `${cell}:${gen}:${seq}-${offset}`,
  data: { text, run_id: runId, cell, offset },
});

const fold = (events: GridEvent[], state: GridState = emptyGrid()) => events.reduce((s, e) => applyGridEvent(s, e, 1000), state);

function summaryCell(over: Partial<ComparisonCell> = {}): ComparisonCell {
  return {
    position: 0, version: 1, provider: "mock", model: "mock-1", row_index: 0, run_id: RUN_A, status: "queued", output: "",
    stop_reason: null, error: null, usage: null, cost_usd: null, ttft_ms: null, duration_ms: null, earlier_run_ids: [],
    assertions: [], ratings: [], ...over,
  } as ComparisonCell;
}

describe("applyGridEvent", () => {
  it("keeps each cell's text apart, however the cells interleave", () => {
    const state = fold([
      { type: "run.started", id: "0:0:1-0", data: { run_id: RUN_A, cell: 0 } },
      delta(0, 0, 2, "Hello ", 6),
      delta(1, 0, 2, "Other ", 6, RUN_B),
      delta(0, 0, 3, "world ", 12),
      delta(1, 0, 3, "cell ", 11, RUN_B),
    ]);
    expect(state.cells[0]?.run.text).toBe("Hello world ");
    expect(state.cells[1]?.run.text).toBe("Other cell ");
    expect(state.cells[0]?.run.status).toBe("running");
    expect(state.positions).toEqual({ 0: "0:0:3-12", 1: "1:0:3-11" });
  });

  it("drops text it holds already when a cell's stream is replayed from the start", () => {
    let state = fold([delta(0, 0, 2, "one ", 4), delta(0, 0, 3, "two ", 8)]);
    // A reconnect that resumed only another cell replays this one: repeats go, new text stays.
    state = fold([delta(0, 0, 2, "one ", 4), delta(0, 0, 3, "two ", 8), delta(0, 0, 4, "three ", 14)], state);
    expect(state.cells[0]?.run.text).toBe("one two three ");
    expect(state.cells[0]?.chars).toBe(14);
  });

  it("takes only the unseen tail of a delta that overlaps what it holds, counting code points", () => {
    let state = fold([delta(0, 0, 2, "a😀", 2)]);
    expect(state.cells[0]?.chars).toBe(2);
    state = fold([delta(0, 0, 3, "😀bc", 4)], state); // chars 2..4 of the run's output: "bc" is new
    expect(state.cells[0]?.run.text).toBe("a😀bc");
  });

  it("follows a rerun cell's new run and ignores late events of the old one", () => {
    let state = fold([delta(0, 0, 2, "old ", 4), { type: "run.completed", id: "0:0:3-4", data: { run_id: RUN_A, cell: 0, status: "succeeded", output: "old " } }]);
    state = fold([{ type: "run.queued", id: "0:1:1-0", data: { run_id: RUN_A2, cell: 0 } }, delta(0, 1, 2, "new ", 4, RUN_A2)], state);
    state = fold([delta(0, 0, 4, "stale ", 10)], state);
    expect(state.cells[0]?.runId).toBe(RUN_A2);
    expect(state.cells[0]?.generation).toBe(1);
    expect(state.cells[0]?.run.text).toBe("new ");
    expect(state.positions[0]).toBe("0:1:2-4");
  });

  it("records comparison.completed with its progress and totals", () => {
    const done = { status: "completed", progress: { done: 2, total: 2 }, totals: { cost_usd: "0.1", input_tokens: 1, output_tokens: 2, grading_cost_usd: "0" } };
    const state = fold([{ type: "comparison.completed", id: "completed", data: done }]);
    expect(state.completed).toEqual(done);
    expect(state.positions).toEqual({});
  });

  it("parses grid event ids and refuses anything else", () => {
    expect(parseGridEventId("12:3:45-678")).toEqual({ position: 12, generation: 3 });
    expect(parseGridEventId("completed")).toBeNull();
    expect(parseGridEventId("3-4")).toBeNull();
  });
});

describe("cellView", () => {
  it("shows the streamed text of a running cell over the summary's older copy", () => {
    const live = fold([{ type: "run.started", id: "0:0:1-0", data: { run_id: RUN_A, cell: 0 } }, delta(0, 0, 2, "Hi there ", 9)]).cells[0];
    const view = cellView(summaryCell({ status: "running", output: "Hi " }), live);
    expect(view.output).toBe("Hi there ");
    expect(view.status).toBe("running");
    expect(view.live).toBe(true);
  });

  it("keeps a finished status while the stream replays the run's first events", () => {
    const live = fold([{ type: "run.queued", id: "0:0:1-0", data: { run_id: RUN_A, cell: 0 } }]).cells[0];
    const view = cellView(summaryCell({ status: "succeeded", output: "All done ", cost_usd: "0.00005" }), live);
    expect(view.status).toBe("succeeded");
    expect(view.output).toBe("All done ");
    expect(view.costUsd).toBe("0.00005");
  });

  it("takes cost, tokens and timings from the final run of the stream", () => {
    const final = { run_id: RUN_A, cell: 0, status: "succeeded", output: "x ", cost_usd: "0.000033", ttft_ms: 210, duration_ms: 400,
      usage: { input_tokens: 2, output_tokens: 1 }, stop_reason: "end_turn", error: null };
    const live = fold([delta(0, 0, 2, "x ", 2), { type: "run.completed", id: "0:0:3-2", data: final }]).cells[0];
    const view = cellView(summaryCell({ status: "running" }), live);
    expect(view).toMatchObject({ status: "succeeded", costUsd: "0.000033", ttftMs: 210, durationMs: 400, inputTokens: 2, outputTokens: 1, stopReason: "end_turn" });
  });

  it("shows a rerun's new run before the summary knows it, without the old run's evaluation", () => {
    const live = fold([{ type: "run.started", id: "0:1:1-0", data: { run_id: RUN_A2, cell: 0 } }]).cells[0];
    const old = summaryCell({ status: "succeeded", output: "old ", assertions: [{ assertion_id: "x", passed: true, error: null, model_graded: false, grader_run_id: null }] });
    const view = cellView(old, live);
    expect(view.runId).toBe(RUN_A2);
    expect(view.status).toBe("running");
    expect(view.output).toBe("");
    expect(view.assertions).toEqual([]);
    expect(view.earlierRunIds).toEqual([RUN_A]);
    // ... and once the summary has caught up with the rerun, a stale stream of the old generation is ignored.
    const stale = fold([delta(0, 0, 2, "old ", 4)]).cells[0];
    const caughtUp = summaryCell({ run_id: RUN_A2, earlier_run_ids: [RUN_A], status: "succeeded", output: "new " });
    expect(cellView(caughtUp, stale).output).toBe("new ");
  });
});

describe("aggregates", () => {
  const view = (over: Partial<CellView>): CellView => ({ ...cellView(summaryCell(), undefined), ...over });

  it("sums costs exactly as decimals", () => {
    expect(sumUsd(["0.1", "0.2"])).toBe("0.3");
    expect(sumUsd(["0.000033", null, "0.000108", "1"])).toBe("1.000141");
    expect(sumUsd([])).toBe("0");
  });

  it("totals cost, tokens and progress over the cells", () => {
    const totals = gridTotals([
      view({ status: "succeeded", costUsd: "0.000033", inputTokens: 2, outputTokens: 1 }),
      view({ status: "running", costUsd: null, inputTokens: 3, outputTokens: 4 }),
      view({ status: "cancelled", costUsd: "0.00001", inputTokens: 1, outputTokens: 0 }),
    ]);
    expect(totals).toEqual({ costUsd: "0.000043", inputTokens: 6, outputTokens: 5, done: 2, total: 3 });
  });

  it("rates each version: rule checks and model-graded checks apart, ratings, means of finished cells", () => {
    const r = (assertion_id: string, passed: boolean | null, model_graded = false) => ({ assertion_id, passed, error: null, model_graded, grader_run_id: null });
    const rating = (thumbs: "up" | "down" | null, score: number | null) => ({ user_id: "u", thumbs, score, note: null, updated_at: "" });
    const aggregates = versionAggregates([
      view({ version: 1, status: "succeeded", ttftMs: 100, durationMs: 300, costUsd: "0.1", assertions: [r("c", true), r("j", false), r("g", true, true)], ratings: [rating("up", 4)] }),
      view({ version: 1, status: "succeeded", ttftMs: 200, durationMs: 500, costUsd: "0.2", assertions: [r("c", true), r("j", null)], ratings: [rating("down", null), rating(null, 2)] }),
      view({ version: 2, status: "running", ttftMs: null, assertions: [r("c", null)] }),
    ]);
    expect(aggregates.map((a) => a.version)).toEqual([1, 2]);
    const [one, two] = aggregates;
    expect(one).toMatchObject({ cells: 2, done: 2, costUsd: "0.3", meanTtftMs: 150, meanDurationMs: 400, thumbsUp: 1, thumbsDown: 1, ratings: 3, meanScore: 3 });
    expect(one?.rules).toEqual({ passed: 2, evaluated: 3 });
    expect(one?.graded).toEqual({ passed: 1, evaluated: 1 });
    expect(one?.byAssertion).toEqual({ c: { passed: 2, evaluated: 2 }, j: { passed: 0, evaluated: 1 }, g: { passed: 1, evaluated: 1 } });
    expect(passRate(one!.rules)).toBeCloseTo(2 / 3);
    expect(two).toMatchObject({ cells: 1, done: 0, meanTtftMs: null, ratings: 0, meanScore: null });
    expect(passRate(two!.rules)).toBeNull();
  });
});
