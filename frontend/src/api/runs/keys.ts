export type RunFilters = { prompt_id?: string; status?: string; from?: string; to?: string };

export const runKeys = {
  all: (ws: string) => ["runs", ws] as const,
  list: (ws: string, filters: RunFilters) => [...runKeys.all(ws), "list", filters] as const,
  detail: (ws: string, id: string) => [...runKeys.all(ws), id] as const,
  estimate: (ws: string, body: unknown) => [...runKeys.all(ws), "estimate", body] as const,
  code: (ws: string, id: string, language: string) => [...runKeys.all(ws), id, "code", language] as const,
  draftCode: (ws: string, body: unknown, language: string) => [...runKeys.all(ws), "code", language, body] as const,
};
