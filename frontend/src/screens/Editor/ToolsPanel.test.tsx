import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/react";
import { ToolsPanel } from "./ToolsPanel";

const tool = { name: "search", description: "", input_schema: { type: "object" } };

describe("ToolsPanel", () => {
  it("passes valid tools on and keeps invalid text with its reason", () => {
    const onChange = vi.fn();
    render(<ToolsPanel tools={[]} toolChoice={null} outputSchema={null} readOnly={false} onChange={onChange} />);
    fireEvent.change(screen.getByTestId("tools-json"), { target: { value: "[{" } });
    expect(screen.getByTestId("tools-json-error").textContent).toMatch(/^Invalid JSON/);
    expect(onChange).not.toHaveBeenCalled();
    fireEvent.change(screen.getByTestId("tools-json"), { target: { value: JSON.stringify([tool]) } });
    expect(screen.queryByTestId("tools-json-error")).toBeNull();
    expect(onChange).toHaveBeenLastCalledWith({ tools: [tool] });
  });

  it("picks a tool choice and sets an output schema", () => {
    const onChange = vi.fn();
    render(<ToolsPanel tools={[tool]} toolChoice={null} outputSchema={null} readOnly={false} onChange={onChange} />);
    fireEvent.change(screen.getByTestId("tool-choice"), { target: { value: "tool:search" } });
    expect(onChange).toHaveBeenLastCalledWith({ tool_choice: { type: "tool", name: "search" } });
    fireEvent.change(screen.getByTestId("output-schema-json"), { target: { value: '{"type": "object"}' } });
    expect(onChange).toHaveBeenLastCalledWith({ output_schema: { type: "object" } });
    fireEvent.change(screen.getByTestId("output-schema-json"), { target: { value: "[]" } });
    expect(screen.getByTestId("output-schema-json-error").textContent).toBe("The output schema must be a JSON object");
  });

  it("shows the draft's value when it changes from elsewhere", () => {
    const { rerender } = render(<ToolsPanel tools={[]} toolChoice={null} outputSchema={null} readOnly={false} onChange={() => {}} />);
    rerender(<ToolsPanel tools={[tool]} toolChoice={{ type: "any" }} outputSchema={null} readOnly={false} onChange={() => {}} />);
    expect(JSON.parse((screen.getByTestId("tools-json") as HTMLTextAreaElement).value)).toEqual([tool]);
    expect((screen.getByTestId("tool-choice") as HTMLSelectElement).value).toBe("any");
  });
});
