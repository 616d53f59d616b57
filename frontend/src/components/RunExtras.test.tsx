import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { RunExtras } from "./RunExtras";

describe("RunExtras", () => {
  it("shows nothing for a plain run", () => {
    const { container } = render(<RunExtras thinking="" toolUses={[]} outputValid={null} />);
    expect(container.textContent).toBe("");
  });

  it("shows thinking, each tool call with pretty JSON input, and the schema badge", () => {
    render(
      <RunExtras thinking="world hello" toolUses={[{ id: "toolu_1", name: "lookup", input: { q: "hello world" } }]} outputValid={true} />,
    );
    expect(screen.getByTestId("run-thinking").textContent).toContain("Thinking");
    expect(screen.getByTestId("run-thinking").textContent).toContain("world hello");
    expect(screen.getByTestId("tool-use-name").textContent).toBe("lookup");
    expect(screen.getByTestId("tool-use-input").textContent).toBe('{\n  "q": "hello world"\n}');
    expect(screen.getByTestId("run-output-valid").textContent).toBe("matches schema");
  });

  it("says when the output does not match the schema", () => {
    render(<RunExtras thinking="" toolUses={[]} outputValid={false} />);
    expect(screen.getByTestId("run-output-valid").textContent).toBe("does not match schema");
  });
});
