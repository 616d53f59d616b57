import { type FormEvent, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useSignup } from "../../api/auth";
import { ErrorBox } from "../../components/States";
import { safeNext } from "../Login/LoginScreen";

export function SignupScreen() {
  const [params] = useSearchParams();
  const [form, setForm] = useState({ name: "", email: "", password: "", invite: params.get("invite") ?? params.get("token") ?? "" });
  const signup = useSignup();
  const navigate = useNavigate();
  const set = (field: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [field]: e.target.value });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    signup.mutate(
      { name: form.name, email: form.email, password: form.password, invite_token: form.invite || null },
      { onSuccess: () => navigate(safeNext(params.get("next")), { replace: true }) },
    );
  };
  return (
    <main className="auth-card">
      <h1>Create your account</h1>
      <form onSubmit={submit}>
        <label>
          Name
          <input autoComplete="name" required value={form.name} onChange={set("name")} />
        </label>
        <label>
          Email
          <input type="email" autoComplete="email" required value={form.email} onChange={set("email")} />
        </label>
        <label>
          Password
          <input type="password" autoComplete="new-password" required minLength={8} value={form.password} onChange={set("password")} />
        </label>
        <label>
          Invite token <span className="muted">(if you were invited)</span>
          <input value={form.invite} onChange={set("invite")} />
        </label>
        <ErrorBox error={signup.error} title="Could not sign up" />
        <button type="submit" className="primary" disabled={signup.isPending}>
          {signup.isPending ? "Creating…" : "Sign up"}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/login">Log in</Link>
      </p>
    </main>
  );
}
