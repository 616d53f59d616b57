// Workspace settings: members and invitations, API keys, provider keys, limits, safety policy.
import { useParams } from "react-router";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { ApiKeys } from "./ApiKeys";
import { LimitsForm } from "./LimitsForm";
import { Members } from "./Members";
import { Providers } from "./Providers";

export function SettingsScreen() {
  const { ws = "" } = useParams();
  const membership = useMembership();
  const admin = atLeast(membership, "admin");
  return (
    <section className="page settings">
      <div className="page-head">
        <h1>Settings</h1>
        <span className="muted">Your role: {membership.role}</span>
      </div>
      <div className="two-columns">
        <div>
          <Members ws={ws} admin={admin} />
          <ApiKeys ws={ws} />
        </div>
        <div>
          <Providers ws={ws} admin={admin} />
          <LimitsForm ws={ws} admin={admin} />
          <section className="panel" aria-label="Safety policy">
            <h2 className="panel-title">Safety policy</h2>
            <p className="muted">PII, secret and injection detection policies come with the safety feature (issue 9).</p>
          </section>
        </div>
      </div>
    </section>
  );
}
