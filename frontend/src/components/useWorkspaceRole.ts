import { useOutletContext } from "react-router";
import type { MyWorkspace, Role } from "../api/types";

const RANK: Record<Role, number> = { viewer: 0, editor: 1, admin: 2, owner: 3 };

export function useMembership(): MyWorkspace {
  return useOutletContext<MyWorkspace>();
}

export function atLeast(membership: MyWorkspace, role: Role): boolean {
  return RANK[membership.role] >= RANK[role];
}
