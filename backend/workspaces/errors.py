"""Errors of accounts and workspaces."""

from backend.core.errors import Conflict, Forbidden, NotFound, ProblemError


class EmailTaken(Conflict):
    type, title = "email-taken", "Email already registered"


class SignupClosed(Forbidden):
    type, title = "signup-closed", "Signup is closed"


class BadCredentials(ProblemError):
    status, type, title = 401, "bad-credentials", "Wrong email or password"


class CsrfFailed(Forbidden):
    type, title = "csrf-failed", "CSRF check failed"


class RoleTooLow(Forbidden):
    type, title = "role-too-low", "Your role does not allow this"


class WorkspaceNotFound(NotFound):
    type, title = "workspace-not-found", "Workspace not found"


class LastOwner(Conflict):
    type, title = "last-owner", "A workspace needs an owner"


class AlreadyMember(Conflict):
    type, title = "already-member", "Already a member"
