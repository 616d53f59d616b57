// Asks before leaving the editor with unsaved changes (in-app navigation; a reload keeps the draft anyway).
import { useBlocker } from "react-router";

export function UnsavedGuard({ dirty }: { dirty: boolean }) {
  const blocker = useBlocker(({ currentLocation, nextLocation }) => dirty && currentLocation.pathname !== nextLocation.pathname);
  if (blocker.state !== "blocked") return null;
  return (
    <div className="modal-backdrop">
      <div className="modal" role="alertdialog" aria-modal="true" aria-labelledby="unsaved-title">
        <h2 id="unsaved-title">Leave with unsaved changes?</h2>
        <p>Your draft stays on this device and comes back when you open this prompt again, but it is not a version yet.</p>
        <div className="modal-actions">
          <button type="button" className="primary" autoFocus onClick={() => blocker.reset()}>
            Stay
          </button>
          <button type="button" onClick={() => blocker.proceed()}>
            Leave
          </button>
        </div>
      </div>
    </div>
  );
}
