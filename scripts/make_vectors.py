#!/usr/bin/env python3
"""Writes tests/vectors/*.json (except starter.json, copied from shared/).

Expected signatures come from Python's own hmac and hashlib and from the
`cryptography` package's Ed25519, implementations independent of hooksign's,
and from the providers' own documentation where it publishes an example;
expected errors and keyrings are written out by hand from docs/SPEC.md. Run it
again after editing, in the tests' virtual environment (scripts/test makes
it; `cryptography` is pinned in hosts/python/requirements.txt):
`$CARGO_TARGET_DIR/venv/bin/python3 scripts/make_vectors.py`.
"""
import base64
import hashlib
import hmac
import json
import pathlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "vectors"
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

# The Standard Webhooks specification's example message.
SPEC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = '{"test": 2432232314}'


def key_bytes(n, start=0):
    return bytes((start + i) % 256 for i in range(n))


def whsec(raw, prefix=True, pad=True):
    text = base64.b64encode(raw).decode()
    if not pad:
        text = text.rstrip("=")
    return ("whsec_" if prefix else "") + text


NEW_KEY = whsec(key_bytes(32))  # whsec_AAECAw…Hh8=


def decode_key(text):
    text = text.removeprefix("whsec_")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def tag(key, msg_id, ts_text, body):
    body = body.encode() if isinstance(body, str) else body
    content = f"{msg_id}.{ts_text}.".encode() + body
    return base64.b64encode(hmac.new(decode_key(key), content, hashlib.sha256).digest()).decode()


def sig(key, msg_id=SPEC_ID, ts=SPEC_TS, body=SPEC_BODY):
    return "v1," + tag(key, msg_id, str(ts), body)


SPEC_SIG = sig(SPEC_KEY)


def rec(key, not_before=None, not_after=None):
    r = {"key": key}
    if not_before is not None:
        r["notBefore"] = not_before
    if not_after is not None:
        r["notAfter"] = not_after
    return r


def body_fields(body):
    if isinstance(body, bytes):
        return {"payloadBase64": base64.b64encode(body).decode()}
    return {"payload": body}


def sign_case(name, secrets, expect, msg_id=SPEC_ID, ts=SPEC_TS, body=SPEC_BODY):
    return {"name": name, "op": "sign", "secrets": secrets, "id": msg_id,
            "timestamp": ts, **body_fields(body), "expect": expect}


def hdrs(msg_id=SPEC_ID, ts=SPEC_TS, signature=SPEC_SIG, family="webhook"):
    return [[f"{family}-id", msg_id], [f"{family}-timestamp", str(ts)],
            [f"{family}-signature", signature]]


def verify_case(name, expect, secrets=None, headers=None, body=SPEC_BODY, now=SPEC_TS,
                tolerance=None):
    case = {"name": name, "op": "verify",
            "secrets": secrets if secrets is not None else [rec(SPEC_KEY)],
            "headers": headers if headers is not None else hdrs(),
            **body_fields(body), "now": now}
    if tolerance is not None:
        case["toleranceSeconds"] = tolerance
    case["expect"] = expect
    return case


def ok(index=0):
    return {"ok": {"secret": index}}


def err(code):
    return {"error": code}


def secrets_file():
    k24, k32, k64 = key_bytes(24, 7), key_bytes(32, 9), key_bytes(64, 11)
    cases = []

    def signs_with(name, text, raw):
        expected = "v1," + tag(whsec(raw), SPEC_ID, str(SPEC_TS), SPEC_BODY)
        cases.append(sign_case(name, [rec(text)], {"signature": expected}))

    def rejects(name, text):
        cases.append(sign_case(name, [rec(text)], err("invalid-secret")))

    signs_with("key-24-bytes-shortest-accepted", whsec(k24), k24)
    signs_with("key-64-bytes-longest-accepted", whsec(k64), k64)
    signs_with("key-32-bytes-padded-with-prefix", whsec(k32), k32)
    signs_with("key-32-bytes-unpadded-with-prefix", whsec(k32, pad=False), k32)
    signs_with("key-32-bytes-padded-without-prefix", whsec(k32, prefix=False), k32)
    signs_with("key-32-bytes-unpadded-without-prefix", whsec(k32, prefix=False, pad=False), k32)
    signs_with("standard-webhooks-spec-example-key-without-prefix",
               SPEC_KEY.removeprefix("whsec_"), decode_key(SPEC_KEY))
    rejects("key-23-bytes-too-short", whsec(key_bytes(23)))
    rejects("key-65-bytes-too-long", whsec(key_bytes(65)))
    rejects("key-1000-bytes-too-long", whsec(key_bytes(1000)))
    rejects("key-empty-after-prefix", "whsec_")
    rejects("key-empty", "")
    rejects("key-not-base64", "whsec_this is not base64 at all!!")
    rejects("key-url-safe-alphabet", "whsec_" + base64.urlsafe_b64encode(bytes([0xfb] * 32)).decode())
    rejects("key-extra-padding", whsec(k24) + "=")
    rejects("key-prefix-upper-case", whsec(k32).replace("whsec_", "WHSEC_"))
    rejects("key-surrounding-space", " " + whsec(k32))
    cases.append(sign_case("second-secret-of-keyring-invalid",
                           [rec(SPEC_KEY), rec("whsec_AAAA")], err("invalid-secret")))
    cases.append(verify_case("invalid-secret-checked-before-headers", err("invalid-secret"),
                             secrets=[rec("whsec_")], headers=[]))
    cases.append(verify_case("invalid-secret-even-outside-its-window", err("invalid-secret"),
                             secrets=[rec(SPEC_KEY), rec("whsec_AAAA", not_after=0)]))
    return "Secret text forms and key lengths (docs/SPEC.md section 1).", cases


