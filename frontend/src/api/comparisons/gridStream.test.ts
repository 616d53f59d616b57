import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GridStreamer } from "./gridStream";

class FakeEventSource {
  static instances: FakeEventSource[] = [];
  readyState = 1;
  closed = false;
  onerror: (() => void) | null = null;
  private listeners = new Map<string, ((e: MessageEvent) => void)[]>();
  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }
  addEventListener(type: string, fn: (e: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, id: string, data: unknown) {
    const event = new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id });
    for (const fn of this.listeners.get(type) ?? []) fn(event);
  }
}

const open = () => FakeEventSource.instances.filter((s) => !s.closed);
const URL = "/api/v1/workspaces/ws/comparisons/cmp/events";

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal("EventSource", FakeEventSource);
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("GridStreamer", () => {
  it("streams every cell over one connection and closes it on comparison.completed", () => {
    const streamer = new GridStreamer("ws", "cmp");
    streamer.open();
    streamer.open();
    expect(FakeEventSource.instances).toHaveLength(1);
    const source = open()[0]!;
    expect(source.url).toBe(URL);
    source.emit("run.delta", "0:0:2-3", { run_id: "r0", cell: 0, text: "ab ", offset: 3 });
    source.emit("run.delta", "1:0:2-2", { run_id: "r1", cell: 1, text: "c ", offset: 2 });
    expect(streamer.getSnapshot().cells[0]?.run.text).toBe("ab ");
    expect(streamer.getSnapshot().cells[1]?.run.text).toBe("c ");
    source.emit("comparison.completed", "completed", { status: "completed", progress: { done: 2, total: 2 }, totals: {} });
    expect(open()).toHaveLength(0);
    expect(streamer.getSnapshot().completed?.progress).toEqual({ done: 2, total: 2 });
    expect(streamer.getSnapshot().connected).toBe(false);
  });

  it("reopens a lost connection itself, resuming every cell after its last event", () => {
    const streamer = new GridStreamer("ws", "cmp");
    streamer.open();
    const first = open()[0]!;
    first.emit("run.delta", "0:0:2-3", { run_id: "r0", cell: 0, text: "ab ", offset: 3 });
    first.emit("run.delta", "1:1:4-9", { run_id: "r1", cell: 1, text: "x ", offset: 9 });
    first.onerror?.(); // the browser would resume only the cell of its Last-Event-ID: close and reopen with all
    expect(first.closed).toBe(true);
    expect(open()).toHaveLength(0);
    vi.advanceTimersByTime(500);
    const second = open()[0]!;
    expect(second.url).toBe(`${URL}?positions=${encodeURIComponent("0:0:2-3,1:1:4-9")}`);
    // A replayed event changes nothing; the text after it is appended.
    second.emit("run.delta", "0:0:2-3", { run_id: "r0", cell: 0, text: "ab ", offset: 3 });
    second.emit("run.delta", "0:0:3-6", { run_id: "r0", cell: 0, text: "cd ", offset: 6 });
    expect(streamer.getSnapshot().cells[0]?.run.text).toBe("ab cd ");
  });

  it("gives up after a few failed reconnects and says so", () => {
    const streamer = new GridStreamer("ws", "cmp");
    streamer.open();
    for (let i = 1; i <= 6; i++) {
      open()[0]!.onerror?.();
      vi.advanceTimersByTime(500 * i);
    }
    expect(open()).toHaveLength(0);
    expect(FakeEventSource.instances).toHaveLength(6);
    expect(streamer.getSnapshot().error).toMatch(/Lost the connection/);
  });

  it("stops for good when the screen is left", () => {
    const streamer = new GridStreamer("ws", "cmp");
    streamer.open();
    const source = open()[0]!;
    streamer.stop();
    source.onerror?.();
    vi.advanceTimersByTime(5000);
    expect(open()).toHaveLength(0);
    expect(FakeEventSource.instances).toHaveLength(1);
  });
});
