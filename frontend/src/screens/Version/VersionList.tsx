// The history of a prompt's versions with the labels that point at each.
import { Link } from "react-router";
import { useLabels, useVersions } from "../../api/prompts";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { formatDate } from "../../lib/format";

export function VersionList({ ws, promptId, current }: { ws: string; promptId: string; current?: number }) {
  const versions = useVersions(ws, promptId);
  const labels = useLabels(ws, promptId);
  const labelsOf = (n: number) => (labels.data ?? []).filter((l) => l.version === n).map((l) => l.name);
  const items = [...(versions.data ?? [])].sort((a, b) => b.number - a.number);
  return (
    <section className="panel" aria-label="Versions">
      <h2 className="panel-title">Versions</h2>
      {versions.isPending && <Loading what="Loading versions" />}
      <ErrorBox error={versions.error} />
      {versions.data && items.length === 0 && <Empty>No versions yet. Save one, or run the draft.</Empty>}
      <ol className="version-list" data-testid="version-list">
        {items.map((v) => (
          <li key={v.id} className={v.number === current ? "current" : undefined}>
            <Link to={`/w/${ws}/prompts/${promptId}/versions/${v.number}`} aria-current={v.number === current ? "page" : undefined}>
              v{v.number}
            </Link>{" "}
            <span className="version-message">{v.message || <em className="muted">no message</em>}</span>
            {labelsOf(v.number).map((name) => (
              <span className="label-chip" key={name}>
                {name}
              </span>
            ))}
            <span className="muted small">{formatDate(v.created_at)}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
