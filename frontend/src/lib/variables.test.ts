import { describe, expect, it } from "vitest";
import { extractVariables } from "./variables";

describe("extractVariables", () => {
  it("finds each {{name}} once, in order of appearance", () => {
    expect(extractVariables(["You are {{persona}}.", "Summarize {{ text }} for {{persona}} and {{x_1}}"])).toEqual([
      "persona",
      "text",
      "x_1",
    ]);
  });

  it("ignores what is not a variable", () => {
    expect(extractVariables(["{{1abc}} {{a-b}} {single} {{}}"])).toEqual([]);
  });
});
