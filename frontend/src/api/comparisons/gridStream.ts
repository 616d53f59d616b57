// One EventSource for a whole grid (GET .../comparisons/{id}/events). Every cell's events arrive on it; a
// lost connection is reopened by us (not by the browser's own retry, which would resume one cell only)
// with `?positions=` = the last event id of every cell, so each resumes exactly. Closed on
// `comparison.completed`; reopened after a rerun of a finished grid, to stream the new run.
import { API } from "../client";
import { applyGridEvent, emptyGrid, GRID_EVENT_TYPES, type GridState } from "./gridState";

type Listener = () => void;

export type GridStreamState = GridState & { connected: boolean; error: string | null };

const NOTIFY_MS = 50; // many cells stream at once: re-render at most this often

export class GridStreamer {
  private source: EventSource | null = null;
  private state: GridStreamState = { ...emptyGrid(), connected: false, error: null };
  private listeners = new Set<Listener>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private notifyTimer: ReturnType<typeof setTimeout> | null = null;
  private retries = 0;
  private stopped = false;

  constructor(
    private readonly ws: string,
    private readonly comparisonId: string,
  ) {}

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): GridStreamState => this.state;

  get isOpen(): boolean {
    return this.source !== null;
  }

  /** Opens the stream (again) unless it is open; cells already heard from resume after their last event. */
  open(): void {
    if (this.source) return;
    this.stopped = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const positions = Object.values(this.state.positions).join(",");
    const query = positions ? `?positions=${encodeURIComponent(positions)}` : "";
    const source = new EventSource(`${API}/workspaces/${this.ws}/comparisons/${this.comparisonId}/events${query}`);
    this.source = source;
    this.state = { ...this.state, completed: null, connected: true, error: null };
    for (const type of GRID_EVENT_TYPES) source.addEventListener(type, (e) => this.onEvent(source, type, e as MessageEvent));
    source.onerror = () => this.onError(source);
    this.notify(true);
  }

  /** Stops for good (the screen is left). */
  stop(): void {
    this.stopped = true;
    this.close();
    if (this.notifyTimer) clearTimeout(this.notifyTimer);
    this.notifyTimer = null;
  }

  private onEvent(source: EventSource, type: string, event: MessageEvent): void {
    if (source !== this.source) return;
    this.retries = 0;
    let data: unknown = null;
    try {
      data = JSON.parse(String(event.data));
    } catch {
      data = null;
    }
    this.state = { ...this.state, ...applyGridEvent(this.state, { type, id: event.lastEventId || null, data }, Date.now()) };
    if (type === "comparison.completed") {
      this.close();
      this.state = { ...this.state, connected: false };
      this.notify(true);
    } else {
      this.notify(false);
    }
  }

  private onError(source: EventSource): void {
    if (source !== this.source) return;
    this.close();
    this.state = { ...this.state, connected: false };
    if (this.stopped) return;
    if (this.retries >= 5) {
      this.state = { ...this.state, error: "Lost the connection to the grid's event stream." };
      this.notify(true);
      return;
    }
    this.retries += 1;
    this.retryTimer = setTimeout(() => this.open(), 500 * this.retries);
    this.notify(true);
  }

  private close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.source?.close();
    this.source = null;
  }

  private notify(now: boolean): void {
    if (now) {
      if (this.notifyTimer) clearTimeout(this.notifyTimer);
      this.notifyTimer = null;
      for (const listener of this.listeners) listener();
      return;
    }
    if (this.notifyTimer) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = null;
      for (const listener of this.listeners) listener();
    }, NOTIFY_MS);
  }
}
