# SPDX-License-Identifier: MIT
"""Token files for unmodified SDKs: the JWT file is exactly what Azure's
WorkloadIdentityCredential reads (a bare JWT, no newline, valid for at least
10 minutes whenever it is read), access-token files, the Google
external_account configuration, modes, planted symlinks, removal when a
token can no longer be served."""
import json
import os
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, FakeCloud, check, decode_jwt, summary  # noqa: E402
from test_serve import get, try_get  # noqa: E402

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def config(fc, d, daemon=""):
    gcp_aud = fc.gcp_audience()
    return f"""
[daemon]
socket = {d}/sock
ca_file = {fc.ca_file}
{daemon}

[aws]
credentials = imds

[jwt.azure]
audience = api://AzureADTokenExchange
file = {d}/azure.jwt

[azure.storage]
jwt = azure
tenant_id = {TENANT}
client_id = {CLIENT}
scope = https://storage.azure.com/.default
authority = {fc.urls["entra"]}
file = {d}/storage.token
file_mode = 0640

[jwt.gcp]
audience = {gcp_aud}
file = {d}/gcp.jwt

[gcp.gcs]
jwt = gcp
audience = {gcp_aud}
sts_endpoint = {fc.urls["gcp_sts"]}
external_account_file = {d}/gcp-credentials.json
"""


def test_sdk_contract(fc, d):
    fc.reset()
    fc.add_fic(TENANT, CLIENT)
    fc.add_gcp_provider()
    victim = os.path.join(d, "victim")
    with open(victim, "w") as f:
        f.write("do not touch")
    os.symlink(victim, os.path.join(d, "storage.token"))   # planted before the daemon starts
    with Daemon([], config(fc, d), fc.env("imds")) as dm:
        path = os.path.join(d, "azure.jwt")
        check(dm.wait_for(lambda: os.path.exists(path) and os.path.exists(os.path.join(d, "storage.token"))
                          and not os.path.islink(os.path.join(d, "storage.token")), 15), "token files written")
        content = open(path, "rb").read()
        check(content == content.strip() and content.count(b".") == 2 and not content.endswith(b"\n"),
              "the JWT file holds a bare JWT: no whitespace, no newline (what every Azure SDK reads)")
        _, claims = decode_jwt(content.decode())
        check(claims["exp"] - claims["iat"] == 3600, "a JWT that feeds a file is requested for 3600 s", claims)
        check(claims["exp"] - time.time() >= 600, "the file's JWT is valid for at least 10 minutes when read")
        check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "JWT file mode 0600 by default")
        raw = get(os.path.join(d, "sock"), "/v1/jwt/azure?format=raw")[2]
        check(raw == content, "the file and the socket serve the same token")
        tok = os.path.join(d, "storage.token")
        check(stat.S_ISREG(os.lstat(tok).st_mode) and stat.S_IMODE(os.stat(tok).st_mode) == 0o640,
              "access-token file: a regular file with file_mode 0640 (the planted symlink was replaced)")
        check(open(victim).read() == "do not touch", "the planted symlink's target is untouched")
        check(open(tok, "rb").read() == get(os.path.join(d, "sock"), "/v1/token/storage?format=raw")[2],
              "the access-token file holds the Entra token")
        ext = json.load(open(os.path.join(d, "gcp-credentials.json")))
        check(ext.get("type") == "external_account" and ext["credential_source"]["file"] == os.path.join(d, "gcp.jwt")
              and ext["audience"] == fc.gcp_audience() and ext["subject_token_type"].endswith(":jwt"),
              "external_account configuration points Google libraries at the JWT file", ext)
        leftovers = [n for n in os.listdir(d) if n.startswith(".")]
        check(not leftovers, "no temporary files left behind", leftovers)
    check(not os.path.exists(os.path.join(d, "azure.jwt")) and not os.path.exists(os.path.join(d, "storage.token")),
          "at exit the token files are removed: nobody renews them any more")


def test_rewrite_never_torn(fc, d):
    fc.reset()
    fc.config(max_token_lifetime=10)
    conf = f"""
[daemon]
socket = {d}/sock2
ca_file = {fc.ca_file}
min_remaining = 1
refresh_margin = 0

[aws]
credentials = imds

[jwt.azure]
audience = api://AzureADTokenExchange
file = {d}/short.jwt
"""
    path = os.path.join(d, "short.jwt")
    with Daemon([], conf, fc.env("imds")) as dm:
        check(dm.wait_for(lambda: os.path.exists(path), 10), "short-lived token file written")
        seen, worst, bad = set(), 99.0, 0
        t_end = time.monotonic() + 16
        while time.monotonic() < t_end:
            try:
                data = open(path, "rb").read()
            except FileNotFoundError:
                bad += 1
                continue
            try:
                _, claims = decode_jwt(data.decode())
                seen.add(data)
                worst = min(worst, claims["exp"] - time.time())
            except Exception:
                bad += 1
        check(bad == 0, f"never an empty, missing or torn file across rewrites ({bad} bad reads)")
        check(len(seen) >= 3, f"the file was rewritten at every renewal ({len(seen)} tokens seen)")
        check(worst >= 1.0, f"rewritten by 80 % of its life: at least 20 % left whenever read (worst {worst:.1f} s)")

        fc.fault("sts", "status", count=-1, status=503)
        gone = dm.wait_for(lambda: not os.path.exists(path), 15)
        check(gone, "a token that can no longer be served is removed from its file")


def main():
    d = tempfile.mkdtemp(prefix="fedtokend-files-")
    with FakeCloud() as fc:
        test_sdk_contract(fc, d)
        test_rewrite_never_torn(fc, d)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
