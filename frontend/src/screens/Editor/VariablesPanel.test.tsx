import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/react";
import { VariablesPanel } from "./VariablesPanel";

describe("VariablesPanel", () => {
  it("shows a labelled input per placeholder with its test hook", () => {
    const onChange = vi.fn();
    render(<VariablesPanel names={["persona", "text"]} values={{ persona: "a pirate" }} onChange={onChange} />);
    expect(screen.getByLabelText("persona")).toHaveProperty("value", "a pirate");
    fireEvent.change(screen.getByTestId("variable-input-text"), { target: { value: "hello" } });
    expect(onChange).toHaveBeenCalledWith("text", "hello");
  });

  it("explains how to add a variable when there is none", () => {
    render(<VariablesPanel names={[]} values={{}} onChange={() => {}} />);
    expect(screen.getByText(/to add a variable/)).toBeTruthy();
  });
});
