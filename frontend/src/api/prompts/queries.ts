import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../client";
import type { Comment, Label, Prompt, PromptPage, Version, VersionIn, VersionSummary } from "../types";
import { promptKeys } from "./keys";

const base = (ws: string) => `/workspaces/${ws}/prompts`;

export function usePrompts(ws: string) {
  return useQuery({
    queryKey: promptKeys.list(ws),
    queryFn: () => api.get<PromptPage>(`${base(ws)}?limit=200`),
  });
}

export function usePrompt(ws: string, id: string) {
  return useQuery({ queryKey: promptKeys.detail(ws, id), queryFn: () => api.get<Prompt>(`${base(ws)}/${id}`) });
}

export function useCreatePrompt(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: { name: string; description: string }) => api.post<Prompt>(base(ws), body),
    onSuccess: () => client.invalidateQueries({ queryKey: promptKeys.list(ws) }),
  });
}

export function useVersions(ws: string, id: string) {
  return useQuery({
    queryKey: promptKeys.versions(ws, id),
    queryFn: () => api.get<VersionSummary[]>(`${base(ws)}/${id}/versions`),
  });
}

export function useVersion(ws: string, id: string, n: number | null | undefined) {
  return useQuery({
    queryKey: promptKeys.version(ws, id, n ?? 0),
    queryFn: () => api.get<Version>(`${base(ws)}/${id}/versions/${n}`),
    enabled: !!n,
    staleTime: Infinity, // versions never change
  });
}

export function useSaveVersion(ws: string, id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: VersionIn) => api.post<Version>(`${base(ws)}/${id}/versions`, body),
    onSuccess: () => client.invalidateQueries({ queryKey: promptKeys.detail(ws, id) }),
  });
}

export function useLabels(ws: string, id: string) {
  return useQuery({ queryKey: promptKeys.labels(ws, id), queryFn: () => api.get<Label[]>(`${base(ws)}/${id}/labels`) });
}

export function useMoveLabel(ws: string, id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ label, version }: { label: string; version: number }) =>
      api.put<Label>(`${base(ws)}/${id}/labels/${encodeURIComponent(label)}`, { version }),
    onSuccess: () => client.invalidateQueries({ queryKey: promptKeys.labels(ws, id) }),
  });
}

export function useComments(ws: string, id: string, n: number) {
  return useQuery({
    queryKey: promptKeys.comments(ws, id, n),
    queryFn: () => api.get<Comment[]>(`${base(ws)}/${id}/versions/${n}/comments`),
  });
}

export function useAddComment(ws: string, id: string, n: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: string) => api.post<Comment>(`${base(ws)}/${id}/versions/${n}/comments`, { body }),
    onSuccess: () => client.invalidateQueries({ queryKey: promptKeys.comments(ws, id, n) }),
  });
}

export function useResolveComment(ws: string, id: string, n: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ commentId, resolved }: { commentId: string; resolved: boolean }) =>
      api.patch<Comment>(`${base(ws)}/${id}/versions/${n}/comments/${commentId}`, { resolved }),
    onSuccess: () => client.invalidateQueries({ queryKey: promptKeys.comments(ws, id, n) }),
  });
}

export function useDeleteComment(ws: string, id: string, n: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (commentId: string) => api.delete(`${base(ws)}/${id}/versions/${n}/comments/${commentId}`),
    onSuccess: () => client.invalidateQueries({ queryKey: promptKeys.comments(ws, id, n) }),
  });
}
