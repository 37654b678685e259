"""Ed25519 (Standard Webhooks v1a) and Slack's scheme against real libraries,
both directions: the `cryptography` package and PyNaCl (libsodium) for
Ed25519, `slack_sdk`'s SignatureVerifier for Slack; through the component
(this host) and the native CLI. Messages come from a fixed seed.
"""
import base64
import random
import subprocess
import time

import nacl.bindings
import nacl.signing
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from slack_sdk.signature import SignatureVerifier

from hooksign import HooksignError

RNG = random.Random(20261128)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def message():
    msg_id = "msg_" + "".join(RNG.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=20))
    body = '{"type": "order.paid", "text": "naïve café 🔐", "n": %d}' % RNG.randrange(10**9)
    return msg_id, body.encode()


def content(msg_id, timestamp, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def headers(msg_id, timestamp, signature):
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def v1a_entries(signature_header: str) -> list[bytes]:
    return [base64.b64decode(entry[4:]) for entry in signature_header.split() if entry.startswith("v1a,")]


def run(cli_path, *args, body: bytes = b""):
    done = subprocess.run([str(cli_path), *args], input=body, capture_output=True)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_the_component_verifies_what_cryptography_and_pynacl_sign(signer):
    for _ in range(6):
        msg_id, body = message()
        now = int(time.time())
        private = Ed25519PrivateKey.from_private_bytes(RNG.randbytes(32))
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        by_cryptography = "v1a," + b64(private.sign(content(msg_id, now, body)))
        nacl_key = nacl.signing.SigningKey(RNG.randbytes(32))
        by_nacl = "v1a," + b64(nacl_key.sign(content(msg_id, now, body)).signature)
        nacl_public = "whpk_" + b64(bytes(nacl_key.verify_key))
        keyring = signer.keyring([{"key": nacl_public}, {"key": "whpk_" + b64(public), "notAfter": now + 60}])
        assert keyring.verify(headers(msg_id, now, by_nacl), body, now)["secret"] == 0
        assert keyring.verify(headers(msg_id, now, by_cryptography), body, now)["secret"] == 1
        both = by_cryptography + " " + by_nacl
        assert keyring.verify(headers(msg_id, now, both), body, now)["secret"] == 0
        with pytest.raises(HooksignError) as refused:
            keyring.verify(headers(msg_id, now, by_nacl), body + b" ", now)
        assert refused.value.code == "no-matching-signature"


def test_a_libsodium_64_byte_secret_key_is_a_whsk_and_signs_like_its_seed(signer):
    seed = RNG.randbytes(32)
    public, secret64 = nacl.bindings.crypto_sign_seed_keypair(seed)
    assert len(secret64) == 64
    msg_id, body = message()
    from_seed = signer.keyring([{"key": "whsk_" + b64(seed)}])
    from_libsodium = signer.keyring([{"key": "whsk_" + b64(secret64)}])
    assert from_libsodium.sign(msg_id, 1700000000, body) == from_seed.sign(msg_id, 1700000000, body)
    assert from_libsodium.secrets() == [{"key": "whsk_" + b64(seed)}]
    assert from_libsodium.public_keys() == [{"key": "whpk_" + b64(public)}]
    other_public = nacl.bindings.crypto_sign_seed_keypair(RNG.randbytes(32))[0]
    with pytest.raises(HooksignError) as refused:
        signer.keyring([{"key": "whsk_" + b64(seed + other_public)}])
    assert refused.value.code == "invalid-secret"


def test_cryptography_and_pynacl_verify_what_the_component_signs(signer):
    for _ in range(6):
        msg_id, body = message()
        now = int(time.time())
        keys = [signer.generate_key("ed25519"), signer.generate_secret(), signer.generate_key("ed25519")]
        keyring = signer.keyring([{"key": key} for key in keys])
        header = keyring.sign(msg_id, now, body)
        assert [entry.split(",")[0] for entry in header.split()] == ["v1a", "v1", "v1a"]
        publics = [base64.b64decode(record["key"].removeprefix("whpk_")) for record in keyring.public_keys()]
        assert len(publics) == 2
        for public, signature in zip(publics, v1a_entries(header)):
            Ed25519PublicKey.from_public_bytes(public).verify(signature, content(msg_id, now, body))
            nacl.signing.VerifyKey(public).verify(content(msg_id, now, body), signature)
            with pytest.raises(InvalidSignature):
                Ed25519PublicKey.from_public_bytes(public).verify(signature, content(msg_id, now, body + b"x"))


def test_the_cli_makes_key_pairs_that_pynacl_and_cryptography_agree_with(cli):
    code, out, err = run(cli, "generate-secret", "--kind", "ed25519")
    assert code == 0, err
    secret, public = out.split()
    assert secret.startswith("whsk_") and public.startswith("whpk_")
    seed = base64.b64decode(secret.removeprefix("whsk_"))
    nacl_key = nacl.signing.SigningKey(seed)
    assert bytes(nacl_key.verify_key) == base64.b64decode(public.removeprefix("whpk_"))
    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert derived == bytes(nacl_key.verify_key)
    msg_id, body = message()
    now = int(time.time())
    code, out, err = run(cli, "sign", "--secret", secret, "--id", msg_id, "--timestamp", str(now), body=body)
    assert code == 0, err
    sent = dict(line.split(": ", 1) for line in out.splitlines())
    (signature,) = v1a_entries(sent["webhook-signature"])
    nacl_key.verify_key.verify(content(msg_id, now, body), signature)
    # The receiver's side: the public key alone verifies, and cannot sign.
    header_args = [arg for name, value in sent.items() for arg in ("-H", f"{name}: {value}")]
    code, out, err = run(cli, "verify", "--secret", public, *header_args, body=body)
    assert (code, out.strip()) == (0, "0"), err
    code, _, err = run(cli, "sign", "--secret", public, "--id", msg_id, body=body)
    assert code == 1 and "no-usable-secret" in err


def test_slack_sdk_and_the_component_agree_both_ways(signer):
    for _ in range(6):
        current, previous = RNG.randbytes(16).hex(), RNG.randbytes(16).hex()
        body = "token=%s&team_id=T1DC2JH3J&text=caf%%C3%%A9" % RNG.randbytes(8).hex()
        now = int(time.time())
        keyring = signer.keyring([{"key": current}, {"key": previous, "notAfter": now + 60}], "slack")
        for index, secret in enumerate([current, previous]):
            theirs = SignatureVerifier(secret).generate_signature(timestamp=str(now), body=body)
            sent = {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": theirs}
            assert keyring.verify(sent, body.encode(), now)["secret"] == index
        ours = signer.keyring([{"key": current}], "slack").sign("unused", now, body.encode())
        assert SignatureVerifier(current).is_valid(body=body, timestamp=str(now), signature=ours)
        assert not SignatureVerifier(previous).is_valid(body=body, timestamp=str(now), signature=ours)
        stale = SignatureVerifier(current).generate_signature(timestamp=str(now - 301), body=body)
        with pytest.raises(HooksignError) as refused:
            keyring.verify({"X-Slack-Request-Timestamp": str(now - 301), "X-Slack-Signature": stale}, body.encode(), now)
        assert refused.value.code == "timestamp-too-old"


def test_slack_sdk_verifies_what_the_cli_signs(cli):
    secret = RNG.randbytes(16).hex()
    body = b"command=%2Fdeploy&text=now"
    code, out, err = run(cli, "sign", "--scheme", "slack", "--secret", secret, "--id", "unused", body=body)
    assert code == 0, err
    sent = dict(line.split(": ", 1) for line in out.splitlines())
    assert set(sent) == {"x-slack-request-timestamp", "x-slack-signature"}
    assert SignatureVerifier(secret).is_valid(
        body=body.decode(), timestamp=sent["x-slack-request-timestamp"], signature=sent["x-slack-signature"]
    )
