import { afterEach, describe, expect, it, vi } from "vitest";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { AuditLog } from "./AuditLog";

const entry = (id: string, action: string, before: unknown, after: unknown) => ({
  id,
  action,
  actor: { user_id: "u1", email: "ada@example.com", api_key_id: null },
  target: { type: "user", id: "0123456789abcdef" },
  before,
  after,
  client_address: "10.0.0.7",
  created_at: "2026-11-27T10:00:00Z",
});

function serve(pages: Record<string, unknown>) {
  const fetchMock = vi.fn(async (url: string) => {
    const cursor = new URL(url, "http://x").searchParams.get("cursor") ?? "";
    return new Response(JSON.stringify(pages[cursor]), { status: 200, headers: { "Content-Type": "application/json" } });
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

function show(admin: boolean) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <AuditLog ws="ws1" admin={admin} />
    </QueryClientProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("AuditLog", () => {
  it("lists entries with actor, action, target and the change, and pages on demand", async () => {
    const fetchMock = serve({
      "": { items: [entry("a", "member.role_changed", { role: "viewer" }, { role: "editor" })], next_cursor: "c2" },
      c2: { items: [entry("b", "api_key.revoked", { name: "ci" }, null)], next_cursor: null },
    });
    show(true);
    await screen.findByText("member.role_changed");
    expect(screen.getByText('{"role":"viewer"} → {"role":"editor"}')).toBeTruthy();
    expect(screen.getByText(/10\.0\.0\.7/)).toBeTruthy();
    expect(fetchMock.mock.calls[0]?.[0]).toBe("/api/v1/workspaces/ws1/audit-log?limit=50");
    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await screen.findByText("api_key.revoked");
    expect(screen.getByText('was {"name":"ci"}')).toBeTruthy();
    await waitFor(() => expect(screen.queryByRole("button", { name: "Load more" })).toBeNull());
  });

  it("is not shown, nor asked for, below admin", () => {
    const fetchMock = serve({});
    const { container } = show(false);
    expect(container.textContent).toBe("");
    expect(fetchMock).not.toHaveBeenCalled();
  });
});
