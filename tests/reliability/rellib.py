# SPDX-License-Identifier: MIT
"""Shared machinery of the reliability harness (matrix.py, hostile.py,
churn.py): a fake cloud that records every secret it hands out, a TCP proxy
that can refuse connections on demand, socket readers, a sampler of the
daemon's memory and descriptors, and the invariant checkers I1-I5.

Every checker returns a list of violation strings (empty: the invariant
held), so a scenario can both count and explain them.
"""
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
from harness import FakeCloud, FakeCloudError, Daemon, decode_jwt, fingerprint  # noqa: E402,F401

import scan_secrets  # noqa: E402

PYTHON = "/usr/bin/python3"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehavior",
                   "==ERROR")


def log(msg):
    print(f"# {time.strftime('%H:%M:%S')} {msg}", flush=True)


# ---------------------------------------------------------------------------
# Configuration fragments the suites share
# ---------------------------------------------------------------------------

# The Entra tenant and client whose federated credential the suites add (fc.add_fic(TENANT, CLIENT)).
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def aws_imds_section(fc):
    """[aws]: credentials from the fake's IMDS, JWTs from its STS."""
    return f"""
[aws]
credentials = imds
region = us-east-2
imds_endpoint = {fc.urls['imds']}
sts_endpoint = {fc.urls['sts']}
"""


def azure_section(fc, jwt_duration=None):
    """[jwt.azure] and [azure.storage], which exchanges it at the fake's Entra ID."""
    duration = f"duration = {jwt_duration}\n" if jwt_duration else ""
    return f"""
[jwt.azure]
audience = api://AzureADTokenExchange
{duration}
[azure.storage]
jwt = azure
tenant_id = {TENANT}
client_id = {CLIENT}
scope = https://storage.azure.com/.default
authority = {fc.urls['entra']}
"""


def gcp_section(fc, audience, jwt_duration=None):
    """[jwt.gcp] and [gcp.gcs], which exchanges it at the fake's Google STS and IAM."""
    duration = f"duration = {jwt_duration}\n" if jwt_duration else ""
    return f"""
[jwt.gcp]
audience = {audience}
{duration}
[gcp.gcs]
jwt = gcp
audience = {audience}
sts_endpoint = {fc.urls['gcp_sts']}
iam_endpoint = {fc.urls['gcp_iam']}
"""


# ---------------------------------------------------------------------------
# The fake cloud, with its secrets recorded
# ---------------------------------------------------------------------------

class RelFakeCloud(FakeCloud):
    """FakeCloud started with --secrets-file, so that scan_secrets can look
    for every key, session token, JWT and access token it ever issued."""

    def __init__(self, secrets_file, **kw):
        super().__init__(**kw)
        self.secrets_file = secrets_file

    def extra_args(self):
        return ["--secrets-file", self.secrets_file]


def port_of(url):
    rest = url.split("://", 1)[1].split("/", 1)[0]
    return int(rest.rsplit(":", 1)[1])


# ---------------------------------------------------------------------------
# A TCP proxy that can refuse connections
# ---------------------------------------------------------------------------

class TcpProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target_port (TLS passes through
    untouched). refuse() closes the listener and resets every proxied
    connection, so the port answers ECONNREFUSED; forward() listens again on
    the same port. kill_connections() resets the established ones, so the
    next request makes a new connection (and a new TLS handshake)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lock = threading.Lock()
        self.conns = set()
        self.listener = None
        self.port = 0
        self.stopped = False
        self.connections = 0
        self._listen()

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self.listener = s
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def _accept_loop(self, lsock):
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            with self.lock:
                if self.listener is not lsock:
                    _reset(c)
                    return
                self.connections += 1
            threading.Thread(target=self._pump, args=(c,), daemon=True).start()

    def _pump(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            _reset(c)
            return
        u.settimeout(None)
        with self.lock:
            self.conns.add(c)
            self.conns.add(u)
        socks = [c, u]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 1.0)
                if self.stopped:
                    break
                done = False
                for s in r:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        done = True
                        break
                    other = u if s is c else c
                    try:
                        other.sendall(data)
                    except OSError:
                        done = True
                        break
                if done:
                    break
        finally:
            with self.lock:
                self.conns.discard(c)
                self.conns.discard(u)
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass

    def kill_connections(self):
        with self.lock:
            conns = list(self.conns)
        for s in conns:
            _reset(s, close=False)

    def refuse(self):
        with self.lock:
            lsock, self.listener = self.listener, None
        if lsock is not None:
            try:
                lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            lsock.close()
        self.kill_connections()

    def forward(self):
        with self.lock:
            if self.listener is not None:
                return
        for _ in range(50):
            try:
                self._listen()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"proxy could not listen on port {self.port} again")

    def close(self):
        self.stopped = True
        self.refuse()


