// One EventSource per tab: the run this tab watches. Closed on the terminal event; a reconnect resumes
// after the last event received; the state is mirrored in sessionStorage so a reload resumes exactly.
import { API } from "../client";
import { applyEvent, initialStreamState, isTerminal, type StreamState, TERMINAL_EVENTS } from "./streamState";

const STORAGE_KEY = "pp.stream";
const EVENT_TYPES = ["run.queued", "run.started", "run.delta", "run.thinking", "run.tool_use", "run.usage", "run.flagged", ...TERMINAL_EVENTS];

type Listener = () => void;

export class RunStreamer {
  private source: EventSource | null = null;
  private state: StreamState | null = null;
  private listeners = new Set<Listener>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retries = 0;

  constructor(private readonly storage: Storage | null = typeof sessionStorage === "undefined" ? null : sessionStorage) {}

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): StreamState | null => this.state;

  /** Starts following a run from its first event (a run this tab just started, or one opened in run detail). */
  watch(ws: string, runId: string, promptId: string | null): void {
    if (this.state?.runId === runId && (this.source || isTerminal(this.state))) return;
    this.set(initialStreamState(ws, runId, promptId, Date.now()));
    this.open();
  }

  /** After a reload: the persisted state of an unfinished run of this prompt, resumed after its last event. */
  resume(ws: string, promptId: string | null): StreamState | null {
    if (this.state && this.state.ws === ws && (promptId === null || this.state.promptId === promptId)) return this.state;
    const saved = this.load();
    if (!saved || saved.ws !== ws || (promptId !== null && saved.promptId !== promptId)) return null;
    this.set({ ...saved, startedAtMs: Date.now() });
    if (!isTerminal(saved)) this.open();
    return this.state;
  }

  /** Forgets the current run (its stream closes; the run itself goes on on the server). */
  clear(): void {
    this.close();
    this.set(null);
  }

  private open(): void {
    this.close();
    const state = this.state;
    if (!state) return;
    const after = state.lastEventId ? `?last_event_id=${encodeURIComponent(state.lastEventId)}` : "";
    const source = new EventSource(`${API}/workspaces/${state.ws}/runs/${state.runId}/events${after}`);
    this.source = source;
    for (const type of EVENT_TYPES) source.addEventListener(type, (e) => this.onEvent(source, type, e as MessageEvent));
    source.onerror = () => this.onError(source);
  }

  private onEvent(source: EventSource, type: string, event: MessageEvent): void {
    if (source !== this.source || !this.state) return;
    this.retries = 0;
    let data: unknown = null;
    try {
      data = JSON.parse(String(event.data));
    } catch {
      data = null;
    }
    const next = applyEvent(this.state, { type, id: event.lastEventId || null, data }, Date.now());
    this.set(next);
    if (isTerminal(next)) this.close();
  }

  private onError(source: EventSource): void {
    if (source !== this.source || !this.state) return;
    // The browser reconnects by itself (sending Last-Event-ID) unless the stream is closed for good;
    // then we reopen after the last event we hold, a few times, slower each time.
    if (source.readyState !== EventSource.CLOSED) return;
    this.close();
    if (this.retries >= 5) {
      this.set({ ...this.state, error: "Lost the connection to the run's event stream." });
      return;
    }
    this.retries += 1;
    this.retryTimer = setTimeout(() => this.open(), 500 * this.retries);
  }

  private close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.source?.close();
    this.source = null;
  }

  private set(state: StreamState | null): void {
    this.state = state;
    this.save(state);
    for (const listener of this.listeners) listener();
  }

  private save(state: StreamState | null): void {
    if (!this.storage) return;
    if (state === null) this.storage.removeItem(STORAGE_KEY);
    else this.storage.setItem(STORAGE_KEY, JSON.stringify(state));
  }

  private load(): StreamState | null {
    try {
      const raw = this.storage?.getItem(STORAGE_KEY);
      return raw ? (JSON.parse(raw) as StreamState) : null;
    } catch {
      return null;
    }
  }
}

export const runStreamer = new RunStreamer();
