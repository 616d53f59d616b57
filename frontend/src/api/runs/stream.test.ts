import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RunStreamer } from "./stream";

class FakeEventSource {
  static CLOSED = 2;
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

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal("EventSource", FakeEventSource);
});
afterEach(() => vi.unstubAllGlobals());

describe("RunStreamer", () => {
  it("holds one stream per tab and closes it on the terminal event", () => {
    const streamer = new RunStreamer(sessionStorage);
    streamer.watch("ws", "run-1", "p");
    streamer.watch("ws", "run-2", "p");
    expect(open()).toHaveLength(1);
    const source = open()[0]!;
    expect(source.url).toBe("/api/v1/workspaces/ws/runs/run-2/events");
    source.emit("run.delta", "5", { text: "a " });
    source.emit("run.completed", "6", { status: "succeeded", output: "a ", usage: { input_tokens: 1, output_tokens: 1, estimated: false } });
    expect(open()).toHaveLength(0);
    expect(streamer.getSnapshot()?.status).toBe("succeeded");
  });

  it("resumes after a reload from the last event it persisted, with the text received so far", () => {
    const first = new RunStreamer(sessionStorage);
    first.watch("ws", "run-1", "p");
    const source = open()[0]!;
    source.emit("run.started", "1", {});
    source.emit("run.delta", "2", { text: "one " });
    source.emit("run.delta", "3", { text: "two " });

    const reloaded = new RunStreamer(sessionStorage); // a new page: same sessionStorage
    const state = reloaded.resume("ws", "p");
    expect(state?.text).toBe("one two ");
    const resumed = FakeEventSource.instances.at(-1)!;
    expect(resumed.url).toBe("/api/v1/workspaces/ws/runs/run-1/events?last_event_id=3");
    resumed.emit("run.delta", "4", { text: "three " });
    expect(reloaded.getSnapshot()?.text).toBe("one two three ");
  });

  it("does not resume a run of another prompt or workspace", () => {
    const first = new RunStreamer(sessionStorage);
    first.watch("ws", "run-1", "p");
    expect(new RunStreamer(sessionStorage).resume("ws", "other")).toBeNull();
    expect(new RunStreamer(sessionStorage).resume("other-ws", "p")).toBeNull();
  });

  it("reopens a stream the browser gave up on, after the last event received", () => {
    vi.useFakeTimers();
    const streamer = new RunStreamer(sessionStorage);
    streamer.watch("ws", "run-1", "p");
    const source = open()[0]!;
    source.emit("run.delta", "7", { text: "x " });
    source.readyState = FakeEventSource.CLOSED;
    source.onerror?.();
    vi.advanceTimersByTime(600);
    expect(open()).toHaveLength(1);
    expect(open()[0]!.url).toContain("last_event_id=7");
    vi.useRealTimers();
  });
});
