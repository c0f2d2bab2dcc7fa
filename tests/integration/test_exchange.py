# SPDX-License-Identifier: MIT
"""The exchanges: IMDS credentials → AWS JWT → an Entra ID access token and a
Google access token (with and without impersonation), from the fake cloud,
which validates the assertions as the real services do. Every AADSTS
diagnosis names the values actually sent; renewal cycles; an outage longer
than a token's lifetime (served while valid, then a clear 503, then
recovery); no duplicate upstream calls when several targets share a JWT."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, FakeCloud, check, run_fedtokend, summary  # noqa: E402
from test_serve import get, try_get  # noqa: E402

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SA = "example-sa@example-project.iam.gserviceaccount.com"


def config(fc, sock=None, daemon="", azure_extra="", jwt_extra=""):
    gcp_aud = fc.gcp_audience()
    return f"""
[daemon]
ca_file = {fc.ca_file}
{f"socket = {sock}" if sock else ""}
{daemon}

[aws]
credentials = imds

[jwt.azure]
audience = api://AzureADTokenExchange
{jwt_extra}

[azure.storage]
jwt = azure
tenant_id = {TENANT}
client_id = {CLIENT}
scope = https://storage.azure.com/.default
authority = {fc.urls["entra"]}
{azure_extra}

[jwt.gcp]
audience = {gcp_aud}

[gcp.gcs]
jwt = gcp
audience = {gcp_aud}
sts_endpoint = {fc.urls["gcp_sts"]}
iam_endpoint = {fc.urls["gcp_iam"]}

[gcp.impersonated]
jwt = gcp
audience = {gcp_aud}
service_account = {SA}
sts_endpoint = {fc.urls["gcp_sts"]}
iam_endpoint = {fc.urls["gcp_iam"]}
"""


def setup_cloud(fc, fic=True):
    fc.reset()
    if fic:
        fc.add_fic(TENANT, CLIENT)
    else:
        fc.control("POST", "/entra/app", {"tenant": TENANT, "client_id": CLIENT})
    fc.add_gcp_provider()
    fc.add_gcp_service_account()


def section(out, name):
    """The summary lines of one target."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(name + ":"):
            block = [line]
            for follow in lines[i + 1:]:
                if not follow.startswith("  "):
                    break
                block.append(follow)
            return "\n".join(block)
    return ""


def test_once_all(fc):
    setup_cloud(fc)
    r = run_fedtokend(["--once"], config(fc), env=fc.env("imds"))
    check(r.rc == 0, "--once: Entra and Google tokens obtained", r)
    for name in ("azure.storage", "gcp.gcs", "gcp.impersonated", "jwt.azure", "jwt.gcp"):
        check(f"{name}: OK" in r.stdout, f"--once: {name} OK", r.stdout)
    check(TENANT in section(r.stdout, "azure.storage") and "storage.azure.com" in section(r.stdout, "azure.storage"),
          "--once: the Entra summary names tenant and scope")
    check(SA in section(r.stdout, "gcp.impersonated"), "--once: the impersonated summary names the service account")
    check("eyJ" not in r.stdout + r.stderr and "ya29" not in r.stdout + r.stderr, "--once: no token printed")
    entra = [e for e in fc.log("entra") if e.get("verdict") == "ok"]
    check(len(entra) == 1, "Entra saw one valid client assertion", [e.get("detail") for e in fc.log("entra")])
    check(fc.count("gcp_sts", verdict="ok") == 2 and fc.count("gcp_iam", verdict="ok") == 1,
          "Google: two STS exchanges, one impersonation", fc.stats())


def diagnosis(fc, name, words, code, conf=None, **fault):
    r = run_fedtokend(["--once"], conf or config(fc), env=fc.env("imds"))
    block = section(r.stdout, name)
    check(r.rc == 1 and f"{name}: FAILED" in block, f"{code}: {name} fails", r.stdout)
    check(code in block, f"{code}: the code is shown", block)
    for w in words:
        check(w in block, f"{code}: the diagnosis names {w!r}", block)
    check("eyJ" not in r.stdout + r.stderr, f"{code}: no token printed")


def test_entra_diagnoses(fc):
    issuer, subject = fc.issuer, fc.role_arn()
    setup_cloud(fc, fic=False)
    fc.add_fic(TENANT, CLIENT, subject="arn:aws:iam::111122223333:role/someone-else")
    diagnosis(fc, "azure.storage", [issuer, subject, "api://AzureADTokenExchange", CLIENT, TENANT], "AADSTS700213")

    setup_cloud(fc, fic=False)
    diagnosis(fc, "azure.storage", [issuer, subject, CLIENT], "AADSTS70021")

    setup_cloud(fc)
    other_tenant = "99999999-2222-3333-4444-555555555555"
    diagnosis(fc, "azure.storage", [other_tenant], "AADSTS90002",
              conf=config(fc).replace(f"tenant_id = {TENANT}", f"tenant_id = {other_tenant}"))

    setup_cloud(fc)
    other_client = "bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee"
    diagnosis(fc, "azure.storage", [other_client, TENANT], "AADSTS700016",
              conf=config(fc).replace(f"client_id = {CLIENT}", f"client_id = {other_client}"))

    setup_cloud(fc)
    diagnosis(fc, "azure.storage", ["RS256"], "AADSTS700027", conf=config(fc, jwt_extra="signing_algorithm = ES384"))


