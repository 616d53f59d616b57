// The audit log (admins): who did what, to what, from where; secrets were masked by the server.
import { useAuditLog } from "../../api/audit";
import { Empty, ErrorBox } from "../../components/States";
import { formatDate } from "../../lib/format";

function changes(before: unknown, after: unknown): string {
  const show = (value: unknown) => (value == null ? "" : JSON.stringify(value));
  if (before == null) return show(after);
  if (after == null) return `was ${show(before)}`;
  return `${show(before)} → ${show(after)}`;
}

export function AuditLog({ ws, admin }: { ws: string; admin: boolean }) {
  const log = useAuditLog(ws, admin);
  if (!admin) return null;
  const entries = log.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <section className="panel" aria-label="Audit log">
      <h2 className="panel-title">Audit log</h2>
      <ErrorBox error={log.error} />
      {log.isLoading && <p className="muted">Loading…</p>}
      {log.data && entries.length === 0 && <Empty>Nothing recorded yet.</Empty>}
      <table className="table" data-testid="audit-log">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Change</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.id}>
              <td>{formatDate(entry.created_at)}</td>
              <td>
                {entry.actor.email ?? "system"}
                {entry.client_address && <span className="muted small"> · {entry.client_address}</span>}
              </td>
              <td>
                <code>{entry.action}</code>
              </td>
              <td>
                {entry.target.type}
                {entry.target.id && <span className="muted small"> {entry.target.id.slice(0, 8)}</span>}
              </td>
              <td className="small">{changes(entry.before, entry.after)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {log.hasNextPage && (
        <button type="button" onClick={() => log.fetchNextPage()} disabled={log.isFetchingNextPage}>
          Load more
        </button>
      )}
    </section>
  );
}
