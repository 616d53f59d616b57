import { useEffect, useState, useSyncExternalStore } from "react";
import { GridStreamer } from "./gridStream";

/** The grid's one event stream while the screen is open: its folded state, and the streamer (to reopen it). */
export function useGridStream(ws: string, comparisonId: string, follow: boolean) {
  const [streamer] = useState(() => new GridStreamer(ws, comparisonId));
  const state = useSyncExternalStore(streamer.subscribe, streamer.getSnapshot);
  useEffect(() => {
    if (follow) streamer.open();
  }, [follow, streamer]);
  useEffect(() => () => streamer.stop(), [streamer]);
  return { state, streamer };
}
