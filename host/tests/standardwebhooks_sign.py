"""Signs a delivery with the Python `standardwebhooks` library, a peer
implementation, for the receiver-gateway tests.

Usage: standardwebhooks_sign.py SECRET MSG_ID TIMESTAMP < BODY
Prints the webhook-signature value.
"""
import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

secret, msg_id, timestamp = sys.argv[1:4]
body = sys.stdin.buffer.read().decode("utf-8")
when = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
print(Webhook(secret).sign(msg_id, when, body))
