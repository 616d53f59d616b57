import { useState } from "react";
import { Link } from "react-router";
import { type Flag, useResolveFlag } from "../../api/safety";
import { ErrorBox } from "../../components/States";
import { formatDate, shortId } from "../../lib/format";

type Props = { ws: string; flags: Flag[]; loaded: boolean; admin: boolean };

export function FlagList({ ws, flags, loaded, admin }: Props) {
  const resolve = useResolveFlag(ws);
  const [notes, setNotes] = useState<Record<string, string>>({});
  return (
    <section className="panel" aria-label="Flags">
      <h2 className="panel-title">Flags</h2>
      <ErrorBox error={resolve.error} title="Could not change the flag" />
      {loaded && flags.length === 0 && <p className="state empty">No flags here.</p>}
      <ul className="flags" data-testid="safety-flags">
        {flags.map((f) => (
          <li key={f.id} className={`flag flag-${f.status}`}>
            <div>
              <span className={`label-chip kind-${f.kind}`}>{f.kind}</span> <strong>{f.detector}</strong> in the {f.where}
              {f.field ? ` (${f.field})` : ""} of run <Link to={`/w/${ws}/runs/${f.run_id}`}>{shortId(f.run_id)}</Link>{" "}
              <span className="muted small">{formatDate(f.created_at)}</span>
            </div>
            <pre className="content">{f.excerpt}</pre>
            {f.note && <p className="muted">Note: {f.note}</p>}
            {admin && (
              <div className="inline-form">
                {f.status === "open" && (
                  <label>
                    Note
                    <input value={notes[f.id] ?? ""} onChange={(e) => setNotes({ ...notes, [f.id]: e.target.value })} />
                  </label>
                )}
                <button
                  type="button"
                  disabled={resolve.isPending}
                  onClick={() => resolve.mutate({ id: f.id, status: f.status === "open" ? "resolved" : "open", note: notes[f.id] })}
                >
                  {f.status === "open" ? "Resolve" : "Reopen"}
                </button>
              </div>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
