# SPDX-License-Identifier: MIT
"""Secret hygiene of the running daemon, checked from outside.

  core dumps     the daemon runs as an unprivileged user; its core file
                 limit is 0 and it is not dumpable (the kernel then gives
                 its /proc files to root, and no process of its own user
                 may read its memory).
  wiped          JWTs and Entra access tokens renew every few seconds; right after each replacement every readable
                 mapping of the daemon (heap, stacks, anonymous memory) is
                 read through /proc/PID/mem: the previous token must appear
                 nowhere, while the current one is found (the scan works).
                 The JWT is also the client assertion of the Entra request,
                 so this covers request bodies and libcurl's buffers too.
                 Needs root (CAP_SYS_PTRACE) to read a non-dumpable process;
                 skipped otherwise.

    security.py [--json FILE] [--rounds N]

Binary: $FEDTOKEND. Prints "N passed, N failed".
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rellib  # noqa: E402
from rellib import CLIENT, TENANT, RelFakeCloud, http_get  # noqa: E402
import harness  # noqa: E402
from harness import summary  # noqa: E402

NOBODY = 65534
check = rellib.RecordedChecks()


def readable_regions(pid):
    """(start, end, name) of the daemon's mappings that can hold data it wrote."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            perms = parts[1]
            name = parts[5] if len(parts) > 5 else "[anon]"
            # Read-only file mappings are code and constants from disk: nothing the daemon received.
            if "r" not in perms or (name.startswith("/") and "w" not in perms) or name == "[vvar]":
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append((start, end, name))
    return out


TOKEN_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=")


def context_before(data, pos):
    """What precedes a token found at pos (the token itself is skipped: never print one)."""
    start = pos
    while start > 0 and data[start - 1] in TOKEN_CHARS:
        start -= 1
    return data[max(0, start - 48):start]


def count_in_memory(pid, needles):
    """How often each needle occurs in the daemon's memory, and in which mappings (with what
    precedes each copy, to tell a request body from a response or a rendered answer)."""
    hits = {n: 0 for n in needles}
    where = {n: set() for n in needles}
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for start, end, name in readable_regions(pid):
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            for n in needles:
                pos = data.find(n)
                while pos >= 0:
                    hits[n] += 1
                    where[n].add(f"{name}+{pos:#x} after {context_before(data, pos)!r}")
                    pos = data.find(n, pos + 1)
    return hits, where


def raw(sock, path):
    st, _, body, _ = http_get(sock, path + "?format=raw")
    return body if st == 200 else None


def wait_replaced(d, sock, path, old, timeout):
    new = [None]

    def replaced():
        new[0] = raw(sock, path)
        return new[0] is not None and new[0] != old
    return new[0] if d.wait_for(replaced, timeout, interval=0.05) else None


def needle(token):
    """40 bytes from the end of a token: its signature, unique to it."""
    return token[-40:]


