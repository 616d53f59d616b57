import { describe, expect, it } from "vitest";
import type { Version } from "../api/types";
import { draftContent, draftFromVersion, emptyDraft, isDirty, loadDraft, saveDraft } from "./draft";

const version = {
  number: 2,
  system: "Be brief.",
  messages: [{ role: "user", content: "Hi {{name}}" }],
  model_config: { provider: "mock", model: "mock-1", max_tokens: 100, temperature: 0 },
} as unknown as Version;

describe("draft", () => {
  it("is clean when it equals its version, whatever the variable values", () => {
    const draft = draftFromVersion(version, { name: "Ada" });
    expect(isDirty(draft, version)).toBe(false);
    expect(isDirty({ ...draft, system: "Be long." }, version)).toBe(true);
    expect(isDirty({ ...draft, model_config: { ...draft.model_config, max_tokens: 5 } }, version)).toBe(true);
  });

  it("an empty draft of a prompt without versions is clean", () => {
    expect(isDirty(emptyDraft(), undefined)).toBe(false);
  });

  it("survives a reload through localStorage, per workspace and prompt", () => {
    saveDraft("ws", "p", { ...emptyDraft(), system: "kept" });
    expect(loadDraft("ws", "p")?.system).toBe("kept");
    expect(loadDraft("ws", "other")).toBeNull();
  });
});

describe("draft extras", () => {
  const rich = {
    ...version,
    tools: [{ name: "lookup", description: "", input_schema: { type: "object", properties: { q: { type: "string" } } } }],
    tool_choice: { type: "any" },
    output_schema: null,
  } as unknown as Version;

  it("keeps a version's tools and tool choice, sends them, and is dirty when they change", () => {
    const draft = draftFromVersion(rich);
    expect(draftContent(draft).tools?.[0]?.name).toBe("lookup");
    expect(draftContent(draft).tool_choice).toEqual({ type: "any" });
    expect("output_schema" in draftContent(draft)).toBe(false);
    expect(isDirty(draft, rich)).toBe(false);
    expect(isDirty({ ...draft, tools: [] }, rich)).toBe(true);
    expect(isDirty({ ...draft, model_config: { ...draft.model_config, thinking_budget: 2000 } }, rich)).toBe(true);
  });

  it("a plain draft sends only system, messages and model config", () => {
    expect(Object.keys(draftContent(draftFromVersion(version))).sort()).toEqual(["messages", "model_config", "system"]);
  });
});
