import { useId, useState } from "react";
import { useNavigate } from "react-router";
import { useCreateComparison } from "../../api/comparisons";
import { loadDraft } from "../../lib/draft";
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
  const compare = useCreateComparison(ws);
  const navigate = useNavigate();
  const runSideBySide = () => {
    if (!older || !newer) return;
    // One case: the variable values of this prompt's draft on this device (empty where it has none).
    const values = loadDraft(ws, promptId)?.variables ?? {};
    const names = [...new Set([...older.variables, ...newer.variables])];
    const row = Object.fromEntries(names.map((n) => [n, values[n] ?? ""]));
    compare.mutate(
      { prompt_id: promptId, versions: [older.number, newer.number], rows: [row], name: `v${older.number} vs v${newer.number}` },
      { onSuccess: (accepted) => navigate(`/w/${ws}/compare/${accepted.id}`) },
    );
  };
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
        <button type="button" className="compare-button" onClick={runSideBySide} disabled={compare.isPending}>
          Run v{older.number} and v{newer.number} side by side
        </button>
      )}
      <ErrorBox error={compare.error} title="Could not start the comparison" />
      {older && newer && (
        <DiffView a={versionText(older)} b={versionText(newer)} labelA={`v${older.number}`} labelB={`v${newer.number}`} />
      )}
    </section>
  );
}
