import { useSafetyPolicy, usePutSafetyPolicy, type SafetyPolicy } from "../../api/safety";
import { ErrorBox, Loading } from "../../components/States";

const KINDS: { key: keyof SafetyPolicy; label: string }[] = [
  { key: "pii", label: "Personal data (email, phone, card, IBAN, SSN)" },
  { key: "secret", label: "Secrets (API keys, private keys, tokens)" },
  { key: "injection", label: "Prompt injection" },
];

/** What each detector does with a run's input: nothing, flag it, or block the run before it is sent. */
export function SafetyPolicyForm({ ws, admin }: { ws: string; admin: boolean }) {
  const policy = useSafetyPolicy(ws);
  const put = usePutSafetyPolicy(ws);
  return (
    <section className="panel" aria-label="Safety policy">
      <h2 className="panel-title">Safety policy</h2>
      {policy.isPending && <Loading what="Loading the policy" />}
      <ErrorBox error={policy.error} />
      {policy.data &&
        KINDS.map(({ key, label }) => (
          <label key={key}>
            {label}
            <select
              value={policy.data[key]}
              disabled={!admin || put.isPending}
              onChange={(e) => put.mutate({ [key]: e.target.value as SafetyPolicy[typeof key] })}
            >
              <option value="off">off</option>
              <option value="flag">flag</option>
              <option value="block">block (refuse the run)</option>
            </select>
          </label>
        ))}
      {put.isSuccess && <span role="status">Saved.</span>}
      <ErrorBox error={put.error} title="Could not change the policy" />
    </section>
  );
}
