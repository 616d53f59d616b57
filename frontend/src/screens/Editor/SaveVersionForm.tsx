import { type FormEvent, useState } from "react";
import { ErrorBox } from "../../components/States";

type Props = {
  dirty: boolean;
  blocked?: string | null; // why the draft cannot be saved as it is (a field that fails its checks)
  saving: boolean;
  saved: number | undefined;
  error: unknown;
  onSave: (message: string) => void;
  onDiscard: () => void;
};

export function SaveVersionForm({ dirty, blocked = null, saving, saved, error, onSave, onDiscard }: Props) {
  const [message, setMessage] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (blocked) return;
    onSave(message);
    setMessage("");
  };
  return (
    <form className="panel save-version" onSubmit={submit} aria-label="Save version">
      <label>
        Version message
        <input value={message} placeholder="What changed?" onChange={(e) => setMessage(e.target.value)} data-testid="version-message" />
      </label>
      <button type="submit" className="primary" data-testid="save-version-button" disabled={saving || !!blocked}>
        {saving ? "Saving…" : "Save version"}
      </button>
      {saved !== undefined && !dirty && (
        <span className="saved" role="status" data-testid="saved-version">
          Saved as v{saved}
        </span>
      )}
      {dirty && (
        <>
          <span className="unsaved" role="status">
            Unsaved changes (kept as a draft on this device)
          </span>
          <button type="button" className="link" onClick={onDiscard}>
            Discard draft
          </button>
        </>
      )}
      <ErrorBox error={error} title="Could not save" />
    </form>
  );
}
