import { type FormEvent, useState } from "react";
import { useChangePassword } from "../../api/identity";
import { ErrorBox } from "../../components/States";

export function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const change = useChangePassword();
  const mismatch = again.length > 0 && again !== next;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (mismatch) return;
    change.mutate(
      { current_password: current, new_password: next },
      { onSuccess: () => (setCurrent(""), setNext(""), setAgain("")) },
    );
  };
  return (
    <section className="panel" aria-label="Password">
      <h2 className="panel-title">Password</h2>
      <form onSubmit={submit}>
        <label>
          Current password
          <input type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
        </label>
        <label>
          New password
          <input type="password" autoComplete="new-password" minLength={8} required value={next} onChange={(e) => setNext(e.target.value)} />
        </label>
        <label>
          New password again
          <input type="password" autoComplete="new-password" minLength={8} required value={again} onChange={(e) => setAgain(e.target.value)} />
        </label>
        {mismatch && (
          <p className="field-error" role="alert">
            The two new passwords differ.
          </p>
        )}
        <button type="submit" disabled={change.isPending || mismatch}>
          Change password
        </button>
        {change.isSuccess && <span role="status"> Password changed; your other sessions were signed out.</span>}
        <ErrorBox error={change.error} title="Could not change the password" />
      </form>
    </section>
  );
}
