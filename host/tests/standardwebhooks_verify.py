"""Verifies a delivery with the Python `standardwebhooks` library, the
Standard Webhooks reference implementation, for the wire tests.

Usage: standardwebhooks_verify.py SECRET < {"headers": {...}, "body": "..."}
Exits 0 if it verifies, 1 with the library's error otherwise.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

secret = sys.argv[1]
delivery = json.load(sys.stdin)
try:
    Webhook(secret).verify(delivery["body"], delivery["headers"])
except Exception as error:  # the library's WebhookVerificationError, or a malformed input
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(1)
