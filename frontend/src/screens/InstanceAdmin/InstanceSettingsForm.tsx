import { type FormEvent, useEffect, useState } from "react";
import { type DefaultLimits, type InstanceSettings, useInstanceSettings, usePutInstanceSettings } from "../../api/identity";
import { ErrorBox, Loading } from "../../components/States";

type LimitKey = keyof DefaultLimits;
const LIMITS: { key: LimitKey; label: string }[] = [
  { key: "monthly_budget_micros", label: "Monthly budget (USD)" },
  { key: "runs_per_minute", label: "Runs per minute (workspace)" },
  { key: "member_runs_per_minute", label: "Runs per minute (each member)" },
  { key: "max_concurrent_runs", label: "Concurrent runs" },
  { key: "max_queued_runs", label: "Queued runs" },
];
const MICROS = 1_000_000;

function toText(key: LimitKey, value: number | null | undefined): string {
  if (value === null || value === undefined) return "";
  return key === "monthly_budget_micros" ? String(value / MICROS) : String(value);
}

export function InstanceSettingsForm() {
  const settings = useInstanceSettings();
  const put = usePutInstanceSettings();
  const [signup, setSignup] = useState<InstanceSettings["signup"]>("open");
  const [domains, setDomains] = useState("");
  const [limits, setLimits] = useState<Record<string, string>>({});
  useEffect(() => {
    if (!settings.data) return;
    setSignup(settings.data.signup);
    setDomains(settings.data.allowed_domains.join("\n"));
    setLimits(Object.fromEntries(LIMITS.map((l) => [l.key, toText(l.key, settings.data.default_limits[l.key])])));
  }, [settings.data]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const defaults: DefaultLimits = {};
    for (const { key } of LIMITS) {
      const text = (limits[key] ?? "").trim();
      if (text) defaults[key] = key === "monthly_budget_micros" ? Math.round(Number(text) * MICROS) : Number(text);
    }
    put.mutate({
      signup,
      allowed_domains: domains.split(/[\s,]+/).map((d) => d.trim()).filter(Boolean),
      default_limits: defaults,
    });
  };
  return (
    <section className="panel" aria-label="Instance settings">
      <h2 className="panel-title">Signup and new workspaces</h2>
      {settings.isPending && <Loading />}
      <ErrorBox error={settings.error} />
      {settings.data && (
        <form onSubmit={submit} onChange={() => put.reset()}>
          <label>
            Signup
            <select value={signup} onChange={(e) => setSignup(e.target.value as InstanceSettings["signup"])}>
              <option value="open">Open: anyone can create an account</option>
              <option value="invite">Invite only: an invitation is needed</option>
              <option value="closed">Closed: no new accounts</option>
            </select>
          </label>
          <label>
            Allowed email domains (one per line; empty for any)
            <textarea rows={3} value={domains} onChange={(e) => setDomains(e.target.value)} placeholder="example.com" />
          </label>
          <fieldset>
            <legend>Limits every new workspace starts with (empty: the built-in default)</legend>
            {LIMITS.map((l) => (
              <label key={l.key}>
                {l.label}
                <input inputMode="decimal" value={limits[l.key] ?? ""} onChange={(e) => setLimits({ ...limits, [l.key]: e.target.value })} />
              </label>
            ))}
          </fieldset>
          <button type="submit" disabled={put.isPending}>
            Save instance settings
          </button>
          {put.isSuccess && <span role="status"> Saved.</span>}
          <ErrorBox error={put.error} title="Could not save the instance settings" />
        </form>
      )}
    </section>
  );
}
