import { type FormEvent, useState } from "react";
import { useApiKeys, useCreateApiKey, useRevokeApiKey } from "../../api/settings";
import type { ApiKeyCreated } from "../../api/types";
import { Empty, ErrorBox } from "../../components/States";
import { formatDate } from "../../lib/format";

export function ApiKeys({ ws }: { ws: string }) {
  const keys = useApiKeys(ws);
  const create = useCreateApiKey(ws);
  const revoke = useRevokeApiKey(ws);
  const [name, setName] = useState("");
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate(name, { onSuccess: (key) => (setCreated(key), setName("")) });
  };
  const active = (keys.data ?? []).filter((k) => !k.revoked_at);
  return (
    <section className="panel" aria-label="API keys">
      <h2 className="panel-title">API keys</h2>
      <ErrorBox error={keys.error ?? revoke.error} />
      {keys.data && active.length === 0 && <Empty>No API keys.</Empty>}
      <ul>
        {active.map((k) => (
          <li key={k.id}>
            <strong>{k.name}</strong> <code>{k.prefix}…</code>{" "}
            <span className="muted small">
              created {formatDate(k.created_at)} · last used {formatDate(k.last_used_at)}
            </span>{" "}
            <button type="button" className="link" onClick={() => revoke.mutate(k.id)} aria-label={`Revoke ${k.name}`}>
              Revoke
            </button>
          </li>
        ))}
      </ul>
      <form className="inline-form" onSubmit={submit} aria-label="New API key">
        <label>
          Key name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <button type="submit" disabled={create.isPending}>
          Create key
        </button>
      </form>
      <ErrorBox error={create.error} title="Could not create the key" />
      {created && (
        <div className="notice" role="status">
          <p>
            Copy the key <strong>{created.name}</strong> now: it is shown only once.
          </p>
          <code className="secret" data-testid="api-key-secret">
            {created.key}
          </code>{" "}
          <button type="button" className="link" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
    </section>
  );
}
