// The editor's draft: what a user is writing, kept in localStorage so nothing is lost on reload.
import type { Message, ModelConfig, Run, Version, VersionContent } from "../api/types";
import { tidyContent } from "./blocks";
import { asContent } from "./content";
import { continueConversation, type ToolCall } from "./conversation";

export type Draft = {
  baseVersion: number | null; // the version the draft started from
  system: string;
  messages: Message[];
  model_config: ModelConfig;
  variables: Record<string, string>;
  // Tools, tool choice and output schema of the version (kept so a run or save of the draft carries them).
  tools?: VersionContent["tools"];
  tool_choice?: VersionContent["tool_choice"];
  output_schema?: VersionContent["output_schema"];
};

/** The version content a draft stands for: what a run of it or a save of it sends. */
export function draftContent(draft: Draft): VersionContent {
  const messages = draft.messages.map((m) => ({ ...m, content: tidyContent(m.content) }));
  const content: VersionContent = { system: draft.system, messages, model_config: draft.model_config };
  if (draft.tools && draft.tools.length > 0) content.tools = draft.tools;
  if (draft.tool_choice) content.tool_choice = draft.tool_choice;
  if (draft.output_schema) content.output_schema = draft.output_schema;
  return content;
}

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
    ...(version.tools?.length ? { tools: version.tools as VersionContent["tools"] } : {}),
    ...(version.tool_choice ? { tool_choice: version.tool_choice as VersionContent["tool_choice"] } : {}),
    ...(version.output_schema ? { output_schema: version.output_schema } : {}),
  };
}

/** The draft with a run's answer appended and the next user turn (tool results to fill in) waiting. */
export function continueDraft(draft: Draft, output: string, toolCalls: readonly ToolCall[]): Draft {
  return { ...draft, messages: continueConversation(draft.messages, output, toolCalls) };
}

/** "Continue in editor" from a run: its version with its variable values and effective model settings,
 * then its answer. The version's messages are the snapshot's before rendering, so variables stay variables. */
export function draftFromRun(version: Version, run: Run): Draft {
  const snapshot = run.snapshot ?? {};
  const values = (snapshot.variables ?? {}) as Record<string, unknown>;
  const base = draftFromVersion(version, Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)])));
  const config = snapshot.model_config as Partial<ModelConfig> | undefined;
  const draft = config ? { ...base, model_config: { ...base.model_config, ...config } } : base;
  return continueDraft(draft, run.output, (run.tool_uses ?? []).map((t) => ({ id: String(t.id ?? ""), name: String(t.name ?? ""), input: t.input })));
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
    [mc.provider, mc.model, mc.max_tokens, mc.temperature ?? null, mc.top_p ?? null, mc.top_k ?? null, mc.stop_sequences ?? [], mc.thinking_budget ?? null],
    draft.tools?.length ? draft.tools : null,
    draft.tool_choice ?? null,
    draft.output_schema ?? null,
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

/** Keeps the draft on this device; false when the browser's storage is full (images are large): the draft
 * then lives on in the page only. */
export function saveDraft(ws: string, promptId: string, draft: Draft): boolean {
  try {
    localStorage.setItem(key(ws, promptId), JSON.stringify(draft));
    return true;
  } catch {
    localStorage.removeItem(key(ws, promptId)); // an older copy would come back on reload
    return false;
  }
}

export function discardDraft(ws: string, promptId: string): void {
  localStorage.removeItem(key(ws, promptId));
}