def sign_file():
    old, new = SPEC_KEY, NEW_KEY
    t = SPEC_TS
    cases = []

    def expect_sig(keys, msg_id=SPEC_ID, ts=SPEC_TS, body=SPEC_BODY):
        return {"signature": " ".join(sig(k, msg_id, ts, body) for k in keys)}

    cases.append(sign_case("empty-payload", [rec(old)], expect_sig([old], body=""), body=""))
    binary = bytes([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x0a, 0x0d])
    cases.append(sign_case("non-utf8-payload-signed-as-raw-bytes", [rec(old)],
                           expect_sig([old], body=binary), body=binary))
    text = "{\"name\": \"Zoë 😀 — ünïcödé\"}"
    cases.append(sign_case("non-ascii-utf8-payload", [rec(old)],
                           expect_sig([old], body=text), body=text))
    cases.append(sign_case("timestamp-zero", [rec(old)], expect_sig([old], ts=0), ts=0))
    cases.append(sign_case("timestamp-i64-max", [rec(old)], expect_sig([old], ts=I64_MAX), ts=I64_MAX))
    cases.append(sign_case("timestamp-negative", [rec(old)], err("invalid-input"), ts=-1))
    cases.append(sign_case("timestamp-i64-min", [rec(old)], err("invalid-input"), ts=I64_MIN))
    id256 = "m" * 256
    cases.append(sign_case("id-256-bytes-longest-accepted", [rec(old)],
                           expect_sig([old], msg_id=id256), msg_id=id256))
    cases.append(sign_case("id-all-printable-ascii-but-dot", [rec(old)],
                           expect_sig([old], msg_id="!~_-:/#%{}"), msg_id="!~_-:/#%{}"))
    for name, bad_id in [("id-257-bytes", "m" * 257), ("id-empty", ""),
                         ("id-with-dot", "msg.1"), ("id-with-space", "msg 1"),
                         ("id-with-tab", "msg\t1"), ("id-non-ascii", "msg_é"),
                         ("id-with-newline", "msg\n")]:
        cases.append(sign_case(name, [rec(old)], err("invalid-input"), msg_id=bad_id))
    cases.append(sign_case("invalid-secret-before-invalid-input", [rec("whsec_")],
                           err("invalid-secret"), msg_id=""))
    cases.append(sign_case("empty-keyring", [], err("no-usable-secret")))
    cases.append(sign_case("only-secret-expired-at-timestamp", [rec(old, not_after=t)],
                           err("no-usable-secret")))
    cases.append(sign_case("only-secret-not-yet-valid", [rec(old, not_before=t + 1)],
                           err("no-usable-secret")))
    cases.append(sign_case("invalid-input-before-no-usable-secret", [], err("invalid-input"),
                           msg_id="a.b"))
    cases.append(sign_case("not-before-equal-to-timestamp-is-usable",
                           [rec(old, not_before=t)], expect_sig([old])))
    cases.append(sign_case("not-after-one-past-timestamp-is-usable",
                           [rec(old, not_after=t + 1)], expect_sig([old])))
    cases.append(sign_case("skips-expired-first-secret",
                           [rec(new, not_after=t), rec(old)], expect_sig([old])))
    cases.append(sign_case("skips-future-second-secret",
                           [rec(new), rec(old, not_before=t + 60)], expect_sig([new])))
    three = whsec(key_bytes(48, 100))
    cases.append(sign_case("three-secrets-in-keyring-order",
                           [rec(three), rec(new, not_after=t + 10), rec(old, not_after=t + 20)],
                           expect_sig([three, new, old])))
    return "Signing (docs/SPEC.md section 2): ids, timestamps, payloads and windows.", cases


