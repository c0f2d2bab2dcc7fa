# SPDX-License-Identifier: MIT
"""Helpers for fedtokend integration tests.

    from harness import FakeCloud, run_fedtokend, Daemon, check, summary

    with FakeCloud() as fc:
        fc.fault("sts", "throttle", count=1)
        r = run_fedtokend(["--once"], config_text, env=fc.env("imds"), timeout=30)
        check(r.rc == 0, "fedtokend fetched a token after one throttle")
        check(fc.stats()["sts"]["GetWebIdentityToken"]["ok"] == 1, "one successful STS call")
    sys.exit(summary())

Run with /usr/bin/python3 (Debian's python3-cryptography is needed by the
fake). The fedtokend binary is taken from $FEDTOKEND.
"""

import atexit
import base64
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FAKECLOUD = os.path.join(REPO, "tests", "fake", "fakecloud.py")
PYTHON = "/usr/bin/python3"

ENTRA_FIC_AUDIENCE = "api://AzureADTokenExchange"
# The workload identity provider of the captured Google configurations.
GCP_PROJECT_NUMBER = "123456789012"
GCP_POOL = "aws-pool"
GCP_PROVIDER = "aws-outbound"
GCP_SERVICE_ACCOUNT = "example-sa@example-project.iam.gserviceaccount.com"

# Variables copied from the caller's environment into the daemon's: they steer
# sanitizers and coverage, never credentials.
PASSTHROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MSAN_OPTIONS", "TSAN_OPTIONS",
                   "LLVM_PROFILE_FILE", "GCOV_PREFIX", "GCOV_PREFIX_STRIP")


def fingerprint(secret):
    """The fake's (and ft_fingerprint's) "sha256:" + 12 hex digits form."""
    if isinstance(secret, str):
        secret = secret.encode("latin-1", "replace")
    return "sha256:" + hashlib.sha256(secret).hexdigest()[:12]


class FakeCloudError(RuntimeError):
    pass


