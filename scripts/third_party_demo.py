"""A third-party web app in one file: authorization code + PKCE through userservice's
login and consent pages, ID-token validation against the JWKS, /users/me,
/oauth/userinfo, refresh and revocation -- with Authlib's OAuth2 client.

    .venv/bin/python scripts/third_party_demo.py CLIENT_ID CLIENT_SECRET

It listens on http://127.0.0.1:8765/callback (register exactly that redirect URI),
prints the URL to open in your browser, and reports each step.
"""

from __future__ import annotations

import http.server
import json
import secrets
import ssl
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

ISSUER = "https://localhost:8443"
REDIRECT = "http://127.0.0.1:8765/callback"
CA = Path("data/tls/ca.crt")


def wait_for_callback() -> str:
    received: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received["url"] = f"http://127.0.0.1:8765{self.path}"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Signed in; you can close this tab.")

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 8765), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    thread.join(timeout=300)
    server.server_close()
    if "url" not in received:
        raise SystemExit("no callback within 5 minutes")
    return received["url"]


def main(client_id: str, client_secret: str) -> None:
    verify = ssl.create_default_context(cafile=str(CA))
    app = OAuth2Client(
        client_id,
        client_secret,
        scope="openid profile email offline_access",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        verify=verify,
    )
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, _state = app.create_authorization_url(
        f"{ISSUER}/oauth/authorize", code_verifier=verifier, nonce=nonce
    )
    print("Open this in your browser, sign in and allow access:\n", url, flush=True)
    callback = wait_for_callback()
    if "error" in parse_qs(urlsplit(callback).query):
        raise SystemExit(f"authorization failed: {callback}")
    token = app.fetch_token(
        f"{ISSUER}/oauth/token", authorization_response=callback, code_verifier=verifier
    )
    print("tokens:", sorted(token))

    jwks = KeySet.import_key_set(app.get(f"{ISSUER}/oauth/jwks").json())
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "value": client_id},
        },
        params={"nonce": nonce, "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)
    print("ID token valid for sub", claims["sub"])
    print("/users/me:", json.dumps(app.get(f"{ISSUER}/users/me").json()))
    print("/oauth/userinfo:", json.dumps(app.get(f"{ISSUER}/oauth/userinfo").json()))
    refreshed = app.refresh_token(f"{ISSUER}/oauth/token")
    print("refreshed; new access token ends", refreshed["access_token"][-8:])
    revoked = app.revoke_token(f"{ISSUER}/oauth/revoke", token=refreshed["refresh_token"])
    print("refresh token revoked:", revoked.status_code)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
