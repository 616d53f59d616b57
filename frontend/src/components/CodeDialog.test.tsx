import { afterEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { CodeDialog } from "./CodeDialog";

function mockFetch() {
  const calls: { url: string; method: string; body: unknown }[] = [];
  const fetchMock = vi.fn(async (url: string, init: RequestInit) => {
    const language = new URL(url, "http://x").searchParams.get("language");
    calls.push({ url, method: init.method ?? "GET", body: init.body ? JSON.parse(String(init.body)) : undefined });
    return new Response(JSON.stringify({ language, provider: "mock", code: `${language} code for mock-1` }), {
      status: 200,
      headers: { "Content-Type": "application/json" },
    });
  });
  vi.stubGlobal("fetch", fetchMock);
  return calls;
}

function renderDialog(source: Parameters<typeof CodeDialog>[0]["source"], onClose = vi.fn()) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <CodeDialog ws="ws1" source={source} onClose={onClose} />
    </QueryClientProvider>,
  );
  return onClose;
}

afterEach(() => vi.unstubAllGlobals());

describe("CodeDialog", () => {
  it("fetches a run's code per language tab", async () => {
    const calls = mockFetch();
    renderDialog({ runId: "run-1" });
    await waitFor(() => expect(screen.getByTestId("code-text").textContent).toBe("python code for mock-1"));
    expect(calls[0]).toMatchObject({ url: "/api/v1/workspaces/ws1/runs/run-1/code?language=python", method: "GET" });
    fireEvent.click(screen.getByTestId("code-tab-curl"));
    await waitFor(() => expect(screen.getByTestId("code-text").textContent).toBe("curl code for mock-1"));
    expect(screen.getByTestId("code-tab-curl").getAttribute("aria-selected")).toBe("true");
  });

  it("posts the editor's run body for a draft, copies, and closes on Escape", async () => {
    const calls = mockFetch();
    const writeText = vi.fn(async () => {});
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText } });
    const body = { prompt_id: "p", draft: { system: "", messages: [], model_config: { provider: "mock", model: "mock-1", max_tokens: 5 } }, variables: {} };
    const onClose = renderDialog({ body } as never);
    await waitFor(() => expect(screen.getByTestId("code-text").textContent).toBe("python code for mock-1"));
    expect(calls[0]).toMatchObject({ url: "/api/v1/workspaces/ws1/runs/code?language=python", method: "POST", body });
    fireEvent.click(screen.getByTestId("code-copy"));
    await waitFor(() => expect(screen.getByTestId("code-copy").textContent).toBe("Copied"));
    expect(writeText).toHaveBeenCalledWith("python code for mock-1");
    fireEvent.keyDown(window, { key: "Escape" });
    expect(onClose).toHaveBeenCalled();
  });
});
