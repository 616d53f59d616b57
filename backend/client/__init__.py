"""A small Python client for applications that use Prompt Playground (see docs/decisions/python-client.md)."""

from backend.client.client import Event, Playground, PlaygroundError, PromptVersion, Run

__all__ = ["Event", "Playground", "PlaygroundError", "PromptVersion", "Run"]
