"""Every vector file of tests/vectors/, through the component from Python."""
import base64
import json

import pytest
from conftest import ROOT

from hooksign import HooksignError

FILES = sorted((ROOT / "tests" / "vectors").glob("*.json"))
CASES = [
    pytest.param(case, id=f"{path.stem}:{case['name']}")
    for path in FILES
    for case in json.loads(path.read_text())["cases"]
]
KNOWN = {"name", "op", "secrets", "id", "timestamp", "payload", "payloadBase64", "headers", "now",
         "toleranceSeconds", "graceSeconds", "newSecret", "expect", "scheme"}


def payload(case) -> bytes:
    if "payloadBase64" in case:
        return base64.b64decode(case["payloadBase64"])
    return case["payload"].encode()


def run(signer, case):
    keyring = signer.keyring(case["secrets"], case.get("scheme"))
    op = case["op"]
    if op == "sign":
        return {"signature": keyring.sign(case["id"], case["timestamp"], payload(case))}
    if op == "verify":
        verified = keyring.verify(case["headers"], payload(case), case["now"], case.get("toleranceSeconds"))
        return {"ok": {"secret": verified["secret"]}}
    if op == "rotate":
        rotated = keyring.rotate(case["newSecret"], case["now"], case.get("graceSeconds"))
        return {"secrets": rotated.secrets()}
    if op == "active":
        return {"active": keyring.active(case["now"])}
    raise AssertionError(f"unknown op {op}")


def test_there_are_vectors():
    assert len(FILES) >= 5 and len(CASES) >= 150


@pytest.mark.parametrize("case", CASES)
def test_vector(signer, case):
    assert set(case) <= KNOWN, f"unknown fields {set(case) - KNOWN}"
    try:
        got = run(signer, case)
    except HooksignError as error:
        got = {"error": error.code}
    assert got == case["expect"]
