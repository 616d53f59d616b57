import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../client";
import { authKeys } from "../auth";
import type { Workspace } from "../types";

export const workspaceKeys = {
  all: ["workspaces"] as const,
  list: () => [...workspaceKeys.all, "list"] as const,
  detail: (ws: string) => [...workspaceKeys.all, ws] as const,
};

export function useWorkspace(ws: string) {
  return useQuery({ queryKey: workspaceKeys.detail(ws), queryFn: () => api.get<Workspace>(`/workspaces/${ws}`) });
}

export function useCreateWorkspace() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => api.post<Workspace>("/workspaces", { name }),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: workspaceKeys.all });
      void client.invalidateQueries({ queryKey: authKeys.all });
    },
  });
}
