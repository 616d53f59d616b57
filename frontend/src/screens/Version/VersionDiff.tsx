import { useId, useState } from "react";
import { useVersion, useVersions } from "../../api/prompts";
import type { Version } from "../../api/types";
import { DiffView } from "../../components/DiffView";
import { ErrorBox, Loading } from "../../components/States";
import { versionText } from "../../lib/versionText";

export function VersionDiff({ ws, promptId, version, latest }: { ws: string; promptId: string; version: Version; latest: number }) {
  const id = useId();
  const versions = useVersions(ws, promptId);
  const fallback = version.number > 1 ? version.number - 1 : latest !== version.number ? latest : null;
  const [other, setOther] = useState<number | null>(fallback);
  const against = useVersion(ws, promptId, other);
  const others = (versions.data ?? []).filter((v) => v.number !== version.number).sort((a, b) => a.number - b.number);
  const [older, newer] = against.data && against.data.number > version.number ? [version, against.data] : [against.data, version];
  return (
    <section className="panel" aria-label="Diff">
      <h2 className="panel-title">Compare with</h2>
      <label htmlFor={id} className="visually-hidden">
        Version to compare with
      </label>
      <select id={id} data-testid="diff-select" value={other ?? ""} onChange={(e) => setOther(e.target.value ? Number(e.target.value) : null)}>
        <option value="">Choose a version</option>
        {others.map((v) => (
          <option key={v.number} value={v.number}>
            v{v.number} {v.message ? `— ${v.message}` : ""}
          </option>
        ))}
      </select>
      {others.length === 0 && versions.data && <p className="muted">This is the only version: nothing to compare yet.</p>}
      {against.isLoading && <Loading what="Loading the other version" />}
      <ErrorBox error={against.error} />
      {older && newer && (
        <DiffView a={versionText(older)} b={versionText(newer)} labelA={`v${older.number}`} labelB={`v${newer.number}`} />
      )}
    </section>
  );
}
