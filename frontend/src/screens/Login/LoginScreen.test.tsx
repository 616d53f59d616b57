import { afterEach, describe, expect, it, vi } from "vitest";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router";
import { LoginScreen } from "./LoginScreen";

const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
const problem = (status: number, type: string, detail: string) =>
  json(status, { type: `https://playground.dev/problems/${type}`, title: type, status, detail }, "application/problem+json");

/** A server with SSO on and an account with two-factor authentication whose right code is 123456. */
function serve() {
  const logins: Record<string, unknown>[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init?: RequestInit) => {
      if (url.endsWith("/auth/sso")) return json(200, { enabled: true, name: "Acme SSO" });
      const body = JSON.parse(String(init?.body ?? "{}")) as Record<string, unknown>;
      logins.push(body);
      if (!body.totp_code && !body.recovery_code) return problem(401, "totp-required", "send totp_code");
      if (body.totp_code !== "123456") return problem(401, "totp-invalid", "That two-factor code is not right");
      return json(200, { id: "u1", email: "ada@example.com", name: "Ada", created_at: "2026-11-27T10:00:00Z" });
    }),
  );
  return logins;
}

function show(path: string) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="/login" element={<LoginScreen />} />
          <Route path="/w/ws1/runs" element={<p>Runs screen</p>} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("LoginScreen", () => {
  it("asks for the second factor when the server wants one, shows a wrong code's reason, then goes on", async () => {
    const logins = serve();
    show("/login?next=%2Fw%2Fws1%2Fruns");
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "ada@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "a long passphrase" } });
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));

    const code = await screen.findByLabelText("Authentication code");
    expect(screen.queryByRole("alert")).toBeNull(); // "code required" is a step, not an error
    fireEvent.change(code, { target: { value: "654321" } });
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));
    expect((await screen.findByRole("alert")).textContent).toContain("That two-factor code is not right");
    fireEvent.change(screen.getByLabelText("Authentication code"), { target: { value: "123 456" } });
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));
    expect((await screen.findByText("Runs screen")).tagName).toBe("P");
    expect(logins.at(-1)).toEqual({ email: "ada@example.com", password: "a long passphrase", totp_code: "123456" });
  });

  it("sends a recovery code instead when asked to", async () => {
    const logins = serve();
    show("/login");
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "ada@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "pw" } });
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    fireEvent.click(await screen.findByRole("button", { name: "Use a recovery code" }));
    fireEvent.change(screen.getByLabelText("Recovery code"), { target: { value: " abc123-def456 " } });
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));
    await waitFor(() => expect(logins).toHaveLength(2));
    expect(logins[1]).toMatchObject({ recovery_code: "abc123-def456" });
    expect(logins[1]).not.toHaveProperty("totp_code");
  });

  it("offers single sign-on, keeping where to go after, and says why a sign-in failed", async () => {
    serve();
    show("/login?next=%2Fw%2Fws1%2Fruns&sso_error=sso-failed");
    const link = await screen.findByRole("link", { name: "Sign in with Acme SSO" });
    expect(link.getAttribute("href")).toBe("/api/v1/auth/sso/start?next=%2Fw%2Fws1%2Fruns");
    expect(screen.getByRole("alert").textContent).toContain("Single sign-on failed");
    expect(screen.getByRole("link", { name: "Forgot password?" }).getAttribute("href")).toBe("/reset-password");
  });
});
