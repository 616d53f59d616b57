import { type FormEvent, useState } from "react";
import { Link } from "react-router";
import { useForgotPassword } from "../../api/identity";
import { ErrorBox } from "../../components/States";

export function ForgotPasswordForm() {
  const [email, setEmail] = useState("");
  const forgot = useForgotPassword();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    forgot.mutate(email);
  };
  return (
    <>
      <h1>Forgot your password?</h1>
      {forgot.data?.delivery === "email" && (
        <p className="notice" role="status">
          If {email} has an account here, an email with a link to choose a new password is on its way. The link
          works once, within 24 hours.
        </p>
      )}
      {forgot.data?.delivery === "admin" && (
        <p className="notice" role="status">
          This instance does not send email. Ask an instance administrator for a password reset link.
        </p>
      )}
      {!forgot.data && (
        <form onSubmit={submit} aria-label="Forgot password">
          <p className="muted">Enter your account's email address and we will send you a link to reset your password.</p>
          <label>
            Email
            <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          </label>
          <ErrorBox error={forgot.error} title="Could not ask for a link" />
          <button type="submit" className="primary" disabled={forgot.isPending}>
            Send reset link
          </button>
        </form>
      )}
      <p className="auth-links">
        <Link to="/login">Back to log in</Link>
      </p>
    </>
  );
}
