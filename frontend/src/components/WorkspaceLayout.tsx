// The frame of every workspace screen: the header (switcher, navigation, account) and the screen.
import { NavLink, Outlet, useNavigate, useParams } from "react-router";
import { useLogout, useMe } from "../api/auth";
import { NotFoundScreen } from "../screens/NotFound/NotFoundScreen";
import { WorkspaceSwitcher } from "./WorkspaceSwitcher";

export function WorkspaceLayout() {
  const { ws = "" } = useParams();
  const me = useMe();
  const logout = useLogout();
  const navigate = useNavigate();
  const membership = me.data?.workspaces.find((w) => w.id === ws);
  const admin = membership?.role === "owner" || membership?.role === "admin";
  return (
    <div className="app">
      <header className="topbar">
        <NavLink to="/" className="brand">
          Prompt Playground
        </NavLink>
        <WorkspaceSwitcher current={ws} />
        <nav aria-label="Workspace">
          <NavLink to={`/w/${ws}/prompts`}>Prompts</NavLink>
          <NavLink to={`/w/${ws}/runs`}>Runs</NavLink>
          <NavLink to={`/w/${ws}/compare`}>Compare</NavLink>
          <NavLink to={`/w/${ws}/datasets`}>Datasets</NavLink>
          <NavLink to={`/w/${ws}/admin/usage`}>Usage</NavLink>
          {admin && <NavLink to={`/w/${ws}/admin/safety`}>Safety</NavLink>}
          <NavLink to={`/w/${ws}/settings`}>Settings</NavLink>
        </nav>
        <div className="account">
          <NavLink to="/account">{me.data?.name}</NavLink>
          {me.data?.is_instance_admin && <NavLink to="/admin">Admin</NavLink>}
          <button type="button" className="link" onClick={() => logout.mutate(undefined, { onSuccess: () => navigate("/login") })}>
            Log out
          </button>
        </div>
      </header>
      <main className="screen">{membership ? <Outlet context={membership} /> : <NotFoundScreen what="workspace" />}</main>
    </div>
  );
}
