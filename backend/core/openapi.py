"""Make the OpenAPI document tell the truth about errors: every one of them is problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from backend.core.errors import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

ERROR_RESPONSES = {
    "400": "Malformed request",
    "401": "Not authenticated",
    "403": "Role too low, or CSRF check failed",
    "404": "Unknown or foreign object",
    "405": "Method not allowed",
    "409": "Conflict with the current state",
    "413": "Request body too large",
    "422": "Validation failed; `errors` names each field",
    "429": "Rate limited; see Retry-After",
    "500": "Unexpected server error",
}


# Public paths that still answer 401 themselves (with their own wording): login refuses wrong credentials.
PUBLIC_401 = {"/api/v1/auth/login": "Wrong email or password, or the second factor is missing or wrong"}


def install_openapi(app: FastAPI, *, public_paths: frozenset[str]) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        ref = {"$ref": "#/components/schemas/Problem"}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for code, description in ERROR_RESPONSES.items():
                    if code == "401" and path in public_paths:
                        if path not in PUBLIC_401:
                            continue
                        description = PUBLIC_401[path]
                    responses[code] = {"description": description, "content": {PROBLEM_JSON: {"schema": ref}}}
                if method in ("post", "put", "patch", "delete") and path not in public_paths:
                    operation.setdefault("parameters", []).append(
                        {
                            "name": "X-CSRF-Token",
                            "in": "header",
                            "required": False,
                            "description": "Required for cookie-authenticated writes: the csrf_token cookie's value.",
                            "schema": {"type": "string"},
                        }
                    )
        _no_nul_in_request_strings(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]


NO_NUL = r"^[^\x00]*$"


def _no_nul_in_request_strings(schema: dict[str, Any]) -> None:
    """Tells the document what every request body's text refuses: NUL (PostgreSQL text cannot hold it, so it is
    a 422 naming the field). Each plain string of the bodies' schemas, and of the schemas they use, gets a
    pattern without NUL; strings with a format, an enum or a pattern of their own say enough (or say it)."""
    components = schema.get("components", {}).get("schemas", {})
    names: set[str] = set()

    def follow(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(ref := node.get("$ref"), str) and (name := ref.rsplit("/", 1)[1]) not in names:
                names.add(name)
                follow(components.get(name))
            for value in node.values():
                follow(value)
        elif isinstance(node, list):
            for value in node:
                follow(value)

    def mark(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & node.keys():
                node["pattern"] = NO_NUL
            for value in node.values():
                mark(value)
        elif isinstance(node, list):
            for value in node:
                mark(value)

    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                follow(operation["requestBody"])
                mark(operation["requestBody"])
    for name in names:
        mark(components.get(name))
