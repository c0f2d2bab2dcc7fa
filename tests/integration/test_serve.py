# SPDX-License-Identifier: MIT
"""The Unix-socket API: tokens read with curl and raw HTTP, keep-alive and
pipelining, ?wait, errors, access control by peer credentials, /v1/status,
/healthz and /metrics reflecting an outage."""
import json
import re
import os
import pwd
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, FakeCloud, check, decode_jwt, summary  # noqa: E402

NOBODY = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else None


def config(fc, sock, extra_daemon="", extra_jwt=""):
    return f"""
[daemon]
socket = {sock}
socket_mode = 0666
ca_file = {fc.ca_file}
min_remaining = 1
refresh_margin = 0
backoff_initial = 1
backoff_max = 2
{extra_daemon}

[aws]
credentials = imds

[jwt.azure]
audience = api://AzureADTokenExchange
{extra_jwt}

[jwt.other]
audience = sts.example.com
allow_users = root
"""


def request(sock, raw, timeout=10, as_uid=None):
    """Send raw bytes, return everything read until the server closes or timeout."""
    if as_uid is not None:
        # Another user: a child process drops privileges, then talks.
        code = ("import socket,sys,os; os.setgid(65534); os.setgroups([]); os.setuid(%d); "
                "s=socket.socket(socket.AF_UNIX); s.settimeout(%d); s.connect(sys.argv[1]); "
                "s.sendall(sys.stdin.buffer.read()); d=b''\n"
                "while True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\n"
                "sys.stdout.buffer.write(d)") % (as_uid, timeout)
        p = subprocess.run(["/usr/bin/python3", "-c", code, sock], input=raw, capture_output=True, timeout=timeout + 5)
        return p.stdout
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    s.sendall(raw)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return data


def get(sock, path, headers="", as_uid=None):
    raw = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n".encode()
    return parse(request(sock, raw, as_uid=as_uid))


def try_get(sock, path):
    """The status of GET path, or 0 while the socket is not there yet."""
    try:
        return get(sock, path)[0]
    except OSError:
        return 0


