// Workspace settings: members and invitations, API keys, provider keys, limits, safety policy, sign-in
// requirements, data (retention and exports), audit log.
import { useParams } from "react-router";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { ApiKeys } from "./ApiKeys";
import { AuditLog } from "./AuditLog";
import { DataPanel } from "./DataPanel";
import { LimitsForm } from "./LimitsForm";
import { Members } from "./Members";
import { Providers } from "./Providers";
import { SafetyPolicyForm } from "./SafetyPolicyForm";
import { SignInRequirements } from "./SignInRequirements";

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
          <SafetyPolicyForm ws={ws} admin={admin} />
          <SignInRequirements ws={ws} admin={admin} />
          <DataPanel ws={ws} admin={admin} />
        </div>
      </div>
      <AuditLog ws={ws} admin={admin} />
    </section>
  );
}
