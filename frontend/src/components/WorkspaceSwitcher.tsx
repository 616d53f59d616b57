import { useId } from "react";
import { useNavigate } from "react-router";
import { useMe } from "../api/auth";

export function WorkspaceSwitcher({ current }: { current: string }) {
  const id = useId();
  const me = useMe();
  const navigate = useNavigate();
  const workspaces = me.data?.workspaces ?? [];
  return (
    <div className="switcher">
      <label htmlFor={id} className="visually-hidden">
        Workspace
      </label>
      <select
        id={id}
        data-testid="workspace-switcher"
        value={workspaces.some((w) => w.id === current) ? current : ""}
        onChange={(e) => navigate(e.target.value === "+" ? "/?new=1" : `/w/${e.target.value}/prompts`)}
      >
        {!workspaces.some((w) => w.id === current) && <option value="">Choose a workspace</option>}
        {workspaces.map((w) => (
          <option key={w.id} value={w.id}>
            {w.name} ({w.role})
          </option>
        ))}
        <option value="+">+ New workspace…</option>
      </select>
    </div>
  );
}