def parse(data):
    """(status, headers dict, body) of one response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", len(body)))
    return status, hdrs, body[:n]


def test_reading(fc, d, sock):
    check(d.wait_for(lambda: os.path.exists(sock), 10), "the socket appears")
    status, hdrs, body = get(sock, "/v1/jwt/azure?wait=10")
    check(status == 200, "GET /v1/jwt/azure: 200", (status, body[:200]))
    check(hdrs.get("content-type") == "application/json", "JSON content type", hdrs)
    doc = json.loads(body)
    for k in ("name", "token", "expires_at", "expires_in", "issuer", "subject", "audience"):
        check(k in doc, f"JSON has {k}")
    check(doc["name"] == "azure" and doc["audience"] == "api://AzureADTokenExchange", "JSON names the token", doc)
    check(doc["expires_at"].endswith("Z") and "T" in doc["expires_at"], "expires_at is RFC 3339 UTC", doc["expires_at"])
    _, claims = decode_jwt(doc["token"])
    check(claims["aud"] == "api://AzureADTokenExchange", "the token is the JWT STS issued")
    check(claims["exp"] - time.time() >= 1, "the token served is not expired")

    status, hdrs, raw = get(sock, "/v1/jwt/azure?format=raw")
    check(status == 200 and raw.decode() == doc["token"], "?format=raw: the bare token, no newline")
    check(hdrs.get("content-type", "").startswith("text/plain"), "?format=raw is text/plain", hdrs)
    status, _, raw2 = get(sock, "/v1/jwt/azure", "Accept: text/plain\r\n")
    check(status == 200 and raw2 == raw, "Accept: text/plain: the bare token")

    curl = subprocess.run(["curl", "-sS", "--unix-socket", sock, "http://localhost/v1/jwt/azure?format=raw"],
                          capture_output=True, timeout=10)
    check(curl.returncode == 0 and curl.stdout == raw, "curl --unix-socket reads the token", curl.stderr)

    cli = os.path.join(os.path.dirname(os.environ["FEDTOKEND"]), "fedtoken")
    r = subprocess.run([cli, "-s", sock, "jwt", "azure"], capture_output=True, timeout=10)
    check(r.returncode == 0 and r.stdout == raw, "fedtoken jwt azure prints the same token, no newline", r.stderr)
    r = subprocess.run([cli, "-s", sock, "jwt", "nope"], capture_output=True, timeout=10)
    check(r.returncode == 4 and b"nope" in r.stderr, "fedtoken: no such token exits 4 with the daemon's reason",
          (r.returncode, r.stderr))
    r = subprocess.run([cli, "status"], capture_output=True, timeout=10, env={"FEDTOKEN_SOCKET": sock})
    check(r.returncode == 0 and b"jwt.azure" in r.stdout and b"fresh" in r.stdout,
          "fedtoken status (socket from FEDTOKEN_SOCKET): a table with the token's state", r.stdout)
    check(raw not in r.stdout, "fedtoken status prints no token")


def test_keepalive_pipelining(sock):
    reqs = (b"GET /v1/jwt/azure?format=raw HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /v1/jwt/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = request(sock, reqs)
    # A raw token has no newline: the next status line follows it directly.
    statuses = [int(m) for m in re.findall(r"HTTP/1\.1 (\d{3}) ", data.decode("latin-1"))]
    check(statuses == [200, 200, 404], "three pipelined requests answered in order on one connection", statuses)


def test_errors(sock):
    status, _, body = get(sock, "/v1/jwt/nope")
    check(status == 404 and json.loads(body)["error"] == "not_found", "unknown token: 404 JSON error", body)
    status, _, body = get(sock, "/v1/token/azure")
    check(status == 404, "/v1/token/ names only azure/gcp targets", body)
    status, _, body = get(sock, "/v1/jwt/azure?wait=99")
    check(status == 400 and "detail" in json.loads(body), "wait beyond 30: 400 with detail", body)
    status, _, body = get(sock, "/v1/jwt/azure?format=xml")
    check(status == 400, "unknown format: 400", body)
    data = request(sock, b"POST /v1/jwt/azure HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    status, hdrs, _ = parse(data)
    check(status == 405 and "GET" in hdrs.get("allow", ""), "POST: 405 with Allow", hdrs)
    status, _, _ = parse(request(sock, b"garbage\r\n\r\n"))
    check(status == 400, "garbage: 400")
    big = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n"
    status, _, _ = parse(request(sock, big))
    check(status == 431, "oversized head: 431", status)
    status, _, _ = parse(request(sock, b"GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"))
    check(status == 413, "a request body: 413", status)


def test_status_health_metrics(sock, token):
    status, _, body = get(sock, "/v1/status")
    check(status == 200, "/v1/status: 200")
    doc = json.loads(body)
    names = {t["name"]: t for t in doc["tokens"]}
    check("jwt.azure" in names and names["jwt.azure"]["state"] == "fresh", "status: jwt.azure fresh", names.keys())
    check(token.encode() not in body and b"eyJ" not in body, "status holds no token")
    status, _, body = get(sock, "/healthz")
    check(status == 200 and body.strip() == b"ok", "/healthz: 200 ok", body)
    status, hdrs, body = get(sock, "/metrics")
    check(status == 200 and b'fedtokend_token_expiry_seconds{token="jwt.azure"' in body, "/metrics: expiry gauge",
          body[:300])
    check(b"fedtokend_http_requests_total{status=\"200\"}" in body, "/metrics: requests by status")
    check(b"fedtokend_upstream_request_duration_seconds_bucket{upstream=\"sts\"" in body, "/metrics: latency histogram")
    check(b"fedtokend_connections_open" in body, "/metrics: open connections")


def test_access_control(sock):
    if NOBODY is None:
        print("# skipped: access control needs root to act as another user")
        return
    cli = os.path.join(os.path.dirname(os.environ["FEDTOKEND"]), "fedtoken")
    r = subprocess.run([cli, "-s", sock, "jwt", "other"], capture_output=True, timeout=10,
                       preexec_fn=lambda: (os.setgid(65534), os.setgroups([]), os.setuid(NOBODY)))
    check(r.returncode == 5 and str(NOBODY).encode() in r.stderr, "fedtoken as a refused user: exit 5 naming the uid",
          (r.returncode, r.stderr))
    status, _, body = get(sock, "/v1/jwt/other", as_uid=NOBODY)
    check(status == 403 and str(NOBODY).encode() in body, f"uid {NOBODY} refused jwt.other: 403 naming the uid", body)
    status, _, body = get(sock, "/v1/jwt/other")
    check(status == 200, "root reads jwt.other", body[:100])
    status, _, body = get(sock, "/v1/jwt/azure?format=raw", as_uid=NOBODY)
    check(status == 200, "a token without allow lists is readable by whoever can open the socket", body[:100])


def test_outage_visible(fc, d, sock):
    # Tokens live 4 s; STS goes down: the token is served until min_remaining, then 503.
    fc.fault("sts", "status", count=-1, status=503)
    gone = d.wait_for(lambda: get(sock, "/v1/jwt/azure")[0] == 503, timeout=20)
    check(gone, "outage: once the token is too close to expiry the API answers 503, never an expired token")
    status, hdrs, body = get(sock, "/v1/jwt/azure")
    check(status == 503 and int(hdrs.get("retry-after", "0")) >= 1, "503 carries Retry-After", hdrs)
    check(b"unavailable" in body.lower(), "503 detail says why", body)
    status, _, body = get(sock, "/healthz")
    check(status == 503 and b"jwt.azure" in body, "/healthz: 503 naming the failing token", body)
    status, _, body = get(sock, "/metrics")
    check(b'fedtokend_token_servable{token="jwt.azure"} 0' in body, "/metrics: servable 0 during the outage")
    fc.clear_faults()
    back = d.wait_for(lambda: get(sock, "/v1/jwt/azure")[0] == 200, timeout=10)
    check(back, "outage: served again once STS recovers")


def test_wait_for_first_token(fc, tmp):
    fc.reset()
    fc.fault("sts", "slow", count=2, delay=2)   # both tokens' first fetches are slow
    sock = os.path.join(tmp, "wait.sock")
    with Daemon([], config(fc, sock), fc.env("imds")) as d:
        check(d.wait_for(lambda: os.path.exists(sock), 10), "wait: socket up")
        t0 = time.monotonic()
        status, _, body = get(sock, "/v1/jwt/azure?wait=10&format=raw")
        check(status == 200 and body.startswith(b"eyJ"), "?wait=10 during start-up returns the first token, raw",
              (status, body[:60]))
        check(time.monotonic() - t0 >= 1.0, "?wait actually waited for the slow first fetch")


def main():
    tmp = tempfile.mkdtemp(prefix="fedtokend-serve-")
    os.chmod(tmp, 0o755)   # other users reach the socket through it
    sock = os.path.join(tmp, "fedtokend.sock")
    with FakeCloud() as fc:
        fc.config(max_token_lifetime=4)
        with Daemon([], config(fc, sock), fc.env("imds")) as d:
            test_reading(fc, d, sock)
            token = get(sock, "/v1/jwt/azure?format=raw")[2].decode()
            test_keepalive_pipelining(sock)
            test_errors(sock)
            test_status_health_metrics(sock, token)
            test_access_control(sock)
            test_outage_visible(fc, d, sock)
        check(d.rc == 0, "clean exit", d.stderr[-500:])
        check(not os.path.exists(sock), "the socket is removed at exit")
        out = d.stdout + d.stderr
        check("eyJ" not in out, "no token in the daemon's output")
        test_wait_for_first_token(fc, tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
