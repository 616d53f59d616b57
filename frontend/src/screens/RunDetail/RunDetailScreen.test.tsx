import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createMemoryRouter, Outlet, RouterProvider } from "react-router";
import { runKeys } from "../../api/runs";
import type { Run } from "../../api/types";
import { RunDetailScreen } from "./RunDetailScreen";

const run = (extra: Partial<Run> = {}) =>
  ({
    id: "r1", status: "succeeded", prompt_id: "p1", version_id: "v", version: 3, provider: "mock", model: "mock-1",
    snapshot: { variables: {}, system: "", messages: [{ role: "user", content: "Find it" }], model_config: { temperature: 0 } },
    output: "", stop_reason: "tool_use", usage: { input_tokens: 2, output_tokens: 2 }, cost_usd: "0.0001",
    ttft_ms: 5, duration_ms: 9, error: null, flags: [], thinking: null, output_valid: null, rerun_of: null,
    created_by: null, created_at: "2026-11-27T00:00:00Z", started_at: null, finished_at: null,
    tool_uses: [{ id: "toolu_1", name: "search", input: { q: "it" } }],
    ...extra,
  }) as Run;

function show(data: Run, role: "editor" | "viewer" = "editor") {
  const client = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
  client.setQueryData(runKeys.detail("ws", data.id), data);
  const router = createMemoryRouter(
    [{ path: "/w/:ws", element: <Outlet context={{ id: "ws", name: "W", role }} />, children: [{ path: "runs/:runId", element: <RunDetailScreen /> }] }],
    { initialEntries: [`/w/ws/runs/${data.id}`] },
  );
  render(
    <QueryClientProvider client={client}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
}

describe("RunDetailScreen, continuing", () => {
  it("offers to continue a finished run in the editor, its conversation loaded as the draft", () => {
    show(run());
    expect(screen.getByTestId("continue-in-editor").getAttribute("href")).toBe("/w/ws/prompts/p1?version=3&run=r1&continue=1");
    expect(screen.getByTestId("tool-use-name").textContent).toBe("search");
  });

  it("not to viewers, nor for a run that said nothing, failed or lost its contents", () => {
    show(run(), "viewer");
    expect(screen.queryByTestId("continue-in-editor")).toBeNull();
  });

  it.each([
    ["said nothing", { tool_uses: [], output: " " }],
    ["failed", { status: "failed" as const, output: "partial" }],
    ["emptied by retention", { snapshot: null }],
  ])("none when it %s", (_, extra) => {
    show(run(extra));
    expect(screen.getByTestId("run-status")).toBeTruthy();
    expect(screen.queryByTestId("continue-in-editor")).toBeNull();
  });
});
