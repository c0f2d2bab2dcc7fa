# SPDX-License-Identifier: MIT
"""Readers under constant renewal: N clients read tokens continuously while
every token renews about every second, for D seconds.

Two daemons, because the fake caps every JWT's lifetime at once and an
exchange needs a JWT with 60 s left: daemon A serves JWTs that live 2 s
(max_token_lifetime 2); daemon B serves an Entra and a Google access token
that live 4 s (entra_token_lifetime 4, gcp_token_lifetime 4: their expires_in
is whole seconds, which fedtokend counts from the whole second before the
answer, so up to 2 s of such a lifetime is given up for safety) from JWTs of
62 s, which are therefore refetched every couple of seconds too. Half of the
readers keep their connection alive across renewals, half connect anew.

Asserts: zero errors (every answer a 200), every token served had at least
min_remaining left when it was asked for (I1: the daemon answered after
that; the longest send-to-read time is reported as the check's precision), no torn response (each parses and its
Content-Length matches its body), both daemons exit 0, no secret in their
output.

    churn.py [--quick] [--clients N] [--duration S] [--json FILE] [--logs DIR]

Full: 256 clients for 600 s; quick: 32 clients for 30 s. Prints "N passed, N failed".
"""
import argparse
import json
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rellib  # noqa: E402
from rellib import CLIENT, TENANT, Expiries, RelFakeCloud, Sampler, http_get, log  # noqa: E402
from harness import check, summary  # noqa: E402

# Whole-second exp and iat make a 2 s JWT worth 1-2 s at receipt: "currently valid" is the bar here.
MIN_REMAINING = 0
# Readers run as threads in this many processes (see reader_process).
READER_PROCESSES = 16


def conf(fc, sock, body):
    return f"""
[daemon]
socket = {sock}
ca_file = {fc.ca_file}
min_remaining = {MIN_REMAINING}
refresh_margin = 0
refresh_percent = 30
backoff_initial = 1
backoff_max = 2
max_connections = 4096
log_level = notice
{rellib.aws_imds_section(fc)}{body}
"""


class ChurnReader(threading.Thread):
    """One client. For each token it keeps the latest request that returned it: when the request was sent
    and when the answer was read. The daemon answered in between, so a token whose expiry minus the send
    time is below min_remaining was certainly served too late (I1); the gap between the two times is how
    precise that is (the reader's own delays, not the daemon's)."""

    def __init__(self, sock, path, keepalive, stop_ev):
        super().__init__(daemon=True)
        self.sock, self.path, self.keepalive, self.stop_ev = sock, path, keepalive, stop_ev
        self.ok = 0
        self.errors = []
        self.last_seen = {}        # token -> (sent, received) of its latest receipt
        self.max_delay = 0.0       # the longest send-to-read time of any request

    def record(self, t_sent, status, body, err):
        t = time.time()
        self.max_delay = max(self.max_delay, t - t_sent)
        if status == 200 and body:
            self.ok += 1
            self.last_seen[body] = (t_sent, t)
        elif len(self.errors) < 50:
            self.errors.append((round(t, 2), status, err, body[:120]))
        else:
            self.errors.append(None)

    def run(self):
        req = f"GET {self.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        s, buf = None, b""
        while not self.stop_ev.is_set():
            t_sent = time.time()
            if not self.keepalive:
                status, _, body, err = http_get(self.sock, self.path)
                self.record(t_sent, status, body, err)
                continue
            try:
                if s is None:
                    s = socket.socket(socket.AF_UNIX)
                    s.settimeout(5)
                    s.connect(self.sock)
                    buf = b""
                s.sendall(req)
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end >= 0:
                        head = buf[:end].decode("latin-1").lower()
                        cl = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
                              if line.startswith("content-length:")]
                        if cl and cl[0].isdigit() and len(buf) >= end + 4 + int(cl[0]):
                            break
                        if not cl:
                            break
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed by the daemon mid-response")
                    buf += chunk
                n = int(cl[0]) if cl and cl[0].isdigit() else 0
                status, _, body, err = rellib.parse_response(buf[:end + 4 + n])
                buf = buf[end + 4 + n:]
                self.record(t_sent, status, body, err)
            except (OSError, ConnectionError) as e:
                self.record(t_sent, 0, b"", f"{type(e).__name__}: {e}")
                if s is not None:
                    s.close()
                s = None
        if s is not None:
            s.close()


