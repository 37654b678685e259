#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the vector files (tests/vectors/*.json),
and the edge target from a session of typical API calls plus each verify
vector's headers sent to the receiver gateway."""
import hashlib
import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "tests" / "vectors"


def write(target: str, data: bytes) -> None:
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


for path in sorted(VECTORS.glob("*.json")):
    for case in json.loads(path.read_text())["cases"]:
        write("keyring_json", json.dumps(case["secrets"]).encode())
        for secret in case["secrets"]:
            write("secret", secret["key"].encode())
        if case["op"] == "verify":
            # Not the arbitrary encoding, but real header text to mutate from.
            lines = "".join(f"{name}: {value}\n" for name, value in case["headers"])
            write("verify", lines.encode() + case.get("payload", "").encode())

# The signature_header target: timestamp NUL signature NUL payload, from
# the verify vectors, plus placeholders for the right tags.
for path in sorted(VECTORS.glob("*.json")):
    for case in json.loads(path.read_text())["cases"]:
        if case["op"] == "verify":
            found = {name.lower(): value for name, value in case["headers"]}
            timestamp = found.get("webhook-timestamp", found.get("svix-timestamp", ""))
            signature = found.get("webhook-signature", found.get("svix-signature", ""))
            write("signature_header", f"{timestamp}\0{signature}\0".encode() + case.get("payload", "").encode())
for timestamp in ["1700000000", "1700000300", "1699999699", "01700000000", "9223372036854775808"]:
    for signature in ["v1,{A}", "v2,{A} v1,{B}", "  v1,{B}  ", "v1,x v1,{A}"]:
        write("signature_header", f"{timestamp}\0{signature}\0{{}}".encode())

# The edge target: requests separated by NUL (see fuzz_targets/edge_request.rs).
def request(line: str, body: str = "", headers: str = "") -> bytes:
    return f"{line}\n{headers}\n{body}".encode()


PLATFORM = "authorization: Bearer sgn_plat_fuzz_0123456789abcdef\n"
CREATE = request("POST /webhooks", '{"url":"https://example.com/hook","eventTypes":["order.paid"]}')
SESSIONS = [
    [CREATE, request("GET /webhooks?limit=2"), request("GET /webhooks/{id}")],
    [CREATE, request("PATCH /webhooks/{id}", '{"description":"d","paused":false,"eventTypes":null}')],
    [CREATE, request("POST /webhooks/{id}/rotate", '{"graceSeconds":60}'), request("POST /webhooks/{id}/test")],
    [CREATE, request("POST /events", '{"type":"order.paid","data":{"n":1},"id":"msg_1"}'),
     request("GET /webhooks/{id}/attempts?limit=1")],
    [CREATE, request("DELETE /webhooks/{id}"), request("GET /webhooks/{id}")],
    [request("GET /webhooks?cursor=x&limit=0"), request("POST /webhooks", "{")],
    [request("GET /webhooks", headers="authorization: Bearer nope\n")],
    [request("SIGNED POST /inbound/shop", '{"a":1}', "content-type: application/json\n"),
     request("GET /inbound/shop/stats")],
    [request("GET /openapi.yaml")],
    [request("POST /webhooks", '{"url":"https://example.com/hook","headers":{"X-A":"1"},'
             '"sensitiveHeaders":{"authorization":"t"}}'),
     request("PATCH /webhooks/{id}", '{"headers":{"x-a":null,"x-b":"2"},"rateLimitPerSecond":5}'),
     request("POST /webhooks/{id}/test")],
    # The platform's routes, with the fuzz platform key.
    [request("POST /orgs", '{"id":"o-1","name":"O"}', PLATFORM),
     request("POST /orgs/o-1/api-keys", '{"name":"k"}', PLATFORM),
     request("POST /orgs/o-1/webhooks", '{"url":"https://example.com/o"}', PLATFORM),
     request("POST /orgs/o-1/dashboard-links", '{"ttlSeconds":60}', PLATFORM),
     request("GET /orgs?limit=1", "", PLATFORM), request("DELETE /orgs/o-1", "", PLATFORM)],
    [request("POST /dashboard/sessions", "", "authorization: Bearer sgn_link_nope\n")],
    [request("POST /event-types", '{"name":"order.paid","schema":{"type":"object","required":["n"]}}'),
     request("POST /events", '{"type":"order.paid","data":{"m":1}}'),
     request("PATCH /event-types/order.paid", '{"schema":null,"deprecated":true}'),
     request("GET /event-types"), request("DELETE /event-types/order.paid")],
    [CREATE, request("POST /events", '{"type":"order.paid","data":{}}'),
     request("GET /metrics", "", "authorization: Bearer fuzz-metrics-token-0123456789abcdef\n")],
    [CREATE, request("POST /events", '{"type":"order.paid","data":{}}'),
     request("POST /webhooks/{id}/recover", '{"since":"2023-11-14T00:00:00Z"}'),
     request("GET /webhooks/{id}/held?limit=1")],
]
for session in SESSIONS:
    write("edge_request", b"\0".join(session))
for path in sorted(VECTORS.glob("*.json")):
    for case in json.loads(path.read_text())["cases"]:
        if case["op"] == "verify":
            headers = "".join(f"{name}: {value}\n" for name, value in case["headers"])
            write("edge_request", request("POST /inbound/shop", case.get("payload", ""), headers))