def verify_file():
    t, old, new = SPEC_TS, SPEC_KEY, NEW_KEY
    cases = []
    add = cases.append

    # Timestamp tolerance and its boundaries.
    add(verify_case("tolerance-default-300-old-edge", ok(), now=t + 300))
    add(verify_case("tolerance-default-301-old", err("timestamp-too-old"), now=t + 301))
    add(verify_case("tolerance-default-300-new-edge", ok(), now=t - 300))
    add(verify_case("tolerance-default-301-new", err("timestamp-too-new"), now=t - 301))
    add(verify_case("tolerance-zero-exact", ok(), tolerance=0))
    add(verify_case("tolerance-zero-one-second-old", err("timestamp-too-old"), now=t + 1, tolerance=0))
    add(verify_case("tolerance-zero-one-second-new", err("timestamp-too-new"), now=t - 1, tolerance=0))
    add(verify_case("tolerance-86400-max-accepted", ok(), now=t + 86400, tolerance=86400))
    add(verify_case("tolerance-86401-out-of-range", err("invalid-input"), tolerance=86401))
    add(verify_case("tolerance-600-custom", ok(), now=t + 500, tolerance=600))
    add(verify_case("now-i64-min-too-new", err("timestamp-too-new"), now=I64_MIN))
    add(verify_case("now-i64-max-too-old", err("timestamp-too-old"), now=I64_MAX))
    max_sig = sig(old, ts=I64_MAX)
    add(verify_case("timestamp-i64-max-verifies-at-i64-max", ok(),
                    headers=hdrs(ts=I64_MAX, signature=max_sig), now=I64_MAX))
    add(verify_case("timestamp-i64-max-at-now-i64-min", err("timestamp-too-new"),
                    headers=hdrs(ts=I64_MAX, signature=max_sig), now=I64_MIN))
    add(verify_case("timestamp-zero-at-now-i64-max", err("timestamp-too-old"),
                    headers=hdrs(ts=0, signature=sig(old, ts=0)), now=I64_MAX))

    # Timestamp header syntax.
    for name, text in [("timestamp-one-past-i64-max", "9223372036854775808"),
                       ("timestamp-20-digits", "16142653300000000000"),
                       ("timestamp-negative", "-1614265330"),
                       ("timestamp-plus-sign", "+1614265330"),
                       ("timestamp-fraction", "1614265330.5"),
                       ("timestamp-leading-space", " 1614265330"),
                       ("timestamp-hex", "0x5f4a1b2"),
                       ("timestamp-non-ascii-digits", "١٦١٤٢٦٥٣٣٠"),
                       ("timestamp-rfc3339", "2021-02-25T15:02:10Z")]:
        add(verify_case(name, err("invalid-header"), headers=hdrs(ts=text)))
    padded = "000" + str(t)
    add(verify_case("timestamp-leading-zeros-signed-as-received", ok(),
                    headers=[["webhook-id", SPEC_ID], ["webhook-timestamp", padded],
                             ["webhook-signature", "v1," + tag(old, SPEC_ID, padded, SPEC_BODY)]]))
    add(verify_case("timestamp-leading-zeros-not-normalised", err("no-matching-signature"),
                    headers=hdrs(ts=padded)))

    # Missing, empty and repeated headers.
    h = hdrs()
    add(verify_case("no-headers", err("missing-header"), headers=[]))
    for i, which in enumerate(["id", "timestamp", "signature"]):
        add(verify_case(f"missing-{which}", err("missing-header"), headers=h[:i] + h[i + 1:]))
        emptied = [list(p) for p in h]
        emptied[i][1] = ""
        add(verify_case(f"empty-{which}", err("missing-header"), headers=emptied))
        add(verify_case(f"duplicate-{which}", err("invalid-header"), headers=h + [h[i]]))
    add(verify_case("duplicate-signature-differing-case", err("invalid-header"),
                    headers=h + [["WEBHOOK-SIGNATURE", SPEC_SIG]]))
    add(verify_case("missing-header-before-duplicate", err("missing-header"),
                    headers=[h[0], h[0], h[2]]))
    add(verify_case("duplicate-header-before-stale-timestamp", err("invalid-header"),
                    headers=h + [h[0]], now=t + 10_000))
    add(verify_case("invalid-timestamp-before-stale-check", err("invalid-header"),
                    headers=hdrs(ts="99999999999999999999"), now=t + 10_000))
    add(verify_case("mixed-case-header-names", ok(),
                    headers=[["Webhook-Id", SPEC_ID], ["WEBHOOK-TIMESTAMP", str(t)],
                             ["wEbHoOk-SiGnAtUrE", SPEC_SIG]]))
    add(verify_case("unrelated-headers-ignored", ok(),
                    headers=[["content-type", "application/json"], *h, ["user-agent", "x"]]))

    # Svix header names.
    add(verify_case("svix-header-names", ok(), headers=hdrs(family="svix")))
    add(verify_case("svix-header-names-mixed-case", ok(),
                    headers=[["Svix-Id", SPEC_ID], ["Svix-Timestamp", str(t)],
                             ["Svix-Signature", SPEC_SIG]]))
    add(verify_case("svix-missing-signature", err("missing-header"),
                    headers=hdrs(family="svix")[:2]))
    add(verify_case("svix-duplicate-id", err("invalid-header"),
                    headers=hdrs(family="svix") + [["svix-id", SPEC_ID]]))
    add(verify_case("families-never-mixed", err("missing-header"),
                    headers=[["webhook-id", SPEC_ID], ["svix-timestamp", str(t)],
                             ["svix-signature", SPEC_SIG]]))
    add(verify_case("empty-webhook-header-selects-webhook-family", err("missing-header"),
                    headers=[["webhook-id", ""], *hdrs(family="svix")]))
    add(verify_case("webhook-family-wins-when-both-present", ok(),
                    headers=hdrs() + hdrs(signature="v1," + "A" * 43 + "=", family="svix")))
    add(verify_case("svix-family-ignored-when-webhook-present", err("no-matching-signature"),
                    headers=hdrs(signature="v1," + "A" * 43 + "=") + hdrs(family="svix")))

    # Signature header entries.
    good = SPEC_SIG
    value = good.removeprefix("v1,")
    raw_mac = base64.b64decode(value)
    for name, header, expect in [
        ("cve-2024-21491-empty-value", "v1,", err("no-matching-signature")),
        ("cve-2024-21491-truncated-value", "v1," + value[:8], err("no-matching-signature")),
        ("truncated-to-31-bytes", "v1," + base64.b64encode(raw_mac[:31]).decode(),
         err("no-matching-signature")),
        ("mac-plus-one-byte-33-bytes", "v1," + base64.b64encode(raw_mac + b"\0").decode(),
         err("no-matching-signature")),
        ("version-v2-skipped", "v2," + value, err("no-matching-signature")),
        ("version-upper-case-skipped", "V1," + value, err("no-matching-signature")),
        ("version-v1a-skipped", "v1a," + value, err("no-matching-signature")),
        ("entry-without-comma-skipped", "v1" + value, err("no-matching-signature")),
        ("value-not-base64-skipped", "v1,%%%%" + value[4:], err("no-matching-signature")),
        ("value-url-safe-base64-skipped",
         "v1," + base64.urlsafe_b64encode(bytes([0xfb] * 32)).decode(), err("no-matching-signature")),
        ("value-with-extra-comma-skipped", "v1," + value + ",x", err("no-matching-signature")),
        ("tab-is-not-a-separator", "v2,x\t" + good, err("no-matching-signature")),
        ("value-unpadded-accepted", "v1," + value.rstrip("="), ok()),
        ("valid-entry-after-malformed-ones", "v2,abc v1, v1,short nocomma " + good, ok()),
        ("runs-of-spaces-separate-entries", "v1,AAAA    " + good + "   ", ok()),
        ("leading-spaces", "  " + good, ok()),
        ("only-spaces", "   ", err("no-matching-signature")),
        ("wrong-mac-same-length", "v1," + base64.b64encode(bytes(32)).decode(),
         err("no-matching-signature")),
    ]:
        add(verify_case(name, expect, headers=hdrs(signature=header)))

    filler = "v2,x"
    add(verify_case("32-entries-last-matches", ok(),
                    headers=hdrs(signature=" ".join([filler] * 31 + [good]))))
    add(verify_case("33-entries-too-many", err("invalid-header"),
                    headers=hdrs(signature=" ".join([good] + [filler] * 32))))
    header_8192 = good + " " * (8192 - len(good))
    add(verify_case("signature-header-8192-bytes", ok(), headers=hdrs(signature=header_8192)))
    add(verify_case("signature-header-8193-bytes", err("invalid-header"),
                    headers=hdrs(signature=header_8192 + " ")))

    # Tampering.
    add(verify_case("tampered-id", err("no-matching-signature"), headers=hdrs(msg_id="msg_other")))
    add(verify_case("tampered-timestamp", err("no-matching-signature"),
                    headers=hdrs(ts=t + 1), now=t + 1))
    add(verify_case("tampered-body-appended-newline", err("no-matching-signature"),
                    body=SPEC_BODY + "\n"))
    add(verify_case("wrong-secret", err("no-matching-signature"), secrets=[rec(new)]))
    add(verify_case("empty-body-verifies", ok(), body="",
                    headers=hdrs(signature=sig(old, body=""))))
    binary = bytes(range(256))
    add(verify_case("binary-body-verifies", ok(), body=binary,
                    headers=hdrs(signature=sig(old, body=binary))))
    add(verify_case("binary-body-one-byte-flipped", err("no-matching-signature"),
                    body=bytes([1]) + binary[1:], headers=hdrs(signature=sig(old, body=binary))))
    uni = "{\"greeting\": \"こんにちは\", \"emoji\": \"🔐\"}"
    add(verify_case("non-ascii-utf8-body-verifies", ok(), body=uni,
                    headers=hdrs(signature=sig(old, body=uni))))
    add(verify_case("id-with-dot-verifies-as-received", ok(),
                    headers=hdrs(msg_id="a.b", signature="v1," + tag(old, "a.b", str(t), SPEC_BODY))))

    # Keyrings and windows.
    both = sig(new) + " " + sig(old)
    rotating = [rec(new), rec(old, not_after=t + 3600)]
    add(verify_case("rotation-both-signatures-reports-current", ok(0), secrets=rotating,
                    headers=hdrs(signature=both)))
    add(verify_case("rotation-reversed-header-order-reports-keyring-order", ok(0),
                    secrets=rotating, headers=hdrs(signature=sig(old) + " " + sig(new))))
    add(verify_case("rotation-only-new-signature", ok(0), secrets=rotating,
                    headers=hdrs(signature=sig(new))))
    add(verify_case("rotation-old-secret-one-second-before-window-end", ok(1),
                    secrets=[rec(new), rec(old, not_after=t + 1)]))
    add(verify_case("empty-keyring", err("no-usable-secret"), secrets=[]))
    add(verify_case("all-secrets-expired", err("no-usable-secret"),
                    secrets=[rec(new, not_after=t), rec(old, not_after=t - 100)]))
    add(verify_case("only-secret-not-yet-valid", err("no-usable-secret"),
                    secrets=[rec(old, not_before=t + 1)]))
    add(verify_case("not-before-equal-to-now-is-usable", ok(), secrets=[rec(old, not_before=t)]))
    add(verify_case("window-judged-at-now-not-timestamp", err("no-usable-secret"),
                    secrets=[rec(old, not_after=t + 100)], now=t + 100))
    add(verify_case("future-secret-skipped-old-matches", ok(1),
                    secrets=[rec(new, not_before=t + 10), rec(old)], headers=hdrs(signature=both)))
    add(verify_case("stale-timestamp-before-no-usable-secret", err("timestamp-too-old"),
                    secrets=[rec(old, not_after=t)], now=t + 301))
    add(verify_case("no-usable-secret-before-signature-check", err("no-usable-secret"),
                    secrets=[rec(old, not_after=t)], headers=hdrs(signature="v1,")))
    add(verify_case("third-secret-matches", ok(2),
                    secrets=[rec(whsec(key_bytes(40, 3))), rec(new), rec(old)]))
    return "Verification (docs/SPEC.md section 3): every check, in order, and its boundaries.", cases


