import { describe, expect, it } from "vitest";
import { casesFromJson, casesFromTable } from "./rows";

describe("casesFromTable", () => {
  it("turns columns and rows into variable objects, skipping blank rows", () => {
    const cases = casesFromTable({ columns: ["city", " lang "], rows: [["Paris", "fr"], ["", ""], ["Rome", ""]], expected: null });
    expect(cases).toEqual({ rows: [{ city: "Paris", lang: "fr" }, { city: "Rome", lang: "" }], expected: null });
  });

  it("keeps expected outputs beside the rows, an empty one as null", () => {
    const cases = casesFromTable({ columns: ["q"], rows: [["a"], ["b"]], expected: ["A", ""] });
    expect(cases).toEqual({ rows: [{ q: "a" }, { q: "b" }], expected: ["A", null] });
  });

  it("names a bad or repeated column", () => {
    expect(casesFromTable({ columns: ["ok", "not ok"], rows: [], expected: null })).toMatch(/Column 2: "not ok"/);
    expect(casesFromTable({ columns: ["a", "a"], rows: [], expected: null })).toMatch(/Column 2: "a" is there twice/);
  });
});

describe("casesFromJson", () => {
  it("reads a list of rows, or the API's own shape with expected outputs", () => {
    expect(casesFromJson('[{"x": "1"}]')).toEqual({ rows: [{ x: "1" }], expected: null });
    expect(casesFromJson('{"rows": [{"x": "1"}, {"x": "2"}], "expected": ["one", null]}')).toEqual({
      rows: [{ x: "1" }, { x: "2" }],
      expected: ["one", null],
    });
  });

  it("says what is wrong", () => {
    expect(casesFromJson("[")).toMatch(/^Not JSON/);
    expect(casesFromJson('{"x": 1}')).toMatch(/list of rows/);
    expect(casesFromJson('[{"x": 1}]')).toBe('Row 1: the value of "x" is not a string');
    expect(casesFromJson('[{"bad name": "1"}]')).toBe('Row 1: "bad name" is not a variable name');
    expect(casesFromJson('{"rows": [{"x": "1"}], "expected": []}')).toMatch(/one entry per row \(1\)/);
  });
});
