#!/usr/bin/env python3
"""Scale tests of the MTA: queue (A), connections (B) and sites (C). See docs/performance.md.

A  queue:       fills the spool with --recipients queued recipients (delivery suspended),
                measures the MTA's memory per queued recipient, restarts it and measures
                how soon it accepts mail (smtp_probe.py) and how long it takes to load the
                whole queue back.
B  connections: holds --connections SMTP sessions open at once (conn_flood.py), measures
                memory per session, then sends one message on each and waits for all to
                be relayed to the sink.
C  sites:       relays --messages messages to --sites domains, each with its own MX host
                (its own destination site, so its own connection pool), resolved through
                mta-dns, delivered to one mta-sink; measures the end-to-end rate, the
                pools and memory.

Every process listens on loopback only; every wait is bounded. Writes a JSON report per
scenario into --results and prints a summary. Needs the release binaries mta, mta-load,
mta-sink and mta-dns in --bin (run.sh builds them).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from conn_flood import proc_status  # noqa: E402 - VmRSS, VmHWM, threads, fds of a pid


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline_s, proc=None):
    end = time.time() + deadline_s
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {deadline_s} s")


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Mta:
    """One `mta run` process on a config in its own directory."""

    def __init__(self, bin_dir, work, config_text):
        self.bin = os.path.join(bin_dir, "mta")
        self.work = work
        self.config = os.path.join(work, "mta.toml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.proc = None
        self.log_file = None

    def start(self, port, wait=True):
        self.log_file = open(os.path.join(self.work, "mta.log"), "ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = subprocess.Popen(
            [self.bin, "run", "--config", self.config],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=env, cwd=self.work,
        )
        if wait:
            wait_port(port, 60, self.proc)
        return self.proc

    def ctl(self, *args, timeout=60):
        out = subprocess.run(
            [self.bin, "ctl", "--config", self.config, *args],
            capture_output=True, text=True, timeout=timeout, cwd=self.work,
        )
        if out.returncode != 0:
            raise SystemExit(f"mta ctl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def metrics(self):
        """The Prometheus exposition as {name{labels}: value}."""
        values = {}
        for line in self.ctl("metrics").splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
        return values

    def metric(self, name):
        return self.metrics().get(name)

    def stop(self, timeout=120):
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise SystemExit(f"mta did not stop within {timeout} s of SIGTERM")
        return time.time() - t

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def base_config(work, port, extra=""):
    return f"""hostname = "scale.bench.invalid"
[spool]
path = "{work}/spool"
[admin]
socket = "{work}/admin.sock"
[delivery_log]
path = "{work}/log/delivery.jsonl"
[[listener]]
address = "127.0.0.1:{port}"
relay_networks = ["127.0.0.0/8"]
max_connections_per_ip = 1000
{extra}
"""


def run_load(bin_dir, port, messages, domains, size, concurrency, recipients=1, max_seconds=3600):
    cmd = [
        os.path.join(bin_dir, "mta-load"), "--server", f"127.0.0.1:{port}",
        "--messages", str(messages), "--concurrency", str(concurrency),
        "--size", str(size), "--recipients", str(recipients), "--domains", domains,
        "--pipelining", "--max-seconds", str(max_seconds), "--seed", "1",
    ]
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=max_seconds + 120)
    if out.returncode != 0:
        raise SystemExit(f"mta-load failed: {out.stderr.strip()}\n{out.stdout}")
    report = {"seconds": round(time.time() - t, 2), "output": out.stdout.strip().splitlines()}
    for line in report["output"]:
        if line.startswith("messages:"):
            report["accepted"] = int(line.split(":")[2].split()[0])
    return report


class Sink:
    def __init__(self, bin_dir, work, port, max_messages=None, max_seconds=3600):
        cmd = [
            os.path.join(bin_dir, "mta-sink"), "--listen", f"127.0.0.1:{port}",
            "--max-connections", "20000", "--report-every", "5",
            "--max-seconds", str(max_seconds),
        ]
        if max_messages:
            cmd += ["--max-messages", str(max_messages)]
        self.log = open(os.path.join(work, "sink.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(port, 30, self.proc)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def domain_list(prefix, count):
    return [f"d{i:04d}.{prefix}" for i in range(1, count + 1)]


# ---------------------------------------------------------------- A: queue


def scenario_queue(args, work):
    port, sink_port = free_port(), free_port()
    domains = domain_list("queue.test", args.domains)
    # Deliveries would go to a sink, but every domain is suspended before the fill, so the
    # whole queue stays queued (and the suspensions survive the restart).
    extra = f"""[[route]]
