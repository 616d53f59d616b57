import { describe, expect, it } from "vitest";
import { makeQueryClient } from "./queryClient";

describe("makeQueryClient", () => {
  it("marks the audit log stale after any successful change, and only then", async () => {
    const client = makeQueryClient();
    client.setQueryData(["audit", "ws1"], { pages: [], pageParams: [] });
    client.setQueryData(["lifecycle", "ws1", "retention"], { runs_days: 30 });
    const audit = () => client.getQueryState(["audit", "ws1"])?.isInvalidated;

    await expect(
      client.getMutationCache().build(client, { mutationFn: async () => Promise.reject(new Error("no")) }).execute(undefined),
    ).rejects.toThrow("no");
    expect(audit()).toBe(false);

    await client.getMutationCache().build(client, { mutationFn: async () => "saved" }).execute(undefined);
    expect(audit()).toBe(true);
    expect(client.getQueryState(["lifecycle", "ws1", "retention"])?.isInvalidated).toBe(false);
  });
});
