"""Byte-exact interoperability with the peer libraries, both directions:
Python `standardwebhooks` and `svix` against hooksign's component (through
this host) and its native CLI. Messages are generated here from a fixed seed.
"""
import base64
import json
import random
import subprocess
import time
from datetime import datetime, timezone

import pytest
import standardwebhooks
import svix.webhooks

RNG = random.Random(20261127)
TEXTS = ["plain ascii", "naïve café — ünïcödé", "日本語のテキスト", "emoji 🔐🚀", "quotes \" and \\ backslashes"]


def secret() -> str:
    return "whsec_" + base64.b64encode(RNG.randbytes(32)).decode()


def message():
    msg_id = "msg_" + "".join(RNG.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=20))
    # Non-ASCII kept as UTF-8, not escaped: the bytes signed are the text's.
    body = json.dumps({"type": "order.paid", "text": RNG.choice(TEXTS), "n": RNG.randrange(10**9)}, ensure_ascii=False)
    return msg_id, body


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def cli_sign(cli, secrets, msg_id, timestamp, body) -> dict:
    args = [str(cli), "sign", "--id", msg_id, "--timestamp", str(timestamp)]
    for key in secrets:
        args += ["--secret", key]
    out = subprocess.run(args, input=body.encode(), capture_output=True, check=True).stdout.decode()
    return dict(line.split(": ", 1) for line in out.splitlines())


def cli_verify(cli, secrets, headers, body):
    args = [str(cli), "verify"]
    for key in secrets:
        args += ["--secret", key]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run(args, input=body.encode(), capture_output=True)
    return done.returncode, done.stdout.decode().strip(), done.stderr.decode()


PEERS = {
    "standardwebhooks": lambda key: standardwebhooks.Webhook(key),
    "svix": lambda key: svix.webhooks.Webhook(key),
}


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("signer_kind", ["component", "cli"])
@pytest.mark.parametrize("rotating", [False, True])
def test_peers_verify_what_hooksign_signs(signer, cli, peer, signer_kind, rotating):
    new, old = secret(), secret()
    now = int(time.time())
    keys = [new, old] if rotating else [new]
    for _ in range(5):
        msg_id, body = message()
        if signer_kind == "component":
            records = [{"key": new}] + ([{"key": old, "notAfter": now + 3600}] if rotating else [])
            signature = signer.keyring(records).sign(msg_id, now, body.encode())
        else:
            signature = cli_sign(cli, keys, msg_id, now, body)["webhook-signature"]
        assert len(signature.split(" ")) == len(keys)
        prefix = "svix" if peer == "svix" else "webhook"
        headers = {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(now), f"{prefix}-signature": signature}
        for key in keys:
            PEERS[peer](key).verify(body, headers)  # raises if it does not verify
        with pytest.raises(Exception):
            PEERS[peer](secret()).verify(body, headers)


@pytest.mark.parametrize("peer", PEERS)
def test_hooksign_verifies_what_peers_sign(signer, cli, peer):
    for _ in range(10):
        key = secret()
        msg_id, body = message()
        now = int(time.time())
        signature = PEERS[peer](key).sign(msg_id, at(now), body)
        # Svix-shaped senders use svix-* names; Standard Webhooks senders webhook-*.
        prefix = "svix" if peer == "svix" else "webhook"
        headers = {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(now), f"{prefix}-signature": signature}

        verified = signer.keyring([{"key": key}]).verify(headers, body.encode(), now)
        assert verified == {"secret": 0, "id": msg_id, "timestamp": now}
        # The second secret of a rotating keyring matches the peer's.
        rotated = signer.keyring([{"key": secret()}, {"key": key, "notAfter": now + 60}])
        assert rotated.verify(headers, body.encode(), now)["secret"] == 1

        status, out, err = cli_verify(cli, [key], headers, body)
        assert (status, out) == (0, "0"), err
        status, _, err = cli_verify(cli, [key], headers, body + " ")
        assert status == 1 and "no-matching-signature" in err


def test_peers_sign_exactly_like_hooksign(signer):
    for _ in range(20):
        key = secret()
        msg_id, body = message()
        timestamp = RNG.randrange(1, 2**33)
        ours = signer.keyring([{"key": key}]).sign(msg_id, timestamp, body.encode())
        assert ours == standardwebhooks.Webhook(key).sign(msg_id, at(timestamp), body)
        assert ours == svix.webhooks.Webhook(key).sign(msg_id, at(timestamp), body)