domains = ["*"]
smarthost = "127.0.0.1:{sink_port}"
"""
    mta = Mta(args.bin, work, base_config(work, port, extra))
    report = {"scenario": "queue", "recipients": args.recipients,
              "recipients_per_message": args.per_message, "size": args.size,
              "domains": len(domains)}
    try:
        mta.start(port)
        time.sleep(1)
        report["rss_empty_kib"] = proc_status(mta.proc.pid).get("VmRSS")
        for d in domains:
            mta.ctl("suspend", "--domain", d, "--for", "6h", "--reason", "scale test: keep queued")
        messages = args.recipients // args.per_message
        log(f"A: filling the queue: {messages} messages x {args.per_message} recipients")
        report["fill"] = run_load(
            args.bin, port, messages, ",".join(f"{d}:1" for d in domains), args.size,
            args.concurrency, recipients=args.per_message,
        )
        log(f"A: fill: {report['fill']['output'][1:]}")
        time.sleep(3)
        jobs = mta.metric("delivery_queued_jobs")
        report["queued_jobs_full"] = jobs
        status = proc_status(mta.proc.pid)
        report["mta_full"] = status
        report["bytes_per_recipient_filled"] = round(
            (status["VmRSS"] - report["rss_empty_kib"]) * 1024 / args.recipients, 1)
        log(f"A: full: {jobs} jobs queued, {status}")
        report["stop_seconds"] = round(mta.stop(), 2)
        report["spool_bytes"] = sum(
            os.path.getsize(os.path.join(dp, f))
            for dp, _, fs in os.walk(os.path.join(work, "spool")) for f in fs)
        log(f"A: stopped in {report['stop_seconds']} s; spool {report['spool_bytes'] >> 20} MiB")

        # Restart: when does it accept mail, when is the whole queue loaded?
        drop_caches = args.drop_caches and os.geteuid() == 0
        if drop_caches:
            subprocess.run(["sync"], check=True)
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
        report["cold_cache"] = drop_caches
        t0 = time.time()
        mta.start(port, wait=False)
        probe = subprocess.run(
            [sys.executable, os.path.join(HERE, "smtp_probe.py"), "--server",
             f"127.0.0.1:{port}", "--t0", repr(t0), "--deadline", "120",
             "--rcpt", f"probe@{domains[0]}"],
            capture_output=True, text=True, timeout=180,
        )
        report["restart_probe"] = json.loads(probe.stdout.strip().splitlines()[-1])
        log(f"A: restart probe: {report['restart_probe']}")
        recovered_at = None
        peak_rss = 0
        deadline = t0 + args.max_restart_seconds
        while time.time() < deadline:
            peak_rss = max(peak_rss, proc_status(mta.proc.pid).get("VmRSS", 0))
            m = mta.metrics()
            if m.get("spool_recovering") == 0.0 and m.get("spool_recovery_seconds"):
                recovered_at = time.time() - t0
                report["spool_recovery_seconds"] = round(m["spool_recovery_seconds"], 2)
                report["spool_recovered_pending"] = m.get("spool_recovered_pending")
                break
            time.sleep(0.25)
        if recovered_at is None:
            report["error"] = f"queue not loaded within {args.max_restart_seconds} s"
        else:
            report["queue_loaded_after_exec_seconds"] = round(recovered_at, 2)
        time.sleep(3)
        report["queued_jobs_after_restart"] = mta.metric("delivery_queued_jobs")
        status = proc_status(mta.proc.pid)
        report["mta_after_restart"] = status
        report["rss_peak_sampled_kib"] = peak_rss
        report["bytes_per_recipient_restarted"] = round(
            (status["VmRSS"] - report["rss_empty_kib"]) * 1024 / args.recipients, 1)
        log(f"A: loaded after {report.get('queue_loaded_after_exec_seconds')} s, {status}")
        mta.stop()
    finally:
        mta.kill()
    return report


# ---------------------------------------------------------- B: connections


def scenario_connections(args, work):
    port, sink_port = free_port(), free_port()
    extra = f"""[server]