def conf_text(fc, sock, ca):
    return f"""
[daemon]
socket = {sock}
socket_mode = 0666
ca_file = {ca}
min_remaining = 1
refresh_margin = 0
refresh_percent = 10
backoff_initial = 1
backoff_max = 2
{rellib.aws_imds_section(fc)}{rellib.azure_section(fc)}"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    root = os.geteuid() == 0
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="rel-security-")
    res = {"suite": "security", "mode": "full" if args.rounds >= 10 else "quick", "figures": {}}
    try:
        # The daemon's user must reach its files: a world-readable scratch tree, a socket directory of its own.
        os.chmod(tmp, 0o755)
        rundir = os.path.join(tmp, "run")
        os.mkdir(rundir, 0o755)
        if root:
            os.chown(rundir, NOBODY, NOBODY)
        sock = os.path.join(rundir, "sock")
        with RelFakeCloud(os.path.join(tmp, "secrets.txt")) as fc:
            # JWTs of 80 s renewed at 10 % (every ~8 s, so an exchange always finds >= 60 s left on
            # its JWT), access tokens of 6 s (renewed about every second).
            fc.config(max_token_lifetime=80, entra_token_lifetime=6)
            fc.add_fic(TENANT, CLIENT)
            ca = os.path.join(tmp, "ca.pem")
            shutil.copyfile(fc.ca_file, ca)
            os.chmod(ca, 0o644)
            workdir = os.path.join(tmp, "daemon")
            os.mkdir(workdir, 0o755)
            d = harness.Daemon([], conf_text(fc, sock, ca), {}, workdir=workdir)
            os.chmod(d.config_path, 0o644)
            if root:
                d.cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"] + d.cmd
            d.start()
            try:
                ok = d.wait_for(lambda: os.path.exists(sock) and
                                http_get(sock, "/v1/token/storage?wait=10")[0] == 200, 30)
                check(ok, "the daemon serves an Entra token as an unprivileged user",
                      "\n".join(l for l in d.output()[1].splitlines() if "jwt.azure: token" not in l)[-3000:] + d.output()[0][-1000:])
                if not ok:
                    return
                pid = d.proc.pid
                with open(f"/proc/{pid}/status") as f:
                    uid = int(next(l for l in f if l.startswith("Uid:")).split()[1])
                check(uid != 0, "the daemon runs as an unprivileged user", f"uid {uid}")
                with open(f"/proc/{pid}/limits") as f:
                    core = next(l for l in f if l.startswith("Max core file size")).split()
                check(core[4] == "0" and core[5] == "0", "core file size limit is 0 (soft and hard)", core)
                owner = os.stat(f"/proc/{pid}/environ").st_uid
                check(owner == 0 and uid != 0,
                      "the daemon is not dumpable (the kernel gives its /proc files to root)",
                      f"/proc/{pid}/environ owned by uid {owner}, daemon uid {uid}")

                if not root:
                    print("# skipped: the memory scan needs root to read a non-dumpable process")
                    res["figures"]["memory_scan"] = "skipped (not root)"
                    return
                try:
                    with open(f"/proc/{pid}/mem", "rb", 0):
                        pass
                except OSError as e:
                    print(f"# skipped: the memory scan cannot read /proc/{pid}/mem ({e.strerror}: no CAP_SYS_PTRACE?)")
                    res["figures"]["memory_scan"] = "skipped (no access to /proc/PID/mem)"
                    return
                mapped = sum(end - start for start, end, _ in readable_regions(pid))
                if mapped > 16 << 30:
                    # ASan reserves terabytes for its shadow and allocator: no scan can read them.
                    print(f"# skipped: the memory scan ({mapped >> 30} GiB mapped: a sanitizer build)")
                    res["figures"]["memory_scan"] = "skipped (sanitizer build)"
                    return
                scans, old_found, new_missing = 0, 0, 0
                for rnd in range(args.rounds):
                    for path in ("/v1/jwt/azure", "/v1/token/storage"):
                        old = raw(sock, path)
                        new = wait_replaced(d, sock, path, old, 15)
                        check(old is not None and new is not None,
                              f"round {rnd + 1}: {path} renewed within 15 s")
                        if old is None or new is None:
                            continue
                        hits, where = count_in_memory(pid, [needle(old), needle(new)])
                        scans += 1
                        old_found += hits[needle(old)]
                        new_missing += hits[needle(new)] == 0
                        check(hits[needle(old)] == 0,
                              f"round {rnd + 1}: right after {path} was renewed, the previous token is "
                              f"nowhere in the daemon's memory",
                              f"{hits[needle(old)]} copies in {sorted(where[needle(old)])}")
                        check(hits[needle(new)] > 0,
                              f"round {rnd + 1}: the current {path} token is found in memory (the scan works)")
                res["figures"].update({"memory_scans": scans, "previous_token_copies": old_found,
                                       "scans_missing_current_token": new_missing})
            finally:
                alive, rc = rellib.stop_daemon(d)
                check(alive and rc == 0, "the daemon exits 0 on SIGTERM", f"alive {alive}, exit status {rc}")
    finally:
        res.update(check.results(elapsed_s=round(time.time() - t0, 1)))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
