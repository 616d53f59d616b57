import { type FormEvent, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { problemType, useLogin } from "../../api/auth";
import { useSsoInfo } from "../../api/identity";
import { ErrorBox } from "../../components/States";
import { SecondFactorStep } from "./SecondFactorStep";
import { SsoButton, SsoError } from "./SsoButton";

export function LoginScreen() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  // The password was right and the account has two-factor authentication: ask for the second factor.
  const [secondFactor, setSecondFactor] = useState(false);
  const login = useLogin();
  const sso = useSsoInfo();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"));
  const done = () => navigate(next, { replace: true });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate(
      { email, password },
      {
        onSuccess: done,
        onError: (error) => {
          if (problemType(error) === "totp-required") setSecondFactor(true);
        },
      },
    );
  };
  if (secondFactor) {
    return <SecondFactorStep email={email} password={password} onDone={done} onBack={() => (setSecondFactor(false), login.reset())} />;
  }
  return (
    <main className="auth-card">
      <h1>Log in to Prompt Playground</h1>
      <SsoError code={params.get("sso_error")} />
      <form onSubmit={submit}>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {problemType(login.error) !== "totp-required" && <ErrorBox error={login.error} title="Could not log in" />}
        <button type="submit" className="primary" disabled={login.isPending}>
          {login.isPending ? "Logging in…" : "Log in"}
        </button>
      </form>
      {sso.data?.enabled && <SsoButton name={sso.data.name ?? "SSO"} next={next} />}
      <p className="auth-links">
        <Link to="/reset-password">Forgot password?</Link>
        <span>
          New here? <Link to={`/signup${params.toString() ? `?${params}` : ""}`}>Create an account</Link>
        </span>
      </p>
    </main>
  );
}

/** Only paths of this app: never send a user to another site after logging in. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}
