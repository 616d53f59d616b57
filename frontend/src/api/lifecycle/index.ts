// The data lifecycle of a workspace: its retention policy and its exports.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { API, api } from "../client";
import type { components } from "../schema";

export type Retention = components["schemas"]["RetentionOut"];
export type Export = components["schemas"]["ExportOut"];

export const lifecycleKeys = {
  retention: (ws: string) => ["lifecycle", ws, "retention"] as const,
  exports: (ws: string) => ["lifecycle", ws, "exports"] as const,
};

const w = (ws: string) => `/workspaces/${ws}`;
export const exportActive = (e: Export) => e.status === "queued" || e.status === "running";
/** Same-origin, cookie-authenticated GET: a plain link downloads it (the browser inflates gzip itself). */
export const downloadUrl = (ws: string, id: string) => `${API}${w(ws)}/exports/${id}/download`;

export const useRetention = (ws: string) =>
  useQuery({ queryKey: lifecycleKeys.retention(ws), queryFn: () => api.get<Retention>(`${w(ws)}/retention`) });

export function usePutRetention(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (runs_days: number | null) => api.put<Retention>(`${w(ws)}/retention`, { runs_days }),
    onSuccess: (saved) => client.setQueryData(lifecycleKeys.retention(ws), saved),
  });
}

/** The workspace's latest exports; polled every second while one is being made. */
export const useExports = (ws: string, enabled: boolean) =>
  useQuery({
    queryKey: lifecycleKeys.exports(ws),
    queryFn: () => api.get<Export[]>(`${w(ws)}/exports`),
    enabled,
    refetchInterval: (q) => (q.state.data?.some(exportActive) ? 1000 : false),
  });

export function useRequestExport(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => api.post<Export>(`${w(ws)}/exports`),
    onSuccess: () => client.invalidateQueries({ queryKey: lifecycleKeys.exports(ws) }),
  });
}
