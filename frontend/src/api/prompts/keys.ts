export const promptKeys = {
  all: (ws: string) => ["prompts", ws] as const,
  list: (ws: string) => [...promptKeys.all(ws), "list"] as const,
  detail: (ws: string, id: string) => [...promptKeys.all(ws), id] as const,
  versions: (ws: string, id: string) => [...promptKeys.detail(ws, id), "versions"] as const,
  version: (ws: string, id: string, n: number) => [...promptKeys.versions(ws, id), n] as const,
  labels: (ws: string, id: string) => [...promptKeys.detail(ws, id), "labels"] as const,
  comments: (ws: string, id: string, n: number) => [...promptKeys.version(ws, id, n), "comments"] as const,
};
