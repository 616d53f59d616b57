import { useQuery } from "@tanstack/react-query";
import { api, query } from "../client";
import type { LatencyRow, Usage, WorkspaceModel } from "../types";

export type GroupBy = "day" | "model" | "user" | "prompt";

export const usageKeys = {
  all: (ws: string) => ["usage", ws] as const,
  usage: (ws: string, groupBy: GroupBy, from?: string, to?: string) =>
    [...usageKeys.all(ws), groupBy, from ?? "", to ?? ""] as const,
  latency: (ws: string, groupBy: "model" | "prompt") => [...usageKeys.all(ws), "latency", groupBy] as const,
  models: (ws: string) => ["models", ws] as const,
};

export function useUsage(ws: string, groupBy: GroupBy, from?: string, to?: string) {
  return useQuery({
    queryKey: usageKeys.usage(ws, groupBy, from, to),
    queryFn: () => api.get<Usage>(`/workspaces/${ws}/usage` + query({ group_by: groupBy, from, to })),
  });
}

export function useLatency(ws: string, groupBy: "model" | "prompt") {
  return useQuery({
    queryKey: usageKeys.latency(ws, groupBy),
    queryFn: () => api.get<LatencyRow[]>(`/workspaces/${ws}/usage/latency` + query({ group_by: groupBy })),
  });
}

export function useModels(ws: string) {
  return useQuery({
    queryKey: usageKeys.models(ws),
    queryFn: () => api.get<WorkspaceModel[]>(`/workspaces/${ws}/models`),
    staleTime: 60_000,
  });
}
