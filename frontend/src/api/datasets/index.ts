// Datasets: test cases (rows of variable values, optionally an expected output each), made from JSON or a
// CSV upload, and single cases appended (given, or a run's variables: "save as test case").
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, API, ApiError, csrfToken, query } from "../client";
import type { components } from "../schema";
import type { Problem } from "../types";

type S = components["schemas"];
export type Dataset = S["DatasetOut"];
export type DatasetDetail = S["DatasetDetail"];
export type DatasetIn = S["DatasetIn"];
export type DatasetPage = S["Page_DatasetOut_"];
export type RowIn = S["RowIn"];
export type RowOut = S["RowOut"];

export const datasetKeys = {
  all: (ws: string) => ["datasets", ws] as const,
  list: (ws: string) => [...datasetKeys.all(ws), "list"] as const,
  detail: (ws: string, id: string) => [...datasetKeys.all(ws), "detail", id] as const,
};

const base = (ws: string) => `/workspaces/${ws}/datasets`;

export function useDatasets(ws: string) {
  return useInfiniteQuery({
    queryKey: datasetKeys.list(ws),
    queryFn: ({ pageParam }) => api.get<DatasetPage>(base(ws) + query({ limit: 100, cursor: pageParam })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
}

export function useDataset(ws: string, id: string) {
  return useQuery({ queryKey: datasetKeys.detail(ws, id), queryFn: () => api.get<DatasetDetail>(`${base(ws)}/${id}`) });
}

export function useCreateDataset(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: DatasetIn) => api.post<Dataset>(base(ws), body),
    onSuccess: () => client.invalidateQueries({ queryKey: datasetKeys.list(ws) }),
  });
}

export type ImportBody = { file: File; name?: string; expectedColumn?: string };

/** A CSV upload (multipart): the JSON client cannot send a file, so this one request is made here. */
export async function importDataset(ws: string, { file, name, expectedColumn }: ImportBody): Promise<Dataset> {
  const form = new FormData();
  form.append("file", file, file.name);
  if (name?.trim()) form.append("name", name.trim());
  if (expectedColumn?.trim()) form.append("expected_column", expectedColumn.trim());
  const response = await fetch(`${API}${base(ws)}/import`, {
    method: "POST",
    headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
    body: form,
  });
  if (!response.ok) {
    let problem: Partial<Problem> = { status: response.status, title: response.statusText };
    try {
      problem = (await response.json()) as Partial<Problem>;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, problem);
  }
  return (await response.json()) as Dataset;
}

export function useImportDataset(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: ImportBody) => importDataset(ws, body),
    onSuccess: () => client.invalidateQueries({ queryKey: datasetKeys.list(ws) }),
  });
}

export function useDeleteDataset(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.delete(`${base(ws)}/${id}`),
    // Not the deleted one's own query: read again, it would be a 404.
    onSuccess: () => client.invalidateQueries({ queryKey: datasetKeys.list(ws) }),
  });
}

export function useAddRow(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ datasetId, row }: { datasetId: string; row: RowIn }) => api.post<RowOut>(`${base(ws)}/${datasetId}/rows`, row),
    onSuccess: (_row, { datasetId }) =>
      Promise.all([
        client.invalidateQueries({ queryKey: datasetKeys.list(ws) }),
        client.invalidateQueries({ queryKey: datasetKeys.detail(ws, datasetId) }),
      ]),
  });
}