max_connections = {args.connections + 2000}
[[route]]
domains = ["*"]
smarthost = "127.0.0.1:{sink_port}"
"""
    mta = Mta(args.bin, work, base_config(work, port, extra))
    sink = Sink(args.bin, work, sink_port, max_messages=args.connections)
    report = {"scenario": "connections", "connections": args.connections, "size": args.size}
    try:
        mta.start(port)
        time.sleep(1)
        report["rss_idle_kib"] = proc_status(mta.proc.pid).get("VmRSS")
        metrics_cmd = f"{os.path.join(args.bin, 'mta')} ctl --config {mta.config} metrics"
        log(f"B: opening {args.connections} sessions")
        flood = subprocess.run(
            [sys.executable, os.path.join(HERE, "conn_flood.py"),
             "--server", f"127.0.0.1:{port}", "--connections", str(args.connections),
             "--size", str(args.size), "--mta-pid", str(mta.proc.pid),
             "--metrics-cmd", metrics_cmd, "--hold", "3", "--max-seconds", "600"],
            capture_output=True, text=True, timeout=700,
        )
        lines = flood.stdout.strip().splitlines()
        for line in lines[:-1]:
            log(f"B: {line}")
        report["flood"] = json.loads(lines[-1]) if lines else {"error": flood.stderr}
        peak = report["flood"].get("mta_at_peak", {})
        if peak.get("VmRSS") and report["flood"].get("open_ok"):
            report["bytes_per_session"] = round(
                (peak["VmRSS"] - report["rss_idle_kib"]) * 1024 / report["flood"]["open_ok"])
        t = time.time()
        code = sink.wait(300)
        report["relayed_all"] = code == 0
        report["relay_wait_seconds"] = round(time.time() - t, 2)
        log(f"B: sink received all {args.connections}: {code == 0}")
        mta.stop()
    finally:
        mta.kill()
        sink.stop()
    return report


# ---------------------------------------------------------------- C: sites


def scenario_sites(args, work):
    port, sink_port, dns_port = free_port(), free_port(), free_port()
    domains = domain_list("sites.test", args.sites)
    records = os.path.join(work, "records.txt")
    with open(records, "w") as f:
        for d in domains:
            f.write(f"{d} MX 10 mx.{d}\nmx.{d} A 127.0.0.1\n")
    dns_log = open(os.path.join(work, "dns.log"), "ab")
    dns = subprocess.Popen(
        [os.path.join(args.bin, "mta-dns"), "--listen", f"127.0.0.1:{dns_port}",
         "--records", records, "--max-seconds", "3600"],
        stdout=dns_log, stderr=subprocess.STDOUT,
    )
    extra = f"""[delivery]
