#!/usr/bin/env python3
"""A real SMTP server for hookbox's tests (aiosmtpd): listens on 127.0.0.1:PORT and prints
each message it accepts as one JSON line on stdout (envelope sender and recipients, the
subject, and the decoded plain-text and HTML parts). With --fail CODE_AND_TEXT it answers every DATA with that reply instead (e.g.
"451 4.3.0 try again later")."""
import argparse
import email
import email.policy
import json
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, fail):
        self.fail = fail
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.fail:
            return self.fail
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(msg["subject"] or ""),
            "header_from": str(msg["from"] or ""),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
        }
        with self.lock:
            print(json.dumps(record), flush=True)
        return "250 2.0.0 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fail")
    a = ap.parse_args()
    controller = Controller(Sink(a.fail), hostname="127.0.0.1", port=a.port)
    controller.start()
    print(f"listening on 127.0.0.1:{a.port}", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
