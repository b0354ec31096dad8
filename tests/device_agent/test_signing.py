"""The agent's side of the request signature: the documented vector, key files, httpx auth."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from device_agent.errors import KeyFileError
from device_agent.signing import (
    HEADER_KEY_ID,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    DeviceKey,
    RequestSigner,
    canonical_string,
    load_key_file,
    write_key_file,
)
from tests.ingest_support import vector

VECTOR_KEY = DeviceKey.from_seed(bytes.fromhex(vector()["seed_hex"]))


def test_vector_key_is_rfc_8032_test_1() -> None:
    assert VECTOR_KEY.public_key.hex() == vector()["public_key_hex"]
    assert VECTOR_KEY.public_key_b64 == vector()["public_key"]
    assert VECTOR_KEY.key_id == vector()["key_id"]


@pytest.mark.parametrize("case", vector()["requests"], ids=lambda case: case["method"])
def test_canonical_string_and_signature_match_the_vector(case: dict[str, object]) -> None:
    body = str(case["body"]).encode()
    assert (
        canonical_string(
            method=str(case["method"]),
            target=str(case["target"]),
            body=body,
            timestamp=int(str(case["timestamp"])),
            nonce=str(case["nonce"]),
            key_id=VECTOR_KEY.key_id,
        )
        == str(case["canonical"]).encode()
    )
    headers = VECTOR_KEY.signature_headers(
        method=str(case["method"]),
        target=str(case["target"]),
        body=body,
        timestamp=int(str(case["timestamp"])),
        nonce=str(case["nonce"]),
    )
    assert headers == {
        HEADER_KEY_ID: vector()["key_id"],
        HEADER_TIMESTAMP: str(case["timestamp"]),
        HEADER_NONCE: case["nonce"],
        HEADER_SIGNATURE: case["signature"],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [({"nonce": "short"}, "nonce"), ({"target": "no-slash"}, "target")],
)
def test_canonical_string_refuses_malformed_parts(change: dict[str, str], message: str) -> None:
    parts: dict[str, object] = {
        "method": "GET",
        "target": "/x",
        "body": b"",
        "timestamp": 1,
        "nonce": "A" * 22,
        "key_id": "0" * 32,
    }
    parts.update(change)
    with pytest.raises(ValueError, match=message):
        canonical_string(**parts)  # type: ignore[arg-type]


def test_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    key = DeviceKey.generate()
    write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_key_file(path).public_key == key.public_key


def test_key_file_is_not_overwritten_by_accident(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    first = DeviceKey.generate()
    write_key_file(path, first)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, DeviceKey.generate())
    assert load_key_file(path).public_key == first.public_key
    second = DeviceKey.generate()
    write_key_file(path, second, overwrite=True)
    assert load_key_file(path).public_key == second.public_key


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    write_key_file(path, DeviceKey.generate())
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key_file(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key", "not an unencrypted PEM private key"),
        (None, "atm-agent keygen"),
    ],
)
def test_bad_key_files_get_clear_errors(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "device.key"
    if content is not None:
        path.write_bytes(content)
        os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=message):
        load_key_file(path)


def test_a_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "device.key"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_key_file(path)


def test_request_signer_signs_every_attempt_afresh() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    nonces = iter(["A" * 22, "B" * 22])
    signer = RequestSigner(
        VECTOR_KEY,
        clock=lambda: datetime(2026, 11, 16, 8, 0, tzinfo=UTC),
        nonces=lambda: next(nonces),
    )
    with httpx.Client(transport=httpx.MockTransport(handler), auth=signer) as client:
        client.put(
            "http://service/api/v1/devices/T1000001/journals/20261116",
            params={"offset": 5},
            content=b"abc",
        )
        client.get("http://service/api/v1/devices/me")
    first, second = seen
    assert first.headers[HEADER_NONCE] == "A" * 22
    assert second.headers[HEADER_NONCE] == "B" * 22
    assert first.headers[HEADER_TIMESTAMP] == "1794816000"
    expected = VECTOR_KEY.signature_headers(
        method="PUT",
        target="/api/v1/devices/T1000001/journals/20261116?offset=5",
        body=b"abc",
        timestamp=1794816000,
        nonce="A" * 22,
    )
    assert first.headers[HEADER_SIGNATURE] == expected[HEADER_SIGNATURE]
