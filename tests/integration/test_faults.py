# SPDX-License-Identifier: MIT
"""fedtokend --once reports every upstream fault in plain words.

For each fault the fake cloud injects, the operator must get a non-zero exit
status and a sentence that says what happened and what to do, never a crash,
a hang or a token. Faults that the daemon can recover from by itself (an IMDS
401, a skewed clock) must be recovered from.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeCloud, check, run_fedtokend, summary  # noqa: E402


def config(fc, daemon_extra="", jwt_extra="", credentials="imds"):
    return f"""
[daemon]
ca_file = {fc.ca_file}
{daemon_extra}

[aws]
credentials = {credentials}

[jwt.azure]
audience = api://AzureADTokenExchange
{jwt_extra}
"""


def reason(r):
    for line in r.stdout.splitlines():
        if line.strip().startswith("reason:"):
            return line.split("reason:", 1)[1].strip()
    return ""


def expect_failure(fc, name, words, service, mode, conf=None, env=None, timeout=30, **params):
    fc.reset()
    fc.fault(service, mode, count=-1, **params)
    r = run_fedtokend(["--once"], conf or config(fc), env=env or fc.env("imds"), timeout=timeout)
    why = reason(r)
    check(r.rc == 1, f"{name}: exit status 1", r)
    check("jwt.azure: FAILED" in r.stdout, f"{name}: summary says FAILED", r.stdout)
    for w in words:
        check(w.lower() in why.lower(), f"{name}: reason mentions \"{w}\"", why)
    check("eyJ" not in r.stdout + r.stderr, f"{name}: no token printed")
    return r


def test_sts_faults(fc):
    expect_failure(fc, "STS 503", ["unavailable"], "sts", "status", status=503)
    expect_failure(fc, "STS 500", ["internal"], "sts", "status", status=500)
    r = expect_failure(fc, "STS throttling", ["throttl"], "sts", "throttle", retry_after=2)
    check("Throttling" in r.stdout, "STS throttling: code shown", r.stdout)
    r = expect_failure(fc, "federation disabled", ["outbound identity federation is not enabled",
                                                   "EnableOutboundWebIdentityFederation"],
                       "sts", "error", code="OutboundWebIdentityFederationDisabledException")
    check("OutboundWebIdentityFederationDisabledException" in r.stdout, "federation disabled: code shown")
    expect_failure(fc, "access denied", ["sts:GetWebIdentityToken"], "sts", "error", code="AccessDenied")
    expect_failure(fc, "payload too large", ["tag"], "sts", "error", code="JWTPayloadSizeExceededException")
    expect_failure(fc, "region disabled", ["us-east-2"], "sts", "error", code="RegionDisabledException")
    expect_failure(fc, "malformed STS body", ["STS"], "sts", "malformed")
    expect_failure(fc, "oversized STS body", ["larger than"], "sts", "oversized", mib=8)
    expect_failure(fc, "STS connection reset", ["closed"], "sts", "reset")
    expect_failure(fc, "STS too slow", ["within"], "sts", "slow", delay=4,
                   conf=config(fc, daemon_extra="http_timeout = 1"))
    expect_failure(fc, "untrusted STS certificate", ["not trusted"], "sts", "tls_untrusted")
    expect_failure(fc, "STS certificate for another host", ["certificate"], "sts", "tls_wrong_host")


def test_imds_faults(fc):
    expect_failure(fc, "no instance profile", ["instance profile"], "imds", "no_role")
    expect_failure(fc, "IMDS 500", ["500"], "imds", "status", status=500)
    expect_failure(fc, "IMDS hands out expired credentials", ["expired"], "imds", "expired_creds")

    # A 401 (IMDS restarted, token lost) is recovered from with a new session token.
    fc.reset()
    fc.fault("imds", "status", count=1, status=401, path="/latest/meta-data/iam/security-credentials/")
    r = run_fedtokend(["--once"], config(fc), env=fc.env("imds"))
    check(r.rc == 0, "IMDS 401: recovered with a new session token", r)
    puts = [e for e in fc.log("imds") if e["method"] == "PUT"]
    check(len(puts) == 2, "IMDS 401: exactly one extra token PUT", [e["path"] for e in fc.log("imds")])


def test_container_faults(fc):
    env = fc.env("container")
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "not-the-right-token"
    fc.reset()
    r = run_fedtokend(["--once"], config(fc, credentials="auto"), env=env)
    check(r.rc == 1, "container: wrong authorization token fails", r)
    check("authorization token" in reason(r), "container: reason names the authorization token", reason(r))
    check("not-the-right-token" not in r.stdout + r.stderr, "container: the token itself is never printed")

    env = fc.env("container")
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://169.254.170.99/creds"
    r = run_fedtokend(["--once"], config(fc, credentials="auto"), env=env)
    check(r.rc == 2 and "169.254.170.99" in r.stderr and "AWS_CONTAINER_CREDENTIALS_FULL_URI" in r.stderr,
          "container: a host the SDKs refuse is refused at start, naming the variable and the host", r.stderr)


def test_web_identity_faults(fc):
    fc.reset()
    env = fc.env("web-identity")
    with open(env["AWS_WEB_IDENTITY_TOKEN_FILE"], "w") as f:
        f.write(fc.mint_irsa(expired=True))
    r = run_fedtokend(["--once"], config(fc, credentials="auto"), env=env)
    check(r.rc == 1, "web identity: an expired service-account token fails", r)
    check("token" in reason(r).lower(), "web identity: reason speaks of the web identity token", reason(r))
    check(fc.count("sts", "GetWebIdentityToken") == 0, "web identity: no GetWebIdentityToken without credentials")


def test_clock_skew_corrected(fc):
    fc.reset()
    # The fake's clock runs 20 minutes ahead: our x-amz-date looks stale to it.
    fc.config(clock_skew=1200)
    r = run_fedtokend(["--once"], config(fc), env=fc.env("imds"))
    check(r.rc == 0, "clock skew: corrected from STS's Date header and retried", r)
    check("clock" in r.stderr, "clock skew: the log says the local clock is off", r.stderr[-600:])
    check(fc.count("sts", "GetWebIdentityToken", "ok") == 1, "clock skew: one accepted call after the correction")


def test_no_credentials(fc):
    env = fc.env("none", AWS_EC2_METADATA_DISABLED="true")
    r = run_fedtokend(["--once"], config(fc, credentials="auto"), env=env)
    check(r.rc == 2, "no credentials anywhere: configuration error exit 2", r)
    check("no AWS credentials found" in r.stderr, "no credentials: says so and lists what to set", r.stderr)


def main():
    with FakeCloud() as fc:
        test_sts_faults(fc)
        test_imds_faults(fc)
        test_container_faults(fc)
        test_web_identity_faults(fc)
        test_clock_skew_corrected(fc)
        test_no_credentials(fc)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
