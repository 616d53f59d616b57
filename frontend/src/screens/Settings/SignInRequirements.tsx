// What members need to reach this workspace: two-factor authentication on, or a single sign-on session.
import { Link } from "react-router";
import { useSsoInfo, useWorkspaceRequirement } from "../../api/identity";
import { useWorkspace } from "../../api/workspaces";
import { ErrorBox, Loading } from "../../components/States";

export function SignInRequirements({ ws, admin }: { ws: string; admin: boolean }) {
  const workspace = useWorkspace(ws);
  const sso = useSsoInfo();
  const change = useWorkspaceRequirement(ws);
  return (
    <section className="panel" aria-label="Sign-in requirements">
      <h2 className="panel-title">Sign-in requirements</h2>
      {workspace.isPending && <Loading />}
      <ErrorBox error={workspace.error} />
      {workspace.data && (
        <>
          <label className="checkbox">
            <input
              type="checkbox"
              checked={workspace.data.require_2fa}
              disabled={!admin || change.isPending}
              onChange={(e) => change.mutate({ require_2fa: e.target.checked })}
            />
            Require two-factor authentication of every member
          </label>
          {(sso.data?.enabled || workspace.data.require_sso) && (
            <label className="checkbox">
              <input
                type="checkbox"
                checked={workspace.data.require_sso}
                disabled={!admin || change.isPending}
                onChange={(e) => change.mutate({ require_sso: e.target.checked })}
              />
              Require single sign-on ({sso.data?.name ?? "SSO"}) of every member
            </label>
          )}
          <p className="muted small">
            Members who do not meet a requirement cannot open the workspace until they do (API keys keep working). Turn
            two-factor on for yourself first in your <Link to="/account">account</Link>.
          </p>
          <ErrorBox error={change.error} title="Could not change the requirement" />
        </>
      )}
    </section>
  );
}
