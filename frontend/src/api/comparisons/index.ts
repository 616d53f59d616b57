// Comparisons: versions × models × cases, each cell one run. Followed by polling while it runs, so the
// tab's one event stream stays free for the editor's run.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../client";
import type { components } from "../schema";

type S = components["schemas"];
export type Comparison = S["ComparisonOut"];
export type ComparisonCell = S["Cell"];
export type ComparisonIn = S["ComparisonIn"];

export const comparisonKeys = {
  all: (ws: string) => ["comparisons", ws] as const,
  detail: (ws: string, id: string) => [...comparisonKeys.all(ws), id] as const,
};

const base = (ws: string) => `/workspaces/${ws}/comparisons`;

export function useComparison(ws: string, id: string) {
  return useQuery({
    queryKey: comparisonKeys.detail(ws, id),
    queryFn: () => api.get<Comparison>(`${base(ws)}/${id}`),
    refetchInterval: (q) => (q.state.data && q.state.data.status !== "completed" ? 1000 : false),
  });
}

export function useCreateComparison(ws: string) {
  return useMutation({ mutationFn: (body: ComparisonIn) => api.post<S["ComparisonAccepted"]>(base(ws), body) });
}

export function useCancelComparison(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.post(`${base(ws)}/${id}/cancel`),
    onSuccess: (_data, id) => client.invalidateQueries({ queryKey: comparisonKeys.detail(ws, id) }),
  });
}
