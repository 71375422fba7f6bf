#!/usr/bin/env python3
"""Restart probe for scenario A: how long after exec the MTA greets, and takes a message.

Tries to connect every few milliseconds until --deadline seconds after --t0 (the epoch time
the MTA was exec'd, from `date +%s.%N`); on a connection, reads the 220 greeting, then does
EHLO, MAIL, RCPT, DATA and waits for the 250 after the body. A refused connection or a
non-2xx/3xx reply starts over with a new connection. Prints one JSON line:

    {"connected_s": ..., "greeting_s": ..., "accepted_s": ..., "reply": "250 ...", "attempts": N}

times in seconds since --t0, or "error" when the deadline passed. Bounded by --deadline.
"""

import argparse
import json
import socket
import sys
import time


def read_reply(sock_file):
    """Reads one (possibly multi-line) SMTP reply; returns (code, last line)."""
    while True:
        line = sock_file.readline(4096)
        if not line:
            raise ConnectionError("connection closed")
        text = line.decode("ascii", "replace").rstrip("\r\n")
        if len(text) < 3:
            raise ConnectionError(f"short reply {text!r}")
        if len(text) == 3 or text[3] == " ":
            return int(text[:3]), text


def attempt(host, port, t0, rcpt, timeout):
    """One connection; returns the timings dict or raises."""
    sock = socket.create_connection((host, port), timeout=timeout)
    connected = time.time() - t0
    try:
        sock.settimeout(timeout)
        f = sock.makefile("rb")
        code, line = read_reply(f)
        if code != 220:
            raise ConnectionError(f"greeting {line!r}")
        greeting = time.time() - t0

        def cmd(text, want):
            sock.sendall(text.encode("ascii") + b"\r\n")
            code, line = read_reply(f)
            if code // 100 != want:
                raise ConnectionError(f"{text.split()[0]}: {line!r}")
            return line

        cmd("EHLO probe.scale.test", 2)
        cmd("MAIL FROM:<probe@scale.test>", 2)
        cmd(f"RCPT TO:<{rcpt}>", 2)
        cmd("DATA", 3)
        body = (
            "From: probe@scale.test\r\nTo: {0}\r\nSubject: restart probe\r\n"
            "Message-ID: <{1}@probe.scale.test>\r\n\r\nprobe\r\n.\r\n"
        ).format(rcpt, int(time.time() * 1e6))
        sock.sendall(body.encode("ascii"))
        code, line = read_reply(f)
        if code != 250:
            raise ConnectionError(f"end of data: {line!r}")
        accepted = time.time() - t0
        try:
            sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        return {
            "connected_s": round(connected, 4),
            "greeting_s": round(greeting, 4),
            "accepted_s": round(accepted, 4),
            "reply": line,
        }
    finally:
        sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="HOST:PORT")
    p.add_argument("--t0", type=float, required=True, help="epoch seconds of the exec")
    p.add_argument("--deadline", type=float, default=120.0, help="give up this long after t0")
    p.add_argument("--rcpt", default="probe@d0001.scale.test")
    p.add_argument("--timeout", type=float, default=30.0, help="per-reply timeout")
    args = p.parse_args()
    host, port = args.server.rsplit(":", 1)
    attempts, last_error = 0, None
    while time.time() - args.t0 < args.deadline:
        attempts += 1
        try:
            result = attempt(host, int(port), args.t0, args.rcpt, args.timeout)
            result["attempts"] = attempts
            print(json.dumps(result))
            return 0
        except (OSError, ConnectionError) as e:
            last_error = str(e)
            time.sleep(0.005)
    print(json.dumps({"error": f"deadline passed: {last_error}", "attempts": attempts}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
