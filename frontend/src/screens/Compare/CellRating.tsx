// A person's rating of one cell (thumbs and/or a 1–5 score, and a note), and everyone's at a glance.
import { useState } from "react";
import { useMe } from "../../api/auth";
import { type CellView, useRateCell, useUnrateCell } from "../../api/comparisons";
import { ErrorBox } from "../../components/States";

export function CellRating({ ws, comparisonId, cell, canEdit }: { ws: string; comparisonId: string; cell: CellView; canEdit: boolean }) {
  const me = useMe();
  const rate = useRateCell(ws, comparisonId);
  const unrate = useUnrateCell(ws, comparisonId);
  const mine = cell.ratings.find((r) => r.user_id === me.data?.id) ?? null;
  const [note, setNote] = useState<string | null>(null);
  const up = cell.ratings.filter((r) => r.thumbs === "up").length;
  const down = cell.ratings.filter((r) => r.thumbs === "down").length;
  const scores = cell.ratings.map((r) => r.score).filter((s): s is number => s !== null);
  const runId = cell.runId;
  const save = (change: { thumbs?: "up" | "down" | null; score?: number | null; note?: string | null }) => {
    if (!runId) return;
    const next = { thumbs: mine?.thumbs ?? null, score: mine?.score ?? null, note: mine?.note ?? null, ...change };
    if (next.thumbs === null && next.score === null) {
      if (mine) unrate.mutate(runId);
      return;
    }
    rate.mutate({ runId, rating: { thumbs: next.thumbs, score: next.score, note: next.note || null } });
  };
  const busy = rate.isPending || unrate.isPending;
  return (
    <div className="cell-rating" data-testid="cell-rating">
      {cell.ratings.length > 0 && (
        <span className="muted small" data-testid="cell-rating-summary">
          ▲ {up} · ▼ {down}
          {scores.length > 0 && ` · ${(scores.reduce((a, b) => a + b, 0) / scores.length).toFixed(1)}/5`}
          {cell.ratings.some((r) => r.note) && ` · ${cell.ratings.filter((r) => r.note).length} note(s)`}
        </span>
      )}
      {canEdit && runId && (
        <div className="rating-controls">
          <button type="button" className="thumb" aria-label="Thumbs up" aria-pressed={mine?.thumbs === "up"} disabled={busy} onClick={() => save({ thumbs: mine?.thumbs === "up" ? null : "up" })} data-testid="cell-thumbs-up">
            ▲ Good
          </button>
          <button type="button" className="thumb" aria-label="Thumbs down" aria-pressed={mine?.thumbs === "down"} disabled={busy} onClick={() => save({ thumbs: mine?.thumbs === "down" ? null : "down" })} data-testid="cell-thumbs-down">
            ▼ Bad
          </button>
          <select aria-label="Score" value={mine?.score ?? ""} disabled={busy} onChange={(e) => save({ score: e.target.value ? Number(e.target.value) : null })} data-testid="cell-score">
            <option value="">score</option>
            {[1, 2, 3, 4, 5].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
          <details className="rating-note">
            <summary>Note</summary>
            <textarea aria-label="Note" rows={2} value={note ?? mine?.note ?? ""} onChange={(e) => setNote(e.target.value)} data-testid="cell-note" />
            <button type="button" disabled={busy || (!mine && true)} title={mine ? undefined : "Give thumbs or a score first"} onClick={() => save({ note: note ?? "" })} data-testid="cell-note-save">
              Save note
            </button>
          </details>
        </div>
      )}
      <ErrorBox error={rate.error ?? unrate.error} title="Rating not saved" />
    </div>
  );
}
