import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, query } from "../client";
import type { components } from "../schema";

type S = components["schemas"];
export type Flag = S["FlagOut"];
export type FlagPage = S["Page_FlagOut_"];
export type SafetyPolicy = S["PolicyOut"];
export type SafetySummary = S["SummaryOut"];
export type FlagFilters = { status?: string; kind?: string; run_id?: string };

export const safetyKeys = {
  all: (ws: string) => ["safety", ws] as const,
  flags: (ws: string, filters: FlagFilters) => [...safetyKeys.all(ws), "flags", filters] as const,
  summary: (ws: string) => [...safetyKeys.all(ws), "summary"] as const,
  policy: (ws: string) => [...safetyKeys.all(ws), "policy"] as const,
};

const base = (ws: string) => `/workspaces/${ws}/safety`;

export function useFlags(ws: string, filters: FlagFilters) {
  return useQuery({
    queryKey: safetyKeys.flags(ws, filters),
    queryFn: () => api.get<FlagPage>(`${base(ws)}/flags` + query({ ...filters, limit: 100 })),
    placeholderData: keepPreviousData,
  });
}

export function useSafetySummary(ws: string) {
  return useQuery({ queryKey: safetyKeys.summary(ws), queryFn: () => api.get<SafetySummary>(`${base(ws)}/summary`) });
}

export function useSafetyPolicy(ws: string) {
  return useQuery({ queryKey: safetyKeys.policy(ws), queryFn: () => api.get<SafetyPolicy>(`${base(ws)}/policy`) });
}

export function usePutSafetyPolicy(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: Partial<SafetyPolicy>) => api.put<SafetyPolicy>(`${base(ws)}/policy`, body),
    onSuccess: (policy) => client.setQueryData(safetyKeys.policy(ws), policy),
  });
}

export function useResolveFlag(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, status, note }: { id: string; status: "open" | "resolved"; note?: string }) =>
      api.patch<Flag>(`${base(ws)}/flags/${id}`, { status, note: note || null }),
    onSuccess: () => client.invalidateQueries({ queryKey: safetyKeys.all(ws) }),
  });
}
