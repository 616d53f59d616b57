import { describe, expect, it } from "vitest";
import { applyEvent, costMicros, formatUsd, initialStreamState, isTerminal, liveOutputTokens } from "./streamState";

const start = () => initialStreamState("ws", "run", "prompt", 1000);

describe("applyEvent", () => {
  it("appends deltas in order and remembers the last event id", () => {
    let state = applyEvent(start(), { type: "run.started", id: "1", data: {} }, 1100);
    state = applyEvent(state, { type: "run.delta", id: "2", data: { text: "Hello " } }, 1250);
    state = applyEvent(state, { type: "run.delta", id: "3", data: { text: "world " } }, 1300);
    expect(state.text).toBe("Hello world ");
    expect(state.lastEventId).toBe("3");
    expect(state.status).toBe("running");
    expect(state.firstTokenAtMs).toBe(1250);
    expect(liveOutputTokens(state)).toBe(2);
    expect(isTerminal(state)).toBe(false);
  });

  it("takes usage figures when the provider gives them", () => {
    const state = applyEvent(start(), { type: "run.usage", id: "4", data: { input_tokens: 7, output_tokens: 9 } }, 0);
    expect(state.inputTokens).toBe(7);
    expect(liveOutputTokens(state)).toBe(9);
  });

  it("ends with the final run object of the terminal event", () => {
    let state = applyEvent(start(), { type: "run.delta", id: "2", data: { text: "partial " } }, 0);
    const run = { status: "cancelled", output: "partial ", usage: { input_tokens: 3, output_tokens: 1, estimated: true }, cost_usd: "0.000024" };
    state = applyEvent(state, { type: "run.cancelled", id: "3", data: run }, 0);
    expect(isTerminal(state)).toBe(true);
    expect(state.status).toBe("cancelled");
    expect(state.text).toBe("partial ");
    expect(state.outputTokens).toBe(1);
  });

  it("ignores unknown events but keeps their id", () => {
    const state = applyEvent(start(), { type: "run.something", id: "9", data: null }, 0);
    expect(state.text).toBe("");
    expect(state.lastEventId).toBe("9");
  });
});

describe("money", () => {
  it("prices tokens per million in micro-dollars", () => {
    expect(costMicros(21, 17, { input_per_mtok: "3", output_per_mtok: "15" })).toBe(318);
    expect(costMicros(1, 1, null)).toBeNull();
  });

  it("formats small and large amounts", () => {
    expect(formatUsd("0.000318")).toBe("$0.000318");
    expect(formatUsd(318, true)).toBe("$0.000318");
    expect(formatUsd("12.5")).toBe("$12.50");
    expect(formatUsd(null)).toBe("—");
  });
});

describe("thinking and tool calls", () => {
  it("accumulates run.thinking and run.tool_use events live", () => {
    let state = applyEvent(start(), { type: "run.thinking", id: "1", data: { text: "world " } }, 1200);
    state = applyEvent(state, { type: "run.thinking", id: "2", data: { text: "hello" } }, 1300);
    state = applyEvent(state, { type: "run.tool_use", id: "3", data: { id: "toolu_1", name: "lookup", input: { q: "hello world" } } }, 1400);
    expect(state.thinking).toBe("world hello");
    expect(state.toolUses).toEqual([{ id: "toolu_1", name: "lookup", input: { q: "hello world" } }]);
    expect(state.firstTokenAtMs).toBe(1200);
    expect(state.status).toBe("running");
  });

  it("takes them from the final run object for a tab that attached late", () => {
    const run = { status: "succeeded", output: "", thinking: "b a", tool_uses: [{ id: "t", name: "f", input: { x: 1 } }], usage: {} };
    const state = applyEvent(start(), { type: "run.completed", id: "9", data: run }, 0);
    expect(state.thinking).toBe("b a");
    expect(state.toolUses).toEqual([{ id: "t", name: "f", input: { x: 1 } }]);
  });
});
