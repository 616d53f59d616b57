import { afterEach, describe, expect, it, vi } from "vitest";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { SaveAsTestCase } from "./SaveAsTestCase";

const dataset = (id: string, name: string, rows: number) => ({
  id, name, row_count: rows, variables: ["q"], has_expected: false, size_bytes: 1, created_by: null,
  created_at: "2026-11-27T10:00:00Z", updated_at: "2026-11-27T10:00:00Z",
});

function serve(datasets: unknown[]) {
  const calls: { method: string; url: string; body: unknown }[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ method: init.method ?? "GET", url, body: init.body ? JSON.parse(String(init.body)) : null });
      const body = init.method === "POST" ? { index: 4, variables: { q: "x" }, expected: null } : { items: datasets, next_cursor: null };
      return new Response(JSON.stringify(body), { status: init.method === "POST" ? 201 : 200, headers: { "Content-Type": "application/json" } });
    }),
  );
  return calls;
}

function show() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <SaveAsTestCase ws="ws1" runId="run-1" />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("SaveAsTestCase", () => {
  it("appends the run's variables to the chosen dataset, its output as expected when asked", async () => {
    const calls = serve([dataset("d1", "smoke", 2), dataset("d2", "regressions", 4)]);
    show();
    fireEvent.click(screen.getByRole("button", { name: "Save as test case" }));
    const select = await screen.findByTestId("save-test-case-dataset");
    await waitFor(() => expect(select.querySelectorAll("option")).toHaveLength(2));
    fireEvent.change(select, { target: { value: "d2" } });
    fireEvent.click(screen.getByLabelText("Its output is the expected one"));
    fireEvent.click(screen.getByTestId("save-test-case-submit"));
    expect((await screen.findByRole("status")).textContent).toContain("Saved as case 5 of regressions");
    const post = calls.find((c) => c.method === "POST");
    expect(post?.url).toBe("/api/v1/workspaces/ws1/datasets/d2/rows");
    expect(post?.body).toEqual({ run_id: "run-1", output_as_expected: true });
  });

  it("points to the datasets screen when there is none", async () => {
    serve([]);
    show();
    fireEvent.click(screen.getByRole("button", { name: "Save as test case" }));
    expect((await screen.findByRole("link", { name: "create one" })).getAttribute("href")).toBe("/w/ws1/datasets");
  });
});
