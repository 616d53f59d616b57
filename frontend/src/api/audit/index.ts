// The workspace's audit log (admin+), newest first, a page at a time.
import { useInfiniteQuery } from "@tanstack/react-query";
import { api, query } from "../client";
import type { components } from "../schema";

export type AuditEntry = components["schemas"]["AuditEntryOut"];
type AuditPage = { items: AuditEntry[]; next_cursor: string | null };

export const auditKeys = {
  log: (ws: string) => ["audit", ws] as const,
};

export const useAuditLog = (ws: string, enabled: boolean) =>
  useInfiniteQuery({
    queryKey: auditKeys.log(ws),
    queryFn: ({ pageParam }) =>
      api.get<AuditPage>(`/workspaces/${ws}/audit-log${query({ cursor: pageParam, limit: 50 })}`),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled,
  });