def test_gcp_diagnoses(fc):
    setup_cloud(fc)
    fc.control("DELETE", "/gcp/service_account")
    fc.add_gcp_service_account(members=[fc.gcp_principal("arn:aws:iam::111122223333:role/not-us")])
    diagnosis(fc, "gcp.impersonated", ["roles/iam.workloadIdentityUser", SA], "PERMISSION_DENIED")

    setup_cloud(fc)
    fc.control("DELETE", "/gcp/provider")
    fc.add_gcp_provider(allowed_audiences=["https://example.com/not-ours"])
    diagnosis(fc, "gcp.gcs", [fc.gcp_audience()], "invalid_grant")


def test_propagation_retried(fc, tmp):
    """A federated credential created moments ago answers 70021 for a while: retried, then it works."""
    setup_cloud(fc, fic=False)
    fc.config(entra_propagation_delay=4)
    fc.add_fic(TENANT, CLIENT)
    sock = os.path.join(tmp, "prop.sock")
    with Daemon([], config(fc, sock, daemon="backoff_max = 2"), fc.env("imds")) as d:
        # Entra asks for patience during propagation (fedtokend waits at least 30 s between such retries).
        ok = d.wait_for(lambda: try_get(sock, "/v1/token/storage") == 200, 45)
        check(ok, "70021 right after set-up: retried until the credential propagates")
        _, err = d.output()
        check("propagat" in err, "the log says it may be propagation", err[-600:])


def test_renewal_and_dedup(fc, tmp):
    """Short-lived Entra tokens renew; three Azure targets on one JWT never triple the STS calls."""
    setup_cloud(fc)
    fc.config(entra_token_lifetime=8, max_token_lifetime=90)
    extra = "".join(f"""
[azure.copy{i}]
jwt = azure
tenant_id = {TENANT}
client_id = {CLIENT}
scope = https://vault.azure.net/.default
authority = {fc.urls["entra"]}
""" for i in range(3))
    sock = os.path.join(tmp, "renew.sock")
    conf = config(fc, sock, daemon="min_remaining = 2\nrefresh_margin = 0\nbackoff_max = 2") + extra
    with Daemon([], conf, fc.env("imds")) as d:
        d.wait_for(lambda: fc.count("entra", verdict="ok") >= 12, 25)
        entra_ok = fc.count("entra", verdict="ok")
        check(entra_ok >= 12, f"Entra tokens renewed ({entra_ok} exchanges in the window)")
        gwit = fc.count("sts", "GetWebIdentityToken", "ok")
        # Two JWTs (azure, gcp), 90 s lifetime: a handful of mints at most, however many exchanges.
        check(gwit <= 4, f"one JWT per source serves every exchange ({gwit} STS calls for {entra_ok} exchanges)")
        status, _, body = get(sock, "/v1/token/storage")
        doc = json.loads(body) if status == 200 else {}
        check(status == 200 and doc.get("kind") == "azure" and doc.get("token_type") == "Bearer",
              "GET /v1/token/storage: the Entra token as JSON", (status, body[:200]))
        for k in ("name", "kind", "access_token", "token_type", "expires_at", "expires_in"):
            check(k in doc, f"token JSON has {k}")
        status, _, body = get(sock, "/v1/token/impersonated?format=raw")
        check(status == 200 and len(body) > 10, "GET /v1/token/impersonated: the Google token")


def test_outage_longer_than_lifetime(fc, tmp):
    setup_cloud(fc)
    fc.config(entra_token_lifetime=6)
    sock = os.path.join(tmp, "outage.sock")
    conf = config(fc, sock, daemon="min_remaining = 1\nrefresh_margin = 0\nbackoff_max = 3")
    with Daemon([], conf, fc.env("imds")) as d:
        check(d.wait_for(lambda: try_get(sock, "/v1/token/storage") == 200, 15), "outage: token served first")
        fc.fault("entra", "status", count=-1, status=503)
        t_fail = time.monotonic()
        served = []
        while time.monotonic() - t_fail < 12:
            status, _, body = get(sock, "/v1/token/storage")
            served.append((time.monotonic() - t_fail, status, body))
            time.sleep(0.25)
        ok_times = [t for t, s, _ in served if s == 200]
        bad = [(t, b) for t, s, b in served if s == 503]
        check(ok_times and ok_times[0] < 1, "outage: the last good token keeps being served at first")
        check(bad and all(t > ok_times[-1] for t, _ in bad), "outage: then 503, never a 200 again during the outage")
        detail = json.loads(bad[-1][1])["detail"] if bad else ""
        check("expired" in detail and "upstream failing since" in detail and "Entra" in detail,
              "outage: the 503 says the token expired, since when the upstream fails, and why", detail)
        status, _, body = get(sock, "/v1/status")
        st = {t["name"]: t for t in json.loads(body)["tokens"]}
        check(st["azure.storage"]["state"] == "failing" and st["azure.storage"]["failing_since"],
              "status: failing, with failing_since", st["azure.storage"])
        fc.clear_faults()
        t_back = time.monotonic()
        back = d.wait_for(lambda: try_get(sock, "/v1/token/storage") == 200, 10)
        check(back and time.monotonic() - t_back <= 3 + 2, "outage: recovered within the backoff cap (3 s) + a fetch")


def main():
    tmp = tempfile.mkdtemp(prefix="fedtokend-exchange-")
    with FakeCloud() as fc:
        test_once_all(fc)
        test_entra_diagnoses(fc)
        test_gcp_diagnoses(fc)
        test_propagation_retried(fc, tmp)
        test_renewal_and_dedup(fc, tmp)
        test_outage_longer_than_lifetime(fc, tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
