// Placeholder: being built (session 3).
export function ResetPasswordScreen() {
  return <h1>Reset password</h1>;
}
