import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, query } from "./client";

function respond(status: number, body: unknown, type = "application/problem+json") {
  const fetchMock = vi.fn(async () => new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "Content-Type": type } }));
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

afterEach(() => {
  vi.unstubAllGlobals();
  document.cookie = "csrf_token=; expires=Thu, 01 Jan 1970 00:00:00 GMT";
});

describe("api client", () => {
  it("sends the CSRF token from the cookie on writes, never on reads", async () => {
    document.cookie = "csrf_token=tok%2Ben";
    const fetchMock = respond(200, { ok: true }, "application/json");
    await api.get("/me");
    await api.post("/workspaces", { name: "Acme" });
    const [getCall, postCall] = fetchMock.mock.calls as unknown as [[string, RequestInit], [string, RequestInit]];
    expect((getCall[1].headers as Record<string, string>)["X-CSRF-Token"]).toBeUndefined();
    expect((postCall[1].headers as Record<string, string>)["X-CSRF-Token"]).toBe("tok+en");
    expect(postCall[0]).toBe("/api/v1/workspaces");
    expect(postCall[1].body).toBe('{"name":"Acme"}');
  });

  it("turns problem+json into an error whose message is the detail, naming the first bad field", async () => {
    respond(422, { status: 422, title: "Invalid", detail: "Invalid request", errors: [{ loc: ["body", "name"], msg: "too short" }] });
    const error = await api.post("/workspaces", { name: "" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).message).toBe("Invalid request (name: too short)");
  });

  it("keeps a plain detail as it is, and survives a body that is not JSON", async () => {
    respond(402, { status: 402, title: "Budget", detail: "This run could cost more than the budget left" });
    await expect(api.post("/runs")).rejects.toThrow("This run could cost more than the budget left");
    vi.stubGlobal("fetch", vi.fn(async () => new Response("gateway down", { status: 502, statusText: "Bad Gateway" })));
    await expect(api.get("/me")).rejects.toThrow("Bad Gateway");
  });

  it("answers undefined for 204", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(null, { status: 204 })));
    await expect(api.delete("/workspaces/1/api-keys/2")).resolves.toBeUndefined();
  });

  it("builds query strings without empty values", () => {
    expect(query({ a: "1", b: "", c: undefined, d: null, e: 0 })).toBe("?a=1&e=0");
    expect(query({})).toBe("");
  });
});
