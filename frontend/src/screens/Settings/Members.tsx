import { type FormEvent, useState } from "react";
import {
  useAddMember, useChangeRole, useInvitations, useMembers, useRemoveMember, useRevokeInvitation,
} from "../../api/settings";
import type { MemberAdded, Role } from "../../api/types";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { formatDate } from "../../lib/format";

const ROLES: Role[] = ["owner", "admin", "editor", "viewer"];

export function Members({ ws, admin }: { ws: string; admin: boolean }) {
  const members = useMembers(ws);
  const invitations = useInvitations(ws, admin);
  const add = useAddMember(ws);
  const change = useChangeRole(ws);
  const remove = useRemoveMember(ws);
  const revoke = useRevokeInvitation(ws);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("editor");
  const [added, setAdded] = useState<MemberAdded | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    add.mutate({ email, role }, { onSuccess: (result) => (setAdded(result), setEmail("")) });
  };
  return (
    <section className="panel" aria-label="Members">
      <h2 className="panel-title">Members</h2>
      {members.isPending && <Loading what="Loading members" />}
      <ErrorBox error={members.error ?? change.error ?? remove.error} />
      <table className="table compact">
        <tbody>
          {members.data?.map((m) => (
            <tr key={m.user_id}>
              <td>
                {m.name} <span className="muted small">{m.email}</span>
              </td>
              <td>
                <label>
                  <span className="visually-hidden">Role of {m.email}</span>
                  <select value={m.role} disabled={!admin} onChange={(e) => change.mutate({ userId: m.user_id, role: e.target.value as Role })}>
                    {ROLES.map((r) => (
                      <option key={r}>{r}</option>
                    ))}
                  </select>
                </label>
              </td>
              <td>
                {admin && (
                  <button type="button" className="link" onClick={() => remove.mutate(m.user_id)} aria-label={`Remove ${m.email}`}>
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {admin && (
        <form className="inline-form" onSubmit={submit} aria-label="Invite">
          <label>
            Email
            <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          </label>
          <label>
            Role
            <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
              {ROLES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </label>
          <button type="submit" disabled={add.isPending}>
            Add or invite
          </button>
        </form>
      )}
      <ErrorBox error={add.error} title="Could not add" />
      {added?.status === "invited" && (
        <p className="notice" role="status">
          Invitation created. Send this link (shown once): <code className="secret">{added.invite_url ?? added.invite_token}</code>
        </p>
      )}
      {added?.status === "added" && <p className="notice">Added {added.member?.email}.</p>}
      {admin && (
        <>
          <h3>Open invitations</h3>
          <ErrorBox error={invitations.error ?? revoke.error} />
          {invitations.data?.length === 0 && <Empty>No open invitations.</Empty>}
          <ul>
            {invitations.data?.map((i) => (
              <li key={i.id}>
                {i.email} ({i.role}) · expires {formatDate(i.expires_at)}{" "}
                <button type="button" className="link" onClick={() => revoke.mutate(i.id)}>
                  Revoke
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