class Deadline:
    """Stands in for a threading.Event in a reader process: set once the run's end time has passed."""

    def __init__(self, t_end):
        self.t_end = t_end

    def is_set(self):
        return time.time() >= self.t_end


def merge_latest(into, seen):
    """Keep, for each token, the latest request that returned it: (sent, received) with the largest sent."""
    for body, (sent, recv) in seen.items():
        if body not in into or sent > into[body][0]:
            into[body] = (sent, recv)


def reader_process(specs, t_end, conn):
    """Runs its share of the readers as threads and sends back what they saw, merged: with 256 threads in one
    process the GIL starves some of them for seconds, which would read as slow answers from the daemon."""
    stop = Deadline(t_end)
    readers = [ChurnReader(sock, path, keepalive, stop) for sock, path, keepalive in specs]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    seen = {}
    for r in readers:
        merge_latest(seen, r.last_seen)
    conn.send({"ok": sum(r.ok for r in readers), "errors": [e for r in readers for e in r.errors],
               "max_delay": max((r.max_delay for r in readers), default=0.0), "seen": seen})
    conn.close()


def run_readers(specs, duration, alive):
    """The readers in up to READER_PROCESSES processes of threads, for `duration` s or until alive() fails."""
    ctx = multiprocessing.get_context("fork")
    t_end = time.time() + duration
    shares = [specs[i::READER_PROCESSES] for i in range(min(READER_PROCESSES, len(specs)))]
    procs = []
    for share in shares:
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=reader_process, args=(share, t_end, child), daemon=True)
        p.start()
        child.close()
        procs.append((p, parent))
    while time.time() < t_end and alive():
        time.sleep(1)
    results = []
    for p, parent in procs:
        if p.is_alive() and not alive():
            p.terminate()
        try:
            results.append(parent.recv() if parent.poll(t_end - time.time() + 30) else None)
        except EOFError:
            results.append(None)
        p.join(5)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clients", type=int, default=0)
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--logs", default=None)
    args = ap.parse_args()
    n_clients = args.clients or (32 if args.quick else 256)
    duration = args.duration or (30 if args.quick else 600)
    t_begin = time.time()
    tmp = tempfile.mkdtemp(prefix="rel-churn-")
    sock_a, sock_b = os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")
    res = {"suite": "churn", "mode": "quick" if args.quick else "full", "clients": n_clients, "duration_s": duration}
    with RelFakeCloud(os.path.join(tmp, "secrets-a.txt")) as fa, RelFakeCloud(os.path.join(tmp, "secrets-b.txt")) as fb:
        fa.config(max_token_lifetime=2)
        fb.config(max_token_lifetime=62, entra_token_lifetime=4, gcp_token_lifetime=4)
        fb.add_fic(TENANT, CLIENT)
        fb.add_gcp_provider()
        aud = fb.gcp_audience()
        wa, wb = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        os.makedirs(wa)
        os.makedirs(wb)
        da = rellib.start_daemon(conf(fa, sock_a, "[jwt.a]\naudience = api://AzureADTokenExchange\n"), {}, wa)
        db = rellib.start_daemon(conf(fb, sock_b, rellib.azure_section(fb, jwt_duration=62) +
                                      rellib.gcp_section(fb, aud, jwt_duration=62)), {}, wb)
        samplers = [Sampler(da.proc.pid), Sampler(db.proc.pid)]
        for s in samplers:
            s.start()
        ready = (da.wait_for(lambda: os.path.exists(sock_a) and http_get(sock_a, "/v1/jwt/a?wait=10")[0] == 200, 20)
                 and db.wait_for(lambda: os.path.exists(sock_b) and
                                 http_get(sock_b, "/v1/token/storage?wait=20")[0] == 200 and
                                 http_get(sock_b, "/v1/token/gcs?wait=20")[0] == 200, 30))
        check(ready, "churn: both daemons serve their tokens")
        results = []
        if ready:
            targets = [(sock_a, "/v1/jwt/a?format=raw"), (sock_b, "/v1/token/storage?format=raw"),
                       (sock_a, "/v1/jwt/a?format=raw"), (sock_b, "/v1/token/gcs?format=raw")]
            specs = [targets[i % 4] + ((i // 4) % 2 == 0,) for i in range(n_clients)]
            base = [s.mark() for s in samplers]
            log(f"churn: {n_clients} readers in {min(READER_PROCESSES, n_clients)} processes for {duration:.0f} s")
            results = run_readers(specs, duration, lambda: da.alive() and db.alive())
            time.sleep(1.0)
            finals = [s.mark() for s in samplers]
        renew_a = fa.count("sts", "GetWebIdentityToken", "ok")
        renew_b = fb.count("entra", "token", "ok") + fb.count("gcp_sts", "token", "ok")
        alive = da.alive() and db.alive()
        rc_a, rc_b = da.stop(), db.stop()
        for s in samplers:
            s.stop()
        check(alive, "churn: both daemons alive at the end")
        check(rc_a == 0 and rc_b == 0, "churn: exit status 0 on SIGTERM", (rc_a, rc_b))
        if ready:
            check(results and all(r is not None for r in results), "churn: every reader process reported")
            results = [r for r in results if r is not None]
            served = sum(r["ok"] for r in results)
            errors = [e for r in results for e in r["errors"]]
            max_delay = max((r["max_delay"] for r in results), default=0.0)
            shown = [e for e in errors if e is not None][:5]
            check(served > 0 and not errors, f"churn: {served} responses, zero errors and no torn response "
                  f"({len(errors)} errors)", shown)
            expiries = Expiries("mixed")
            expiries.learn(fb.log())
            seen = {}
            for r in results:
                merge_latest(seen, r["seen"])
            # Judged at the send time: the daemon answered after it (rellib.check_i1 allows the round trip).
            bad, worst = rellib.check_i1([(sent, recv, 200, body, None) for body, (sent, recv) in seen.items()],
                                         expiries, MIN_REMAINING, tol=0.05)
            distinct = len(seen)
            check(not bad, f"churn: I1 for all {distinct} distinct tokens served "
                  f"(worst {worst and round(worst, 2)} s left when read, min_remaining {MIN_REMAINING}; "
                  f"longest send-to-read {max_delay:.2f} s)", f"{len(bad)} problems: {bad[:10]}")
            check(renew_a >= duration / 2 and renew_b >= duration / 2,
                  f"churn: tokens renewed throughout ({renew_a} JWTs on A, {renew_b} exchanges on B "
                  f"in {duration:.0f} s)")
            for i, (s, b, f) in enumerate(zip(samplers, base, finals)):
                rss, fds = f
                check(rss <= b[0] + 16384 and fds <= b[1] + 4,
                      f"churn: daemon {'AB'[i]} RSS {b[0]} -> {rss} KiB (peak {s.peak()[0]}), "
                      f"fds {b[1]} -> {fds} (peak {s.peak()[1]})")
            res.update({"requests_served": served, "errors": len(errors), "distinct_tokens": distinct,
                        "renewals": renew_a + renew_b, "worst_remaining_s": worst and round(worst, 3),
                        "i1_violations": len(bad), "max_send_to_read_s": round(max_delay, 3)})
        out = da.stdout + da.stderr + db.stdout + db.stderr
        found = rellib.scan_output([("daemon A", da.stdout + da.stderr), ("daemon B", db.stdout + db.stderr)],
                                   None)
        found += rellib.scan_output([("daemon output", out)], os.path.join(tmp, "secrets-a.txt"))
        found += rellib.scan_output([("daemon output", out)], os.path.join(tmp, "secrets-b.txt"))
        check(not found, "churn: no secret in the daemons' output", found[:3])
        if args.logs:
            os.makedirs(args.logs, exist_ok=True)
            with open(os.path.join(args.logs, "churn.log"), "w") as f:
                f.write(out)
        res["peak_rss_kib"] = max(s.peak()[0] for s in samplers)
        res["peak_fds"] = max(s.peak()[1] for s in samplers)
    shutil.rmtree(tmp, ignore_errors=True)
    res["elapsed_s"] = round(time.time() - t_begin, 1)
    counts = rellib.harness._counts
    res["passed"], res["failed"] = counts["passed"], counts["failed"]
    res["scenarios_run"] = counts["passed"] + counts["failed"]
    res["invariant_violations"] = counts["failed"]
    res.setdefault("requests_served", 0)
    res.setdefault("errors", 0)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    print(f"# churn: {json.dumps({k: v for k, v in res.items() if k not in ('suite',)})}")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
