# SPDX-License-Identifier: MIT
"""Regression tests for the daemon bugs the reliability harness found, each
reduced to its smallest reproduction. They fail until the bug is fixed.

  sigpipe          a client that closes while its responses are being
                   written kills the daemon with SIGPIPE (daemon/main.c never
                   ignores SIGPIPE; libuv writes to the pipe with write(2)).
  unservable-swap  a renewal that returns a token already too short to serve
                   replaces the previous token that still had seconds left:
                   503 although a good token was there (daemon/tokens.c
                   succeeded() -> ft_engine_succeeded() always takes the new
                   token).
  creds-margin     AWS credentials count as usable for a JWT fetch with 60 s
                   left (parent_min_remaining), but the STS request needs
                   120 s (CREDS_MARGIN_S 60 + the 60 s minimum duration): with
                   short credentials every renewal in that window fails
                   first, logs a warning and counts an error, though every
                   upstream is healthy.
  unservable-file  an access token already too short to serve at receipt is
                   written to its token file (then removed): an SDK can read
                   it (daemon/tokens.c on_exchange_done -> write_file).
  expiry-overshoot an Entra token's expiry is counted as expires_in from the
                   whole second it was received in, so it can be served up
                   to 1 s past the point where it has min_remaining left.

    regressions.py [--json FILE] [NAME...]

Binary: $FEDTOKEND. Prints "N passed, N failed".
"""
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rellib  # noqa: E402
from rellib import CLIENT, TENANT, Reader, RelFakeCloud, http_get  # noqa: E402
from harness import summary  # noqa: E402

check = rellib.RecordedChecks()



def base_conf(fc, sock, extra_daemon="", extra_aws=""):
    return f"""
[daemon]
socket = {sock}
ca_file = {fc.ca_file}
min_remaining = 1
refresh_margin = 0
backoff_initial = 1
backoff_max = 3
{extra_daemon}
{rellib.aws_imds_section(fc)}{extra_aws}
"""


def test_sigpipe(fc, workdir):
    sock = os.path.join(workdir, "sigpipe.sock")
    conf = base_conf(fc, sock) + "\n[jwt.a]\naudience = api://AzureADTokenExchange\n"
    d = rellib.start_daemon(conf, {}, workdir)
    try:
        ok = d.wait_for(lambda: os.path.exists(sock) and http_get(sock, "/v1/jwt/a?wait=10")[0] == 200, 20)
        check(ok, "sigpipe: token served")
        get = b"GET /v1/jwt/a?format=raw HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(sock)
                s.sendall(get * 200)
                s.recv(100)
            except OSError:
                pass
            # Close with unread data: the kernel resets, the daemon's next write gets EPIPE.
            s.close()
            if not d.alive():
                break
        time.sleep(0.5)
        check(d.alive(), "sigpipe: a client closing mid-response does not kill the daemon",
              f"exit status {d.proc.returncode if d.proc else d.rc} (-13 is SIGPIPE)")
    finally:
        d.stop()


def test_unservable_swap(fc, workdir):
    sock = os.path.join(workdir, "swap.sock")
    fc.reset()
    fc.config(entra_token_lifetime=8)
    fc.add_fic(TENANT, CLIENT)
    d = rellib.start_daemon(entra_conf(fc, sock), {}, workdir)
    try:
        ok = d.wait_for(lambda: os.path.exists(sock) and http_get(sock, "/v1/token/storage?wait=10")[0] == 200, 20)
        check(ok, "unservable-swap: token served")
        # From now on Entra hands out tokens that live 1 s: less than min_remaining at receipt.
        t_issue = time.time()
        fc.config(entra_token_lifetime=1)
        r = Reader(sock, "/v1/token/storage?format=raw", 0.02)
        r.start()
        time.sleep(8 - 1 - (time.time() - t_issue) - 0.5)   # until the first token nears min_remaining
        r.stop()
        first_503 = next((s[1] for s in r.samples if s[2] == 503), None)
        left = None if first_503 is None else t_issue + 8 - first_503
        # min_remaining, plus a second of rounding, plus the second of slack fedtokend takes off
        # expires_in for the time the answer was in flight.
        check(first_503 is None or left < 1.3 + 1.0 + 1.0,
              "unservable-swap: the previous token keeps being served until it has min_remaining left",
              f"first 503 when the previous token still had about {left and round(left, 1)} s left")
    finally:
        d.stop()


