#!/usr/bin/env python3
"""Runs the Autobahn TestSuite (the `kosoku` package) against one of our endpoints.

    autobahn.py server --name NAME --cmd "BIN 127.0.0.1:{port}" [--cases 1.* ...]
        starts the server under test, runs kosoku's fuzzing client against it.
    autobahn.py client --name NAME --cmd "BIN {url} {agent}" [--cases 1.* ...]
        starts kosoku's fuzzing server, runs the client under test against it.

Prints one summary line per run and exits non-zero unless every case is OK or
INFORMATIONAL (both `behavior` and `behaviorClose`), and the expected number ran.
Reports go to reports/<role>-<name>/ (git-ignored).
"""

import argparse
import collections
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

GOOD = {"OK", "INFORMATIONAL"}
ROOT = Path(__file__).resolve().parent.parent


def reserve_port() -> socket.socket:
    """A bound, not listening, socket on a free port. While it is held, no other bind to
    port 0 (a run side by side) is given that port, and the process under test can still
    listen on it (both use SO_REUSEADDR); close it once the process listens."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} did not open within {timeout}s")


def start_listening(make):
    """Starts a process that listens on a free port: `make(port)` starts it. Returns
    (port, process) once it listens."""
    with reserve_port() as reserved:
        port = reserved.getsockname()[1]
        proc = make(port)
        try:
            wait_port(port, proc)
        except BaseException:
            stop(proc)
            raise
    return port, proc


def start(cmd: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(shlex.split(cmd), start_new_session=True, **kw)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def kosoku() -> str:
    venv = ROOT / ".venv" / "bin" / "kosoku"
    return str(venv) if venv.exists() else "kosoku"


def case_args(cases, exclude):
    args = []
    for c in cases or []:
        args += ["-i", c]
    for x in exclude or []:
        args += ["-x", x]
    return args


def summarize(role: str, name: str, out: Path, minimum: int, started: float) -> int:
    index = out / "index.json"
    if not index.exists():
        print(f"autobahn {role} {name}: no report written (FAILED)")
        return 1
    data = json.loads(index.read_text())
    cases = {k: v for agent in data.values() for k, v in agent.items()}
    counts = collections.Counter(v["behavior"] for v in cases.values())
    bad = sorted(
        (k for k, v in cases.items() if v["behavior"] not in GOOD or v["behaviorClose"] not in GOOD),
        key=lambda k: [int(p) for p in k.split(".")],
    )
    good = len(cases) - len(bad)
    detail = ", ".join(f"{b} {counts.get(b, 0)}" for b in ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"])
    took = time.monotonic() - started
    print(f"autobahn {role} {name}: {len(cases)} cases, {good} OK/INFORMATIONAL ({detail}) in {took:.0f} s")
    for k in bad[:50]:
        v = cases[k]
        print(f"  {k}: behavior={v['behavior']} behaviorClose={v['behaviorClose']} {v.get('result', '')[:160]}")
    if len(cases) < minimum:
        print(f"  expected at least {minimum} cases")
        return 1
    return 1 if bad else 0


def run_server(args) -> int:
    started = time.monotonic()
    out = ROOT / "reports" / f"server-{args.name}"
    port, server = start_listening(
        lambda port: start(args.cmd.format(port=port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        cmd = [kosoku(), "-m", "fuzzingclient", "-p", str(args.parallelism), "-o", str(out)]
        cmd += case_args(args.cases, args.exclude) + [f"127.0.0.1:{port}"]
        try:
            subprocess.run(cmd, timeout=args.timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            print(f"autobahn server {args.name}: timed out after {args.timeout}s")
        if server.poll() is not None:
            print(f"autobahn server {args.name}: the server died (status {server.returncode})")
            return 1
    finally:
        stop(server)
    return summarize("server", args.name, out, args.min_cases, started)


def run_client(args) -> int:
    started = time.monotonic()
    out = ROOT / "reports" / f"client-{args.name}"
    cmd = [kosoku(), "-m", "fuzzingserver", "-o", str(out)] + case_args(args.cases, args.exclude)
    port, fuzzer = start_listening(
        lambda port: subprocess.Popen(cmd + [f"127.0.0.1:{port}"], start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        client = start(args.cmd.format(url=f"ws://127.0.0.1:{port}", agent=args.name),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = client.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            stop(client)
            print(f"autobahn client {args.name}: the client timed out after {args.timeout}s")
            return 1
        if client.returncode != 0:
            print(f"autobahn client {args.name}: the client exited with {client.returncode}")
            print(err.decode(errors="replace")[-2000:])
        try:
            fuzzer.wait(timeout=60)
        except subprocess.TimeoutExpired:
            print(f"autobahn client {args.name}: the fuzzing server did not finish")
    finally:
        stop(fuzzer)
    return summarize("client", args.name, out, args.min_cases, started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--name", required=True)
    p.add_argument("--cmd", required=True)
    p.add_argument("--cases", nargs="*", help="case globs (default: all 517)")
    p.add_argument("--exclude", nargs="*")
    p.add_argument("--min-cases", type=int, default=517)
    p.add_argument("--parallelism", type=int, default=2)
    p.add_argument("--timeout", type=int, default=900)
    args = p.parse_args()
    sys.exit(run_server(args) if args.role == "server" else run_client(args))


if __name__ == "__main__":
    main()
