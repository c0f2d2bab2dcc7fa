# SPDX-License-Identifier: MIT
"""fedtokend in its normal mode: renews tokens ahead of expiry, backs off
during an outage without hammering STS, honours Retry-After, recovers when
STS returns, and exits cleanly on SIGTERM."""
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, FakeCloud, check, summary  # noqa: E402


def config(fc):
    # Six-second tokens (the fake caps their lifetime) renew every ~3 s.
    sock = os.path.join(tempfile.mkdtemp(prefix="fedtokend-sock-"), "fedtokend.sock")
    return f"""
[daemon]
socket = {sock}
ca_file = {fc.ca_file}
min_remaining = 1
refresh_margin = 0
backoff_initial = 1
backoff_max = 4

[aws]
credentials = imds

[jwt.azure]
audience = api://AzureADTokenExchange
"""


def sts_times(fc, verdict=None):
    return [e["time"] for e in fc.log("sts")
            if e.get("action") == "GetWebIdentityToken" and (verdict is None or e.get("verdict") == verdict)]


def test_renewal(fc):
    fc.reset()
    fc.config(max_token_lifetime=6)
    with Daemon([], config(fc), fc.env("imds")) as d:
        ok = d.wait_for(lambda: len(sts_times(fc, "ok")) >= 4, timeout=20)
        check(ok, "renewal: four tokens issued in a row", fc.stats().get("sts"))
        times = sts_times(fc, "ok")
        gaps = [b - a for a, b in zip(times, times[1:])]
        check(all(g >= 1.3 for g in gaps), "renewal: renewed at about half the lifetime, not in a loop", gaps)
        check(fc.count("imds", verdict="ok") == 3, "renewal: credentials fetched once and reused",
              fc.stats().get("imds"))
        d.signal(signal.SIGHUP)
        time.sleep(0.3)
        check(d.alive(), "SIGHUP does not kill the daemon")
        t0 = time.monotonic()
        rc = d.stop(timeout=5)
        check(rc == 0, "SIGTERM: clean exit status 0", d.stderr[-500:])
        check(time.monotonic() - t0 < 2.0, "SIGTERM: exit within 2 s")
    check("eyJ" not in d.stdout + d.stderr, "renewal: no token in the logs")
    check("token sha256:" in d.stderr, "renewal: log lines identify tokens by fingerprint", d.stderr[-500:])


def test_outage_backoff_and_recovery(fc):
    fc.reset()
    fc.fault("sts", "status", count=-1, status=503)
    with Daemon([], config(fc), fc.env("imds")) as d:
        time.sleep(8)
        attempts = sts_times(fc)
        # 1 s, then up to 2 s, then up to 4 s (the cap here): never more than one a second.
        check(3 <= len(attempts) <= 9, f"outage: {len(attempts)} attempts in 8 s, paced by backoff", attempts)
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        check(all(g >= 0.9 for g in gaps), "outage: at least the initial backoff between attempts", gaps)
        fc.clear_faults()
        recovered = d.wait_for(lambda: len(sts_times(fc, "ok")) >= 1, timeout=8)
        check(recovered, "outage: recovered within the backoff cap once STS answers again")
        # The fake logs its answer before the daemon has read it: give the daemon time to log the recovery.
        logged = d.wait_for(lambda: "recovered" in d.output()[1], timeout=5)
        _, err = d.output()
        check(err.count("unavailable") <= 2, "outage: one log line per change, not one per retry", err[-800:])
        check(logged, "outage: the recovery is logged", err[-800:])


def test_retry_after(fc):
    fc.reset()
    fc.fault("sts", "throttle", count=1, retry_after=3)
    with Daemon([], config(fc), fc.env("imds")) as d:
        d.wait_for(lambda: len(sts_times(fc, "ok")) >= 1, timeout=15)
        attempts = sts_times(fc)
        check(len(attempts) >= 2 and attempts[1] - attempts[0] >= 2.9,
              "Retry-After: the next attempt waited the 3 s STS asked for", attempts)


def main():
    with FakeCloud() as fc:
        test_renewal(fc)
        test_outage_backoff_and_recovery(fc)
        test_retry_after(fc)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
