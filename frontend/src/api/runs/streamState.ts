// What a tab knows about the run it watches, folded from the run's server-sent events (pure: unit-tested).
import type { Run, RunStatus } from "../types";

export type StreamState = {
  ws: string;
  runId: string;
  promptId: string | null;
  text: string;
  thinking: string; // run.thinking deltas so far (or the final run's thinking)
  toolUses: ToolUse[]; // run.tool_use events so far (or the final run's tool_uses)
  lastEventId: string | null;
  status: RunStatus;
  deltas: number;
  inputTokens: number | null;
  outputTokens: number | null;
  flags: unknown[];
  run: Run | null; // the final run object, from the terminal event
  startedAtMs: number; // when this tab started or attached (for a live TTFT before the final figure)
  firstTokenAtMs: number | null;
  error: string | null;
};

export type ToolUse = { id: string; name: string; input: unknown };

export type StreamEvent = { type: string; id: string | null; data: unknown };

export const TERMINAL_EVENTS = ["run.completed", "run.failed", "run.cancelled"] as const;

export function initialStreamState(ws: string, runId: string, promptId: string | null, nowMs: number): StreamState {
  return {
    ws, runId, promptId, text: "", thinking: "", toolUses: [], lastEventId: null, status: "queued", deltas: 0, inputTokens: null,
    outputTokens: null, flags: [], run: null, startedAtMs: nowMs, firstTokenAtMs: null, error: null,
  };
}

export function isTerminal(state: StreamState): boolean {
  return state.run !== null;
}

export function applyEvent(state: StreamState, event: StreamEvent, nowMs: number): StreamState {
  const next: StreamState = { ...state, lastEventId: event.id ?? state.lastEventId };
  const data = (event.data ?? {}) as Record<string, unknown>;
  switch (event.type) {
    case "run.queued":
      return { ...next, status: "queued" };
    case "run.started":
      return { ...next, status: "running" };
    case "run.delta":
      return {
        ...next,
        status: "running",
        text: state.text + String(data.text ?? ""),
        deltas: state.deltas + 1,
        firstTokenAtMs: state.firstTokenAtMs ?? nowMs,
      };
    case "run.thinking":
      return {
        ...next,
        status: "running",
        thinking: (state.thinking ?? "") + String(data.text ?? ""),
        firstTokenAtMs: state.firstTokenAtMs ?? nowMs,
      };
    case "run.tool_use":
      return {
        ...next,
        status: "running",
        toolUses: [...(state.toolUses ?? []), asToolUse(data)],
        firstTokenAtMs: state.firstTokenAtMs ?? nowMs,
      };
    case "run.usage":
      return {
        ...next,
        inputTokens: typeof data.input_tokens === "number" ? data.input_tokens : state.inputTokens,
        outputTokens: typeof data.output_tokens === "number" ? data.output_tokens : state.outputTokens,
      };
    case "run.flagged":
      return { ...next, flags: [...state.flags, data] };
    case "run.completed":
    case "run.failed":
    case "run.cancelled": {
      const run = data as unknown as Run;
      return {
        ...next,
        run,
        status: run.status,
        // The deltas received are the output (the server guarantees it); the final object fills in only
        // for a tab that attached after the text had streamed.
        text: state.text === "" && typeof run.output === "string" ? run.output : state.text,
        thinking: state.thinking ? state.thinking : (run.thinking ?? ""),
        toolUses: state.toolUses?.length ? state.toolUses : (run.tool_uses ?? []).map(asToolUse),
        inputTokens: run.usage?.input_tokens ?? state.inputTokens,
        outputTokens: run.usage?.output_tokens ?? state.outputTokens,
      };
    }
    default:
      return next;
  }
}

export function asToolUse(data: unknown): ToolUse {
  const d = (data ?? {}) as Record<string, unknown>;
  return { id: String(d.id ?? ""), name: String(d.name ?? ""), input: d.input ?? {} };
}

/** Output tokens so far: the provider's figure when it has given one, else one per delta received. */
export function liveOutputTokens(state: StreamState): number {
  return Math.max(state.outputTokens ?? 0, state.deltas);
}

/** Cost in micro-dollars of `input` and `output` tokens at per-million prices given as decimal strings. */
export function costMicros(input: number, output: number, price: Record<string, string> | null | undefined): number | null {
  if (!price || price.input_per_mtok === undefined || price.output_per_mtok === undefined) return null;
  return Math.round(input * Number(price.input_per_mtok) + output * Number(price.output_per_mtok));
}

export function formatUsd(value: string | number | null | undefined, micros = false): string {
  if (value === null || value === undefined || value === "") return "—";
  const dollars = micros ? Number(value) / 1_000_000 : Number(value);
  if (!Number.isFinite(dollars)) return "—";
  if (dollars !== 0 && Math.abs(dollars) < 0.01) return `$${dollars.toFixed(6)}`;
  return `$${dollars.toFixed(dollars < 1 ? 4 : 2)}`;
}
