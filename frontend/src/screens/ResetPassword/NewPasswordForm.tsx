import { type FormEvent, useState } from "react";
import { Link } from "react-router";
import { useResetPassword } from "../../api/identity";
import { ErrorBox } from "../../components/States";

export function NewPasswordForm({ token }: { token: string }) {
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const reset = useResetPassword();
  const mismatch = again.length > 0 && again !== password;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!mismatch) reset.mutate({ token, new_password: password });
  };
  if (reset.isSuccess) {
    return (
      <>
        <h1>Password changed</h1>
        <p role="status">Your new password is set, and every session of your account was signed out.</p>
        <Link to="/login" className="button primary">
          Log in
        </Link>
      </>
    );
  }
  return (
    <>
      <h1>Choose a new password</h1>
      <form onSubmit={submit} aria-label="Choose a new password">
        <label>
          New password
          <input type="password" autoComplete="new-password" minLength={8} required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <label>
          New password again
          <input type="password" autoComplete="new-password" minLength={8} required value={again} onChange={(e) => setAgain(e.target.value)} />
        </label>
        {mismatch && (
          <p className="field-error" role="alert">
            The two passwords differ.
          </p>
        )}
        <ErrorBox error={reset.error} title="Could not set the password" />
        <button type="submit" className="primary" disabled={reset.isPending || mismatch}>
          Set new password
        </button>
      </form>
      <p className="auth-links">
        <Link to="/reset-password">Ask for a new link</Link>
        <Link to="/login">Back to log in</Link>
      </p>
    </>
  );
}
