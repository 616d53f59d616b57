import { afterEach, describe, expect, it, vi } from "vitest";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { InstanceSettingsForm } from "./InstanceSettingsForm";

afterEach(() => vi.unstubAllGlobals());

describe("InstanceSettingsForm", () => {
  it("shows the budget in dollars, sends micro-dollars, and splits the domains", async () => {
    const puts: unknown[] = [];
    const current = { signup: "open", allowed_domains: ["acme.org"], default_limits: { monthly_budget_micros: 25_000_000 } };
    vi.stubGlobal(
      "fetch",
      vi.fn(async (_url: string, init?: RequestInit) => {
        if (init?.method === "PUT") puts.push(JSON.parse(String(init.body)));
        return new Response(JSON.stringify(current), { status: 200, headers: { "Content-Type": "application/json" } });
      }),
    );
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <InstanceSettingsForm />
      </QueryClientProvider>,
    );
    const budget = (await screen.findByLabelText("Monthly budget (USD)")) as HTMLInputElement;
    await waitFor(() => expect(budget.value).toBe("25"));
    fireEvent.change(budget, { target: { value: "12.5" } });
    fireEvent.change(screen.getByLabelText("Concurrent runs"), { target: { value: "4" } });
    fireEvent.change(screen.getByLabelText(/Allowed email domains/), { target: { value: "acme.org\nother.org, third.org" } });
    fireEvent.change(screen.getByLabelText("Signup"), { target: { value: "invite" } });
    fireEvent.click(screen.getByRole("button", { name: "Save instance settings" }));
    await waitFor(() => expect(puts).toHaveLength(1));
    expect(puts[0]).toEqual({
      signup: "invite",
      allowed_domains: ["acme.org", "other.org", "third.org"],
      default_limits: { monthly_budget_micros: 12_500_000, max_concurrent_runs: 4 },
    });
  });
});
