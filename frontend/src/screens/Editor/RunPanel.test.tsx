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
