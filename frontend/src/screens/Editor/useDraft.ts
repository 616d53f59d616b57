// The editor's draft: from localStorage when there is one, else the version being edited; saved on change.
import { useCallback, useEffect, useState } from "react";
import type { Version } from "../../api/types";
import { type Draft, discardDraft, draftFromVersion, emptyDraft, loadDraft, saveDraft } from "../../lib/draft";

export function useDraft(ws: string, promptId: string, base: Version | undefined, ready: boolean, override?: Draft) {
  const [draft, setDraftState] = useState<Draft | null>(null);
  const [stored, setStored] = useState(true); // false: too large for this device's storage (images)

  useEffect(() => {
    if (!ready) return;
    setDraftState((current) => {
      if (current && !override) return current;
      const initial = override ?? loadDraft(ws, promptId) ?? (base ? draftFromVersion(base) : emptyDraft());
      setStored(saveDraft(ws, promptId, initial));
      return initial;
    });
  }, [ready, ws, promptId, base, override]);

  const setDraft = useCallback(
    (update: (draft: Draft) => Draft) =>
      setDraftState((current) => {
        if (!current) return current;
        const next = update(current);
        setStored(saveDraft(ws, promptId, next));
        return next;
      }),
    [ws, promptId],
  );

  const discard = useCallback(() => {
    discardDraft(ws, promptId);
    setDraftState(base ? draftFromVersion(base) : emptyDraft());
  }, [ws, promptId, base]);

  return { draft, setDraft, discard, stored };
}
