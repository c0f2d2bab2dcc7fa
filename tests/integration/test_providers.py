# SPDX-License-Identifier: MIT
"""fedtokend --once obtains a JWT through every AWS credential provider.

Each case runs the real binary against the fake cloud and checks what an
operator sees (exit status, the summary) and what the fake saw (a correctly
signed GetWebIdentityToken from the expected principal). No token may appear
in anything fedtokend prints.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeCloud, check, decode_jwt, run_fedtokend, summary, write_file  # noqa: E402

AZURE_AUD = "api://AzureADTokenExchange"


def config(fc, credentials="auto", jwt_extra="", aws_extra=""):
    return f"""
[daemon]
ca_file = {fc.ca_file}

[aws]
credentials = {credentials}
{aws_extra}

[jwt.azure]
audience = {AZURE_AUD}
{jwt_extra}
"""


def issued_tokens(fc):
    """Every JWT the fake STS issued (from its request log)."""
    return [e for e in fc.log("sts") if e.get("action") == "GetWebIdentityToken" and e.get("verdict") == "ok"]


def no_secret_printed(fc, r, what):
    text = r.stdout + r.stderr
    check("eyJ" not in text, f"{what}: no JWT in the output", text[:400])


def expect_ok(fc, r, what, subject_suffix):
    check(r.rc == 0, f"{what}: exit status 0", r)
    check("jwt.azure: OK" in r.stdout, f"{what}: summary says OK", r.stdout)
    check(f"audience:    {AZURE_AUD}" in r.stdout or AZURE_AUD in r.stdout, f"{what}: summary names the audience")
    check(subject_suffix in r.stdout, f"{what}: summary names the subject {subject_suffix}", r.stdout)
    check("sha256:" in r.stdout, f"{what}: summary shows a fingerprint")
    check(fc.count("sts", "GetWebIdentityToken", "ok") == 1, f"{what}: exactly one accepted STS call",
          fc.stats())
    no_secret_printed(fc, r, what)


def test_imds(fc):
    fc.reset()
    r = run_fedtokend(["--once"], config(fc, "imds"), env=fc.env("imds"))
    expect_ok(fc, r, "imds", ":role/")
    check(fc.count("imds") == 3, "imds: token PUT, role GET, credentials GET", fc.stats().get("imds"))
    check("AWS credentials: imds" in r.stdout, "imds: summary names the provider")


def test_imds_auto(fc):
    fc.reset()
    r = run_fedtokend(["--once"], config(fc, "auto"), env=fc.env("imds"))
    expect_ok(fc, r, "auto chooses imds", ":role/")


def static_creds(fc, **kw):
    import secrets
    # Real session tokens run to a kilobyte or more; so does this one.
    kw.setdefault("session_token", "IQoJb3JpZ2luX2VjEFAKE" + secrets.token_urlsafe(900))
    return fc.add_creds(**kw)


def test_env(fc):
    fc.reset()
    c = static_creds(fc, role_arn="arn:aws:iam::111122223333:role/env-role", expires_in=7200)
    env = fc.env("none", AWS_ACCESS_KEY_ID=c["access_key_id"], AWS_SECRET_ACCESS_KEY=c["secret_access_key"],
                 AWS_SESSION_TOKEN=c["session_token"], AWS_EC2_METADATA_DISABLED="true")
    r = run_fedtokend(["--once"], config(fc, "auto"), env=env)
    expect_ok(fc, r, "env", "role/env-role")
    check("AWS credentials: env" in r.stdout, "env: auto chain took the environment first")
    check(c["secret_access_key"] not in r.stdout + r.stderr, "env: secret key never printed")
    check(fc.count("imds") == 0, "env: IMDS never asked")


def test_profile(fc, tmp):
    fc.reset()
    c = static_creds(fc, role_arn="arn:aws:iam::111122223333:role/profile-role", expires_in=7200)
    path = os.path.join(tmp, "credentials")
    # A session token longer than libinih's 200-byte line limit must still parse.
    write_file(path, f"""[default]
aws_access_key_id = AKIAWRONGWRONGWRONG0
aws_secret_access_key = wrong

