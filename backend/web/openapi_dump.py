"""Prints the API's OpenAPI document as JSON: `python -m backend.web.openapi_dump > frontend/src/api/openapi.json`.

Builds the app offline (no database, no Redis is contacted), so the frontend's types can be regenerated
anywhere; `tests/test_frontend_types.py` fails when the committed copy is stale."""

from __future__ import annotations

import json
import sys


def openapi_document() -> dict:
    from backend.app import create_app
    from backend.core.settings import Settings
    from backend.crypto.master import generate_master_key

    settings = Settings(database_url="postgresql+asyncpg://openapi@localhost/openapi", master_key=generate_master_key())
    return create_app(settings).openapi()


def main() -> None:
    sys.stdout.write(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
