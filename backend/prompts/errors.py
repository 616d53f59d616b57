"""Errors of prompts and versions."""

from backend.core.errors import Conflict, NotFound, ProblemError


class PromptNotFound(NotFound):
    type, title = "prompt-not-found", "Prompt not found"


class VersionNotFound(NotFound):
    type, title = "version-not-found", "Version not found"


class PromptNameTaken(Conflict):
    type, title = "prompt-name-taken", "Prompt name already used"


class VersionImmutable(ProblemError):
    status, type, title = 405, "version-immutable", "Versions are immutable"
