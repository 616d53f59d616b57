// The frame of the account and instance admin pages (outside any workspace): back to the app, the
// instance admin link for instance admins, log out.
import type { ReactNode } from "react";
import { NavLink, useNavigate } from "react-router";
import { useLogout, useMe } from "../../api/auth";

export function AccountFrame({ children }: { children: ReactNode }) {
  const me = useMe();
  const logout = useLogout();
  const navigate = useNavigate();
  return (
    <div className="app">
      <header className="topbar">
        <NavLink to="/" className="brand">
          Prompt Playground
        </NavLink>
        <nav aria-label="Account">
          <NavLink to="/account">Account</NavLink>
          {me.data?.is_instance_admin && <NavLink to="/admin">Instance admin</NavLink>}
        </nav>
        <div className="account">
          <span>{me.data?.email}</span>
          <button type="button" className="link" onClick={() => logout.mutate(undefined, { onSuccess: () => navigate("/login") })}>
            Log out
          </button>
        </div>
      </header>
      <main className="screen">{children}</main>
    </div>
  );
}