[work]
aws_access_key_id = {c['access_key_id']}
aws_secret_access_key = {c['secret_access_key']}
aws_session_token = {c['session_token']}
""")
    env = fc.env("none", AWS_SHARED_CREDENTIALS_FILE=path, AWS_PROFILE="work", AWS_EC2_METADATA_DISABLED="true")
    r = run_fedtokend(["--once"], config(fc, "profile"), env=env)
    expect_ok(fc, r, "profile", "role/profile-role")


def test_web_identity(fc):
    fc.reset()
    env = fc.env("web-identity")
    r = run_fedtokend(["--once"], config(fc, "auto"), env=env)
    expect_ok(fc, r, "web-identity", "role/example-irsa-role")
    check(fc.count("sts", "AssumeRoleWithWebIdentity", "ok") == 1, "web-identity: one unsigned ARWWI call")
    check("AWS credentials: web-identity" in r.stdout, "web-identity: summary names the provider")


def test_container(fc, source):
    fc.reset()
    env = fc.env(source)
    r = run_fedtokend(["--once"], config(fc, "auto"), env=env)
    expect_ok(fc, r, source, ":role/")
    check(fc.count("container") == 1, f"{source}: one container endpoint call")


def test_container_token_file(fc, tmp):
    fc.reset()
    env = fc.env("pod-identity")
    token = env.pop("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    path = write_file(os.path.join(tmp, "eks-pod-identity-token"), token)
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = path
    r = run_fedtokend(["--once"], config(fc, "container"), env=env)
    expect_ok(fc, r, "container token file", ":role/")
    auth = [e["headers"].get("authorization") for e in fc.log("container")]
    check(len(auth) == 1 and auth[0] is not None and token not in str(auth[0]),
          "container token file: the fake saw an Authorization header (fingerprinted in its log)", auth)


def test_verify_and_es384(fc):
    fc.reset()
    r = run_fedtokend(["--once"], config(fc, "imds", "signing_algorithm = ES384\nverify = true"), env=fc.env("imds"))
    check(r.rc == 0, "ES384 + verify: exit 0", r)
    check("ES384, verified against the issuer's JWKS" in r.stdout, "ES384 + verify: signature verified", r.stdout)
    paths = [e["path"] for e in fc.log("issuer")]
    check(any(p.endswith("/.well-known/openid-configuration") for p in paths), "discovery document fetched", paths)
    check(any(p.endswith("/.well-known/jwks.json") for p in paths), "JWKS fetched", paths)


def test_duration_clamped_to_credentials(fc):
    fc.reset()
    # Credentials that expire in 10 minutes cannot sign for a one-hour token.
    fc.fault("imds", "short_creds", seconds=600)
    r = run_fedtokend(["--once"], config(fc, "imds", "duration = 3600"), env=fc.env("imds"))
    check(r.rc == 0, "clamped duration: exit 0", r)
    sts = issued_tokens(fc)
    dur = int(sts[-1]["body_params"].get("DurationSeconds", "0")) if sts else 0
    check(60 <= dur <= 540, f"clamped duration: asked for {dur} s, within the credentials' life", sts[-1:] or None)
    check(fc.count("sts", "GetWebIdentityToken", "SessionDurationEscalationException") == 0,
          "clamped duration: STS never refused the duration")


def test_two_tokens_share_credentials(fc):
    fc.reset()
    conf = config(fc, "imds") + "\n[jwt.gcp]\naudience = //iam.googleapis.com/projects/1/locations/global/" \
                                "workloadIdentityPools/p/providers/aws\nduration = 900\n"
    r = run_fedtokend(["--once"], conf, env=fc.env("imds"))
    check(r.rc == 0 and "jwt.gcp: OK" in r.stdout and "jwt.azure: OK" in r.stdout, "two tokens: both OK", r)
    check(fc.count("imds", verdict="ok") == 3, "two tokens: one credential fetch shared by both",
          fc.stats().get("imds"))
    check(fc.count("sts", "GetWebIdentityToken", "ok") == 2, "two tokens: two STS calls")


def main():
    import tempfile
    tmp = tempfile.mkdtemp(prefix="fedtokend-providers-")
    with FakeCloud() as fc:
        test_imds(fc)
        test_imds_auto(fc)
        test_env(fc)
        test_profile(fc, tmp)
        test_web_identity(fc)
        test_container(fc, "container")
        test_container(fc, "pod-identity")
        test_container_token_file(fc, tmp)
        test_verify_and_es384(fc)
        test_duration_clamped_to_credentials(fc)
        test_two_tokens_share_credentials(fc)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
