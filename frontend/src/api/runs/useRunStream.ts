import { useSyncExternalStore } from "react";
import { runStreamer } from "./stream";

/** The run this tab follows (null when none), re-rendering on each event. */
export function useRunStream() {
  return useSyncExternalStore(runStreamer.subscribe, runStreamer.getSnapshot);
}