def test_creds_margin(fc, workdir):
    sock = os.path.join(workdir, "creds.sock")
    fc.reset()
    fc.config(creds_lifetime=126, max_token_lifetime=6)
    conf = base_conf(fc, sock, extra_aws="credentials_refresh = 60") + \
        "\n[jwt.a]\naudience = api://AzureADTokenExchange\nduration = 60\n"
    d = rellib.start_daemon(conf, {}, workdir)
    try:
        d.wait_for(lambda: os.path.exists(sock) and http_get(sock, "/v1/jwt/a?wait=10")[0] == 200, 20)
        time.sleep(14)
        body = http_get(sock, "/metrics")[2]
        errors = sum(int(m) for m in re.findall(rb'fedtokend_refreshes_total\{token="[^"]*",result="error"\} (\d+)',
                                                body))
        _, err = d.output()
        check(errors == 0 and "too soon to sign" not in err,
              "creds-margin: healthy upstreams, short credentials: no failed renewal",
              f"{errors} failed fetches; log: "
              + "; ".join(line[:140] for line in err.splitlines() if "too soon" in line)[:400])
    finally:
        d.stop()


def entra_conf(fc, sock, extra_target="", http_timeout=10):
    return (base_conf(fc, sock, extra_daemon=f"http_timeout = {http_timeout}") + rellib.azure_section(fc) +
            f"{extra_target}\n")


def test_unservable_file(fc, workdir):
    sock = os.path.join(workdir, "file.sock")
    path = os.path.join(workdir, "storage.token")
    fc.reset()
    fc.config(entra_token_lifetime=1)          # every token has less than min_remaining at receipt
    fc.add_fic(TENANT, CLIENT)
    d = rellib.start_daemon(entra_conf(fc, sock, f"file = {path}"), {}, workdir)
    seen = 0
    try:
        t_end = time.time() + 10
        while time.time() < t_end:
            try:
                with open(path, "rb") as f:
                    if f.read():
                        seen += 1
            except OSError:
                pass
            time.sleep(0.002)
        fetched = fc.count("entra", "token", "ok")
        check(fetched >= 2, f"unservable-file: Entra answered {fetched} times with 1 s tokens")
        check(seen == 0, "unservable-file: a token that is not servable at receipt never appears in its file",
              f"the file held such a token in {seen} reads (daemon/tokens.c on_exchange_done writes the file "
              "before the engine says whether the token is servable)")
    finally:
        d.stop()


def test_expiry_overshoot(fc, workdir):
    sock = os.path.join(workdir, "overshoot.sock")
    fc.reset()
    fc.config(entra_token_lifetime=4)
    fc.add_fic(TENANT, CLIENT)
    # The token is minted, then half its answer waits 0.6 s: a second boundary often falls in between.
    fc.fault("entra", "stall", -1, delay=0.6)
    d = rellib.start_daemon(entra_conf(fc, sock), {}, workdir)
    try:
        d.wait_for(lambda: os.path.exists(sock) and http_get(sock, "/v1/token/storage?wait=10")[0] == 200, 20)
        r = Reader(sock, "/v1/token/storage?format=raw", 0.01)
        r.start()
        time.sleep(15)
        r.stop()
        worst = None
        for t0, t1, status, body, _ in r.samples:
            if status == 200:
                left = rellib.Expiries("entra").of(body) - t1
                worst = left if worst is None else min(worst, left)
        check(worst is not None and worst >= 1 - 0.1,
              "expiry-overshoot: an Entra token is never served with less than min_remaining (1 s) before its exp",
              f"served with {worst and round(worst, 2)} s left: the expiry is counted as expires_in from the whole "
              "second of receipt (lib/entra.c ft_entra_parse(now) with now_wall_ms()/1000 in daemon/exchange.c), "
              "up to 1 s after the exp the token carries")
    finally:
        d.stop()


TESTS = {"sigpipe": test_sigpipe, "unservable-swap": test_unservable_swap, "creds-margin": test_creds_margin,
         "unservable-file": test_unservable_file, "expiry-overshoot": test_expiry_overshoot}


def main():
    args = sys.argv[1:]
    out_json = None
    if "--json" in args:
        i = args.index("--json")
        out_json = args[i + 1]
        del args[i:i + 2]
    names = args or list(TESTS)
    workdir = tempfile.mkdtemp(prefix="rel-regress-")
    secrets_dir = tempfile.mkdtemp(prefix="rel-secrets-")
    try:
        with RelFakeCloud(os.path.join(secrets_dir, "secrets.txt")) as fc:
            for n in names:
                TESTS[n](fc, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(secrets_dir, ignore_errors=True)
    if out_json:
        with open(out_json, "w") as f:
            json.dump(check.results(suite="regressions"), f, indent=1)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
