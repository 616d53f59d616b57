// Members, invitations, API keys, provider keys and limits of one workspace.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../client";
import type {
  ApiKey, ApiKeyCreated, Invitation, Limits, LimitsIn, Member, MemberAdded, ProviderCredential, Role,
} from "../types";

export const settingsKeys = {
  all: (ws: string) => ["settings", ws] as const,
  members: (ws: string) => [...settingsKeys.all(ws), "members"] as const,
  invitations: (ws: string) => [...settingsKeys.all(ws), "invitations"] as const,
  apiKeys: (ws: string) => [...settingsKeys.all(ws), "api-keys"] as const,
  providers: (ws: string) => [...settingsKeys.all(ws), "providers"] as const,
  limits: (ws: string) => [...settingsKeys.all(ws), "limits"] as const,
};

const w = (ws: string) => `/workspaces/${ws}`;

export const useMembers = (ws: string) =>
  useQuery({ queryKey: settingsKeys.members(ws), queryFn: () => api.get<Member[]>(`${w(ws)}/members`) });
export const useInvitations = (ws: string, enabled: boolean) =>
  useQuery({
    queryKey: settingsKeys.invitations(ws),
    queryFn: () => api.get<Invitation[]>(`${w(ws)}/invitations`),
    enabled,
  });
export const useApiKeys = (ws: string) =>
  useQuery({ queryKey: settingsKeys.apiKeys(ws), queryFn: () => api.get<ApiKey[]>(`${w(ws)}/api-keys`) });
export const useProviders = (ws: string, enabled: boolean) =>
  useQuery({
    queryKey: settingsKeys.providers(ws),
    queryFn: () => api.get<ProviderCredential[]>(`${w(ws)}/providers`),
    enabled,
  });
export const useLimits = (ws: string) =>
  useQuery({ queryKey: settingsKeys.limits(ws), queryFn: () => api.get<Limits>(`${w(ws)}/limits`) });

function useSettingsMutation<TIn, TOut>(ws: string, fn: (body: TIn) => Promise<TOut>) {
  const client = useQueryClient();
  return useMutation({ mutationFn: fn, onSuccess: () => client.invalidateQueries({ queryKey: settingsKeys.all(ws) }) });
}

export const useAddMember = (ws: string) =>
  useSettingsMutation(ws, (body: { email: string; role: Role }) => api.post<MemberAdded>(`${w(ws)}/members`, body));
export const useChangeRole = (ws: string) =>
  useSettingsMutation(ws, ({ userId, role }: { userId: string; role: Role }) =>
    api.patch<Member>(`${w(ws)}/members/${userId}`, { role }),
  );
export const useRemoveMember = (ws: string) =>
  useSettingsMutation(ws, (userId: string) => api.delete(`${w(ws)}/members/${userId}`));
export const useRevokeInvitation = (ws: string) =>
  useSettingsMutation(ws, (id: string) => api.delete(`${w(ws)}/invitations/${id}`));
export const useCreateApiKey = (ws: string) =>
  useSettingsMutation(ws, (name: string) => api.post<ApiKeyCreated>(`${w(ws)}/api-keys`, { name }));
export const useRevokeApiKey = (ws: string) =>
  useSettingsMutation(ws, (id: string) => api.delete(`${w(ws)}/api-keys/${id}`));
export const usePutProvider = (ws: string) =>
  useSettingsMutation(ws, ({ provider, api_key, base_url }: { provider: string; api_key: string; base_url: string }) =>
    api.put<ProviderCredential>(`${w(ws)}/providers/${provider}`, { api_key, base_url: base_url || null }),
  );
export const usePutLimits = (ws: string) =>
  useSettingsMutation(ws, (body: LimitsIn) => api.put<Limits>(`${w(ws)}/limits`, body));
