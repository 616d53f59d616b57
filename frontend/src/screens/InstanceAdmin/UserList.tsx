import { useState } from "react";
import {
  type AdminUser, type ResetCreated, useAdminUsers, useCreateResetLink, useResetUserSessions, useUpdateUser,
} from "../../api/identity";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { useDebounced } from "../../lib/useDebounced";
import { formatDate } from "../../lib/format";

export function UserList({ myId }: { myId: string }) {
  const [search, setSearch] = useState("");
  const q = useDebounced(search.trim(), 250);
  const users = useAdminUsers(q);
  const update = useUpdateUser();
  const sessions = useResetUserSessions();
  const resetLink = useCreateResetLink();
  const [link, setLink] = useState<{ user: AdminUser; reset: ResetCreated } | null>(null);
  const makeLink = (user: AdminUser) => resetLink.mutate(user.id, { onSuccess: (reset) => setLink({ user, reset }) });
  return (
    <section className="panel" aria-label="Users">
      <h2 className="panel-title">Users</h2>
      <label>
        Search users
        <input type="search" placeholder="Email or name" value={search} onChange={(e) => setSearch(e.target.value)} />
      </label>
      {link && (
        <div className="notice" role="status">
          Password reset link for {link.user.email} (works once, within {Math.round(link.reset.expires_in_seconds / 3600)} hours;
          shown once):{" "}
          <code className="secret" data-testid="reset-link">
            {`${window.location.origin}/reset-password?token=${link.reset.token}`}
          </code>{" "}
          <button type="button" className="link" onClick={() => setLink(null)}>
            Dismiss
          </button>
        </div>
      )}
      {users.isPending && <Loading what="Loading users" />}
      <ErrorBox error={users.error ?? update.error ?? sessions.error ?? resetLink.error} />
      {users.data?.items.length === 0 && <Empty>No user matches.</Empty>}
      <table className="table compact" data-testid="user-list">
        <tbody>
          {users.data?.items.map((u) => (
            <tr key={u.id} className={u.disabled ? "disabled-row" : undefined}>
              <td>
                {u.name} <span className="muted small">{u.email}</span>
                <div className="muted small">
                  {u.is_instance_admin && <span className="badge badge-ok">instance admin </span>}
                  {u.disabled && <span className="badge badge-bad">disabled </span>}
                  {u.workspaces} workspaces · {u.live_sessions} sessions · since {formatDate(u.created_at)}
                </div>
              </td>
              <td className="actions">
                {u.id !== myId && (
                  <button type="button" className="link" onClick={() => update.mutate({ id: u.id, disabled: !u.disabled })} aria-label={`${u.disabled ? "Enable" : "Disable"} ${u.email}`}>
                    {u.disabled ? "Enable" : "Disable"}
                  </button>
                )}
                {u.id !== myId && (
                  <button type="button" className="link" onClick={() => update.mutate({ id: u.id, is_instance_admin: !u.is_instance_admin })} aria-label={`${u.is_instance_admin ? "Withdraw instance admin from" : "Make instance admin"} ${u.email}`}>
                    {u.is_instance_admin ? "Withdraw admin" : "Make admin"}
                  </button>
                )}
                <button type="button" className="link" onClick={() => sessions.mutate(u.id)} aria-label={`Sign out ${u.email} everywhere`}>
                  Sign out everywhere
                </button>
                <button type="button" className="link" onClick={() => makeLink(u)} aria-label={`Create a password reset link for ${u.email}`}>
                  Reset link
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {users.data?.next_cursor && <p className="muted small">Showing the first 200 users; search to find others.</p>}
    </section>
  );
}
