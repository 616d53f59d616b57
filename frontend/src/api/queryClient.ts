// The app's one QueryClient. Every change a member makes may write an audit entry, so any successful
// mutation marks the audit log stale: an open Settings page shows the entry without a reload.
import { MutationCache, QueryClient } from "@tanstack/react-query";
import { ApiError } from "./client";

export function makeQueryClient(): QueryClient {
  const client: QueryClient = new QueryClient({
    mutationCache: new MutationCache({
      onSuccess: () => void client.invalidateQueries({ queryKey: ["audit"] }),
    }),
    defaultOptions: {
      queries: {
        staleTime: 5_000,
        refetchOnWindowFocus: false,
        // Client errors (401, 403, 404 …) will not change by asking again.
        retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
      },
    },
  });
  return client;
}
