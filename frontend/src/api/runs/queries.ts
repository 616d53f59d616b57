import { keepPreviousData, useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, query } from "../client";
import type { CodeLanguage, CodeOut, Estimate, Run, RunAccepted, RunIn, RunPage } from "../types";
import { runKeys, type RunFilters } from "./keys";

const base = (ws: string) => `/workspaces/${ws}/runs`;

export function useRuns(ws: string, filters: RunFilters) {
  return useInfiniteQuery({
    queryKey: runKeys.list(ws, filters),
    queryFn: ({ pageParam }) => api.get<RunPage>(base(ws) + query({ ...filters, cursor: pageParam, limit: 50 })),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_cursor ?? undefined,
  });
}

export function useRun(ws: string, id: string) {
  return useQuery({ queryKey: runKeys.detail(ws, id), queryFn: () => api.get<Run>(`${base(ws)}/${id}`), enabled: !!id });
}

export function useEstimate(ws: string, body: RunIn | null) {
  return useQuery({
    queryKey: runKeys.estimate(ws, body),
    queryFn: () => api.post<Estimate>(`${base(ws)}/estimate`, body),
    enabled: body !== null,
    placeholderData: keepPreviousData,
    retry: false,
    staleTime: 30_000,
  });
}

export function useStartRun(ws: string) {
  return useMutation({ mutationFn: (body: RunIn) => api.post<RunAccepted>(base(ws), body) });
}

export function useCancelRun(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.post<RunAccepted>(`${base(ws)}/${id}/cancel`),
    onSettled: (_data, _error, id) => client.invalidateQueries({ queryKey: runKeys.detail(ws, id) }),
  });
}

export function useRerun(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.post<RunAccepted>(`${base(ws)}/${id}/rerun`),
    onSuccess: () => client.invalidateQueries({ queryKey: runKeys.all(ws) }),
  });
}

/** "Get code" for a run: a program making the request the run made. */
export function useRunCode(ws: string, id: string | null, language: CodeLanguage) {
  return useQuery({
    queryKey: runKeys.code(ws, id ?? "", language),
    queryFn: () => api.get<CodeOut>(`${base(ws)}/${id}/code${query({ language })}`),
    enabled: !!id,
    retry: false,
    staleTime: Infinity,
  });
}

/** "Get code" for what a run of this body would send (a version or a draft; nothing is run or saved). */
export function useDraftCode(ws: string, body: RunIn | null, language: CodeLanguage) {
  return useQuery({
    queryKey: runKeys.draftCode(ws, body, language),
    queryFn: () => api.post<CodeOut>(`${base(ws)}/code${query({ language })}`, body),
    enabled: body !== null,
    retry: false,
    staleTime: 60_000,
  });
}
