export { runKeys, type RunFilters } from "./keys";
export * from "./queries";
export * from "./streamState";
export { runStreamer, RunStreamer } from "./stream";
export { useRunStream } from "./useRunStream";
