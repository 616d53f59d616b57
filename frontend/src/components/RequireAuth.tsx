// Signed-in routes: a 401 from /me sends the browser to /login and back afterwards.
import { Navigate, Outlet, useLocation } from "react-router";
import { useMe } from "../api/auth";
import { ApiError } from "../api/client";
import { ErrorBox, Loading } from "./States";

export function RequireAuth() {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <Loading what="Signing in" />;
  if (me.error instanceof ApiError && me.error.status === 401) {
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/login?next=${next}`} replace />;
  }
  if (me.error) return <ErrorBox error={me.error} />;
  return <Outlet />;
}