smtp_port = {sink_port}
[dns]
nameservers = ["127.0.0.1:{dns_port}"]
"""
    mta = Mta(args.bin, work, base_config(work, port, extra))
    sink = Sink(args.bin, work, sink_port, max_messages=args.messages)
    report = {"scenario": "sites", "sites": args.sites, "messages": args.messages,
              "size": args.size}
    try:
        wait_port(dns_port, 30, dns)
        mta.start(port)
        time.sleep(1)
        report["rss_idle_kib"] = proc_status(mta.proc.pid).get("VmRSS")
        log(f"C: sending {args.messages} messages to {args.sites} sites")
        t0 = time.time()
        report["load"] = run_load(
            args.bin, port, args.messages, ",".join(f"{d}:1" for d in domains), args.size,
            args.concurrency,
        )
        log(f"C: accepted: {report['load']['output'][1:2]}")
        peak_pools, peak_rss = 0, 0
        code = None
        end = time.time() + 600
        while time.time() < end:
            code = sink.proc.poll()
            peak_rss = max(peak_rss, proc_status(mta.proc.pid).get("VmRSS", 0))
            m = mta.metrics()
            peak_pools = max(peak_pools, m.get("delivery_pools", 0))
            if code is not None:
                break
            time.sleep(0.5)
        elapsed = time.time() - t0
        report["relayed_all"] = code == 0
        report["end_to_end_seconds"] = round(elapsed, 2)
        report["end_to_end_per_second"] = round(args.messages / elapsed)
        m = mta.metrics()
        report["delivery_pools_peak_sampled"] = peak_pools
        report["delivery_connections"] = sum(
            v for k, v in m.items() if k.startswith("delivery_connections_total"))
        report["delivered"] = sum(
            v for k, v in m.items()
            if k.startswith("delivery_recipients_total") and 'result="delivered"' in k)
        report["rss_peak_sampled_kib"] = peak_rss
        report["mta_after"] = proc_status(mta.proc.pid)
        log(f"C: all {args.messages} relayed: {code == 0} in {elapsed:.1f} s; "
            f"pools {peak_pools}, connections {report['delivery_connections']}")
        mta.stop()
    finally:
        mta.kill()
        sink.stop()
        dns.terminate()
        dns.wait(10)
    return report


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=["queue", "connections", "sites", "all"])
    p.add_argument("--bin", required=True, help="directory of mta, mta-load, mta-sink, mta-dns")
    p.add_argument("--work", default="/tmp/mta-scale", help="scratch directory (emptied)")
    p.add_argument("--results", default=os.path.join(HERE, "results"))
    p.add_argument("--recipients", type=int, default=1_000_000, help="A: queued recipients")
    p.add_argument("--per-message", type=int, default=1, help="A: recipients per message")
    p.add_argument("--domains", type=int, default=100, help="A: recipient domains")
    p.add_argument("--drop-caches", action="store_true",
                   help="A: drop the page cache before the restart (root only)")
    p.add_argument("--max-restart-seconds", type=float, default=600)
    p.add_argument("--connections", type=int, default=10_000, help="B: sessions at once")
    p.add_argument("--sites", type=int, default=1000, help="C: destination sites")
    p.add_argument("--messages", type=int, default=50_000, help="C: messages")
    p.add_argument("--size", type=int, default=2048, help="message size in octets")
    p.add_argument("--concurrency", type=int, default=50, help="A, C: load connections")
    args = p.parse_args()
    raise_nofile(65536)
    os.makedirs(args.results, exist_ok=True)
    scenarios = ["queue", "connections", "sites"] if args.scenario == "all" else [args.scenario]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ok = True
    for name in scenarios:
        work = os.path.join(args.work, name)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        fn = {"queue": scenario_queue, "connections": scenario_connections,
              "sites": scenario_sites}[name]
        report = fn(args, work)
        report["date"] = stamp
        path = os.path.join(args.results, f"{name}-{stamp}.json")
        with open(path, "w") as f:
            json.dump(report, f, indent=2)
        log(f"{name}: report in {path}")
        print(json.dumps({k: v for k, v in report.items() if k not in ("fill", "load")}))
        ok = ok and "error" not in report and report.get("relayed_all", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
