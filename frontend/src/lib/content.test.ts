import { describe, expect, it } from "vitest";
import { asContent, contentText } from "./content";

describe("contentText", () => {
  it("keeps plain text and joins the text of blocks, naming the others", () => {
    expect(contentText("Hi {{name}}")).toBe("Hi {{name}}");
    const blocks = [
      { type: "text", text: "Describe {{thing}}" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: "…" } },
      { type: "tool_result", tool_use_id: "t1", content: "42", is_error: false },
    ];
    expect(contentText(blocks)).toBe("Describe {{thing}}\n[image image/png]\n[tool result: 42]");
    expect(contentText(undefined)).toBe("");
  });

  it("keeps blocks as blocks", () => {
    const blocks = [{ type: "text", text: "x" }];
    expect(asContent(blocks)).toBe(blocks);
    expect(asContent(7)).toBe("");
  });
});
