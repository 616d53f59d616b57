// Placeholder: being built (session 3).
export function InstanceAdminScreen() {
  return <h1>Instance administration</h1>;
}