def _reset(s, close=True):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    if close:
        try:
            s.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# Talking to the daemon's socket
# ---------------------------------------------------------------------------

def http_get(sock_path, path, timeout=5.0):
    """One GET on a fresh connection. Returns (status, headers, body, error);
    status 0 and an error text when the exchange failed or the response
    was torn (Content-Length and body disagree)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return 0, {}, b"", f"{type(e).__name__}: {e}"
    finally:
        s.close()
    return parse_response(bytes(data))


def parse_response(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return 0, {}, b"", f"no complete head ({len(data)} bytes)"
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        return 0, {}, b"", f"bad status line {lines[0][:80]!r}"
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    cl = hdrs.get("content-length")
    if cl is None or not cl.isdigit() or int(cl) != len(body):
        return 0, hdrs, body, f"torn response: Content-Length {cl} but {len(body)} body bytes"
    return int(parts[1]), hdrs, body, None


class Reader(threading.Thread):
    """Reads `path` from the daemon's socket every `interval` seconds until
    stop(); records (t_send, t_recv, status, body, error)."""

    def __init__(self, sock_path, path, interval=0.02):
        super().__init__(daemon=True)
        self.sock_path = sock_path
        self.path = path
        self.interval = interval
        self.samples = []
        self._stop_ev = threading.Event()

    def run(self):
        while not self._stop_ev.is_set():
            t0 = time.time()
            status, _, body, err = http_get(self.sock_path, self.path)
            t1 = time.time()
            self.samples.append((t0, t1, status, body if status == 200 else b"", err))
            self._stop_ev.wait(self.interval)

    def stop(self):
        self._stop_ev.set()
        self.join(10)


class FileReader(threading.Thread):
    """Reads a token file every `interval` s: (t_read, bytes or None)."""

    def __init__(self, path, interval=0.05):
        super().__init__(daemon=True)
        self.path = path
        self.interval = interval
        self.samples = []
        self._stop_ev = threading.Event()

    def run(self):
        while not self._stop_ev.is_set():
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except OSError:
                data = None
            self.samples.append((time.time(), data))
            self._stop_ev.wait(self.interval)

    def stop(self):
        self._stop_ev.set()
        self.join(10)


# ---------------------------------------------------------------------------
# Memory and descriptors
# ---------------------------------------------------------------------------

def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Sampler(threading.Thread):
    """RSS (KiB) and open descriptors of `pid`, every `interval` s."""

    def __init__(self, pid, interval=1.0):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples = []   # (t, rss_kib, fds)
        self._stop_ev = threading.Event()

    def sample(self):
        rss, fds = proc_rss_kib(self.pid), proc_fds(self.pid)
        if rss is not None and fds is not None:
            self.samples.append((time.time(), rss, fds))
        return rss, fds

    def run(self):
        while not self._stop_ev.is_set():
            self.sample()
            self._stop_ev.wait(self.interval)

    def stop(self):
        self._stop_ev.set()
        self.join(5)

    def mark(self):
        """The current sample, taken now (a baseline)."""
        return self.sample()

    def peak(self):
        if not self.samples:
            return 0, 0
        return max(s[1] for s in self.samples), max(s[2] for s in self.samples)

    def last(self):
        return (self.samples[-1][1], self.samples[-1][2]) if self.samples else (0, 0)


# ---------------------------------------------------------------------------
# Token expiry, as the issuer stated it
# ---------------------------------------------------------------------------

class Expiries:
    """Maps a served token to the wall-clock instant it expires.

    JWTs (STS's, and Entra's access tokens, which are JWTs too) carry exp.
    Google access tokens are opaque: their expiry comes from the fake's log
    (`issued` of the request that minted them): the federated token lives
    expires_in from the fake's issue time, an impersonated one until the
    expireTime the fake wrote (fake time + lifetime, whole seconds).
    `skew` is the fake's clock_skew while the token was issued: Entra's and
    Google STS's lifetimes are relative, so their instants are shifted back
    to our clock; absolute expiries (exp, expireTime) are taken as stated,
    because that is what the daemon is given.
    """

    def __init__(self, kind, skew=0.0):
        self.kind = kind
        self.skew = skew
        self.by_fp = {}

    def learn(self, fc_log):
        for e in fc_log:
            iss = e.get("issued") or {}
            fp = iss.get("token_fingerprint")
            if not fp:
                continue
            if e["service"] == "gcp_sts" and "expires_in" in iss:
                self.by_fp[fp] = e["time"] + iss["expires_in"] - self.skew
            elif e["service"] == "gcp_iam" and "lifetime" in iss:
                self.by_fp[fp] = float(int(e["time"] + self.lifetime_s(iss["lifetime"])))

    @staticmethod
    def lifetime_s(v):
        if isinstance(v, (int, float)):
            return float(v)
        return float(str(v).rstrip("s"))

    def of(self, token):
        """Expiry (epoch seconds) or None when unknown."""
        if isinstance(token, bytes):
            token = token.decode("latin-1")
        token = token.strip()
        if token.startswith("{"):
            try:
                doc = json.loads(token)
                token = doc.get("token") or doc.get("access_token") or ""
            except ValueError:
                return None
        if token.count(".") == 2 and token.startswith("eyJ"):
            try:
                _, claims = decode_jwt(token)
                return float(claims["exp"])
            except Exception:
                return None
        return self.by_fp.get(fingerprint(token))


# ---------------------------------------------------------------------------
# Invariants
# ---------------------------------------------------------------------------

def check_i1(samples, expiries, min_remaining, tol=0.25):
    """I1: every 200 holds a token with at least min_remaining left when it
    was received (tol absorbs the time between the daemon's decision and
    our clock reading, beyond the measured round trip)."""
    bad = []
    unknown = 0
    worst = None
    for t0, t1, status, body, _ in samples:
        if status != 200:
            continue
        exp = expiries.of(body)
        if exp is None:
            unknown += 1
            continue
        left = exp - t1
        worst = left if worst is None else min(worst, left)
        if left < min_remaining - tol - (t1 - t0):
            bad.append(f"I1: served a token with {left:.2f} s left (min_remaining {min_remaining}) at {t1:.2f}")
    if unknown:
        bad.append(f"I1: {unknown} served token(s) whose expiry the fake never issued")
    return bad, worst


def check_i1_files(file_samples, expiries, min_remaining, tol=0.35):
    bad = []
    for t, data in file_samples:
        if data is None:
            continue
        if not data:
            bad.append(f"I1(file): empty token file at {t:.2f}")
            continue
        exp = expiries.of(data)
        if exp is None:
            bad.append(f"I1(file): token file holds a token the fake never issued at {t:.2f}")
            continue
        if exp - t < min_remaining - tol:
            bad.append(f"I1(file): token file held a token with {exp - t:.2f} s left at {t:.2f}")
    return bad[:20]


def check_i2(samples, expiries, min_remaining, grace=0.3):
    """I2: no 503 while the last token served still had min_remaining (+grace) left."""
    bad = []
    last_exp = None
    for t0, t1, status, body, _ in samples:
        if status == 200:
            last_exp = expiries.of(body)
        elif status == 503 and last_exp is not None:
            left = last_exp - t1
            if left >= min_remaining + grace:
                bad.append(f"I2: 503 at {t1:.2f} while the last good token still had {left:.2f} s left")
    return bad[:20]


def first_ok_after(samples, t, distinct_from=None):
    """Receipt time of the first 200 sent after t (whose body is not in
    `distinct_from`, when given)."""
    for t0, t1, status, body, _ in samples:
        if t0 >= t and status == 200 and (distinct_from is None or body not in distinct_from):
            return t1
    return None


def check_i3(t_clear, t_back, bound):
    if t_back is None:
        return [f"I3: never recovered after the fault was cleared (bound {bound:.1f} s)"]
    if t_back - t_clear > bound:
        return [f"I3: recovered {t_back - t_clear:.2f} s after the fault cleared, bound {bound:.1f} s"]
    return []


def sanitizer_findings(text):
    return [line.strip()[:200] for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)][:10]


def check_i4(rc, sampler, base, stderr, rss_bound_kib=16384, fd_bound=4):
    """I4: exit 0 on SIGTERM, final RSS and fds within bound of the baseline,
    no sanitizer report."""
    bad = []
    if rc != 0:
        bad.append(f"I4: exit status {rc} on SIGTERM (expected 0)")
    if base and sampler.samples:
        rss, fds = sampler.last()
        # Under AddressSanitizer freed memory sits in its quarantine (and malloc_trim is a no-op):
        # RSS says nothing about leaks there; LeakSanitizer at exit does.
        if os.environ.get("FT_SANITIZED") == "1":
            rss_bound_kib *= 16
        if base[0] is not None and rss > base[0] + rss_bound_kib:
            bad.append(f"I4: RSS grew from {base[0]} KiB to {rss} KiB")
        if base[1] is not None and fds > base[1] + fd_bound:
            bad.append(f"I4: descriptors grew from {base[1]} to {fds}")
    bad += [f"I4: sanitizer: {line}" for line in sanitizer_findings(stderr)]
    return bad


def cluster(times, gap=0.5):
    """Group sorted times into attempts: requests closer than `gap` belong together."""
    out = []
    for t in sorted(times):
        if out and t - out[-1][-1] < gap:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def check_i5(entries, window, backoff_initial, backoff_max, min_gap=None, n_nodes=1, label=""):
    """I5: the attempts one node makes against a failing upstream follow the
    backoff: consecutive attempts (requests less than 0.5 s apart are one
    attempt) are at least 0.9 x backoff_initial apart (or 0.9 x min_gap, a
    Retry-After) except the first retry of a failure streak, which may be
    immediate; no attempt holds more than two requests of one action
    (no stampede); and the count in the window stays within the schedule.
    `entries` are (real_time, action) of one node."""
    bad = []
    t_start, t_end = window
    times = [t for t, _ in entries if t_start <= t <= t_end]
    if not times:
        return bad
    floor = 0.9 * max(backoff_initial, min_gap or 0)
    attempts = cluster(times)
    for a, b in zip(attempts, attempts[1:]):
        gap = b[0] - a[0]
        if gap < floor and a is not attempts[0]:
            bad.append(f"I5{label}: attempts {gap:.2f} s apart (floor {floor:.2f} s) at {b[0]:.2f}")
    by_action = {}
    for t, act in entries:
        if t_start <= t <= t_end:
            by_action.setdefault(act, []).append(t)
    for act, ts in by_action.items():
        for c in cluster(ts, 0.3):
            if len(c) > 2 * n_nodes:
                bad.append(f"I5{label}: {len(c)} {act} requests within 0.3 s at {c[0]:.2f} (stampede)")
    duration = t_end - t_start
    allowed = n_nodes * (duration / max(backoff_initial, min_gap or 0) + 2)
    if len(attempts) > allowed:
        bad.append(f"I5{label}: {len(attempts)} attempts in {duration:.1f} s, schedule allows {allowed:.0f}")
    return bad[:20]


def scan_output(texts, secrets_file):
    """Secrets (or token-shaped strings) in the daemon's output."""
    secrets = scan_secrets.load_secrets([secrets_file]) if secrets_file and os.path.exists(secrets_file) else set()
    found = []
    for name, text in texts:
        for hit in scan_secrets.scan_text(text, secrets):
            found.append(f"secret in {name}: {hit}")
    return found


# ---------------------------------------------------------------------------
# Running the daemon
# ---------------------------------------------------------------------------

class RecordedChecks:
    """harness.check that also keeps every result for the suite's JSON:

        check = RecordedChecks()
        check(cond, "what must hold", detail)
        json.dump(check.results(suite="x"), f)
    """

    def __init__(self):
        self.items = []

    def __call__(self, cond, msg, detail=None):
        self.items.append({"ok": bool(cond), "msg": msg, "detail": None if cond else str(detail)[:500]})
        return harness.check(cond, msg, detail)

    def results(self, **extra):
        failed = sum(1 for c in self.items if not c["ok"])
        return dict(extra, checks=self.items, scenarios_run=len(self.items), passed=len(self.items) - failed,
                    failed=failed, invariant_violations=failed)


def start_daemon(conf, env, workdir, nofile=None):
    d = Daemon([], conf, env, workdir=workdir)
    if nofile:
        d.cmd = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] + d.cmd
    d.start()
    return d


def wait_socket(d, sock, timeout=10):
    return d.wait_for(lambda: os.path.exists(sock), timeout)


def stop_daemon(d, timeout=15):
    alive = d.alive()
    rc = d.stop(timeout=timeout)
    return alive, rc
