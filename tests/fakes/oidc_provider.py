"""A small OpenID Connect provider for tests, on a loopback port: discovery, JWKS, an authorization endpoint
that signs in whoever the test chose, and a token endpoint that checks the code, the PKCE verifier and the
client secret and signs a real RS256 ID token. Knobs let a test make each check fail."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class Knobs:
    wrong_nonce: bool = False
    wrong_audience: bool = False
    expired: bool = False
    foreign_key: bool = False  # sign with a key the JWKS does not publish
    email_verified: bool = True


@dataclass
class FakeOidc:
    client_id: str = "playground"
    client_secret: str = "s3cret-client"
    base_url: str = ""
    user: dict[str, Any] = field(default_factory=lambda: {"sub": "u-1", "email": "ada@example.com", "name": "Ada"})
    knobs: Knobs = field(default_factory=Knobs)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"}, private=True)
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"}, private=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, query = scope["path"], parse_qs(scope["query_string"].decode())
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if path == "/.well-known/openid-configuration":
            await _json(send, 200, self.discovery())
        elif path == "/jwks":
            await _json(send, 200, {"keys": [self.key.as_dict(private=False)]})
        elif path == "/authorize":
            await self.authorize(send, {k: v[0] for k, v in query.items()})
        elif path == "/token":
            await self.token(send, {k: v[0] for k, v in parse_qs(body.decode()).items()}, headers)
        else:
            await _json(send, 404, {"error": "not_found"})

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.base_url,
            "authorization_endpoint": f"{self.base_url}/authorize",
            "token_endpoint": f"{self.base_url}/token",
            "jwks_uri": f"{self.base_url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    async def authorize(self, send: Any, params: dict[str, str]) -> None:
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            await _json(send, 400, {"error": "invalid_request"})
            return
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**params, "user": dict(self.user)}
        location = f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state']})}"
        await send({"type": "http.response.start", "status": 302, "headers": [(b"location", location.encode())]})
        await send({"type": "http.response.body", "body": b""})

    async def token(self, send: Any, form: dict[str, str], headers: dict[str, str]) -> None:
        self.token_requests += 1
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {basic}":
            await _json(send, 401, {"error": "invalid_client"})
            return
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri") or grant["code_challenge"] != challenge:
            await _json(send, 400, {"error": "invalid_grant"})
            return
        now = int(time.time())
        user = grant["user"]
        claims = {
            "iss": self.base_url,
            "aud": "someone-else" if self.knobs.wrong_audience else self.client_id,
            "sub": user["sub"],
            "email": user["email"],
            "email_verified": self.knobs.email_verified,
            "name": user.get("name"),
            "nonce": "not-the-nonce" if self.knobs.wrong_nonce else grant["nonce"],
            "iat": now - (7200 if self.knobs.expired else 0),
            "exp": now + (-3600 if self.knobs.expired else 300),
        }
        # Any other claim the test gave the user (groups, roles, ...) goes into the token as it is.
        claims.update({k: v for k, v in user.items() if k not in ("sub", "email", "name")})
        key = self.other_key if self.knobs.foreign_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, key)
        await _json(
            send,
            200,
            {
                "access_token": "at-" + secrets.token_hex(8),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})
