import { type AuthSession, useMySessions, useRevokeOtherSessions, useRevokeSession } from "../../api/identity";
import { ErrorBox, Loading } from "../../components/States";
import { formatDate } from "../../lib/format";

/** "Firefox on Linux" rather than the whole user agent string. */
export function deviceOf(agent: string | null): string {
  if (!agent) return "Unknown device";
  const browser = /Edg\//.test(agent) ? "Edge" : /Firefox\//.test(agent) ? "Firefox" : /Chrom(e|ium)\//.test(agent) ? "Chrome"
    : /Safari\//.test(agent) ? "Safari" : /curl|python|httpx/i.test(agent) ? "A script" : "A browser";
  const system = /Windows/.test(agent) ? "Windows" : /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS"
    : /Mac OS X/.test(agent) ? "macOS" : /Linux/.test(agent) ? "Linux" : "";
  return system ? `${browser} on ${system}` : browser;
}

export function SessionList() {
  const sessions = useMySessions();
  const revoke = useRevokeSession();
  const revokeOthers = useRevokeOtherSessions();
  const others = (sessions.data ?? []).filter((s) => !s.current).length;
  return (
    <section className="panel" aria-label="Sessions">
      <h2 className="panel-title">Signed-in sessions</h2>
      {sessions.isPending && <Loading what="Loading sessions" />}
      <ErrorBox error={sessions.error ?? revoke.error ?? revokeOthers.error} />
      <table className="table compact" data-testid="session-list">
        <tbody>
          {sessions.data?.map((s: AuthSession) => (
            <tr key={s.id}>
              <td>
                <span title={s.user_agent ?? undefined}>{deviceOf(s.user_agent)}</span>
                {s.current && <span className="badge badge-ok"> this session</span>}
                <div className="muted small">
                  {s.client_address ?? "unknown address"} · signed in {formatDate(s.created_at)} · last used {formatDate(s.last_seen_at)}
                </div>
              </td>
              <td>
                {!s.current && (
                  <button type="button" className="link" onClick={() => revoke.mutate(s.id)} aria-label={`Sign out ${deviceOf(s.user_agent)} (${s.client_address ?? "unknown"})`}>
                    Sign out
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" disabled={others === 0 || revokeOthers.isPending} onClick={() => revokeOthers.mutate()}>
        Sign out all other sessions
      </button>
    </section>
  );
}
