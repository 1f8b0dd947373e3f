#!/usr/bin/env python3
"""A crmd webhook receiver that verifies every delivery, with nothing but Python's standard library.

    python3 docs/examples/webhook_receiver.py --port 8080 --secret whsec_...

crmd signs each request as Standard Webhooks defines (docs/webhooks.md):

    webhook-id:        the event's change-feed cursor, the same on every retry (dedupe on it)
    webhook-timestamp: unix seconds when this attempt was sent
    webhook-signature: "v1,<base64 HMAC-SHA256>" — two of them, space-separated, while a rotated-out
                       secret is in its grace period

and the HMAC, keyed with the secret's base64-decoded bytes (after "whsec_"), covers
"{webhook-id}.{webhook-timestamp}.{raw body}". Verify the raw bytes before parsing them, compare in
constant time, and refuse timestamps far from now (a replayed capture). Answer 2xx quickly: anything
else, or no answer within crmd's timeout, is retried (5 s, 5 min, 30 min, … for three days) and holds
back the events after it; 410 Gone turns the subscription off.
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time


class InvalidSignature(Exception):
    pass


class Verifier:
    """Checks a delivery's headers and raw body against one or more secrets (old and new while rotating)."""

    def __init__(self, *secrets, tolerance_seconds=300):
        self.keys = [base64.b64decode(secret.removeprefix("whsec_")) for secret in secrets]
        self.tolerance = tolerance_seconds

    def verify(self, headers, body, now=None):
        """Returns the parsed event, or raises InvalidSignature."""
        headers = {name.lower(): value for name, value in headers.items()}
        try:
            message_id = headers["webhook-id"]
            timestamp = headers["webhook-timestamp"]
            signatures = headers["webhook-signature"].split(" ")
        except KeyError as missing:
            raise InvalidSignature(f"missing header {missing}") from None
        now = time.time() if now is None else now
        if not timestamp.isdigit() or abs(now - int(timestamp)) > self.tolerance:
            raise InvalidSignature("timestamp too far from now")
        signed = f"{message_id}.{timestamp}.".encode() + body
        for key in self.keys:
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for signature in signatures:
                version, _, value = signature.partition(",")
                if version == "v1" and hmac.compare_digest(value, expected):
                    return json.loads(body)
        raise InvalidSignature("no signature matches")


def make_server(verifier, on_event, host="127.0.0.1", port=0):
    """An HTTP server that verifies each POST and hands the event (and its webhook-id) to on_event."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                event = verifier.verify(dict(self.headers.items()), body)
            except InvalidSignature as why:
                self.send_response(401)
                self.end_headers()
                self.wfile.write(str(why).encode())
                return
            on_event(self.headers["webhook-id"], event, dict(self.headers.items()), body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format, *args):
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret", action="append", required=True, help="whsec_… (repeat while rotating)")
    args = parser.parse_args()
    seen = set()
    lock = threading.Lock()

    def on_event(message_id, event, headers, body):
        with lock:
            if message_id in seen:  # a retry of something already handled
                return
            seen.add(message_id)
        change = event["data"]["change"]
        print(f"{message_id} {event['type']} {change.get('recordId', '')} {[c['field'] for c in change.get('changes', [])]}")

    server = make_server(Verifier(*args.secret), on_event, host="0.0.0.0", port=args.port)
    print(f"listening on :{server.server_address[1]}")
    server.serve_forever()


if __name__ == "__main__":
    main()
