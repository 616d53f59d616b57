import { type FormEvent, useState } from "react";
import { useLabels, useMoveLabel } from "../../api/prompts";
import { ErrorBox } from "../../components/States";
import { formatDate } from "../../lib/format";

export function Labels({ ws, promptId, number }: { ws: string; promptId: string; number: number }) {
  const labels = useLabels(ws, promptId);
  const move = useMoveLabel(ws, promptId);
  const [name, setName] = useState("production");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    move.mutate({ label: name.trim(), version: number });
  };
  return (
    <section className="panel" aria-label="Labels">
      <h2 className="panel-title">Labels</h2>
      <ErrorBox error={labels.error} />
      <ul className="labels">
        {labels.data?.map((l) => (
          <li key={l.name}>
            <span className="label-chip">{l.name}</span> → v{l.version}{" "}
            <span className="muted small">
              moved {formatDate(l.updated_at)}
              {l.history.length > 1 ? ` · ${l.history.length} moves` : ""}
            </span>
          </li>
        ))}
      </ul>
      <form className="inline-form" onSubmit={submit}>
        <label>
          Label
          <input value={name} pattern="[a-z0-9\-]{1,40}" title="1 to 40 of a-z, 0-9 and -" onChange={(e) => setName(e.target.value)} />
        </label>
        <button type="submit" disabled={move.isPending}>
          Point at v{number}
        </button>
      </form>
      <ErrorBox error={move.error} title="Could not move the label" />
    </section>
  );
}