def rotate_file():
    t, old, new = SPEC_TS, SPEC_KEY, NEW_KEY
    cases = []

    def rotate(name, secrets, expect, now=t, grace=None, new_secret=new):
        case = {"name": name, "op": "rotate", "secrets": secrets, "now": now}
        if grace is not None:
            case["graceSeconds"] = grace
        case["newSecret"] = new_secret
        case["expect"] = expect
        cases.append(case)

    def keys(n, start):
        return [whsec(key_bytes(32, start + 13 * i)) for i in range(n)]

    rotate("custom-grace-one-hour", [rec(old)], {"secrets": [rec(new), rec(old, not_after=t + 3600)]},
           grace=3600)
    rotate("grace-zero-drops-previous", [rec(old)], {"secrets": [rec(new)]}, grace=0)
    rotate("grace-604800-max", [rec(old)], {"secrets": [rec(new), rec(old, not_after=t + 604800)]},
           grace=604800)
    rotate("grace-604801-out-of-range", [rec(old)], err("invalid-input"), grace=604801)
    rotate("earlier-expiry-kept", [rec(old, not_after=t + 100)],
           {"secrets": [rec(new), rec(old, not_after=t + 100)]})
    rotate("later-expiry-shortened-to-grace", [rec(old, not_after=t + 10 * 86400)],
           {"secrets": [rec(new), rec(old, not_after=t + 86400)]})
    third = whsec(key_bytes(40, 50))
    rotate("second-rotation-keeps-earlier-expiry",
           [rec(third), rec(old, not_after=t + 600)],
           {"secrets": [rec(new), rec(third, not_after=t + 86400), rec(old, not_after=t + 600)]})
    rotate("expired-previous-dropped", [rec(third), rec(old, not_after=t - 1)],
           {"secrets": [rec(new), rec(third, not_after=t + 86400)]})
    rotate("previous-expiring-at-now-dropped", [rec(third), rec(old, not_after=t)],
           {"secrets": [rec(new), rec(third, not_after=t + 86400)]})
    rotate("future-previous-kept-with-window", [rec(old, not_before=t + 3600)],
           {"secrets": [rec(new), rec(old, not_before=t + 3600, not_after=t + 86400)]})
    rotate("empty-keyring", [], {"secrets": [rec(new)]})
    rotate("keys-written-in-canonical-form",
           [rec(whsec(key_bytes(32, 9), prefix=False, pad=False))],
           {"secrets": [rec(new), rec(whsec(key_bytes(32, 9)), not_after=t + 86400)]})
    rotate("new-secret-written-in-canonical-form", [],
           {"secrets": [rec(new)]}, new_secret=whsec(key_bytes(32), prefix=False, pad=False))
    rotate("now-near-i64-max-saturates", [rec(old)],
           {"secrets": [rec(new), rec(old, not_after=I64_MAX)]}, now=I64_MAX - 10)
    rotate("now-i64-min", [rec(old)],
           {"secrets": [rec(new), rec(old, not_after=I64_MIN + 86400)]}, now=I64_MIN)
    ten = keys(10, 1)
    rotate("ten-previous-allowed", [rec(k) for k in ten],
           {"secrets": [rec(new)] + [rec(k, not_after=t + 86400) for k in ten]})
    eleven = keys(11, 1)
    rotate("eleven-previous-too-many", [rec(k) for k in eleven], err("too-many-secrets"))
    rotate("eleven-with-one-expired-fits",
           [rec(k) for k in eleven[:10]] + [rec(eleven[10], not_after=t)],
           {"secrets": [rec(new)] + [rec(k, not_after=t + 86400) for k in eleven[:10]]})
    rotate("invalid-new-secret", [rec(old)], err("invalid-secret"), new_secret="whsec_AAAA")
    rotate("invalid-secret-in-keyring", [rec("not base64!")], err("invalid-secret"))
    rotate("invalid-secret-before-invalid-grace", [rec("whsec_")], err("invalid-secret"),
           grace=604801)
    return "Rotation (docs/SPEC.md section 4): grace, expiry, the ten-secret cap.", cases


