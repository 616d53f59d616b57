import { describe, expect, it } from "vitest";
import { safeNext } from "./LoginScreen";

describe("safeNext", () => {
  it("only follows paths of this app", () => {
    expect(safeNext("/w/1/prompts")).toBe("/w/1/prompts");
    expect(safeNext("//evil.example")).toBe("/");
    expect(safeNext("https://evil.example")).toBe("/");
    expect(safeNext(null)).toBe("/");
  });
});
