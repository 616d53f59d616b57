import { describe, expect, it } from "vitest";
import type { Version } from "../api/types";
import { draftFromVersion, emptyDraft, isDirty, loadDraft, saveDraft } from "./draft";

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
