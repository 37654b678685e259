#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the vector files (tests/vectors/*.json)."""
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
