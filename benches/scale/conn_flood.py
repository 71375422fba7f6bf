#!/usr/bin/env python3
"""Scenario B client: hold N SMTP sessions open at once, then send one message on each.

Phase 1 (open): opens --connections TCP connections to --server, at most --connect-parallel
connecting at a time, spread over --sources local addresses (127.x.y.z, round robin); each
reads the 220 greeting and does EHLO, then stays open and idle.
Peak: once every connection is open (or failed), samples the MTA's memory from
/proc/--mta-pid/status and, with --metrics-cmd, runs that command and picks `smtp_sessions`
from its Prometheus output; then waits --hold seconds with everything open.
Phase 2 (send): every open connection sends MAIL, RCPT, DATA and a --size octet message at
the same moment, waits for the 250, and says QUIT.

Prints a JSON report on the last line (and a readable summary before it). Everything is
bounded: --timeout per reply, --max-seconds for the whole run (what is unfinished then
counts as failed). Addresses must be loopback (127.0.0.0/8).
"""

import argparse
import asyncio
import ipaddress
import json
import os
import resource
import subprocess
import sys
import time


def proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB (None if unreadable)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


async def read_reply(reader, timeout):
    """One (possibly multi-line) SMTP reply: (code, last line)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed")
        text = line.decode("ascii", "replace").rstrip("\r\n")
        if len(text) < 3:
            raise ConnectionError(f"short reply {text!r}")
        if len(text) == 3 or text[3] == " ":
            return int(text[:3]), text


class Session:
    """One client connection and its outcome."""

    __slots__ = ("index", "source", "reader", "writer", "error", "queued")

    def __init__(self, index, source):
        self.index, self.source = index, source
        self.reader = self.writer = self.error = None
        self.queued = False


async def open_one(s, host, port, sem, timeout, helo):
    async with sem:
        try:
            s.reader, s.writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(s.source, 0), limit=8192),
                timeout,
            )
            code, line = await read_reply(s.reader, timeout)
            if code != 220:
                raise ConnectionError(f"greeting {line}")
            s.writer.write(f"EHLO {helo}\r\n".encode())
            code, line = await read_reply(s.reader, timeout)
            if code != 250:
                raise ConnectionError(f"EHLO {line}")
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            s.error = f"open: {type(e).__name__}: {e}"
            close(s)


def close(s):
    if s.writer is not None:
        try:
            s.writer.close()
        except Exception:  # noqa: BLE001 - closing a dead socket is best effort
            pass
    s.writer = None


async def send_one(s, body, domains, timeout):
    rcpt = f"user{s.index}@{domains[s.index % len(domains)]}"
    try:
        for cmd, want in (
            ("MAIL FROM:<flood@scale.test>", 2),
            (f"RCPT TO:<{rcpt}>", 2),
            ("DATA", 3),
        ):
            s.writer.write(cmd.encode() + b"\r\n")
            code, line = await read_reply(s.reader, timeout)
            if code // 100 != want:
                raise ConnectionError(f"{cmd.split()[0]}: {line}")
        s.writer.write(body)
        code, line = await read_reply(s.reader, timeout)
        if code != 250:
            raise ConnectionError(f"end of data: {line}")
        s.queued = True
        s.writer.write(b"QUIT\r\n")
        try:
            await asyncio.wait_for(read_reply(s.reader, timeout), timeout)
        except (OSError, ConnectionError, asyncio.TimeoutError):
            pass
    except (OSError, ConnectionError, asyncio.TimeoutError) as e:
        s.error = f"send: {type(e).__name__}: {e}"
    finally:
        close(s)


def sources_list(first, count):
    base = ipaddress.IPv4Address(first)
    out = [str(base + i) for i in range(count)]
    for a in out:
        if not ipaddress.IPv4Address(a).is_loopback:
            raise SystemExit(f"source {a} is not loopback")
    return out


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


async def run(args):
    host, port = args.server.rsplit(":", 1)
    port = int(port)
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit("server must be on loopback")
    sources = sources_list(args.source_first, args.sources)
    domains = [d for d in args.domains.split(",") if d]
    sessions = [Session(i, sources[i % len(sources)]) for i in range(args.connections)]
    lines = [
        "From: flood@scale.test",
        "To: scale@scale.test",
        "Subject: scale test B",
        "",
    ]
    filler = "x" * 70
    body = "\r\n".join(lines) + "\r\n"
    while len(body) < args.size:
        body += filler + "\r\n"
    body = (body + ".\r\n").encode()

    report = {"connections": args.connections, "sources": len(sources)}
    t0 = time.monotonic()
    sem = asyncio.Semaphore(args.connect_parallel)
    await asyncio.gather(
        *(open_one(s, host, port, sem, args.timeout, args.helo) for s in sessions)
    )
    t_open = time.monotonic() - t0
    held = [s for s in sessions if s.writer is not None]
    report["open_seconds"] = round(t_open, 2)
    report["open_ok"] = len(held)
    report["open_failed"] = args.connections - len(held)
    if args.mta_pid:
        report["mta_at_peak"] = proc_status(args.mta_pid)
    if args.metrics_cmd:
        try:
            out = subprocess.run(
                args.metrics_cmd, shell=True, capture_output=True, text=True, timeout=30
            ).stdout
            report["smtp_sessions_at_peak"] = metric(out, "smtp_sessions")
        except subprocess.TimeoutExpired:
            report["smtp_sessions_at_peak"] = None
    report["client_at_peak"] = proc_status(os.getpid())
    print(
        f"peak: {len(held)} of {args.connections} sessions open after {t_open:.2f} s; "
        f"mta {report.get('mta_at_peak')}; smtp_sessions {report.get('smtp_sessions_at_peak')}",
        flush=True,
    )
    await asyncio.sleep(args.hold)
    t1 = time.monotonic()
    await asyncio.gather(*(send_one(s, body, domains, args.timeout) for s in held))
    t_send = time.monotonic() - t1
    queued = sum(1 for s in sessions if s.queued)
    report["send_seconds"] = round(t_send, 2)
    report["messages_queued"] = queued
    report["total_seconds"] = round(time.monotonic() - t0, 2)
    if args.mta_pid:
        report["mta_after"] = proc_status(args.mta_pid)
    errors = {}
    for s in sessions:
        if s.error:
            key = s.error.split(":")[0] + ": " + s.error.split(":", 2)[1].strip()
            errors[key] = errors.get(key, 0) + 1
    report["errors"] = errors
    report["first_errors"] = [s.error for s in sessions if s.error][:5]
    print(
        f"sent: {queued} messages queued in {t_send:.2f} s; "
        f"all {args.connections} ok: {queued == args.connections}",
        flush=True,
    )
    return report


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="HOST:PORT (loopback)")
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--connect-parallel", type=int, default=512,
                   help="connections being set up at once (the listen backlog is 1024)")
    p.add_argument("--source-first", default="127.0.2.1", help="first local address")
    p.add_argument("--sources", type=int, default=50, help="local addresses to spread over")
    p.add_argument("--domains", default="scale.test", help="comma-separated recipient domains")
    p.add_argument("--size", type=int, default=4096, help="message size in octets")
    p.add_argument("--helo", default="flood.scale.test")
    p.add_argument("--hold", type=float, default=2.0, help="seconds to hold the peak")
    p.add_argument("--timeout", type=float, default=60.0, help="per-reply timeout")
    p.add_argument("--max-seconds", type=float, default=300.0, help="bound on the whole run")
    p.add_argument("--mta-pid", type=int)
    p.add_argument("--metrics-cmd", help="shell command printing the MTA's /metrics")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < need:
        print(f"warning: RLIMIT_NOFILE {soft} < {need}", file=sys.stderr)

    async def bounded():
        return await asyncio.wait_for(run(args), args.max_seconds)

    try:
        report = asyncio.run(bounded())
    except asyncio.TimeoutError:
        report = {"error": f"did not finish within {args.max_seconds} s"}
    print(json.dumps(report))
    return 0 if report.get("messages_queued") == args.connections else 1


if __name__ == "__main__":
    sys.exit(main())
