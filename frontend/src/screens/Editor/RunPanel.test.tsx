import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { applyEvent, initialStreamState } from "../../api/runs";
import { RunPanel } from "./RunPanel";

const model = { provider: "mock", model: "mock-1", price: { input_per_mtok: "3", output_per_mtok: "15" } } as never;

function renderPanel(stream: ReturnType<typeof initialStreamState> | null, onStop = vi.fn()) {
  render(
    <MemoryRouter>
      <RunPanel ws="ws" stream={stream} model={model} estimatedInput={10} canRun starting={false} stopping={false} error={null} onRun={() => {}} onStop={onStop} />
    </MemoryRouter>,
  );
  return onStop;
}

describe("RunPanel", () => {
  it("is idle before the first run", () => {
    renderPanel(null);
    expect(screen.getByTestId("run-status").textContent).toBe("idle");
    expect(screen.getByTestId("stop-button")).toHaveProperty("disabled", true);
  });

  it("streams: status, live tokens and a live cost, and Stop is enabled", () => {
    let stream = initialStreamState("ws", "run-1", "p", 0);
    stream = applyEvent(stream, { type: "run.started", id: "1", data: {} }, 0);
    stream = applyEvent(stream, { type: "run.delta", id: "2", data: { text: "one " } }, 0);
    const onStop = renderPanel(stream);
    expect(screen.getByTestId("run-status").textContent).toContain("running");
    expect(screen.getByTestId("run-output").textContent).toBe("one ");
    expect(screen.getByTestId("run-tokens").textContent).toContain("1 out");
    expect(screen.getByTestId("run-cost").textContent).toBe("$0.000045"); // 10 × $3 + 1 × $15 per million
    fireEvent.click(screen.getByTestId("stop-button"));
    expect(onStop).toHaveBeenCalled();
  });
});

describe("RunPanel, continuing", () => {
  const finished = () => {
    let stream = initialStreamState("ws", "run-1", "p", 0);
    stream = applyEvent(stream, { type: "run.tool_use", id: "1", data: { id: "toolu_1", name: "search", input: { q: "x" } } }, 0);
    const run = { id: "run-1", status: "succeeded", output: "", usage: {}, cost_usd: "0.0001", tool_uses: [] };
    return applyEvent(stream, { type: "run.completed", id: "2", data: run }, 0);
  };

  it("offers Continue on a finished run, says what it does, and holds runs back while a field is wrong", () => {
    const onContinue = vi.fn();
    render(
      <MemoryRouter>
        <RunPanel ws="ws" stream={finished()} model={model} estimatedInput={1} canRun starting={false} stopping={false} error={null}
          onRun={() => {}} onStop={() => {}} onContinue={onContinue} blocked="Tool 1: Name: 1 to 64 letters, digits, _ or -" />
      </MemoryRouter>,
    );
    expect(screen.getByTestId("tool-use")).toBeTruthy();
    expect(screen.getByText(/type each tool's result/)).toBeTruthy();
    fireEvent.click(screen.getByTestId("continue-button"));
    expect(onContinue).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId("run-button")).toHaveProperty("disabled", true);
    expect(screen.getByTestId("run-blocked").textContent).toContain("Tool 1: Name");
  });

  it("once continued, the button rests", () => {
    render(
      <MemoryRouter>
        <RunPanel ws="ws" stream={finished()} model={model} estimatedInput={1} canRun starting={false} stopping={false} error={null}
          onRun={() => {}} onStop={() => {}} continued />
      </MemoryRouter>,
    );
    expect(screen.getByTestId("continue-button")).toHaveProperty("disabled", true);
    expect(screen.getByText(/write the next turn, then run again/)).toBeTruthy();
    expect(screen.getByTestId("run-button")).toHaveProperty("disabled", false);
  });
});
