// `/admin`: instance administration (instance admins only): accounts, signup, default workspace limits.
import { useMe } from "../../api/auth";
import { Loading } from "../../components/States";
import { AccountFrame } from "../Account/AccountFrame";
import { InstanceSettingsForm } from "./InstanceSettingsForm";
import { UserList } from "./UserList";

export function InstanceAdminScreen() {
  const me = useMe();
  return (
    <AccountFrame>
      <section className="page instance-admin">
        <div className="page-head">
          <h1>Instance administration</h1>
        </div>
        {me.isPending && <Loading />}
        {me.data && !me.data.is_instance_admin && (
          <div className="state empty" data-testid="not-instance-admin">
            Only instance administrators can see this page.
          </div>
        )}
        {me.data?.is_instance_admin && (
          <div className="two-columns">
            <UserList myId={me.data.id} />
            <InstanceSettingsForm />
          </div>
        )}
      </section>
    </AccountFrame>
  );
}
