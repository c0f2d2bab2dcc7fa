# SPDX-License-Identifier: MIT
"""Soak driver (run by soak.sh): CYCLES renewals of short-lived tokens on
several nodes (four JWTs of 2 s, an Entra and a Google access token of 2 s
from JWTs of 62 s), with a reader on the socket, faults sprinkled in (one
STS 503 and one Entra 503 every 50 renewals), RSS and descriptors sampled
every second. Then SIGTERM: exit status 0, and under a checker (ASan's
LeakSanitizer, or valgrind --error-exitcode=99) no leak report.

    soak.py --cycles N [--wrapper "valgrind ..."] [--json FILE] [--logs DIR]

Binary: $FEDTOKEND. Prints "N passed, N failed".
"""
import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rellib  # noqa: E402
from rellib import CLIENT, TENANT, Reader, RelFakeCloud, Sampler, http_get, log  # noqa: E402
from harness import check, summary  # noqa: E402



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--wrapper", default="")
    ap.add_argument("--label", default="soak")
    ap.add_argument("--json", default=None)
    ap.add_argument("--logs", default=None)
    ap.add_argument("--max-hours", type=float, default=4.0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rel-soak-")
    sock = os.path.join(tmp, "sock")
    t_begin = time.time()
    res = {"suite": args.label, "cycles_target": args.cycles}
    with RelFakeCloud(os.path.join(tmp, "secrets.txt")) as fc:
        fc.config(max_token_lifetime=62, entra_token_lifetime=2, gcp_token_lifetime=2)
        fc.add_fic(TENANT, CLIENT)
        fc.add_gcp_provider()
        aud = fc.gcp_audience()
        jwts = "".join(f"\n[jwt.j{i}]\naudience = api://AzureADTokenExchange\nduration = 60\ntag.n = {i}\n"
                       for i in range(4))
        conf = f"""
[daemon]
socket = {sock}
ca_file = {fc.ca_file}
min_remaining = 0
refresh_margin = 0
refresh_percent = 30
backoff_initial = 1
backoff_max = 2
log_level = notice
{rellib.aws_imds_section(fc)}{jwts}{rellib.azure_section(fc, jwt_duration=62)}{rellib.gcp_section(fc, aud, jwt_duration=62)}"""
        d = rellib.Daemon([], conf, {}, workdir=tmp)
        if args.wrapper:
            d.cmd = shlex.split(args.wrapper) + d.cmd
        d.start()
        # Under valgrind the daemon is valgrind's child-less process: same pid.
        sampler = Sampler(d.proc.pid)
        sampler.start()
        ready = d.wait_for(lambda: os.path.exists(sock) and http_get(sock, "/v1/token/gcs?wait=30", 40)[0] == 200, 90)
        check(ready, f"{args.label}: daemon up and serving")
        readers = [Reader(sock, "/v1/jwt/j0?format=raw", 0.05), Reader(sock, "/v1/token/storage?format=raw", 0.05)]
        for r in readers:
            r.start()
        t0 = time.time()
        base = None
        cycles, injected, last_report = 0, 0, 0
        deadline = t0 + args.max_hours * 3600
        while ready and cycles < args.cycles and time.time() < deadline and d.alive():
            time.sleep(2)
            cycles = sum(fc.count(s, verdict="ok") for s in ("sts", "entra", "gcp_sts"))
            if base is None and time.time() - t0 > 10:
                base = sampler.mark()
            if cycles // 50 > injected:
                injected = cycles // 50
                fc.fault("sts", "status", 1, status=503)
                fc.fault("entra", "status", 1, status=503)
            if cycles - last_report >= 1000:
                last_report = cycles
                rss, fds = sampler.last()
                log(f"{args.label}: {cycles} renewals, RSS {rss} KiB, fds {fds}")
        for r in readers:
            r.stop()
        alive = d.alive()
        time.sleep(1)
        final = sampler.mark()
        rc = d.stop(timeout=120)
        sampler.stop()
        check(alive, f"{args.label}: the daemon ran through {cycles} renewals")
        check(cycles >= args.cycles, f"{args.label}: {cycles} renewal cycles (target {args.cycles})")
        out = d.stdout + d.stderr
        check(rc == 0, f"{args.label}: exit status 0 on SIGTERM (99: valgrind found errors)", (rc, out[-1500:]))
        leaks = rellib.sanitizer_findings(out) + [line for line in out.splitlines()
                                                  if "definitely lost" in line and "definitely lost: 0 bytes" not in line]
        check(not leaks, f"{args.label}: no leak or sanitizer report", leaks[:5])
        served = sum(1 for r in readers for s in r.samples if s[2] == 200)
        errors = sum(1 for r in readers for s in r.samples if s[2] not in (200, 503))
        check(errors == 0, f"{args.label}: {served} reads, no transport error or torn response", errors)
        if base:
            samples = [s for s in sampler.samples if s[0] >= t0 + 10]
            rss = [s[1] for s in samples]
            fds = [s[2] for s in samples]
            half = len(rss) // 2
            growth = (max(rss[half:]) - max(rss[:half])) if half else 0
            check(final[0] <= base[0] + 16384 and growth <= 8192,
                  f"{args.label}: RSS stable ({base[0]} -> {final[0]} KiB, peak {max(rss or [0])}, "
                  f"second half vs first half {growth:+d} KiB)")
            check(final[1] <= base[1] + 4 and max(fds or [0]) <= base[1] + 16,
                  f"{args.label}: descriptors stable ({base[1]} -> {final[1]}, peak {max(fds or [0])})")
        found = rellib.scan_output([("daemon output", out)], os.path.join(tmp, "secrets.txt"))
        check(not found, f"{args.label}: no secret in the daemon's output", found[:3])
        if args.logs:
            os.makedirs(args.logs, exist_ok=True)
            with open(os.path.join(args.logs, f"{args.label}.log"), "w") as f:
                f.write(out)
        pr, pf = sampler.peak()
        res.update({"cycles": cycles, "faults_injected": injected * 2, "requests_served": served, "errors": errors,
                    "peak_rss_kib": pr, "peak_fds": pf, "exit_status": rc})
    shutil.rmtree(tmp, ignore_errors=True)
    res["elapsed_s"] = round(time.time() - t_begin, 1)
    counts = rellib.harness._counts
    res.update({"passed": counts["passed"], "failed": counts["failed"], "scenarios_run": 1,
                "invariant_violations": counts["failed"]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
