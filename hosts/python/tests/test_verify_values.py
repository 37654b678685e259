"""keyring.verify_values from Python: every Standard Webhooks verify vector whose headers are the
three lowercase names, once each, gives the same outcome from their values as from the headers."""
import json

import pytest
from conftest import ROOT
from test_vectors import payload

from hooksign import HooksignError

NAMES = ("webhook-id", "webhook-timestamp", "webhook-signature")


def values(case):
    """The three values, if the case's headers are exactly the three names once each."""
    names = [name for name, _ in case["headers"]]
    if sorted(names) != sorted(NAMES):
        return None
    return tuple(dict(case["headers"])[name] for name in NAMES)


CASES = [
    pytest.param(case, id=f"{path.stem}:{case['name']}")
    for path in sorted((ROOT / "tests" / "vectors").glob("*.json"))
    for case in json.loads(path.read_text())["cases"]
    if case["op"] == "verify" and case.get("scheme", "standard-webhooks") == "standard-webhooks" and values(case)
]


def test_the_cases_are_there():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_verify_values(signer, case):
    try:
        keyring = signer.keyring(case["secrets"])
        verified = keyring.verify_values(*values(case), payload(case), case["now"], case.get("toleranceSeconds"))
        got = {"ok": {"secret": verified["secret"]}}
    except HooksignError as error:
        got = {"error": error.code}
    assert got == case["expect"]


# The signature is a plain string in WIT: only empty, not absent.
@pytest.mark.parametrize("field,missing", [(0, None), (0, ""), (1, None), (1, ""), (2, "")])
def test_a_value_that_is_absent_or_empty_is_missing_header(signer, field, missing):
    keyring = signer.keyring([{"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}])
    good = ["msg_1", "1700000000", keyring.sign("msg_1", 1700000000, b"{}")]
    assert keyring.verify_values(*good, b"{}", 1700000000) == {"secret": 0, "timestamp": 1700000000}
    good[field] = missing
    with pytest.raises(HooksignError) as error:
        keyring.verify_values(*good, b"{}", 1700000000)
    assert error.value.code == "missing-header"
