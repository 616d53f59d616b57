// What a route shows when rendering it failed: the error, and a way out (instead of a blank page).
import { Link, useRouteError } from "react-router";
import { ErrorBox } from "./States";

export function RouteError() {
  const error = useRouteError();
  return (
    <main className="auth-card">
      <ErrorBox error={error instanceof Error ? error : String(error)} title="This page failed to render" />
      <p>
        <Link to="/">Back to your workspaces</Link> · your drafts are kept on this device.
      </p>
    </main>
  );
}
