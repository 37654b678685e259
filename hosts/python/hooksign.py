"""The hooksign signer component from Python, through the `wasmtime` package.

    from hooksign import Signer
    signer = Signer("target/wasm32-wasip2/component/hooksign_signer.wasm")
    keyring = signer.keyring([{"key": signer.generate_secret()}])
    signature = keyring.sign("msg_1", 1700000000, b'{"a": 1}')
    keyring.verify(headers, body, now=1700000000)  # -> {"secret": 0, "id": ..., "timestamp": ...}

Contract errors raise `HooksignError` with the contract's `code`.
"""
from __future__ import annotations

import os
from pathlib import Path

from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record, Variant

INTERFACE = "hooksign:webhooks/signing@0.1.0"
DEFAULT_COMPONENT = (
    Path(os.environ.get("CARGO_TARGET_DIR", Path(__file__).resolve().parents[2] / "target"))
    / "wasm32-wasip2/component/hooksign_signer.wasm"
)


class HooksignError(Exception):
    """A contract error: `code` is one of docs/SPEC.md's kebab-case codes."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _checked(value):
    # A WIT `result` comes back as its ok value, or as the error variant.
    if isinstance(value, Variant):
        raise HooksignError(value.tag)
    return value


def _record(secret: dict) -> Record:
    record = Record()
    record.key = secret["key"]
    setattr(record, "not-before", secret.get("notBefore"))
    setattr(record, "not-after", secret.get("notAfter"))
    return record


def _secret(record: Record) -> dict:
    secret = {"key": record.key}
    for field, name in (("not-before", "notBefore"), ("not-after", "notAfter")):
        if getattr(record, field) is not None:
            secret[name] = getattr(record, field)
    return secret


class Signer:
    """One compiled component and one instance of it."""

    def __init__(self, path: str | os.PathLike = DEFAULT_COMPONENT):
        self._engine = Engine()
        linker = Linker(self._engine)
        linker.add_wasip2()
        self._store = Store(self._engine)
        self._store.set_wasi(WasiConfig())
        component = Component.from_file(self._engine, str(path))
        self._instance = linker.instantiate(self._store, component)
        self._interface = self._instance.get_export_index(self._store, INTERFACE)

    def _call(self, name: str, *args):
        index = self._instance.get_export_index(self._store, name, self._interface)
        return self._instance.get_func(self._store, index)(self._store, *args)

    def generate_secret(self) -> str:
        return self._call("generate-secret")

    def generate_key(self, kind: str) -> str:
        """A new key: kind "hmac-sha256" (whsec_) or "ed25519" (whsk_)."""
        return self._call("generate-key", kind)

    def keyring(self, secrets: list[dict], scheme: str | None = None) -> "Keyring":
        """Secrets as docs/SPEC.md records: {"key", "notBefore"?, "notAfter"?}, current first;
        scheme "standard-webhooks" (default), "stripe", "github", "slack" or "shopify"."""
        records = [_record(s) for s in secrets]
        return Keyring(self, _checked(self._call("[static]keyring.parse", records, scheme)))


class Keyring:
    """A parsed keyring inside the component."""

    def __init__(self, signer: Signer, handle):
        self._signer = signer
        self._handle = handle

    def sign(self, msg_id: str, timestamp: int, payload: bytes) -> str:
        return _checked(self._signer._call("[method]keyring.sign", self._handle, msg_id, timestamp, payload))

    def verify(self, headers, payload: bytes, now: int | None = None, tolerance_seconds: int | None = None) -> dict:
        pairs = [(name, value) for name, value in (headers.items() if isinstance(headers, dict) else headers)]
        verified = _checked(
            self._signer._call("[method]keyring.verify", self._handle, pairs, payload, now, tolerance_seconds)
        )
        return {"secret": verified.secret, "id": verified.id, "timestamp": verified.timestamp}

    def verify_values(self, msg_id: str | None, timestamp: str | None, signature: str, payload: bytes,
                      now: int | None = None, tolerance_seconds: int | None = None) -> dict:
        """verify from the values of the headers the scheme reads, looked up by the caller
        (docs/SPEC.md section 3): {"secret", "timestamp"}; the id is the one passed in."""
        verified = _checked(self._signer._call(
            "[method]keyring.verify-values", self._handle, msg_id, timestamp, signature, payload, now, tolerance_seconds
        ))
        return {"secret": verified.secret, "timestamp": verified.timestamp}

    def rotate(self, new_secret: str, now: int | None = None, grace_seconds: int | None = None) -> "Keyring":
        handle = _checked(self._signer._call("[method]keyring.rotate", self._handle, new_secret, now, grace_seconds))
        return Keyring(self._signer, handle)

    def active(self, now: int | None = None) -> list[int]:
        return list(self._signer._call("[method]keyring.active", self._handle, now))

    def secrets(self) -> list[dict]:
        return [_secret(record) for record in self._signer._call("[method]keyring.secrets", self._handle)]

    def public_keys(self) -> list[dict]:
        """The Ed25519 keys' public keys (whpk_) with their windows."""
        return [_secret(record) for record in self._signer._call("[method]keyring.public-keys", self._handle)]