def active_file():
    t, old, new = SPEC_TS, SPEC_KEY, NEW_KEY
    cases = []

    def active(name, secrets, expect, now=t):
        cases.append({"name": name, "op": "active", "secrets": secrets, "now": now,
                      "expect": {"active": expect}})

    active("empty-keyring", [], [])
    active("no-windows-all-active", [rec(new), rec(old)], [0, 1])
    active("not-before-inclusive", [rec(new, not_before=t), rec(old, not_before=t + 1)], [0])
    active("not-after-exclusive", [rec(new, not_after=t + 1), rec(old, not_after=t)], [0])
    active("mixed-windows", [rec(new, not_before=t + 5), rec(old, not_after=t + 5),
                             rec(whsec(key_bytes(24)), not_before=t - 5, not_after=t + 5)], [1, 2])
    active("now-i64-min", [rec(new, not_before=I64_MIN), rec(old, not_after=I64_MIN)], [0], now=I64_MIN)
    active("now-i64-max", [rec(new, not_after=I64_MAX), rec(old, not_before=I64_MAX)], [1], now=I64_MAX)
    active("empty-window-never-active", [rec(old, not_before=t + 10, not_after=t)], [])
    return "Active secrets (docs/SPEC.md sections 1 and 4): window boundaries.", cases


# Ed25519 (Standard Webhooks v1a), docs/SPEC.md sections 1 to 3.
ED_SEED = key_bytes(32, 40)
ED_OTHER_SEED = key_bytes(32, 90)
# The order of the Ed25519 group: a signature's S plus it is the same
# signature in another (malleable) encoding, which must not verify.
ED_ORDER = 2**252 + 27742317777372353535851937790883648493


