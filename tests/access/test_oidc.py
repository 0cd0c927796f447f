"""QA_AUTH=oidc over a real server, against a real key set served over local HTTP by a small
identity provider in a thread: valid, expired, wrong audience, wrong signature, rotated key
(and the floor between key-set reads)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from qa.access.oidc import TokenVerifier
from qa.errors import Unauthorized
from qa.http.app import create_app
from qa.service import QAService
from tests.access.conftest import ENG_TEXT, HR_TEXT, settings_of
from tests.helpers import serve_in_thread

AUDIENCE = "qa-service"


class Provider:
    """An issuer: its discovery document and the key set it publishes now (can rotate)."""

    def __init__(self) -> None:
        self.keys = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.published = ["k1"]
        self.jwks_reads = 0
        self.issuer = ""

    def jwks(self) -> dict:
        self.jwks_reads += 1
        out = []
        for kid in self.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            out.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": out}

    def token(self, kid: str = "k1", groups: list[str] | None = None, **claims: object) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": "ann", "iat": now, "exp": now + 300}
        body |= {"groups": groups if groups is not None else ["hr"], **claims}
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    idp = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": idp.issuer, "jwks_uri": f"{idp.issuer}/jwks"}
            elif self.path == "/jwks":
                body = idp.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    idp.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield idp
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(access_index: Path, access_service: QAService, provider: Provider) -> Iterator[str]:
    settings = settings_of(
        access_index,
        auth="oidc",
        oidc_issuer=provider.issuer,
        oidc_audience=AUDIENCE,
        oidc_refetch_s=0.3,
    )
    with serve_in_thread(create_app(settings, access_service)) as base:
        yield base


def _search(base: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(
        f"{base}/v1/search", params={"q": "salary", "top_k": 10}, headers=headers, timeout=60
    )


def test_valid_token_reads_its_groups(server: str, provider: Provider) -> None:
    hr = _search(server, provider.token())
    assert hr.status_code == 200, hr.text
    assert HR_TEXT.split(".")[0] in hr.text and ENG_TEXT.split(".")[0] not in hr.text
    eng = _search(server, provider.token(groups=["eng"]))
    assert ENG_TEXT.split(".")[0] in eng.text and HR_TEXT.split(".")[0] not in eng.text
    headers = {"Authorization": f"Bearer {provider.token(groups=['eng'])}"}
    hidden = httpx.get(f"{server}/v1/documents/hr/salaries.md", headers=headers, timeout=30)
    assert hidden.status_code == 404
    mine = httpx.get(f"{server}/v1/documents/eng.md", headers=headers, timeout=30)
    assert mine.status_code == 200 and mine.json()["groups"] == ["eng"]
    assert httpx.get(f"{server}/metrics", headers=headers, timeout=30).status_code == 403


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900},  # expired
        {"aud": "another-service"},  # wrong audience
        {"iss": "https://evil.example.com"},  # wrong issuer
    ],
)
def test_bad_claims_are_refused(server: str, provider: Provider, claims: dict) -> None:
    refused = _search(server, provider.token(**claims))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"


def test_wrong_signature_and_forged_algorithms(server: str, provider: Provider) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = jwt.decode(provider.token(), options={"verify_signature": False})
    forged = jwt.encode(good, impostor, algorithm="RS256", headers={"kid": "k1"})
    assert _search(server, forged).status_code == 401
    unsigned = jwt.encode(good, None, algorithm="none", headers={"kid": "k1"})
    assert _search(server, unsigned).status_code == 401
    assert _search(server, "not-a-jwt").status_code == 401


def test_rotated_key_is_fetched(server: str, provider: Provider) -> None:
    provider.keys["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.published = ["k2"]  # the issuer rotated: k1 is gone, k2 is new
    time.sleep(0.35)  # past the floor between reads
    rotated = _search(server, provider.token("k2"))
    assert rotated.status_code == 200, rotated.text
    time.sleep(0.35)
    assert _search(server, provider.token("k1")).status_code == 401  # retired


def test_unknown_key_ids_read_the_key_set_once_per_floor(provider: Provider) -> None:
    verifier = TokenVerifier(provider.issuer, AUDIENCE, refetch_s=60)
    provider.published = list(provider.keys)
    assert verifier.caller(provider.token("k1")).groups == frozenset({"hr"})
    for made_up in ("x1", "x2", "x3"):
        token = jwt.encode(
            {"sub": "x"}, provider.keys["k1"], algorithm="RS256", headers={"kid": made_up}
        )
        with pytest.raises(Unauthorized):
            verifier.caller(token)
    assert verifier.fetches == 1
