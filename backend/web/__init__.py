"""The browser app: serves the built SPA (frontend/dist) and dumps the OpenAPI document it is typed from."""
