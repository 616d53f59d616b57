import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, csrfToken } from "../client";
import type { Me } from "../types";

export const authKeys = {
  all: ["auth"] as const,
  me: () => [...authKeys.all, "me"] as const,
};

export function useMe() {
  return useQuery({
    queryKey: authKeys.me(),
    // Without the CSRF cookie there is no session: skip a request the browser would log as a 401 error.
    queryFn: () => (csrfToken() ? api.get<Me>("/me") : Promise.reject(new ApiError(401, { detail: "Not signed in" }))),
    retry: false,
  });
}

export type SignupBody = { email: string; password: string; name: string; invite_token?: string | null };

export function useSignup() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: SignupBody) => api.post("/auth/signup", body),
    onSuccess: () => client.invalidateQueries({ queryKey: authKeys.all }),
  });
}

export type LoginBody = { email: string; password: string; totp_code?: string; recovery_code?: string };

/** The problem type's last part (`.../totp-required` → `totp-required`), to react to a specific refusal. */
export function problemType(error: unknown): string | undefined {
  return error instanceof ApiError ? error.problem.type?.split("/").pop() : undefined;
}

export function useLogin() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: LoginBody) => api.post("/auth/login", body),
    onSuccess: () => client.invalidateQueries({ queryKey: authKeys.all }),
  });
}

export function useLogout() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => api.post("/auth/logout"),
    onSuccess: () => client.clear(),
  });
}