class FakeCloud:
    """Run tests/fake/fakecloud.py in a temporary directory.

    Attributes once started: urls (imds, container, sts, issuer, control,
    entra, gcp_sts, gcp_iam), ca_file, region, account, dir, info (the whole
    fakecloud.json); issuer (the fake STS's OIDC issuer URL).
    """

    def __init__(self, region="us-east-2", account="111122223333", keep=False, start_timeout=10.0):
        self.region = region
        self.account = account
        self.keep = keep or bool(os.environ.get("FAKECLOUD_KEEP"))
        self.start_timeout = start_timeout
        self.proc = None
        self.dir = None
        self.info = None
        self.urls = {}
        self.ca_file = None
        self.returncode = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def extra_args(self):
        """More command-line arguments for fakecloud.py (subclasses add theirs)."""
        return []

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="fakecloud-")
        self._stderr = open(os.path.join(self.dir, "fakecloud.log"), "wb")
        self.proc = subprocess.Popen(
            [PYTHON, FAKECLOUD, "--dir", self.dir, "--region", self.region, "--account", self.account]
            + self.extra_args(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"})
        path = os.path.join(self.dir, "fakecloud.json")
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    self.info = json.load(f)
                break
            if self.proc.poll() is not None:
                raise FakeCloudError(f"fakecloud exited with {self.proc.returncode}:\n{self.log_text()}")
            time.sleep(0.05)
        else:
            log = self.log_text()
            self.stop()
            raise FakeCloudError(f"fakecloud did not start within {self.start_timeout} s:\n{log}")
        self.urls = {k: self.info[k] for k in ("imds", "container", "sts", "issuer", "control", "entra",
                                                "gcp_sts", "gcp_iam") if k in self.info}
        self.ca_file = self.info["ca_file"]
        return self

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s. Returns the exit status."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.returncode = self.proc.returncode
            self.proc = None
            self._stderr.close()
        if self.dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.returncode

    def log_text(self):
        """What the fake printed to stderr (one line per request)."""
        try:
            with open(os.path.join(self.dir, "fakecloud.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- control API -------------------------------------------------------

    def control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.urls["control"] + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise FakeCloudError(f"control {method} {path}: {e.code} {e.read().decode(errors='replace')}")

    def reset(self):
        """Forget credentials, tokens, faults, log and stats; default settings."""
        return self.control("POST", "/reset", {})

    def config(self, **settings):
        """creds_lifetime, max_token_lifetime, clock_skew, container_token,
        imds_role, container_role, account, max_skew, max_payload_bytes,
        entra_token_lifetime, entra_refresh_in, entra_numbers_as_strings,
        entra_propagation_delay, entra_clock_tolerance, gcp_token_lifetime,
        gcp_max_lifetime, issuer_cache_seconds."""
        return self.control("POST", "/config", settings)

    def fault(self, service, mode, count=1, **params):
        """Queue a fault; returns its id. count=-1: until clear_faults()."""
        spec = dict(params, service=service, mode=mode, count=count)
        return self.control("POST", "/fault", spec)["ids"][0]

    def faults(self):
        return self.control("GET", "/fault")

    def clear_faults(self, service=None, fault_id=None):
        """Remove all faults, or one service's, or the one fault() returned."""
        if fault_id is not None:
            return self.control("DELETE", f"/fault?id={int(fault_id)}")
        return self.control("DELETE", "/fault" + (f"?service={service}" if service else ""))

    def log(self, service=None, since=0):
        q = f"?since={since}" + (f"&service={service}" if service else "")
        return self.control("GET", "/log" + q)

    def stats(self):
        return self.control("GET", "/stats")

    def count(self, service, action=None, verdict=None):
        """Requests seen by `service` (optionally one action / verdict)."""
        n = 0
        for act, verdicts in self.stats().get(service, {}).items():
            if action is not None and act != action:
                continue
            for v, c in verdicts.items():
                if verdict is None or v == verdict:
                    n += c
        return n

    def mint_irsa(self, **opts):
        """A service-account JWT the fake's AssumeRoleWithWebIdentity accepts.
        Options: expired, aud, sub, iss, lifetime, tamper."""
        return self.control("POST", "/mint/irsa", opts)["token"]

    def add_creds(self, **spec):
        """Register static credentials: access_key_id, secret_access_key,
        session_token, expires_in|expiration, role_arn, account (all optional)."""
        return self.control("POST", "/creds", spec)

    def creds(self):
        return self.control("GET", "/creds")

    def mint_jwt(self, alg="RS256", lifetime=300, claims=None, header=None, tamper=False):
        """A JWT signed with the fake issuer's keys (as STS signs), any claims
        (None removes one): for edges STS never produces. Returns the token."""
        opts = {"alg": alg, "lifetime": lifetime, "claims": claims or {}, "header": header or {}, "tamper": tamper}
        return self.control("POST", "/mint/jwt", opts)["token"]

    # -- Entra ID and Google --------------------------------------------------

    @property
    def issuer(self):
        """The OIDC issuer URL of the JWTs the fake STS signs (their iss)."""
        return self.urls["issuer"]

    def role_arn(self, role=None):
        """The sub of JWTs obtained with IMDS credentials (or with `role`)."""
        role = role or self.control("GET", "/config")["imds_role"]
        return f"arn:aws:iam::{self.account}:role/{role}"

    def add_fic(self, tenant, client_id, issuer=None, subject=None, audience=ENTRA_FIC_AUDIENCE, name=None):
        """A federated identity credential on the Entra application client_id
        of tenant (which become known to the fake Entra ID). issuer defaults
        to the fake issuer, subject to role_arn(). Returns the FIC (id, created...)."""
        spec = {"tenant": tenant, "client_id": client_id, "issuer": issuer or self.issuer,
                "subject": subject or self.role_arn(), "audience": audience}
        if name:
            spec["name"] = name
        return self.control("POST", "/entra/fic", spec)

    def add_entra_app(self, tenant, client_id):
        """An application known to its tenant but with no FIC."""
        return self.control("POST", "/entra/app", {"tenant": tenant, "client_id": client_id})

    def fics(self):
        return self.control("GET", "/entra/fic")

    def clear_fics(self, fic_id=None, tenant=None, client_id=None):
        """Remove all FICs (and applications), or those matching the filters."""
        q = "&".join(f"{k}={urllib.parse.quote(str(v), safe='')}"
                     for k, v in (("id", fic_id), ("tenant", tenant), ("client_id", client_id)) if v is not None)
        return self.control("DELETE", "/entra/fic" + ("?" + q if q else ""))

    @staticmethod
    def gcp_audience(project_number=GCP_PROJECT_NUMBER, pool=GCP_POOL, provider=GCP_PROVIDER):
        return (f"//iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool}"
                f"/providers/{provider}")

    @staticmethod
    def gcp_principal(subject, project_number=GCP_PROJECT_NUMBER, pool=GCP_POOL):
        return (f"principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/"
                f"{pool}/subject/{subject}")

    @staticmethod
    def gcp_principal_set(project_number=GCP_PROJECT_NUMBER, pool=GCP_POOL):
        return (f"principalSet://iam.googleapis.com/projects/{project_number}/locations/global/"
                f"workloadIdentityPools/{pool}/*")

    def add_gcp_provider(self, audience=None, issuer=None, allowed_audiences=None, disabled=False):
        """A workload identity pool provider (default: the captured
        //iam.googleapis.com/projects/123456789012/.../aws-pool/providers/aws-outbound)
        trusting `issuer` (default the fake issuer). Without allowed_audiences
        the token's aud must be the provider's own name (https: prefix or
        not), as on Google. Returns the provider (audience, principal_prefix...)."""
        spec = {"audience": audience or self.gcp_audience(), "issuer": issuer or self.issuer,
                "allowed_audiences": list(allowed_audiences or []), "disabled": disabled}
        return self.control("POST", "/gcp/provider", spec)

    def add_gcp_service_account(self, email=GCP_SERVICE_ACCOUNT, members=None):
        """A service account the federated principals in `members` may
        impersonate (default: the principal of role_arn() in the default pool)."""
        if members is None:
            members = [self.gcp_principal(self.role_arn())]
        return self.control("POST", "/gcp/service_account", {"email": email, "members": list(members)})

    def gcp_tokens(self):
        """Access tokens the fake Google issued (fingerprints only)."""
        return self.control("GET", "/gcp/tokens")

    # -- conveniences ------------------------------------------------------

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_file)

    def jwks(self):
        with urllib.request.urlopen(self.urls["issuer"] + "/.well-known/jwks.json",
                                    context=self.ssl_context(), timeout=10) as r:
            return json.loads(r.read())

    def env(self, source="imds", **extra):
        """Environment pointing an AWS client at the fake: region, STS
        endpoint and the chosen credential source ("imds", "container",
        "pod-identity", "web-identity", "none")."""
        e = {"AWS_REGION": self.region, "AWS_ENDPOINT_URL_STS": self.urls["sts"]}
        if source == "imds":
            e["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = self.urls["imds"]
        elif source in ("container", "pod-identity"):
            path = "/v1/credentials" if source == "pod-identity" else "/v2/credentials/fakecloud"
            e["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = self.urls["container"] + path
            e["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.control("GET", "/config")["container_token"]
            e["AWS_EC2_METADATA_DISABLED"] = "true"
        elif source == "web-identity":
            token_file = os.path.join(self.dir, "irsa-token")
            write_file(token_file, self.mint_irsa())
            e["AWS_WEB_IDENTITY_TOKEN_FILE"] = token_file
            e["AWS_ROLE_ARN"] = f"arn:aws:iam::{self.account}:role/example-irsa-role"
            e["AWS_ROLE_SESSION_NAME"] = "fedtokend-test"
            e["AWS_EC2_METADATA_DISABLED"] = "true"
        elif source != "none":
            raise ValueError(f"unknown credential source {source!r}")
        e.update(extra)
        return e


_scratch_dirs = []


def _scratch(prefix):
    """A temporary directory removed when the test process exits (kept when
    FAKECLOUD_KEEP is set, for post-mortems)."""
    path = tempfile.mkdtemp(prefix=prefix)
    _scratch_dirs.append(path)
    return path


@atexit.register
def _remove_scratch():
    if not os.environ.get("FAKECLOUD_KEEP"):
        for path in _scratch_dirs:
            shutil.rmtree(path, ignore_errors=True)


def write_file(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------------------
# Running fedtokend
# ---------------------------------------------------------------------------

class Result:
    def __init__(self, rc, stdout, stderr, config_path, timed_out=False):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.config_path = config_path
        self.timed_out = timed_out

    def __repr__(self):
        return f"Result(rc={self.rc}, timed_out={self.timed_out}, stderr={self.stderr[-400:]!r})"


def fedtokend_path():
    path = os.environ.get("FEDTOKEND")
    if not path:
        guess = os.path.join(REPO, "build", "daemon", "fedtokend")
        if os.path.exists(guess):
            return guess
        raise FakeCloudError("set FEDTOKEND to the path of the built fedtokend binary")
    return path


def clean_env(env=None, home=None):
    """A minimal environment plus `env`: no AWS_* / AZURE_* / GOOGLE_*
    variables from the host leak in, and HOME is an empty directory so that
    ~/.aws is not read."""
    e = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home or _scratch("fedtokend-home-")}
    for k in PASSTHROUGH_ENV:
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(env or {})
    return e


def _command(args, config_text, workdir):
    config_path = None
    args = list(args)
    if config_text is not None:
        config_path = write_file(os.path.join(workdir, "fedtokend.conf"), config_text, 0o644)
        if any("{config}" in a for a in args):
            args = [a.replace("{config}", config_path) for a in args]
        else:
            args = ["--config", config_path] + args
    return [fedtokend_path()] + args, config_path


def run_fedtokend(args, config_text=None, env=None, timeout=30, workdir=None):
    """Run fedtokend to completion. `config_text` is written to a file whose
    path replaces "{config}" in args (or is passed as `--config PATH` first).
    Returns Result(rc, stdout, stderr, config_path); rc is None on timeout
    (the process is killed)."""
    workdir = workdir or _scratch("fedtokend-run-")
    cmd, config_path = _command(args, config_text, workdir)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=clean_env(env, _mkdir(workdir, "home")),
                            cwd=workdir)
    try:
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                      config_path)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Result(None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), config_path, True)


def _mkdir(parent, name):
    path = os.path.join(parent, name)
    os.makedirs(path, exist_ok=True)
    return path


class Daemon:
    """A long-running fedtokend: start, poll with wait_for(), stop with SIGTERM.

        with Daemon(["--foreground"], conf, env) as d:
            check(d.wait_for(lambda: os.path.exists(token_file), 10), "token file written")
        check(d.rc == 0, "clean exit on SIGTERM")
    """

    def __init__(self, args, config_text=None, env=None, workdir=None):
        self.workdir = workdir or _scratch("fedtokend-daemon-")
        self.cmd, self.config_path = _command(args, config_text, self.workdir)
        self.env = clean_env(env, _mkdir(self.workdir, "home"))
        self.proc = None
        self.rc = None
        self.stdout = ""
        self.stderr = ""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self._out = open(os.path.join(self.workdir, "stdout"), "wb")
        self._err = open(os.path.join(self.workdir, "stderr"), "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                     env=self.env, cwd=self.workdir)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def output(self):
        """(stdout, stderr) so far."""
        def read(name):
            with open(os.path.join(self.workdir, name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        return read("stdout"), read("stderr")

    def wait_for(self, predicate, timeout=10.0, interval=0.05):
        """Poll predicate() until true (returns True) or timeout / daemon exit (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if not self.alive():
                return bool(predicate())
            time.sleep(interval)
        return False

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        if self.proc is None:
            return self.rc
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.rc = None
                self._finish()
                return None
        self.rc = self.proc.returncode
        self._finish()
        return self.rc

    def _finish(self):
        self._out.close()
        self._err.close()
        self.stdout, self.stderr = self.output()
        self.proc = None


# ---------------------------------------------------------------------------
# JWTs
# ---------------------------------------------------------------------------

def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt(token):
    """(header, claims) without verifying anything."""
    h, p, _ = token.split(".")
    return json.loads(_b64url_decode(h)), json.loads(_b64url_decode(p))


def verify_jwt(token, jwks):
    """Verify an RS256 / ES384 JWT against a JWKS dict; returns the claims or
    raises ValueError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    header, claims = decode_jwt(token)
    h, p, s = token.split(".")
    sig = _b64url_decode(s)
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if len(keys) != 1:
        raise ValueError(f"no single key with kid {header.get('kid')!r} in the JWKS")
    k = keys[0]
    as_int = lambda v: int.from_bytes(_b64url_decode(v), "big")  # noqa: E731
    data = (h + "." + p).encode("ascii")
    try:
        if header.get("alg") == "RS256" and k["kty"] == "RSA":
            pub = rsa.RSAPublicNumbers(as_int(k["e"]), as_int(k["n"])).public_key()
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        elif header.get("alg") == "ES384" and k["kty"] == "EC" and k.get("crv") == "P-384":
            if len(sig) != 96:
                raise ValueError("ES384 signature is not 96 bytes")
            pub = ec.EllipticCurvePublicNumbers(as_int(k["x"]), as_int(k["y"]), ec.SECP384R1()).public_key()
            der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
            pub.verify(der, data, ec.ECDSA(hashes.SHA384()))
        else:
            raise ValueError(f"unsupported alg {header.get('alg')!r} for key type {k.get('kty')!r}")
    except InvalidSignature:
        raise ValueError("JWT signature does not verify")
    return claims


# ---------------------------------------------------------------------------
# Checks and summary
# ---------------------------------------------------------------------------

_counts = {"passed": 0, "failed": 0}


def check(cond, msg, detail=None):
    """Record one check; prints `ok - msg` or `FAIL - msg` (with detail)."""
    if cond:
        _counts["passed"] += 1
        print(f"ok - {msg}", flush=True)
    else:
        _counts["failed"] += 1
        print(f"FAIL - {msg}" + (f"\n    {detail}" if detail is not None else ""), flush=True)
    return bool(cond)


def summary():
    """Print `N passed, N failed`; returns the exit status (non-zero when
    anything failed or nothing ran)."""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed", flush=True)
    return 0 if _counts["failed"] == 0 and _counts["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit("harness.py is a module: import it from an integration test")
