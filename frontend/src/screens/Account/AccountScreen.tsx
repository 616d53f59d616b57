// `/account`: my profile, password, signed-in sessions and two-factor authentication.
import { useMe } from "../../api/auth";
import { ErrorBox, Loading } from "../../components/States";
import { AccountFrame } from "./AccountFrame";
import { PasswordForm } from "./PasswordForm";
import { ProfileForm } from "./ProfileForm";
import { SessionList } from "./SessionList";
import { TwoFactorPanel } from "./TwoFactorPanel";

export function AccountScreen() {
  const me = useMe();
  return (
    <AccountFrame>
      <section className="page account-page">
        <div className="page-head">
          <h1>Account</h1>
        </div>
        {me.isPending && <Loading />}
        <ErrorBox error={me.error} />
        {me.data && (
          <div className="two-columns">
            <div>
              <ProfileForm name={me.data.name} email={me.data.email} />
              <SessionList />
            </div>
            <div>
              <PasswordForm />
              <TwoFactorPanel />
            </div>
          </div>
        )}
      </section>
    </AccountFrame>
  );
}