def ed_public(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def whsk(seed, with_public=False):
    raw = seed + ed_public(seed) if with_public else seed
    return "whsk_" + base64.b64encode(raw).decode()


def whpk(seed):
    return "whpk_" + base64.b64encode(ed_public(seed)).decode()


def ed_signature(seed, msg_id=SPEC_ID, ts=SPEC_TS, body=SPEC_BODY):
    body = body.encode() if isinstance(body, str) else body
    content = f"{msg_id}.{ts}.".encode() + body
    return Ed25519PrivateKey.from_private_bytes(seed).sign(content)


def v1a(seed, **message):
    return "v1a," + base64.b64encode(ed_signature(seed, **message)).decode()


def v1a_file():
    sk, sk64, pk = whsk(ED_SEED), whsk(ED_SEED, with_public=True), whpk(ED_SEED)
    other_pk = whpk(ED_OTHER_SEED)
    t = SPEC_TS
    cases = []
    add = cases.append
    signature = v1a(ED_SEED)

    def signed(header):
        return hdrs(signature=header)

    # Keys: the seed form and the seed-and-public-key form sign alike; the
    # 64-byte form's public half must be its seed's.
    add(sign_case("sign-whsk-32-byte-seed", [rec(sk)], {"signature": signature}))
    add(sign_case("sign-whsk-64-byte-seed-and-public-key", [rec(sk64)], {"signature": signature}))
    add(sign_case("sign-whsk-unpadded", [rec(sk.rstrip("="))], {"signature": signature}))
    mismatched = "whsk_" + base64.b64encode(ED_SEED + ed_public(ED_OTHER_SEED)).decode()
    add(sign_case("whsk-64-byte-form-with-another-public-key", [rec(mismatched)], err("invalid-secret")))
    add(sign_case("whsk-31-bytes", [rec("whsk_" + base64.b64encode(ED_SEED[:31]).decode())],
                  err("invalid-secret")))
    add(sign_case("whsk-33-bytes", [rec("whsk_" + base64.b64encode(ED_SEED + b"x").decode())],
                  err("invalid-secret")))
    add(sign_case("whsk-empty", [rec("whsk_")], err("invalid-secret")))
    add(sign_case("whpk-31-bytes", [rec("whpk_" + base64.b64encode(ed_public(ED_SEED)[:31]).decode())],
                  err("invalid-secret")))
    # y = 2 is not the y of any curve point.
    not_a_point = "whpk_" + base64.b64encode((2).to_bytes(32, "little")).decode()
    add(sign_case("whpk-not-a-curve-point", [rec(not_a_point)], err("invalid-secret")))
    # The identity point: a small-order key that would verify forged signatures.
    identity = "whpk_" + base64.b64encode((1).to_bytes(32, "little")).decode()
    add(sign_case("whpk-small-order-point", [rec(identity)], err("invalid-secret")))
    add(sign_case("whpk-prefix-upper-case", [rec(pk.replace("whpk_", "WHPK_"))], err("invalid-secret")))

    # Signing: v1 and v1a entries in keyring order; public keys cannot sign.
    add(sign_case("sign-hmac-then-ed25519", [rec(SPEC_KEY), rec(sk)],
                  {"signature": SPEC_SIG + " " + signature}))
    add(sign_case("sign-ed25519-then-hmac", [rec(sk), rec(SPEC_KEY)],
                  {"signature": signature + " " + SPEC_SIG}))
    add(sign_case("sign-skips-public-keys", [rec(pk), rec(sk)], {"signature": signature}))
    add(sign_case("sign-with-only-a-public-key", [rec(pk)], err("no-usable-secret")))
    add(sign_case("sign-skips-expired-ed25519-key", [rec(sk, not_after=t), rec(SPEC_KEY)],
                  {"signature": SPEC_SIG}))
    binary = bytes([0xff, 0x00, 0xfe, 0x80])
    add(sign_case("sign-ed25519-binary-payload", [rec(sk)], {"signature": v1a(ED_SEED, body=binary)},
                  body=binary))

    # Verification.
    add(verify_case("verify-with-public-key", ok(), secrets=[rec(pk)], headers=signed(signature)))
    add(verify_case("verify-with-signing-key", ok(), secrets=[rec(sk)], headers=signed(signature)))
    add(verify_case("verify-with-64-byte-signing-key", ok(), secrets=[rec(sk64)], headers=signed(signature)))
    add(verify_case("verify-svix-header-names", ok(), secrets=[rec(pk)],
                    headers=hdrs(signature=signature, family="svix")))
    add(verify_case("verify-mixed-header-hmac-key", ok(), secrets=[rec(SPEC_KEY)],
                    headers=signed(SPEC_SIG + " " + signature)))
    add(verify_case("verify-mixed-header-public-key", ok(), secrets=[rec(pk)],
                    headers=signed(SPEC_SIG + " " + signature)))
    add(verify_case("verify-mixed-keyring-second-key-matches", ok(1),
                    secrets=[rec(NEW_KEY), rec(pk)], headers=signed(SPEC_SIG + " " + signature)))
    add(verify_case("verify-rotated-public-keys-previous-matches", ok(1),
                    secrets=[rec(other_pk), rec(pk, not_after=t + 10)], headers=signed(signature)))
    add(verify_case("verify-v1a-entry-never-matches-hmac-key", err("no-matching-signature"),
                    secrets=[rec(SPEC_KEY)], headers=signed(signature)))
    add(verify_case("verify-v1-entry-never-matches-public-key", err("no-matching-signature"),
                    secrets=[rec(pk)], headers=signed(SPEC_SIG)))
    add(verify_case("verify-v1a-as-v1-entry-never-matches", err("no-matching-signature"),
                    secrets=[rec(pk)], headers=signed(signature.replace("v1a,", "v1,"))))
    add(verify_case("verify-another-key", err("no-matching-signature"),
                    secrets=[rec(other_pk)], headers=signed(signature)))
    add(verify_case("verify-tampered-body", err("no-matching-signature"),
                    secrets=[rec(pk)], headers=signed(signature), body=SPEC_BODY + " "))
    add(verify_case("verify-tampered-id", err("no-matching-signature"),
                    secrets=[rec(pk)], headers=hdrs(msg_id=SPEC_ID + "x", signature=signature)))
    raw = ed_signature(ED_SEED)
    s_value = int.from_bytes(raw[32:], "little") + ED_ORDER
    malleated = "v1a," + base64.b64encode(raw[:32] + s_value.to_bytes(32, "little")).decode()
    add(verify_case("verify-malleated-signature-s-plus-order", err("no-matching-signature"),
                    secrets=[rec(pk)], headers=signed(malleated)))
    add(verify_case("verify-v1a-63-bytes-skipped", err("no-matching-signature"),
                    secrets=[rec(pk)], headers=signed("v1a," + base64.b64encode(raw[:63]).decode())))
    add(verify_case("verify-v1a-unpadded", ok(), secrets=[rec(pk)], headers=signed(signature.rstrip("="))))
    add(verify_case("verify-v1a-not-base64-skipped", ok(), secrets=[rec(pk)],
                    headers=signed("v1a,@@@@ " + signature)))
    decoys = [v1a(ED_OTHER_SEED, msg_id=f"decoy{i}") for i in range(11)]
    add(verify_case("verify-12-v1a-entries-last-matches", ok(), secrets=[rec(pk)],
                    headers=signed(" ".join(decoys + [signature]))))
    add(verify_case("verify-13-v1a-entries-invalid-header", err("invalid-header"), secrets=[rec(pk)],
                    headers=signed(" ".join(decoys + [decoys[0], signature]))))
    add(verify_case("verify-stale-before-signature", err("timestamp-too-old"), secrets=[rec(pk)],
                    headers=signed(signature), now=t + 301))
    add(verify_case("verify-public-key-outside-window", err("no-usable-secret"),
                    secrets=[rec(pk, not_before=t + 1)], headers=signed(signature)))

    # Rotation and windows: the same rules for every kind; keys are written
    # back in the seed form.
    add({"name": "rotate-ed25519-to-hmac", "op": "rotate", "secrets": [rec(sk64)], "now": t,
         "graceSeconds": 3600, "newSecret": NEW_KEY,
         "expect": {"secrets": [rec(NEW_KEY), rec(sk, not_after=t + 3600)]}})
    add({"name": "rotate-public-keys", "op": "rotate", "secrets": [rec(pk)], "now": t,
         "newSecret": other_pk, "expect": {"secrets": [rec(other_pk), rec(pk, not_after=t + 86400)]}})
    add({"name": "rotate-to-invalid-whsk", "op": "rotate", "secrets": [rec(sk)], "now": t,
         "newSecret": "whsk_AAAA", "expect": err("invalid-secret")})
    add({"name": "active-mixed-kinds", "op": "active", "now": t,
         "secrets": [rec(sk, not_before=t + 1), rec(pk), rec(SPEC_KEY, not_after=t)],
         "expect": {"active": [1]}})
    return ("Standard Webhooks v1a (Ed25519): whsk_ and whpk_ keys, signing and verifying mixed "
            "headers, strict verification, rotation.", cases)


# The providers' schemes (docs/SPEC.md section 7).
STRIPE_KEY = "whsec_" + "stripeTestSecret0123456789abcdef"
GITHUB_DOC_SECRET = "It's a Secret to Everybody"
GITHUB_DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
SLACK_DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_DOC_TS = 1531420618
SLACK_DOC_BODY = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
                  "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
                  "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
                  "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def provider_mac(secret, content):
    return hmac.new(secret.encode(), content, hashlib.sha256).digest()


def stripe_value(secrets, ts=SPEC_TS, body=SPEC_BODY):
    entries = [f"v1={provider_mac(key, f'{ts}.{body}'.encode()).hex()}" for key in secrets]
    return ",".join([f"t={ts}"] + entries)


def github_value(secret, body=SPEC_BODY):
    return "sha256=" + provider_mac(secret, body.encode()).hex()


def slack_value(secret, ts=SPEC_TS, body=SPEC_BODY):
    return "v0=" + provider_mac(secret, f"v0:{ts}:{body}".encode()).hex()


def shopify_value(secret, body=SPEC_BODY):
    return base64.b64encode(provider_mac(secret, body.encode())).decode()


def providers_file():
    # The published examples, recomputed here so that a typo cannot pass.
    assert github_value(GITHUB_DOC_SECRET, "Hello, World!") == GITHUB_DOC_SIGNATURE
    assert slack_value(SLACK_DOC_SECRET, SLACK_DOC_TS, SLACK_DOC_BODY) == SLACK_DOC_SIGNATURE
    t = SPEC_TS
    other = "another provider secret"
    cases = []

    def case(scheme, **fields):
        name, op = fields.pop("name"), fields.pop("op")
        built = (sign_case if op == "sign" else verify_case)(name, **fields)
        cases.append({"name": built.pop("name"), "op": built.pop("op"), "scheme": scheme, **built})

    # Stripe: the whole `whsec_` text is the key (never base64-decoded).
    stripe = lambda value: [["Stripe-Signature", value]]
    case("stripe", name="stripe-sign", op="sign", secrets=[rec(STRIPE_KEY)],
         expect={"signature": stripe_value([STRIPE_KEY])})
    case("stripe", name="stripe-sign-every-usable-secret", op="sign",
         secrets=[rec(STRIPE_KEY), rec(other, not_after=t + 60)],
         expect={"signature": stripe_value([STRIPE_KEY, other])})
    case("stripe", name="stripe-verify", op="verify", expect=ok(), secrets=[rec(STRIPE_KEY)],
         headers=stripe(stripe_value([STRIPE_KEY])))
    case("stripe", name="stripe-verify-second-v1-entry-and-v0-ignored", op="verify", expect=ok(),
         secrets=[rec(STRIPE_KEY)],
         headers=stripe(f"t={t},v1={'0' * 64},v0={'1' * 64},"
                        + stripe_value([STRIPE_KEY]).split(",")[1]))
    case("stripe", name="stripe-verify-previous-secret", op="verify", expect=ok(1),
         secrets=[rec(other), rec(STRIPE_KEY, not_after=t + 60)], headers=stripe(stripe_value([STRIPE_KEY])))
    # (The key's text after `whsec_` is valid base64 too: this is the mistake it pins.)
    case("stripe", name="stripe-secret-is-text-not-base64", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(STRIPE_KEY)],
         headers=stripe(f"t={t},v1=" + hmac.new(decode_key(STRIPE_KEY), f"{t}.{SPEC_BODY}".encode(),
                                                hashlib.sha256).hexdigest()))
    case("stripe", name="stripe-tampered-body", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(STRIPE_KEY)], headers=stripe(stripe_value([STRIPE_KEY])), body=SPEC_BODY + " ")
    case("stripe", name="stripe-stale", op="verify", expect=err("timestamp-too-old"),
         secrets=[rec(STRIPE_KEY)], headers=stripe(stripe_value([STRIPE_KEY])), now=t + 301)
    case("stripe", name="stripe-future", op="verify", expect=err("timestamp-too-new"),
         secrets=[rec(STRIPE_KEY)], headers=stripe(stripe_value([STRIPE_KEY])), now=t - 301)
    case("stripe", name="stripe-tolerance-600", op="verify", expect=ok(), tolerance=600,
         secrets=[rec(STRIPE_KEY)], headers=stripe(stripe_value([STRIPE_KEY])), now=t + 600)
    case("stripe", name="stripe-no-timestamp", op="verify", expect=err("invalid-header"),
         secrets=[rec(STRIPE_KEY)], headers=stripe(stripe_value([STRIPE_KEY]).split(",", 1)[1]))
    case("stripe", name="stripe-two-timestamps", op="verify", expect=err("invalid-header"),
         secrets=[rec(STRIPE_KEY)], headers=stripe(f"t={t}," + stripe_value([STRIPE_KEY])))
    case("stripe", name="stripe-33-entries", op="verify", expect=err("invalid-header"),
         secrets=[rec(STRIPE_KEY)], headers=stripe(stripe_value([STRIPE_KEY]) + ",v0=0" * 32))
    case("stripe", name="stripe-missing-header", op="verify", expect=err("missing-header"),
         secrets=[rec(STRIPE_KEY)], headers=hdrs())
    case("stripe", name="stripe-no-usable-secret", op="verify", expect=err("no-usable-secret"),
         secrets=[rec(STRIPE_KEY, not_after=t)], headers=stripe(stripe_value([STRIPE_KEY])))
    case("stripe", name="stripe-empty-secret", op="sign", secrets=[rec("")], expect=err("invalid-secret"))
    case("stripe", name="stripe-secret-257-bytes", op="sign", secrets=[rec("s" * 257)],
         expect=err("invalid-secret"))
    case("stripe", name="stripe-secret-256-bytes", op="sign", secrets=[rec("s" * 256)],
         expect={"signature": stripe_value(["s" * 256])})

    # GitHub: the body only; the id is X-GitHub-Delivery.
    def github(value, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958"):
        return [["X-GitHub-Delivery", delivery], ["X-Hub-Signature-256", value]]
    case("github", name="github-documented-example", op="verify", expect=ok(),
         secrets=[rec(GITHUB_DOC_SECRET)], headers=github(GITHUB_DOC_SIGNATURE), body="Hello, World!")
    case("github", name="github-documented-example-sign", op="sign", secrets=[rec(GITHUB_DOC_SECRET)],
         body="Hello, World!", expect={"signature": GITHUB_DOC_SIGNATURE})
    case("github", name="github-upper-case-hex", op="verify", expect=ok(),
         secrets=[rec(GITHUB_DOC_SECRET)], headers=github("sha256=" + GITHUB_DOC_SIGNATURE[7:].upper()),
         body="Hello, World!")
    case("github", name="github-previous-secret", op="verify", expect=ok(1),
         secrets=[rec(other), rec(GITHUB_DOC_SECRET, not_after=t + 1)], headers=github(GITHUB_DOC_SIGNATURE),
         body="Hello, World!")
    case("github", name="github-tampered-body", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(GITHUB_DOC_SECRET)], headers=github(GITHUB_DOC_SIGNATURE), body="Hello, World?")
    case("github", name="github-sha1-prefix-never-matches", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(GITHUB_DOC_SECRET)], headers=github("sha1=" + GITHUB_DOC_SIGNATURE[7:]),
         body="Hello, World!")
    case("github", name="github-missing-delivery", op="verify", expect=err("missing-header"),
         secrets=[rec(GITHUB_DOC_SECRET)], headers=github(GITHUB_DOC_SIGNATURE)[1:], body="Hello, World!")
    case("github", name="github-delivery-with-space", op="verify", expect=err("invalid-header"),
         secrets=[rec(GITHUB_DOC_SECRET)], headers=github(GITHUB_DOC_SIGNATURE, "a b"), body="Hello, World!")
    case("github", name="github-repeated-signature", op="verify", expect=err("invalid-header"),
         secrets=[rec(GITHUB_DOC_SECRET)],
         headers=github(GITHUB_DOC_SIGNATURE) + [["x-hub-signature-256", GITHUB_DOC_SIGNATURE]],
         body="Hello, World!")
    case("github", name="github-no-timestamp-check", op="verify", expect=ok(),
         secrets=[rec(GITHUB_DOC_SECRET)], headers=github(GITHUB_DOC_SIGNATURE), body="Hello, World!",
         now=I64_MAX)

    # Slack: v0:timestamp:body.
    def slack(value, ts=SLACK_DOC_TS):
        return [["X-Slack-Request-Timestamp", str(ts)], ["X-Slack-Signature", value]]
    case("slack", name="slack-documented-example", op="verify", expect=ok(), secrets=[rec(SLACK_DOC_SECRET)],
         headers=slack(SLACK_DOC_SIGNATURE), body=SLACK_DOC_BODY, now=SLACK_DOC_TS)
    case("slack", name="slack-documented-example-sign", op="sign", secrets=[rec(SLACK_DOC_SECRET)],
         body=SLACK_DOC_BODY, ts=SLACK_DOC_TS, expect={"signature": SLACK_DOC_SIGNATURE})
    case("slack", name="slack-stale", op="verify", expect=err("timestamp-too-old"),
         secrets=[rec(SLACK_DOC_SECRET)], headers=slack(SLACK_DOC_SIGNATURE), body=SLACK_DOC_BODY,
         now=SLACK_DOC_TS + 301)
    case("slack", name="slack-timestamp-not-digits", op="verify", expect=err("invalid-header"),
         secrets=[rec(SLACK_DOC_SECRET)], headers=slack(SLACK_DOC_SIGNATURE, ts="-1"), body=SLACK_DOC_BODY,
         now=SLACK_DOC_TS)
    case("slack", name="slack-tampered-body", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(SLACK_DOC_SECRET)], headers=slack(SLACK_DOC_SIGNATURE), body=SLACK_DOC_BODY + "&x=1",
         now=SLACK_DOC_TS)
    case("slack", name="slack-other-version-never-matches", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(SLACK_DOC_SECRET)], headers=slack("v1=" + SLACK_DOC_SIGNATURE[3:]),
         body=SLACK_DOC_BODY, now=SLACK_DOC_TS)
    case("slack", name="slack-missing-timestamp", op="verify", expect=err("missing-header"),
         secrets=[rec(SLACK_DOC_SECRET)], headers=slack(SLACK_DOC_SIGNATURE)[1:], body=SLACK_DOC_BODY,
         now=SLACK_DOC_TS)
    case("slack", name="slack-previous-secret", op="verify", expect=ok(1),
         secrets=[rec(other), rec(SLACK_DOC_SECRET)], headers=slack(slack_value(SLACK_DOC_SECRET), ts=t))

    # Shopify: base64 of the body's HMAC; the id is X-Shopify-Webhook-Id.
    shop = "shpss_0123456789abcdef0123456789abcdef"

    def shopify(value):
        return [["X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"],
                ["X-Shopify-Hmac-Sha256", value]]
    case("shopify", name="shopify-sign", op="sign", secrets=[rec(shop)],
         expect={"signature": shopify_value(shop)})
    case("shopify", name="shopify-verify", op="verify", expect=ok(), secrets=[rec(shop)],
         headers=shopify(shopify_value(shop)))
    case("shopify", name="shopify-verify-unpadded", op="verify", expect=ok(), secrets=[rec(shop)],
         headers=shopify(shopify_value(shop).rstrip("=")))
    case("shopify", name="shopify-hex-never-matches", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(shop)], headers=shopify(provider_mac(shop, SPEC_BODY.encode()).hex()))
    case("shopify", name="shopify-previous-secret", op="verify", expect=ok(1),
         secrets=[rec(other), rec(shop, not_before=t - 10)], headers=shopify(shopify_value(shop)))
    case("shopify", name="shopify-tampered-body", op="verify", expect=err("no-matching-signature"),
         secrets=[rec(shop)], headers=shopify(shopify_value(shop)), body="{}")
    case("shopify", name="shopify-missing-id", op="verify", expect=err("missing-header"),
         secrets=[rec(shop)], headers=shopify(shopify_value(shop))[1:])

    # Rotation keeps the scheme's text keys as given.
    cases.append({"name": "slack-rotate", "op": "rotate", "scheme": "slack", "secrets": [rec(SLACK_DOC_SECRET)],
                  "now": t, "graceSeconds": 60, "newSecret": "a new slack secret",
                  "expect": {"secrets": [rec("a new slack secret"), rec(SLACK_DOC_SECRET, not_after=t + 60)]}})
    cases.append({"name": "stripe-rotate-empty-secret", "op": "rotate", "scheme": "stripe",
                  "secrets": [rec(STRIPE_KEY)], "now": t, "newSecret": "", "expect": err("invalid-secret")})
    return ("The providers' schemes (docs/SPEC.md section 7): Stripe, GitHub, Slack and Shopify, with their "
            "published examples where there are some.", cases)


def main():
    for stem, build in [("secrets", secrets_file), ("sign", sign_file), ("verify", verify_file),
                        ("rotate", rotate_file), ("active", active_file), ("v1a", v1a_file),
                        ("providers", providers_file)]:
        description, cases = build()
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), f"{stem}: duplicate case names"
        doc = {"format": "hooksign-vectors/1", "description": description, "cases": cases}
        path = OUT / f"{stem}.json"
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        print(f"{path.relative_to(OUT.parent.parent)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
