// Comparisons: versions × models × cases, each cell one run. The grid screen follows a running grid over
// one multiplexed event stream (gridStream.ts); these are its reads and actions.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, query } from "../client";
import { promptKeys } from "../prompts/keys";
import type { components } from "../schema";
import type { VersionSummary } from "../types";

type S = components["schemas"];
export type Comparison = S["ComparisonOut"];
export type ComparisonCell = S["Cell"];
export type ComparisonIn = S["ComparisonIn"];
export type ComparisonSummary = S["ComparisonSummary"];
export type ComparisonPage = S["Page_ComparisonSummary_"];
export type AssertionIn = S["AssertionIn"];
export type AssertionOut = S["AssertionOut"];
export type RatingIn = S["RatingIn"];
export type Diff = S["DiffOut"];

export * from "./gridState";
export { GridStreamer, type GridStreamState } from "./gridStream";
export { useGridStream } from "./useGridStream";

export const comparisonKeys = {
  all: (ws: string) => ["comparisons", ws] as const,
  list: (ws: string, promptId?: string) => [...comparisonKeys.all(ws), "list", promptId ?? ""] as const,
  detail: (ws: string, id: string) => [...comparisonKeys.all(ws), id] as const,
  diff: (ws: string, id: string, a: string, b: string) => [...comparisonKeys.detail(ws, id), "diff", a, b] as const,
};

const base = (ws: string) => `/workspaces/${ws}/comparisons`;

export function useComparison(ws: string, id: string) {
  return useQuery({
    queryKey: comparisonKeys.detail(ws, id),
    queryFn: () => api.get<Comparison>(`${base(ws)}/${id}`),
    // The stream brings the cells; the summary (assertion results, ratings) is re-read as cells finish.
    // A slow look while it runs covers a stream that could not be opened.
    refetchInterval: (q) => (q.state.data && q.state.data.status !== "completed" ? 10_000 : false),
  });
}

export function useComparisons(ws: string, promptId?: string) {
  return useInfiniteQuery({
    queryKey: comparisonKeys.list(ws, promptId),
    queryFn: ({ pageParam }) => api.get<ComparisonPage>(base(ws) + query({ prompt_id: promptId, cursor: pageParam })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    refetchInterval: (q) => (q.state.data?.pages.some((p) => p.items.some((c) => c.status !== "completed")) ? 3000 : false),
  });
}

export function useCreateComparison(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: ComparisonIn) => api.post<S["ComparisonAccepted"]>(base(ws), body),
    onSuccess: () => client.invalidateQueries({ queryKey: comparisonKeys.all(ws) }),
  });
}

/** An action on one grid that changes what its summary says. */
function useGridAction<T, R>(ws: string, id: string, fn: (body: T) => Promise<R>) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: fn,
    onSuccess: () => client.invalidateQueries({ queryKey: comparisonKeys.detail(ws, id) }),
  });
}

export function useCancelComparison(ws: string, id: string) {
  return useGridAction(ws, id, () => api.post<S["CancelOut"]>(`${base(ws)}/${id}/cancel`));
}

export function useRerunCell(ws: string, id: string) {
  return useGridAction(ws, id, (runId: string) => api.post<S["CellRef"]>(`${base(ws)}/${id}/cells/${runId}/rerun`));
}

export function useAddAssertion(ws: string, id: string) {
  return useGridAction(ws, id, (body: AssertionIn) => api.post<AssertionOut>(`${base(ws)}/${id}/assertions`, body));
}

export function useDeleteAssertion(ws: string, id: string) {
  return useGridAction(ws, id, (assertionId: string) => api.delete(`${base(ws)}/${id}/assertions/${assertionId}`));
}

export function useGrade(ws: string, id: string) {
  return useGridAction(ws, id, () => api.post<S["GradeOut"]>(`${base(ws)}/${id}/grade`));
}

export function useRateCell(ws: string, id: string) {
  return useGridAction(ws, id, ({ runId, rating }: { runId: string; rating: RatingIn }) =>
    api.put<S["RatingOut"]>(`${base(ws)}/${id}/cells/${runId}/rating`, rating),
  );
}

export function useUnrateCell(ws: string, id: string) {
  return useGridAction(ws, id, (runId: string) => api.delete(`${base(ws)}/${id}/cells/${runId}/rating`));
}

export function useCellDiff(ws: string, id: string, pair: [string, string] | null) {
  return useQuery({
    queryKey: comparisonKeys.diff(ws, id, pair?.[0] ?? "", pair?.[1] ?? ""),
    queryFn: () => api.get<Diff>(`${base(ws)}/${id}/diff` + query({ a: pair?.[0], b: pair?.[1] })),
    enabled: pair !== null,
  });
}

/** A prompt's versions for the new-comparison form: nothing asked until a prompt is chosen. */
export function usePromptVersions(ws: string, promptId: string) {
  return useQuery({
    queryKey: promptKeys.versions(ws, promptId),
    queryFn: () => api.get<VersionSummary[]>(`/workspaces/${ws}/prompts/${promptId}/versions`),
    enabled: promptId !== "",
  });
}
