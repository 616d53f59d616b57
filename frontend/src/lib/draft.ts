// The editor's draft: what a user is writing, kept in localStorage so nothing is lost on reload.
import type { Message, ModelConfig, Version } from "../api/types";
import { asContent } from "./content";

export type Draft = {
  baseVersion: number | null; // the version the draft started from
  system: string;
  messages: Message[];
  model_config: ModelConfig;
  variables: Record<string, string>;
};

export const DEFAULT_MODEL: ModelConfig = { provider: "mock", model: "mock-1", max_tokens: 256, temperature: 0.7 };

export function emptyDraft(): Draft {
  return { baseVersion: null, system: "", messages: [{ role: "user", content: "" }], model_config: { ...DEFAULT_MODEL }, variables: {} };
}

export function draftFromVersion(version: Version, variables: Record<string, string> = {}): Draft {
  return {
    baseVersion: version.number,
    system: version.system,
    messages: version.messages.map((m) => ({
      role: m.role === "assistant" ? "assistant" : "user",
      content: asContent(m.content),
    })),
    model_config: { ...DEFAULT_MODEL, ...(version.model_config as Partial<ModelConfig>) },
    variables,
  };
}

/** Whether the draft's content (not its variable values) differs from a version's. */
export function isDirty(draft: Draft, version: Version | undefined): boolean {
  const base = version ? draftFromVersion(version) : emptyDraft();
  return contentKey(draft) !== contentKey(base);
}

function contentKey(draft: Draft): string {
  const mc = draft.model_config;
  return JSON.stringify([
    draft.system,
    draft.messages.map((m) => [m.role, m.content]),
    [mc.provider, mc.model, mc.max_tokens, mc.temperature ?? null, mc.top_p ?? null, mc.top_k ?? null, mc.stop_sequences ?? []],
  ]);
}

const key = (ws: string, promptId: string) => `pp.draft.${ws}.${promptId}`;

export function loadDraft(ws: string, promptId: string): Draft | null {
  try {
    const raw = localStorage.getItem(key(ws, promptId));
    return raw ? (JSON.parse(raw) as Draft) : null;
  } catch {
    return null;
  }
}

export function saveDraft(ws: string, promptId: string, draft: Draft): void {
  localStorage.setItem(key(ws, promptId), JSON.stringify(draft));
}

export function discardDraft(ws: string, promptId: string): void {
  localStorage.removeItem(key(ws, promptId));
}
