"""Verifies DKIM signatures with dkimpy, the independent verifier of the dkim crate's tests.

Reads JSON on stdin: {"dns": {"<selector>._domainkey.<domain>.": "<TXT value>"},
"messages": ["<base64 message>", ...]} and writes JSON on stdout: one list per message with,
for each DKIM-Signature field from the top, {"d": domain, "s": selector, "ok": bool,
"error": text}. DNS answers come only from the given map (no network).

Requires: pip install dkimpy pynacl
"""

import base64
import json
import logging
import sys

import dkim
import nacl  # noqa: F401  (Ed25519 verification; fail early when it is missing)


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main():
    request = json.load(sys.stdin)
    dns = {name.lower(): value.encode() for name, value in request["dns"].items()}

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return dns.get(name.lower())

    out = []
    for encoded in request["messages"]:
        message = base64.b64decode(encoded)
        capture = Capture()
        logger = logging.getLogger("dkimpy-verify")
        logger.handlers = [capture]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        verifier = dkim.DKIM(message, logger=logger, minkey=1024)
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
        results = []
        for idx in range(count):
            capture.messages.clear()
            try:
                ok = bool(verifier.verify(idx=idx, dnsfunc=dnsfunc))
                error = "" if ok else "; ".join(capture.messages)
            except Exception as exc:  # a test wants the reason, not a traceback
                ok, error = False, "%s: %s" % (type(exc).__name__, exc)
            tags = dkim.util.parse_tag_value(
                [v for n, v in verifier.headers if n.lower() == b"dkim-signature"][idx]
            )
            results.append(
                {
                    "d": tags.get(b"d", b"").decode(),
                    "s": tags.get(b"s", b"").decode(),
                    "ok": ok,
                    "error": error,
                }
            )
        out.append(results)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
