// `/reset-password`: with `?token=` (from an emailed link, or one an instance admin made) a new password;
// without one, "forgot password": ask for a link by email.
import { useSearchParams } from "react-router";
import { ForgotPasswordForm } from "./ForgotPasswordForm";
import { NewPasswordForm } from "./NewPasswordForm";

export function ResetPasswordScreen() {
  const [params] = useSearchParams();
  const token = params.get("token");
  return <main className="auth-card">{token ? <NewPasswordForm token={token} /> : <ForgotPasswordForm />}</main>;
}
