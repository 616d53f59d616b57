import { type FormEvent, useState } from "react";
import { useProviders, usePutProvider } from "../../api/settings";
import { Empty, ErrorBox } from "../../components/States";
import { formatDate } from "../../lib/format";

/** Provider keys are write-only: the API shows their last 4 characters, never the key. */
export function Providers({ ws, admin }: { ws: string; admin: boolean }) {
  const providers = useProviders(ws, admin);
  const put = usePutProvider(ws);
  const [form, setForm] = useState({ provider: "anthropic", api_key: "", base_url: "" });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    put.mutate(form, { onSuccess: () => setForm({ ...form, api_key: "", base_url: "" }) });
  };
  return (
    <section className="panel" aria-label="Provider keys">
      <h2 className="panel-title">Provider keys</h2>
      {!admin && <p className="muted">Admins manage provider keys.</p>}
      <ErrorBox error={providers.error} />
      {providers.data?.length === 0 && <Empty>No provider keys: only the mock model (and shared server keys) can run.</Empty>}
      <ul>
        {providers.data?.map((p) => (
          <li key={p.provider}>
            <strong>{p.provider}</strong> ••••{p.key_last4}
            {p.base_url ? ` · ${p.base_url}` : ""} <span className="muted small">updated {formatDate(p.updated_at)}</span>
          </li>
        ))}
      </ul>
      {admin && (
        <form className="inline-form" onSubmit={submit} aria-label="Set a provider key">
          <label>
            Provider
            <select value={form.provider} onChange={(e) => setForm({ ...form, provider: e.target.value })}>
              <option value="anthropic">anthropic</option>
              <option value="openai">openai</option>
            </select>
          </label>
          <label>
            API key
            <input type="password" autoComplete="off" required value={form.api_key} onChange={(e) => setForm({ ...form, api_key: e.target.value })} />
          </label>
          <label>
            Base URL <span className="muted">(optional)</span>
            <input type="url" value={form.base_url} onChange={(e) => setForm({ ...form, base_url: e.target.value })} />
          </label>
          <button type="submit" disabled={put.isPending}>
            Save key
          </button>
        </form>
      )}
      <ErrorBox error={put.error} title="Could not save the key" />
    </section>
  );
}
