// The login's second step for an account with two-factor authentication: a code from the app, or a
// recovery code (each works once).
import { type FormEvent, useState } from "react";
import { useLogin } from "../../api/auth";
import { ErrorBox } from "../../components/States";

type Props = { email: string; password: string; onDone: () => void; onBack: () => void };

export function SecondFactorStep({ email, password, onDone, onBack }: Props) {
  const [recovery, setRecovery] = useState(false);
  const [code, setCode] = useState("");
  const login = useLogin();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const factor = recovery ? { recovery_code: code.trim() } : { totp_code: code.replace(/\s/g, "") };
    login.mutate({ email, password, ...factor }, { onSuccess: onDone, onError: () => setCode("") });
  };
  const switchKind = () => {
    setRecovery(!recovery);
    setCode("");
    login.reset();
  };
  return (
    <main className="auth-card">
      <h1>Two-factor authentication</h1>
      <p className="muted">
        {recovery
          ? "Enter one of the recovery codes you saved when you turned two-factor authentication on. Each works once."
          : "Enter the six-digit code from your authenticator app."}
      </p>
      <form onSubmit={submit} aria-label="Second factor">
        {recovery ? (
          <label>
            Recovery code
            <input autoComplete="off" required autoFocus value={code} onChange={(e) => setCode(e.target.value)} />
          </label>
        ) : (
          <label>
            Authentication code
            <input
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="\s*\d{3}\s*\d{3}\s*"
              maxLength={7}
              required
              autoFocus
              value={code}
              onChange={(e) => setCode(e.target.value)}
            />
          </label>
        )}
        <ErrorBox error={login.error} title="Could not log in" />
        <button type="submit" className="primary" disabled={login.isPending}>
          {login.isPending ? "Checking…" : "Verify"}
        </button>
      </form>
      <p className="auth-links">
        <button type="button" className="link" onClick={switchKind}>
          {recovery ? "Use a code from the app" : "Use a recovery code"}
        </button>
        <button type="button" className="link" onClick={onBack}>
          Back
        </button>
      </p>
    </main>
  );
}
