import { describe, expect, it } from "vitest";
import { jsonText, parseSchema, parseTools } from "./jsonField";

describe("parseTools", () => {
  it("reads an array of tools, empty text as none", () => {
    expect(parseTools("")).toEqual({ ok: true, value: [] });
    const text = '[{"name": "search", "input_schema": {"type": "object"}}]';
    expect(parseTools(text)).toEqual({ ok: true, value: [{ name: "search", description: "", input_schema: { type: "object" } }] });
  });

  it("says what is wrong", () => {
    const bad = parseTools("[{");
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/^Invalid JSON/);
    expect(parseTools('{"name": "x"}')).toMatchObject({ ok: false, error: expect.stringMatching(/array/) });
    expect(parseTools('[{"name": "x"}]')).toMatchObject({ ok: false, error: 'Tool 1 needs a "name" and an "input_schema" object' });
  });
});

describe("parseSchema", () => {
  it("reads an object, empty text as none, refuses anything else", () => {
    expect(parseSchema("  ")).toEqual({ ok: true, value: null });
    expect(parseSchema('{"type": "object"}')).toEqual({ ok: true, value: { type: "object" } });
    expect(parseSchema("[1]")).toMatchObject({ ok: false });
  });

  it("jsonText round-trips and prints nothing for none", () => {
    expect(jsonText(null)).toBe("");
    expect(jsonText([])).toBe("");
    expect(parseSchema(jsonText({ type: "object", a: 1 }))).toEqual({ ok: true, value: { type: "object", a: 1 } });
  });
});
