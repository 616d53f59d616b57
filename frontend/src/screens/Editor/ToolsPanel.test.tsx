import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { ToolsPanel } from "./ToolsPanel";

const tool = { name: "search", description: "", input_schema: { type: "object" } };
const noop = () => {};

describe("ToolsPanel, tools as a form", () => {
  it("adds a tool, checks each field in place and passes the tools on once they are right", async () => {
    const onChange = vi.fn();
    const onProblem = vi.fn();
    render(<ToolsPanel tools={[]} toolChoice={null} outputSchema={null} readOnly={false} onChange={onChange} onProblem={onProblem} />);
    fireEvent.click(screen.getByTestId("add-tool"));
    expect(screen.getByTestId("tool-name-0-error").textContent).toBe("Name: 1 to 64 letters, digits, _ or -");
    expect(onChange).not.toHaveBeenCalled();
    expect(onProblem).toHaveBeenLastCalledWith("Tool 1: Name: 1 to 64 letters, digits, _ or -");

    fireEvent.change(screen.getByTestId("tool-name-0"), { target: { value: "web search" } });
    expect(screen.getByTestId("tool-name-0-error")).toBeTruthy();
    fireEvent.change(screen.getByTestId("tool-name-0"), { target: { value: "web_search" } });
    expect(screen.queryByTestId("tool-name-0-error")).toBeNull();
    expect(onChange).toHaveBeenLastCalledWith({ tools: [{ name: "web_search", description: "", input_schema: { type: "object", properties: {} } }] });

    fireEvent.change(screen.getByTestId("tool-schema-0"), { target: { value: '{"type": "array"}' } });
    expect(screen.getByTestId("tool-schema-0-error").textContent).toBe('Input schema must describe an object ("type": "object")');
    fireEvent.change(screen.getByTestId("tool-schema-0"), { target: { value: "{" } });
    expect(screen.getByTestId("tool-schema-0-error").textContent).toMatch(/^Input schema: invalid JSON/);
    // Valid JSON, an object schema, but not valid JSON Schema: the meta-schema check says where.
    fireEvent.change(screen.getByTestId("tool-schema-0"), { target: { value: '{"type": "object", "required": "q"}' } });
    await waitFor(() => expect(screen.getByTestId("tool-schema-0-error").textContent).toContain("/required"));
    await waitFor(() =>
      expect(onProblem).toHaveBeenLastCalledWith(expect.stringMatching(/^Tool 1: Input schema is not a valid JSON Schema: \/required/)),
    );
    fireEvent.change(screen.getByTestId("tool-schema-0"), { target: { value: '{"type": "object", "required": ["q"]}' } });
    await waitFor(() => expect(onProblem).toHaveBeenLastCalledWith(null));
    expect(screen.queryByTestId("tool-schema-0-error")).toBeNull();
  });

  it("refuses two tools of one name, and removing the one a tool choice names clears the choice", () => {
    const onChange = vi.fn();
    const other = { name: "lookup", description: "d", input_schema: { type: "object" } };
    render(<ToolsPanel tools={[tool, other]} toolChoice={{ type: "tool", name: "lookup" }} outputSchema={null} readOnly={false} onChange={onChange} />);
    fireEvent.change(screen.getByTestId("tool-name-1"), { target: { value: "search" } });
    expect(screen.getByTestId("tool-name-1-error").textContent).toBe('Name: "search" is used by another tool');
    expect(screen.getByTestId("tool-name-0-error").textContent).toBe('Name: "search" is used by another tool');
    expect(onChange).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole("button", { name: "Remove tool 2" }));
    expect(onChange).toHaveBeenLastCalledWith({ tools: [tool], tool_choice: null });
  });
});

describe("ToolsPanel, raw JSON", () => {
  it("passes valid tools on and keeps invalid text with its reason", () => {
    const onChange = vi.fn();
    render(<ToolsPanel tools={[]} toolChoice={null} outputSchema={null} readOnly={false} onChange={onChange} />);
    fireEvent.click(screen.getByTestId("tools-view-json"));
    fireEvent.change(screen.getByTestId("tools-json"), { target: { value: "[{" } });
    expect(screen.getByTestId("tools-json-error").textContent).toMatch(/^Invalid JSON/);
    fireEvent.change(screen.getByTestId("tools-json"), { target: { value: '[{"name": "a b", "input_schema": {"type": "object"}}]' } });
    expect(screen.getByTestId("tools-json-error").textContent).toBe("Tool 1: Name: 1 to 64 letters, digits, _ or -");
    expect(onChange).not.toHaveBeenCalled();
    fireEvent.change(screen.getByTestId("tools-json"), { target: { value: JSON.stringify([tool]) } });
    expect(screen.queryByTestId("tools-json-error")).toBeNull();
    expect(onChange).toHaveBeenLastCalledWith({ tools: [tool] });
  });

  it("picks a tool choice and sets an output schema, checked like a tool's", async () => {
    const onChange = vi.fn();
    render(<ToolsPanel tools={[tool]} toolChoice={null} outputSchema={null} readOnly={false} onChange={onChange} />);
    fireEvent.change(screen.getByTestId("tool-choice"), { target: { value: "tool:search" } });
    expect(onChange).toHaveBeenLastCalledWith({ tool_choice: { type: "tool", name: "search" } });
    fireEvent.change(screen.getByTestId("output-schema-json"), { target: { value: '{"type": "object"}' } });
    expect(onChange).toHaveBeenLastCalledWith({ output_schema: { type: "object" } });
    fireEvent.change(screen.getByTestId("output-schema-json"), { target: { value: "[]" } });
    expect(screen.getByTestId("output-schema-json-error").textContent).toBe("The output schema must be a JSON object");
    fireEvent.change(screen.getByTestId("output-schema-json"), { target: { value: '{"type": "string"}' } });
    expect(screen.getByTestId("output-schema-json-error").textContent).toBe('The output schema must describe an object ("type": "object")');
    fireEvent.change(screen.getByTestId("output-schema-json"), { target: { value: '{"type": "object", "properties": {"a": {"type": "strin"}}}' } });
    await waitFor(() => expect(screen.getByTestId("output-schema-json-error").textContent).toContain("/properties/a/type"));
  });

  it("shows the draft's value when it changes from elsewhere, in both views", () => {
    const { rerender } = render(<ToolsPanel tools={[]} toolChoice={null} outputSchema={null} readOnly={false} onChange={noop} />);
    rerender(<ToolsPanel tools={[tool]} toolChoice={{ type: "any" }} outputSchema={null} readOnly={false} onChange={noop} />);
    expect((screen.getByTestId("tool-name-0") as HTMLInputElement).value).toBe("search");
    fireEvent.click(screen.getByTestId("tools-view-json"));
    expect(JSON.parse((screen.getByTestId("tools-json") as HTMLTextAreaElement).value)).toEqual([tool]);
    expect((screen.getByTestId("tool-choice") as HTMLSelectElement).value).toBe("any");
  });
});
