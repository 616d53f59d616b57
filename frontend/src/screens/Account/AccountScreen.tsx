// Placeholder: being built (session 3).
export function AccountScreen() {
  return <h1>Account</h1>;
}
