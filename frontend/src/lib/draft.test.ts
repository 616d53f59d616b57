import { describe, expect, it, vi } from "vitest";
import type { Run, Version } from "../api/types";
import { continueDraft, draftContent, draftFromRun, draftFromVersion, emptyDraft, isDirty, loadDraft, saveDraft } from "./draft";

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

describe("continuing and sending", () => {
  const run = {
    output: "",
    tool_uses: [{ id: "toolu_1", name: "search", input: { query: "Hi Ada" } }],
    snapshot: { variables: { name: "Ada" }, model_config: { provider: "mock", model: "mock-1", max_tokens: 300, temperature: 0 } },
  } as unknown as Run;

  it("continues from a run: its version, variable values and effective settings, then its answer", () => {
    const draft = draftFromRun(version, run);
    expect(draft.variables).toEqual({ name: "Ada" });
    expect(draft.model_config.max_tokens).toBe(300); // the run's effective settings, not the version's 100
    expect(draft.messages).toEqual([
      { role: "user", content: "Hi {{name}}" },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "search", input: { query: "Hi Ada" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "", is_error: false }] },
    ]);
    expect(isDirty(draft, version)).toBe(true);
    expect(continueDraft(draft, "", []).messages).toEqual(draft.messages);
  });

  it("sends block messages without empty text blocks", () => {
    const image = { type: "image" as const, source: { type: "base64" as const, media_type: "image/png" as const, data: "iVBORw0KGgo=" } };
    const draft = { ...emptyDraft(), messages: [{ role: "user" as const, content: [{ type: "text" as const, text: "" }, image] }] };
    expect(draftContent(draft).messages).toEqual([{ role: "user", content: [image] }]);
    expect(draft.messages[0]?.content).toHaveLength(2); // the draft keeps its empty text box
  });

  it("keeps working when the browser's storage is full, and drops the stale copy", () => {
    saveDraft("ws", "p", { ...emptyDraft(), system: "old" });
    const setItem = vi.spyOn(Storage.prototype, "setItem").mockImplementation(() => {
      throw new DOMException("full", "QuotaExceededError");
    });
    try {
      expect(saveDraft("ws", "p", { ...emptyDraft(), system: "new" })).toBe(false);
    } finally {
      setItem.mockRestore();
    }
    expect(loadDraft("ws", "p")).toBeNull();
  });
});
