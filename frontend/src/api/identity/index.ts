// My account (profile, password, sessions, two-factor), instance administration, password resets and SSO.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { authKeys } from "../auth";
import { api, query } from "../client";
import type { components } from "../schema";
import type { Workspace } from "../types";
import { workspaceKeys } from "../workspaces";

type S = components["schemas"];
export type AuthSession = S["SessionOut"];
export type TotpSetup = S["TotpSetupOut"];
export type AdminUser = S["AdminUserOut"];
export type AdminUserPage = S["Page_AdminUserOut_"];
export type InstanceSettings = S["InstanceSettingsOut"];
export type InstanceSettingsIn = S["InstanceSettingsIn"];
export type DefaultLimits = S["DefaultLimits"];
export type SsoInfo = S["SsoInfo"];
export type ResetCreated = S["ResetCreatedOut"];
export type ForgotPassword = S["ForgotPasswordOut"];

export const identityKeys = {
  all: ["identity"] as const,
  sessions: () => [...identityKeys.all, "sessions"] as const,
  twoFactor: () => [...identityKeys.all, "2fa"] as const,
  sso: () => [...identityKeys.all, "sso"] as const,
  users: (q: string) => [...identityKeys.all, "admin", "users", q] as const,
  admin: () => [...identityKeys.all, "admin"] as const,
  instance: () => [...identityKeys.all, "admin", "settings"] as const,
};

// Public: what the login page offers.

export const useSsoInfo = () =>
  useQuery({ queryKey: identityKeys.sso(), queryFn: () => api.get<SsoInfo>("/auth/sso"), staleTime: 60_000 });

export const useForgotPassword = () =>
  useMutation({ mutationFn: (email: string) => api.post<ForgotPassword>("/auth/forgot-password", { email }) });

export const useResetPassword = () =>
  useMutation({
    mutationFn: (body: { token: string; new_password: string }) => api.post<void>("/auth/password-reset", body),
  });

// My account.

function useIdentityMutation<TIn, TOut>(fn: (body: TIn) => Promise<TOut>, also?: readonly unknown[]) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: fn,
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: identityKeys.all });
      if (also) void client.invalidateQueries({ queryKey: also });
    },
  });
}

export const useUpdateProfile = () =>
  useIdentityMutation((name: string) => api.patch("/me", { name }), authKeys.all);
export const useChangePassword = () =>
  useIdentityMutation((body: { current_password: string; new_password: string }) => api.post<void>("/me/password", body));

export const useMySessions = () =>
  useQuery({ queryKey: identityKeys.sessions(), queryFn: () => api.get<AuthSession[]>("/me/sessions") });
export const useRevokeSession = () => useIdentityMutation((id: string) => api.delete(`/me/sessions/${id}`));
export const useRevokeOtherSessions = () => useIdentityMutation(() => api.post<void>("/me/sessions/revoke-others"));

export const useTwoFactor = () =>
  useQuery({ queryKey: identityKeys.twoFactor(), queryFn: () => api.get<{ totp: boolean }>("/me/2fa") });
// Setting up makes a new secret: only the enable step refreshes the status (the secret stays on screen).
export const useSetupTotp = () => useMutation({ mutationFn: () => api.post<TotpSetup>("/me/2fa/totp/setup") });
export const useEnableTotp = () =>
  useIdentityMutation((code: string) => api.post<{ recovery_codes: string[] }>("/me/2fa/totp/enable", { code }));
export const useDisableTotp = () =>
  useIdentityMutation((password: string) => api.post<void>("/me/2fa/totp/disable", { password }));

// Instance administration.

export const useAdminUsers = (q: string) =>
  useQuery({ queryKey: identityKeys.users(q), queryFn: () => api.get<AdminUserPage>(`/admin/users${query({ q, limit: 200 })}`) });
export const useUpdateUser = () =>
  useIdentityMutation(({ id, ...body }: { id: string; disabled?: boolean; is_instance_admin?: boolean }) =>
    api.patch<AdminUser>(`/admin/users/${id}`, body),
  );
export const useResetUserSessions = () =>
  useIdentityMutation((id: string) => api.post<AdminUser>(`/admin/users/${id}/revoke-sessions`));
export const useCreateResetLink = () =>
  useMutation({ mutationFn: (id: string) => api.post<ResetCreated>(`/admin/users/${id}/password-reset`) });

export const useInstanceSettings = () =>
  useQuery({ queryKey: identityKeys.instance(), queryFn: () => api.get<InstanceSettings>("/admin/settings") });
export const usePutInstanceSettings = () =>
  useIdentityMutation((body: InstanceSettingsIn) => api.put<InstanceSettings>("/admin/settings", body));

// A workspace's sign-in requirements (PATCH /workspaces/{ws}).

export function useWorkspaceRequirement(ws: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: { require_2fa?: boolean; require_sso?: boolean }) => api.patch<Workspace>(`/workspaces/${ws}`, body),
    onSuccess: (workspace) => client.setQueryData(workspaceKeys.detail(ws), workspace),
  });
}
