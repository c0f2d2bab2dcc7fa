# SPDX-License-Identifier: MIT
"""Start the fake cloud and one fedtokend for the benchmark, and keep them up.

    /usr/bin/python3 bench/stack.py --dir DIR --fedtokend BIN [--tokens 10]
        [--lifetime 3600] [--tag-bytes 560]

Writes DIR/fedtokend.conf, waits until every token has been fetched, then
writes DIR/stack.json ({"socket", "pid", "fakecloud_pid", "tokens"}) and
sleeps until SIGTERM or SIGINT, when it stops fedtokend and the fake cloud.
Used by bench/run.sh; not a test.
"""

import argparse
import json
import os
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
from harness import Daemon, FakeCloud  # noqa: E402


def config(fc, sock, tokens, duration, tag_bytes):
    """[jwt.tN] sections whose session tags pad the JWT by about tag_bytes."""
    lines = [
        "[daemon]",
        f"socket = {sock}",
        "socket_mode = 0600",
        f"ca_file = {fc.ca_file}",
        "min_remaining = 1",
        "refresh_margin = 0",
        "backoff_initial = 1",
        "backoff_max = 2",
        "max_connections = 4096",
        "",
        "[aws]",
        "credentials = imds",
    ]
    for i in range(tokens):
        lines += ["", f"[jwt.t{i}]", "audience = api://AzureADTokenExchange", f"duration = {duration}"]
        left, n = tag_bytes, 0
        while left > 0:
            # Each tag costs its key, its value and about 6 bytes of JSON.
            value = "v" * max(1, min(200, left - 12))
            lines.append(f"tag.pad{n} = {value}")
            left -= len(value) + 12
            n += 1
    return "\n".join(lines) + "\n"


def get(sock, path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def all_fresh(sock, tokens):
    try:
        status, body = get(sock, "/v1/status")
    except OSError:
        return False
    if status != 200:
        return False
    states = [t["state"] for t in json.loads(body)["tokens"] if t["kind"] == "jwt"]
    return len(states) == tokens and all(s == "fresh" for s in states)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--fedtokend", required=True)
    ap.add_argument("--tokens", type=int, default=10)
    ap.add_argument("--lifetime", type=int, default=3600, help="the fake STS's max_token_lifetime")
    ap.add_argument("--duration", type=int, default=3600, help="[jwt.NAME] duration")
    ap.add_argument("--tag-bytes", type=int, default=0)
    args = ap.parse_args()

    os.environ["FEDTOKEND"] = os.path.abspath(args.fedtokend)
    os.makedirs(args.dir, exist_ok=True)
    sock = os.path.join(args.dir, "fedtokend.sock")
    stop = []

    def on_signal(signum, frame):
        print(f"stack.py: signal {signum}: stopping", file=sys.stderr, flush=True)
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    with FakeCloud() as fc:
        fc.config(max_token_lifetime=args.lifetime)
        conf = config(fc, sock, args.tokens, args.duration, args.tag_bytes)
        with Daemon([], conf, fc.env("imds"), workdir=args.dir) as d:
            deadline = time.monotonic() + 30
            while not all_fresh(sock, args.tokens):
                if not d.alive() or time.monotonic() > deadline or stop:
                    print("stack.py: fedtokend did not obtain every token:\n" + d.output()[1][-2000:],
                          file=sys.stderr)
                    return 1
                time.sleep(0.1)
            info = {"socket": sock, "pid": d.proc.pid, "fakecloud_pid": fc.proc.pid, "tokens": args.tokens}
            tmp = os.path.join(args.dir, "stack.json.tmp")
            with open(tmp, "w") as f:
                json.dump(info, f)
            os.rename(tmp, os.path.join(args.dir, "stack.json"))
            while not stop and d.alive():
                time.sleep(0.2)
            if not d.alive():
                print(f"stack.py: fedtokend exited with {d.proc.returncode}:\n" + d.output()[1][-2000:],
                      file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
