// The workspace's data: how long run contents are kept, and exports of everything (admins).
import { type FormEvent, useEffect, useState } from "react";
import { useMe } from "../../api/auth";
import {
  downloadUrl, type Export, exportActive, useExports, usePutRetention, useRequestExport, useRetention,
} from "../../api/lifecycle";
import { ErrorBox, Loading } from "../../components/States";
import { formatDate } from "../../lib/format";

export function DataPanel({ ws, admin }: { ws: string; admin: boolean }) {
  return (
    <section className="panel" aria-label="Data">
      <h2 className="panel-title">Data</h2>
      <RetentionForm ws={ws} admin={admin} />
      {admin && <Exports ws={ws} />}
    </section>
  );
}

function RetentionForm({ ws, admin }: { ws: string; admin: boolean }) {
  const retention = useRetention(ws);
  const put = usePutRetention(ws);
  const [days, setDays] = useState("");
  useEffect(() => {
    if (retention.data) setDays(retention.data.runs_days === null ? "" : String(retention.data.runs_days));
  }, [retention.data]);
  if (retention.isPending) return <Loading />;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    put.mutate(days.trim() === "" ? null : Number(days));
  };
  return (
    <form onSubmit={submit} className="inline-form" data-testid="retention-form">
      <label>
        Keep run contents for (days, empty = for ever)
        <input
          type="number"
          min={1}
          data-testid="retention-days"
          value={days}
          disabled={!admin}
          onChange={(e) => setDays(e.target.value)}
        />
      </label>
      {admin && (
        <button type="submit" disabled={put.isPending}>
          Save
        </button>
      )}
      <p className="muted small">
        Older runs keep their cost, tokens and timings; their prompt, output and tool calls are removed.
      </p>
      <ErrorBox error={retention.error ?? put.error} />
    </form>
  );
}

function Exports({ ws }: { ws: string }) {
  const me = useMe();
  const exports = useExports(ws, true);
  const request = useRequestExport(ws);
  const busy = exports.data?.some(exportActive) ?? false;
  return (
    <div className="exports" data-testid="exports">
      <div className="inline-form">
        <button type="button" data-testid="export-button" disabled={busy || request.isPending} onClick={() => request.mutate()}>
          Export workspace
        </button>
        <span className="muted small">
          Everything (prompts, versions, runs, comments, datasets, flags) as JSON Lines; only you can download
          what you asked for, for 7 days.
        </span>
      </div>
      <ErrorBox error={exports.error ?? request.error} title="Export" />
      {exports.data && exports.data.length > 0 && (
        <table className="compact" aria-label="Exports">
          <thead>
            <tr>
              <th>Asked</th>
              <th>Status</th>
              <th>Progress</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {exports.data.map((e) => (
              <ExportRow key={e.id} ws={ws} item={e} mine={e.requested_by === me.data?.id} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function ExportRow({ ws, item, mine }: { ws: string; item: Export; mine: boolean }) {
  const { done, total } = item.progress;
  return (
    <tr data-testid={`export-${item.id}`}>
      <td>{formatDate(item.created_at)}</td>
      <td data-testid="export-status">{item.status}</td>
      <td>
        {item.status === "running" ? <progress max={Math.max(total, 1)} value={done} /> : null} {done}/{total}
      </td>
      <td>
        {item.status === "succeeded" && mine && (
          <a href={downloadUrl(ws, item.id)} download data-testid="export-download">
            Download
          </a>
        )}
        {item.status === "succeeded" && !mine && <span className="muted small">asked by another admin</span>}
        {item.status === "failed" && <span className="muted small">{item.error}</span>}
      </td>
    </tr>
  );
}
