// `/`: the first workspace, or creating one (also reached from the switcher's "New workspace").
import { type FormEvent, useState } from "react";
import { Link, Navigate, useNavigate, useSearchParams } from "react-router";
import { useMe } from "../../api/auth";
import { useCreateWorkspace } from "../../api/workspaces";
import { ErrorBox } from "../../components/States";

export function HomeScreen() {
  const me = useMe();
  const [params] = useSearchParams();
  const [name, setName] = useState("");
  const create = useCreateWorkspace();
  const navigate = useNavigate();
  const first = me.data?.workspaces[0];
  if (first && !params.get("new")) return <Navigate to={`/w/${first.id}/prompts`} replace />;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate(name, { onSuccess: (ws) => navigate(`/w/${ws.id}/prompts`) });
  };
  return (
    <main className="auth-card">
      <h1>{first ? "New workspace" : `Welcome, ${me.data?.name ?? ""}`}</h1>
      <p>A workspace holds your team's prompts, runs, keys and budget.</p>
      <form onSubmit={submit}>
        <label>
          Workspace name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <ErrorBox error={create.error} />
        <button type="submit" className="primary" disabled={create.isPending}>
          Create workspace
        </button>
      </form>
      <p className="auth-links">
        <Link to="/account">Your account</Link>
        {me.data?.is_instance_admin && <Link to="/admin">Instance admin</Link>}
      </p>
    </main>
  );
}
