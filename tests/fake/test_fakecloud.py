#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of the fake cloud: the SigV4 verifier against the public suite
and the captured SDK requests (and their tampered copies), then the real
server end to end with a small Python client.

    /usr/bin/python3 tests/fake/test_fakecloud.py      (FT_SHARED_DIR defaults to ../shared next to the repo)

Prints a final `N passed, N failed` line; exits non-zero on any failure.
"""

import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import sigv4_verify as v  # noqa: E402
import harness  # noqa: E402

SHARED = os.environ.get("FT_SHARED_DIR") or os.path.join(os.path.dirname(REPO), "shared")
SUITE = os.path.join(SHARED, "vectors", "sigv4", "aws-c-auth", "v4")
CAPTURED = os.path.join(SHARED, "vectors", "captured")
NS = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}

STS_AKID = "AKIDEXAMPLE"
STS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE"
STS_TOKEN = "FAKE-SESSION-TOKEN-EXAMPLE"
STS_NOW = 1764590400          # 2025-12-01T12:00:00Z


# ---------------------------------------------------------------------------
# Parsing the vector files
# ---------------------------------------------------------------------------

def parse_raw_request(raw):
    """Raw request bytes (CRLF or LF line ends, folded headers allowed) ->
    (method, target, [(name, value)], body)."""
    text = raw.decode("latin-1")
    if "\r\n\r\n" in text:
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
    else:
        head, _, body = text.partition("\n\n")
        lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            headers.append((name, value.strip(" \t")))
    return method, target, headers, body.encode("latin-1")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def suite_cases():
    return sorted(d for d in os.listdir(SUITE) if os.path.isdir(os.path.join(SUITE, d)))


def replace_header(headers, name, fn):
    out, done = [], False
    for n, val in headers:
        if n.lower() == name and not done:
            out.append((n, fn(val)))
            done = True
        else:
            out.append((n, val))
    assert done, name
    return out


def flip_hex(sig):
    return ("0" if sig[0] != "0" else "1") + sig[1:]


def tamper_signature(headers):
    return replace_header(headers, "authorization",
                          lambda a: re.sub(r"Signature=([0-9a-f]+)", lambda m: "Signature=" + flip_hex(m.group(1)), a))


def tamper_date(headers):
    def bump(d):
        t = v.amz_date_epoch(d)
        t = t + 1 if d[-3:-1] != "59" else t - 1
        return v.fmt_amz_date(t)
    return replace_header(headers, "x-amz-date", bump)


def tamper_body(body):
    if not body:
        return b"x"
    return bytes([body[0] ^ 0x01]) + body[1:]


class VectorMixin:
    """Verification and tampering shared by the suite and the captures."""

    def verify(self, method, target, headers, body, **kw):
        return v.verify(method, target, headers, body, **kw)

    def check_rejections(self, method, target, headers, body, kw):
        auth = v.parse_authorization(dict((n.lower(), x) for n, x in headers)["authorization"])

        def rejected(label, m, t, h, b, code="SignatureDoesNotMatch", text="does not match"):
            with self.assertRaises(v.SigV4Error, msg=label) as cm:
                self.verify(m, t, h, b, **kw)
            self.assertEqual(cm.exception.code, code, f"{label}: {cm.exception}")
            self.assertIn(text, cm.exception.message, label)

        rejected("signature", method, target, tamper_signature(headers), body)
        rejected("date", method, target, tamper_date(headers), body)
        rejected("body", method, target, headers, tamper_body(body))
        rejected("host", method, target, replace_header(headers, "host", lambda x: x[:-1] + chr(ord(x[-1]) ^ 1)),
                 body)
        other = [h for h in auth.signed_headers if h not in ("host", "x-amz-date")]
        if other:
            rejected(f"header {other[0]}", method, target,
                     replace_header(headers, other[0], lambda x: (x + "x") if x else "x"), body)
        rejected("method", "PUT" if method != "PUT" else "POST", target, headers, body)
        rejected("path", method, "/tampered" + target, headers, body)
        rejected("access key", method, target,
                 replace_header(headers, "authorization", lambda a: a.replace("Credential=AKIDEXAMPLE/",
                                                                             "Credential=AKIDEXAMPLF/")),
                 body, "InvalidClientTokenId", "invalid")
        return auth


class SigV4SuiteTests(unittest.TestCase, VectorMixin):
    """Every case of aws-c-auth's v4 suite, verified from its signed request."""

    def verify(self, method, target, headers, body, **kw):
        secret = kw.pop("secret")

        def lookup(akid):
            if akid != "AKIDEXAMPLE":
                raise v.SigV4Error("InvalidClientTokenId", "The security token included in the request is invalid.")
            return secret
        return v.verify(method, target, headers, body, lookup=lookup, **kw)


def _suite_test(case):
    def test(self):
        d = os.path.join(SUITE, case)
        ctx = json.loads(read(os.path.join(d, "context.json")))
        method, target, headers, body = parse_raw_request(read(os.path.join(d, "header-signed-request.txt")))
        kw = dict(secret=ctx["credentials"]["secret_access_key"], now=v.amz_date_epoch("20150830T123600Z"),
                  region=ctx["region"], service=ctx["service"], normalize=ctx["normalize"])
        r = self.verify(method, target, headers, body, **kw)
        self.assertEqual(r.canonical_request, read(os.path.join(d, "header-canonical-request.txt")).decode("latin-1"))
        self.assertEqual(r.string_to_sign, read(os.path.join(d, "header-string-to-sign.txt")).decode("latin-1"))
        self.assertEqual(r.signature, read(os.path.join(d, "header-signature.txt")).decode().strip())
        self.check_rejections(method, target, headers, body, kw)
    return test


if os.path.isdir(SUITE):
    for _case in suite_cases():
        setattr(SigV4SuiteTests, "test_" + _case.replace("-", "_"), _suite_test(_case))


class CapturedStsTests(unittest.TestCase, VectorMixin):
    """The SDK's signed GetWebIdentityToken requests, clock frozen at 2025-12-01T12:00:00Z."""

    def verify(self, method, target, headers, body, **kw):
        hmap = v.header_map(headers)

        def lookup(akid):
            if akid != STS_AKID:
                raise v.SigV4Error("InvalidClientTokenId", "The security token included in the request is invalid.")
            if hmap.get("x-amz-security-token") != [STS_TOKEN]:
                raise v.SigV4Error("InvalidClientTokenId", "The security token included in the request is invalid.")
            return STS_SECRET
        return v.verify(method, target, headers, body, lookup=lookup, now=STS_NOW, region="us-east-2",
                        service="sts", **kw)

    def test_files_present(self):
        names = [f for f in os.listdir(CAPTURED) if f.startswith("sts-getwebidentitytoken") and f.endswith(".http")]
        self.assertGreaterEqual(len(names), 7, names)

    def test_unknown_key_and_token(self):
        method, target, headers, body = parse_raw_request(read(os.path.join(CAPTURED, "sts-getwebidentitytoken.http")))
        no_token = [(n, x) for n, x in headers if n.lower() != "x-amz-security-token"]
        with self.assertRaises(v.SigV4Error) as cm:
            self.verify(method, target, no_token, body)
        self.assertEqual(cm.exception.code, "InvalidClientTokenId")
        wrong = replace_header(headers, "x-amz-security-token", lambda x: x + "X")
        with self.assertRaises(v.SigV4Error) as cm:
            self.verify(method, target, wrong, body)
        self.assertEqual(cm.exception.code, "InvalidClientTokenId")

    def test_wrong_region_and_skew(self):
        method, target, headers, body = parse_raw_request(read(os.path.join(CAPTURED, "sts-getwebidentitytoken.http")))
        with self.assertRaises(v.SigV4Error) as cm:
            v.verify(method, target, headers, body, lookup=lambda a: STS_SECRET, now=STS_NOW, region="eu-west-1",
                     service="sts")
        self.assertIn("Credential should be scoped to a valid region", cm.exception.message)
        with self.assertRaises(v.SigV4Error) as cm:
            v.verify(method, target, headers, body, lookup=lambda a: STS_SECRET, now=STS_NOW + 301,
                     region="us-east-2", service="sts")
        self.assertTrue(cm.exception.message.startswith("Signature expired: 20251201T120000Z"), cm.exception.message)
        with self.assertRaises(v.SigV4Error) as cm:
            v.verify(method, target, headers, body, lookup=lambda a: STS_SECRET, now=STS_NOW - 301,
                     region="us-east-2", service="sts")
        self.assertIn("Signature not yet current", cm.exception.message)
        r = v.verify(method, target, headers, body, lookup=lambda a: STS_SECRET, now=STS_NOW + 300,
                     region="us-east-2", service="sts")
        self.assertEqual(r.access_key, STS_AKID)


def _captured_test(name):
    def test(self):
        method, target, headers, body = parse_raw_request(read(os.path.join(CAPTURED, name + ".http")))
        r = self.verify(method, target, headers, body)
        stem = os.path.join(CAPTURED, name)
        if os.path.exists(stem + ".creq"):
            self.assertEqual(r.canonical_request, read(stem + ".creq").decode("latin-1"))
            self.assertEqual(r.string_to_sign, read(stem + ".sts").decode("latin-1"))
            self.assertEqual(dict((n.lower(), x) for n, x in headers)["authorization"],
                             read(stem + ".authz").decode().strip())
        self.check_rejections(method, target, headers, body, {})
    return test


if os.path.isdir(CAPTURED):
    for _f in sorted(os.listdir(CAPTURED)):
        if _f.startswith("sts-getwebidentitytoken") and _f.endswith(".http"):
            _n = _f[:-5]
            setattr(CapturedStsTests, "test_" + _n.replace("-", "_"), _captured_test(_n))


# ---------------------------------------------------------------------------
# A small client for the running fake
# ---------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def xml(self):
        return ET.fromstring(self.body)


def request(base, method, path, headers=(), body=b"", ctx=None, timeout=10, conn=None):
    """One request with exactly `headers` (no Host added unless given)."""
    u = urllib.parse.urlsplit(base)
    own = conn is None
    if own:
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    headers = list(headers)
    if not any(n.lower() == "host" for n, _ in headers):
        headers.insert(0, ("Host", u.netloc))
    t0 = time.monotonic()
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for n, x in headers:
        conn.putheader(n, x)
    if body or method in ("POST", "PUT"):
        if not any(n.lower() == "content-length" for n, _ in headers):
            conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body or None)
    resp = conn.getresponse()
    data = resp.read()
    r = Response(resp.status, {k.lower(): x for k, x in resp.getheaders()}, data, time.monotonic() - t0)
    if own:
        conn.close()
    return r


def form(params):
    return "&".join(urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(x, safe="-_.~")
                    for k, x in params).encode()


def gwit_params(audiences=("api://AzureADTokenExchange",), alg="RS256", duration=300, tags=()):
    p = [("Action", "GetWebIdentityToken"), ("Version", "2011-06-15")]
    p += [(f"Audience.member.{i}", a) for i, a in enumerate(audiences, 1)]
    if alg is not None:
        p.append(("SigningAlgorithm", alg))
    if duration is not None:
        p.append(("DurationSeconds", str(duration)))
    for i, (k, x) in enumerate(tags, 1):
        p += [(f"Tags.member.{i}.Key", k), (f"Tags.member.{i}.Value", x)]
    return p


def signed_headers_for(creds, body, host, *, region="us-east-2", when=None, signed=None, token=True,
                       secret=None, service="sts"):
    amz_date = v.fmt_amz_date(int(time.time()) if when is None else when)
    headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", host),
               ("X-Amz-Date", amz_date)]
    if token and creds.get("token"):
        headers.append(("X-Amz-Security-Token", creds["token"]))
    names = sorted(n.lower() for n, _ in headers) if signed is None else sorted(signed)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    creq = v.canonical_request("POST", "/", headers, names, hashlib.sha256(body).hexdigest())
    sig = v.sign(secret or creds["secret"], amz_date[:8], region, service, v.string_to_sign(amz_date, scope, creq))
    headers.append(("Authorization", f"AWS4-HMAC-SHA256 Credential={creds['akid']}/{scope}, "
                                     f"SignedHeaders={';'.join(names)}, Signature={sig}"))
    return headers


# ---------------------------------------------------------------------------
# Entra ID, Google STS and IAM Credentials against the running fake
# ---------------------------------------------------------------------------

TENANT = "11111111-2222-3333-4444-555555555555"       # the captured Entra run's tenant and client
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ARM_SCOPE = "https://management.azure.com/.default"
FORM = ("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
ENTRA_ERROR_KEYS = ["error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
                    "error_uri"]
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def entra_params(assertion, client_id=CLIENT, scope=ARM_SCOPE, grant_type="client_credentials",
                 assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
    """The five protocol fields, in MSAL's order; None leaves one out."""
    p = [("client_id", client_id), ("scope", scope), ("grant_type", grant_type), ("client_assertion", assertion),
         ("client_assertion_type", assertion_type)]
    return [(k, x) for k, x in p if x is not None]


def gcp_params(token, audience=None, token_type="urn:ietf:params:oauth:token-type:jwt",
               grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
               requested="urn:ietf:params:oauth:token-type:access_token"):
    p = [("grant_type", grant_type), ("audience", audience or harness.FakeCloud.gcp_audience()),
         ("scope", "https://www.googleapis.com/auth/cloud-platform"), ("requested_token_type", requested),
         ("subject_token", token), ("subject_token_type", token_type)]
    return [(k, x) for k, x in p if x is not None]


class FederationMixin:
    """The fake Entra ID, Google STS and IAM Credentials, driven end to end
    with JWTs from the fake STS (mixed into FakeCloudTests to share its fake)."""

    # -- helpers -----------------------------------------------------------

    def sts_jwt(self, audiences=("api://AzureADTokenExchange",), alg="RS256", duration=300):
        if not getattr(self, "_creds", None):
            self._creds = self.imds_creds()
        token, _ = self.jwt_ok(self.gwit(self._creds, gwit_params(audiences, alg, duration)))
        return token

    def entra(self, params, tenant=TENANT, method="POST", headers=(FORM,), query=""):
        path = f"/{tenant}/oauth2/v2.0/token" + query
        return request(self.fc.urls["entra"], method, path, list(headers), form(params), self.ctx)

    def assert_entra_error(self, r, status, error, code, text=None):
        self.assertEqual(r.status, status, r.text())
        self.assertEqual(r.headers["content-type"], "application/json; charset=utf-8")
        self.assertTrue(r.body.startswith(b'{"error":"'), r.body[:40])      # compact, as Entra answers
        d = r.json()
        self.assertEqual(list(d), ENTRA_ERROR_KEYS)
        self.assertEqual((d["error"], d["error_codes"]), (error, [code]))
        self.assertRegex(d["timestamp"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
        self.assertRegex(d["trace_id"], "^" + UUID_RE + "$")
        self.assertRegex(d["correlation_id"], "^" + UUID_RE + "$")
        self.assertEqual(d["error_uri"], f"{self.fc.urls['entra']}/error?code={code}")
        m = re.fullmatch(r"AADSTS(\d+): (.+) Trace ID: (\S+) Correlation ID: (\S+) Timestamp: (.+)",
                         d["error_description"], re.S)
        self.assertIsNotNone(m, d["error_description"])
        self.assertEqual((int(m.group(1)), m.group(3), m.group(4), m.group(5)),
                         (code, d["trace_id"], d["correlation_id"], d["timestamp"]))
        self.assertEqual(r.headers["x-ms-request-id"], d["trace_id"])
        if text:
            self.assertIn(text, m.group(2))
        return d

    def gcp_sts(self, params, headers=(FORM,)):
        u = urllib.parse.urlsplit(self.fc.urls["gcp_sts"])
        return request(f"https://{u.netloc}", "POST", u.path, list(headers), form(params), self.ctx)

    def assert_gcp_sts_error(self, r, error, text=None, status=400, detail=None):
        self.assertEqual(r.status, status, r.text())
        self.assertEqual(r.headers["content-type"], "application/json; charset=utf-8")
        d = r.json()
        self.assertEqual(list(d), ["error", "error_description"])
        self.assertEqual(d["error"], error, d)
        if text:
            self.assertIn(text, d["error_description"])
        if detail:
            self.assertEqual(self.fc.log("gcp_sts")[-1]["detail"], detail)
        return d

    def gcp_token(self, aud=None):
        """A federated access token from the fake Google STS."""
        aud = aud or "https:" + harness.FakeCloud.gcp_audience()
        r = self.gcp_sts(gcp_params(self.sts_jwt([aud])))
        self.assertEqual(r.status, 200, r.text())
        return r.json()["access_token"]

    def generate(self, bearer, sa=harness.GCP_SERVICE_ACCOUNT, body=None):
        body = body if body is not None else b'{"scope":["https://www.googleapis.com/auth/cloud-platform"],' \
                                             b'"lifetime":"3600s"}'
        headers = [("Content-Type", "application/json")]
        if bearer is not None:
            headers.append(("Authorization", "Bearer " + bearer))
        return request(self.fc.urls["gcp_iam"], "POST",
                       f"/v1/projects/-/serviceAccounts/{urllib.parse.quote(sa, safe='@')}:generateAccessToken",
                       headers, body, self.ctx)

    def assert_rpc_error(self, r, status, rpc_status, text=None):
        self.assertEqual(r.status, status, r.text())
        self.assertEqual(r.headers["content-type"], "application/json; charset=UTF-8")
        self.assertTrue(r.text().startswith('{\n  "error": {\n    "code": '), r.text()[:60])
        err = r.json()["error"]
        self.assertEqual((err["code"], err["status"]), (status, rpc_status))
        if text:
            self.assertIn(text, err["message"])
        return err

    # -- Entra ID --------------------------------------------------------------

    def test_entra_success(self):
        fic = self.fc.add_fic(TENANT, CLIENT)
        self.assertEqual((fic["issuer"], fic["subject"], fic["audience"]),
                         (self.fc.issuer, "arn:aws:iam::111122223333:role/example-workload-role",
                          "api://AzureADTokenExchange"))
        assertion = self.sts_jwt()
        t0 = int(time.time())
        cid = "00000000-0000-4000-8000-000000000001"
        r = self.entra(entra_params(assertion), query=f"?client-request-id={cid}")
        self.assertEqual(r.status, 200, r.text())
        self.assertEqual(r.headers["content-type"], "application/json; charset=utf-8")
        self.assertEqual(r.headers["client-request-id"], cid)
        self.assertRegex(r.text(), r'^\{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,'
                                   r'"access_token":"eyJ[A-Za-z0-9_.-]+"\}$')
        access = r.json()["access_token"]
        keys = request(self.fc.urls["entra"], "GET", "/common/discovery/v2.0/keys", ctx=self.ctx).json()
        claims = harness.verify_jwt(access, keys)
        self.assertEqual((claims["aud"], claims["tid"], claims["appid"], claims["idtyp"]),
                         ("https://management.azure.com", TENANT, CLIENT, "app"))
        self.assertAlmostEqual(claims["exp"] - t0, 3599, delta=3)
        entry = [e for e in self.fc.log("entra") if e["action"] == "token"][-1]
        self.assertEqual((entry["verdict"], entry["issued"]["fic"]), ("ok", fic["id"]))
        self.assertEqual(entry["body_params"]["client_assertion"], harness.fingerprint(assertion))
        self.assertEqual(entry["issued"]["token_fingerprint"], harness.fingerprint(access))
        # Entra fetched the issuer's discovery document and JWKS once, then cached them.
        fetches = [e for e in self.fc.log("issuer") if e["headers"].get("user-agent") == "fakecloud-entra/1"]
        self.assertEqual([e["action"] for e in fetches], ["openid-configuration", "jwks"])
        self.assertEqual(self.entra(entra_params(assertion, scope="https://vault.azure.net/.default")).status, 200)
        self.assertEqual(self.fc.count("issuer"), 2)
        # refresh_in and numbers as strings, as MSAL accepts them.
        self.fc.config(entra_token_lifetime=86399, entra_refresh_in=43199, entra_numbers_as_strings=True)
        d = self.entra(entra_params(assertion)).json()
        self.assertEqual(list(d), ["token_type", "expires_in", "ext_expires_in", "refresh_in", "access_token"])
        self.assertEqual((d["expires_in"], d["ext_expires_in"], d["refresh_in"]), ("86399", "86399", "43199"))
        # Authority metadata, shaped like the capture, for known tenants only.
        with open(os.path.join(CAPTURED, "entra-openid-configuration.json")) as f:
            captured = json.load(f)
        r = request(self.fc.urls["entra"], "GET", f"/{TENANT}/v2.0/.well-known/openid-configuration", ctx=self.ctx)
        conf = r.json()
        self.assertEqual(list(conf), list(captured))
        self.assertEqual(conf["token_endpoint"], f"{self.fc.urls['entra']}/{TENANT}/oauth2/v2.0/token")
        self.assertEqual(conf["issuer"], f"{self.fc.urls['entra']}/{TENANT}/v2.0")
        r = request(self.fc.urls["entra"], "GET", "/no-such-tenant/v2.0/.well-known/openid-configuration",
                    ctx=self.ctx)
        self.assert_entra_error(r, 400, "invalid_tenant", 90002, "Tenant 'no-such-tenant' not found")

    def test_entra_captured_request(self):
        """MSAL's exact request (telemetry fields included) with a live assertion."""
        self.fc.add_fic(TENANT, CLIENT)
        method, target, headers, body = parse_raw_request(read(os.path.join(CAPTURED, "entra-client-assertion.http")))
        body = re.sub(rb"client_assertion=[^&]+", b"client_assertion=" + self.sts_jwt().encode(), body)
        headers = [(n, x) for n, x in headers if n.lower() not in ("content-length", "host", "connection")]
        r = request(self.fc.urls["entra"], method, target, headers, body, self.ctx)
        self.assertEqual(r.status, 200, r.text())
        self.assertEqual(r.headers["client-request-id"], "00000000-0000-4000-8000-000000000001")
        self.assertEqual(self.fc.log("entra")[-1]["body_params"]["x-client-SKU"], "msal.js.node")

    def test_entra_refusals(self):
        fic = self.fc.add_fic(TENANT, CLIENT)
        good = self.sts_jwt()
        cases = [
            (self.entra(entra_params(good), tenant="99999999-2222-3333-4444-555555555555"),
             400, "invalid_request", 90002, "not found"),
            (self.entra(entra_params(good, client_id="bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee")),
             400, "unauthorized_client", 700016, "Application with identifier 'bbbbbbbb-"),
            (self.entra(entra_params(good, scope="https://management.azure.com/.default "
                                                 "https://vault.azure.net/.default")),
             400, "invalid_scope", 700022, "more than one resource"),
            (self.entra(entra_params(good, scope="https://management.azure.com/user_impersonation")),
             400, "invalid_scope", 70011, "user_impersonation is not valid"),
            (self.entra(entra_params(good, scope=None)), 400, "invalid_request", 900144, "'scope'"),
            (self.entra(entra_params(good, client_id=None)), 400, "invalid_request", 900144, "'client_id'"),
            (self.entra(entra_params(None)), 401, "invalid_client", 7000218, "'client_assertion' or"),
            (self.entra(entra_params(good, assertion_type="urn:x")), 401, "invalid_client", 7000218, None),
            (self.entra(entra_params(good, grant_type="password")), 400, "unsupported_grant_type", 70003,
             "'password'"),
            (self.entra(entra_params("not-a-jwt")), 400, "invalid_request", 50027, "malformed"),
            (self.entra([], method="GET"), 400, "invalid_request", 900561, "Received a GET request"),
            (self.entra(entra_params(good), headers=[("Content-Type", "application/json")]), 400,
             "invalid_request", 900144, "'grant_type'"),
        ]
        for r, status, error, code, text in cases:
            self.assert_entra_error(r, status, error, code, text)
        # The assertion's own faults.
        es384 = self.sts_jwt(alg="ES384")
        self.assert_entra_error(self.entra(entra_params(es384)), 401, "invalid_client", 700027, "'ES384'")
        h, p, s = good.split(".")
        tampered = h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:]
        self.assert_entra_error(self.entra(entra_params(tampered)), 401, "invalid_client", 700027,
                                "did not match the expected signature")
        self.assertEqual(self.fc.log("entra")[-1]["detail"], "signature")
        # Clock: the fake's clock 10 min ahead leaves a 300 s token expired
        # beyond the 300 s tolerance, and the description says when.
        self.fc.config(clock_skew=700)
        d = self.assert_entra_error(self.entra(entra_params(good)), 401, "invalid_client", 700024,
                                    "Client assertion is not within its valid time range. Current time: ")
        exp = harness.decode_jwt(good)[1]["exp"]
        self.assertIn("expiry time of assertion " + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(exp)) +
                      ".0000000Z", d["error_description"])
        self.fc.config(clock_skew=500)
        self.assertEqual(self.entra(entra_params(good)).status, 200)     # within the tolerance
        self.fc.config(clock_skew=0, entra_clock_tolerance=0)
        future = self.fc.mint_jwt(claims={"nbf": int(time.time()) + 120})
        self.assert_entra_error(self.entra(entra_params(future)), 401, "invalid_client", 700024)
        # FIC matching, each field exactly (the subject case-sensitively).
        self.fc.clear_fics(fic_id=fic["id"])
        self.fc.add_fic(TENANT, CLIENT, issuer=self.fc.issuer + "/")
        self.assert_entra_error(self.entra(entra_params(good)), 401, "invalid_client", 700211,
                                f"assertion issuer '{self.fc.issuer}'")
        self.fc.add_fic(TENANT, CLIENT, subject="arn:aws:iam::111122223333:role/Example-Workload-Role")
        self.assert_entra_error(self.entra(entra_params(good)), 401, "invalid_client", 700213,
                                "assertion subject 'arn:aws:iam::111122223333:role/example-workload-role'")
        self.fc.add_fic(TENANT, CLIENT, audience="api://AzureADTokenExchangeUSGov")
        self.assert_entra_error(self.entra(entra_params(good)), 401, "invalid_client", 700212,
                                "assertion audience 'api://AzureADTokenExchange'")
        self.fc.clear_fics(tenant=TENANT, client_id=CLIENT)
        self.fc.add_fic(TENANT, CLIENT, issuer="https://token.actions.githubusercontent.com",
                        subject="repo:octo/repo:ref:refs/heads/main", audience="api://other")
        self.assert_entra_error(self.entra(entra_params(good)), 400, "invalid_request", 70021,
                                f"Assertion Issuer: '{self.fc.issuer}'. Assertion Subject: "
                                "'arn:aws:iam::111122223333:role/example-workload-role'. Assertion Audience: "
                                "'api://AzureADTokenExchange'.")
        # An application with no FIC at all is known to its tenant.
        self.fc.add_entra_app(TENANT, "cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee")
        self.assert_entra_error(self.entra(entra_params(good, client_id="cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee")),
                                400, "invalid_request", 70021)
        verdicts = self.fc.stats()["entra"]["token"]
        self.assertEqual(verdicts["AADSTS700027"], 2)
        self.assertEqual(verdicts["ok"], 1)

    def test_entra_propagation_delay(self):
        """A FIC younger than entra_propagation_delay answers 70021; moving
        the fake's clock on ages it without sleeping."""
        self.fc.config(entra_propagation_delay=120)
        assertion = self.sts_jwt()
        self.fc.add_fic(TENANT, CLIENT)
        self.assert_entra_error(self.entra(entra_params(assertion)), 400, "invalid_request", 70021,
                                "No matching federated identity record found for presented assertion.")
        self.assertEqual(self.fc.log("entra")[-1]["detail"], "propagation")
        self.fc.config(clock_skew=121)
        self.assertEqual(self.entra(entra_params(assertion)).status, 200)

    def test_entra_issuer_unreachable_and_faults(self):
        self.fc.add_fic(TENANT, CLIENT)
        assertion = self.sts_jwt()
        self.fc.config(issuer_cache_seconds=0)
        self.fc.fault("issuer", "status", status=503, action="jwks")
        self.assert_entra_error(self.entra(entra_params(assertion)), 400, "invalid_request", 50166,
                                "Request to External OIDC endpoint failed.")
        self.fc.fault("issuer", "tls_untrusted")
        self.assert_entra_error(self.entra(entra_params(assertion)), 400, "invalid_request", 50166)
        self.assertEqual(self.entra(entra_params(assertion)).status, 200)
        # Response faults on the Entra service itself.
        self.fc.fault("entra", "throttle", retry_after=4)
        r = self.entra(entra_params(assertion))
        self.assert_entra_error(r, 429, "temporarily_unavailable", 90055)
        self.assertEqual(r.headers["retry-after"], "4")
        self.fc.fault("entra", "error", code="AADSTS50196")
        self.assert_entra_error(self.entra(entra_params(assertion)), 400, "invalid_grant", 50196, "request loop")
        self.fc.fault("entra", "error", code="700213", status=400, message="custom words")
        self.assert_entra_error(self.entra(entra_params(assertion)), 400, "invalid_client", 700213, "custom words")
        self.fc.fault("entra", "status", status=503)
        self.assert_entra_error(self.entra(entra_params(assertion)), 503, "temporarily_unavailable", 90024)
        self.fc.fault("entra", "malformed")
        r = self.entra(entra_params(assertion))
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            r.json()
        self.fc.fault("entra", "oversized", mib=1)
        self.assertEqual(len(self.entra(entra_params(assertion)).body), 1 << 20)
        self.fc.fault("entra", "wrong_content_type")
        r = self.entra(entra_params(assertion))
        self.assertEqual((r.status, r.headers["content-type"]), (200, "text/html; charset=utf-8"))
        self.fc.fault("entra", "reset")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            self.entra(entra_params(assertion))
        self.fc.fault("entra", "tls_wrong_host")
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.entra(entra_params(assertion))
        self.assertEqual(self.entra(entra_params(assertion)).status, 200)
        self.assertEqual(self.fc.count("entra", "tls", "tls_wrong_host"), 1)
        self.assertEqual(self.fc.count("sts", "tls"), 0)    # a separate port with its own faults

    # -- Google STS ------------------------------------------------------------

    def test_gcp_sts_success(self):
        provider = self.fc.add_gcp_provider()
        subject = self.sts_jwt(["https:" + provider["audience"]])
        r = self.gcp_sts(gcp_params(subject))
        self.assertEqual(r.status, 200, r.text())
        self.assertEqual(r.headers["content-type"], "application/json; charset=utf-8")
        d = r.json()
        self.assertEqual(list(d), ["access_token", "issued_token_type", "token_type", "expires_in"])
        self.assertTrue(r.text().startswith('{\n  "access_token": "ya29.d.'))
        self.assertEqual((d["issued_token_type"], d["token_type"], d["expires_in"]),
                         ("urn:ietf:params:oauth:token-type:access_token", "Bearer", 3599))
        tokens = self.fc.gcp_tokens()
        self.assertEqual(len(tokens), 1)
        self.assertEqual((tokens[0]["fingerprint"], tokens[0]["principal"]),
                         (harness.fingerprint(d["access_token"]),
                          provider["principal_prefix"] + "arn:aws:iam::111122223333:role/example-workload-role"))
        entry = self.fc.log("gcp_sts")[-1]
        self.assertEqual(entry["body_params"]["subject_token"], harness.fingerprint(subject))
        # The provider's name without https:, and the id_token type, are accepted too.
        self.assertEqual(self.gcp_sts(gcp_params(self.sts_jwt([provider["audience"]]),
                                                 token_type="urn:ietf:params:oauth:token-type:id_token")).status, 200)
        # Custom allowed audiences replace the default ones; gcp_token_lifetime.
        self.fc.add_gcp_provider(allowed_audiences=["api://AzureADTokenExchange"])
        self.fc.config(gcp_token_lifetime=1800)
        r = self.gcp_sts(gcp_params(self.sts_jwt()))
        self.assertEqual((r.status, r.json().get("expires_in")), (200, 1800), r.text())
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(subject)), "invalid_grant", "does not match the expected "
                                  "audience", detail="audience")

    def test_gcp_sts_captured_request(self):
        provider = self.fc.add_gcp_provider()
        method, target, headers, body = parse_raw_request(read(os.path.join(CAPTURED, "gcp-sts.http")))
        jwt = self.sts_jwt(["https:" + provider["audience"]])
        body = re.sub(rb"subject_token=[^&]+", b"subject_token=" + jwt.encode(), body)
        headers = [(n, x) for n, x in headers if n.lower() not in ("content-length", "host", "connection")]
        u = urllib.parse.urlsplit(self.fc.urls["gcp_sts"])
        r = request(f"https://{u.netloc}", method, target, headers, body, self.ctx)
        self.assertEqual(r.status, 200, r.text())
        method, target, headers, body = parse_raw_request(read(os.path.join(CAPTURED,
                                                                            "gcp-generateaccesstoken.http")))
        headers = [(n, "Bearer " + r.json()["access_token"] if n.lower() == "authorization" else x)
                   for n, x in headers if n.lower() not in ("content-length", "host", "connection")]
        self.fc.add_gcp_service_account()
        t0 = time.time()
        r = request(self.fc.urls["gcp_iam"], method, target, headers, body, self.ctx)
        self.assertEqual(r.status, 200, r.text())
        d = r.json()
        self.assertEqual(list(d), ["accessToken", "expireTime"])
        self.assertTrue(d["accessToken"].startswith("ya29.c."))
        self.assertRegex(d["expireTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        exp = time.mktime(time.strptime(d["expireTime"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertAlmostEqual(exp - t0, 3600, delta=3)

    def test_gcp_sts_refusals(self):
        provider = self.fc.add_gcp_provider()
        aud = "https:" + provider["audience"]
        good = self.sts_jwt([aud])
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(self.sts_jwt())), "invalid_grant",
                                  "The audience in ID Token [api://AzureADTokenExchange] does not match the expected "
                                  "audience.", detail="audience")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(self.sts_jwt([aud], alg="ES384"))), "invalid_grant",
                                  "ES384 is not supported", detail="alg")
        h, p, s = good.split(".")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:])),
                                  "invalid_grant", "signature", detail="signature")
        other = harness.FakeCloud.gcp_audience(pool="other-pool")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good, audience=other)), "invalid_target",
                                  'The target service indicated by the "audience" parameters is invalid.')
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good, audience="projects/1/pools/x")), "invalid_request",
                                  'Invalid value for "audience".')
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good, grant_type="client_credentials")),
                                  "unsupported_grant_type")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good, token_type="urn:ietf:params:oauth:token-type:saml2")),
                                  "invalid_request", "subject_token_type")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good, requested="urn:x")), "invalid_request",
                                  "requested_token_type")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params("a.b.c")), "invalid_grant", detail="malformed")
        # Times and lengths STS never produces: minted with the issuer's key.
        now = int(time.time())
        for claims, detail in (({"iat": now + 600, "exp": now + 900}, "iat"),
                               ({"iat": now - 600, "exp": now - 1}, "exp"),
                               ({"iat": now - 60, "exp": now - 60 + 48 * 3600 + 1}, "lifetime"),
                               ({"sub": "arn:aws:iam::111122223333:role/" + "x" * 100}, "subject")):
            token = self.fc.mint_jwt(claims=dict(claims, aud=aud))
            self.assert_gcp_sts_error(self.gcp_sts(gcp_params(token)), "invalid_grant", detail=detail)
        self.assertEqual(self.gcp_sts(gcp_params(self.fc.mint_jwt(claims={"aud": aud, "exp": now + 47 * 3600})))
                         .status, 200)
        # Issuer and provider state.
        self.fc.add_gcp_provider(issuer="https://oidc.example.com")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good)), "invalid_grant",
                                  f"The issuer in ID Token {self.fc.issuer} does not match", detail="issuer")
        self.fc.add_gcp_provider(disabled=True)
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good)), "invalid_target")
        self.fc.add_gcp_provider()
        self.fc.config(issuer_cache_seconds=0)
        self.fc.fault("issuer", "status", status=500, action="openid-configuration")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params(good)), "invalid_grant", detail="oidc_fetch")
        self.assertEqual(self.gcp_sts(gcp_params(good)).status, 200)
        self.assertEqual(self.fc.stats()["gcp_sts"]["token"]["ok"], 2)

    # -- IAM Credentials ----------------------------------------------------------

    def test_gcp_generate_access_token(self):
        self.fc.add_gcp_provider()
        self.fc.add_gcp_service_account()
        fed = self.gcp_token()
        t0 = time.time()
        r = self.generate(fed, body=b'{"scope":["https://www.googleapis.com/auth/cloud-platform"],'
                                    b'"lifetime":"1200s"}')
        self.assertEqual(r.status, 200, r.text())
        self.assertTrue(r.text().startswith('{\n  "accessToken": "ya29.c.'))
        exp = time.mktime(time.strptime(r.json()["expireTime"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertAlmostEqual(exp - t0, 1200, delta=3)
        sa_token = r.json()["accessToken"]
        entry = self.fc.log("gcp_iam")[-1]
        self.assertEqual(entry["headers"]["authorization"], harness.fingerprint("Bearer " + fed))
        self.assertEqual(entry["issued"]["token_fingerprint"], harness.fingerprint(sa_token))
        # Refusals, in Google's envelope.
        self.assert_rpc_error(self.generate(fed, sa="other-sa@example-project.iam.gserviceaccount.com"), 404,
                              "NOT_FOUND", "Gaia id not found for email other-sa@")
        r = self.generate("ya29.d.not-issued-by-the-fake")
        self.assert_rpc_error(r, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        self.assertTrue(r.headers["www-authenticate"].startswith("Bearer realm="))
        self.assert_rpc_error(self.generate(None), 401, "UNAUTHENTICATED")
        self.assert_rpc_error(self.generate(sa_token), 401, "UNAUTHENTICATED")    # only federated tokens
        self.assert_rpc_error(self.generate(fed, body=b'{"scope":["x"],"lifetime":"4000s"}'), 400,
                              "INVALID_ARGUMENT")
        self.assert_rpc_error(self.generate(fed, body=b'{"scope":["x"],"lifetime":"300s"}'), 400,
                              "INVALID_ARGUMENT")
        self.assert_rpc_error(self.generate(fed, body=b'{"lifetime":"3600s"}'), 400, "INVALID_ARGUMENT")
        self.assert_rpc_error(self.generate(fed, body=b'{"scope":["x"],"lifetym":"3600s"}'), 400, "INVALID_ARGUMENT",
                              'Unknown name "lifetym"')
        self.fc.config(gcp_max_lifetime=43200)
        self.assertEqual(self.generate(fed, body=b'{"scope":["x"],"lifetime":"43200s"}').status, 200)
        # Membership: a principal of another subject is refused; the pool's principalSet admits all.
        other = harness.FakeCloud.gcp_principal("arn:aws:iam::111122223333:role/other")
        self.fc.add_gcp_service_account(members=[other])
        err = self.assert_rpc_error(self.generate(fed), 403, "PERMISSION_DENIED",
                                    "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may "
                                    "not exist).")
        self.assertEqual(err["details"][0]["reason"], "IAM_PERMISSION_DENIED")
        self.fc.add_gcp_service_account(members=[harness.FakeCloud.gcp_principal_set()])
        self.assertEqual(self.generate(fed).status, 200)
        self.fc.add_gcp_service_account(members=[harness.FakeCloud.gcp_principal_set(pool="other-pool")])
        self.assert_rpc_error(self.generate(fed), 403, "PERMISSION_DENIED")
        # The federated token expires with the fake's clock.
        self.fc.add_gcp_service_account()
        self.fc.config(clock_skew=3600)
        self.assert_rpc_error(self.generate(fed), 401, "UNAUTHENTICATED")
        self.assertEqual(self.fc.log("gcp_iam")[-1]["detail"], "expired")

    def test_gcp_faults(self):
        self.fc.add_gcp_provider()
        self.fc.add_gcp_service_account()
        fed = self.gcp_token()
        self.fc.fault("gcp_sts", "throttle", retry_after=2)
        r = self.gcp_sts(gcp_params(self.sts_jwt(["https:" + harness.FakeCloud.gcp_audience()])))
        self.assertEqual((r.status, r.headers["retry-after"]), (429, "2"))
        self.fc.fault("gcp_sts", "error", code="invalid_grant", message="modelled")
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params("x.y.z")), "invalid_grant", "modelled")
        self.fc.fault("gcp_sts", "status", status=503)
        self.assert_gcp_sts_error(self.gcp_sts(gcp_params("x.y.z")), "temporarily_unavailable", status=503)
        self.fc.fault("gcp_iam", "status", status=503)
        self.assert_rpc_error(self.generate(fed), 503, "UNAVAILABLE")
        self.fc.fault("gcp_iam", "error", code="PERMISSION_DENIED")
        self.assert_rpc_error(self.generate(fed), 403, "PERMISSION_DENIED")
        self.fc.fault("gcp_iam", "throttle")
        r = self.generate(fed)
        self.assert_rpc_error(r, 429, "RESOURCE_EXHAUSTED")
        self.assertEqual(r.headers["retry-after"], "1")
        self.fc.fault("gcp_iam", "slow", delay=0.3)
        r = self.generate(fed)
        self.assertGreaterEqual(r.elapsed, 0.3)
        self.assertEqual(r.status, 200)
        self.fc.fault("gcp_sts", "tls_untrusted")
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.gcp_sts(gcp_params("x.y.z"))
        self.assertEqual(self.generate(fed).status, 200)           # IAM's port is not affected
        self.assertEqual(self.fc.faults(), [])
        self.assertEqual(self.fc.count("gcp_sts", "tls", "tls_untrusted"), 1)

    # -- control API -------------------------------------------------------------

    def test_cloud_control_api(self):
        bad_specs = [{"tenant": TENANT, "client_id": CLIENT},                                  # no subject
                     {"tenant": TENANT, "client_id": CLIENT, "subject": "s", "issuer": "https://x /"},
                     {"tenant": TENANT, "client_id": CLIENT, "subject": "s", "colour": "red"},
                     {"tenant": "", "client_id": CLIENT, "subject": "s"}]
        for spec in bad_specs:
            with self.assertRaises(harness.FakeCloudError, msg=spec):
                self.fc.control("POST", "/entra/fic", spec)
        self.fc.add_fic(TENANT, CLIENT)
        with self.assertRaises(harness.FakeCloudError):
            self.fc.add_fic(TENANT, CLIENT, audience="api://other")       # issuer + subject unique
        for i in range(19):
            self.fc.add_fic(TENANT, CLIENT, subject=f"sub-{i}")
        with self.assertRaises(harness.FakeCloudError):
            self.fc.add_fic(TENANT, CLIENT, subject="one-too-many")       # 20 per application
        self.assertEqual(len(self.fc.fics()), 20)
        self.assertEqual(self.fc.clear_fics(tenant=TENANT.upper())["cleared"], 20)
        with self.assertRaises(harness.FakeCloudError):
            self.fc.add_gcp_provider(audience="//iam.googleapis.com/projects/abc/pools/x")
        with self.assertRaises(harness.FakeCloudError):
            self.fc.add_gcp_service_account(members=["serviceAccount:x@y"])
        with self.assertRaises(harness.FakeCloudError):
            self.fc.config(entra_numbers_as_strings="yes")
        with self.assertRaises(harness.FakeCloudError):
            self.fc.config(entra_refresh_in=0)
        with self.assertRaises(harness.FakeCloudError):
            self.fc.fault("entra", "no_role")
        with self.assertRaises(harness.FakeCloudError):
            self.fc.fault("gcp_iam", "error")                            # needs a code
        self.assertEqual(self.fc.config(entra_refresh_in=None)["entra_refresh_in"], None)
        self.fc.add_fic(TENANT, CLIENT)
        self.fc.add_gcp_provider()
        self.fc.add_gcp_service_account()
        self.gcp_token()
        self.fc.reset()
        self._creds = None                                               # forgotten by the reset too
        self.assertEqual((self.fc.fics(), self.fc.control("GET", "/gcp/provider"),
                          self.fc.control("GET", "/gcp/service_account"), self.fc.gcp_tokens()), ([], [], [], []))
        self.assert_entra_error(self.entra(entra_params(self.sts_jwt())), 400, "invalid_request", 90002)

    def test_cloud_hostile_inputs(self):
        """Odd bytes and odd JWTs get a modelled 4xx, never a crash of the fake."""
        self.fc.add_fic(TENANT, CLIENT)
        self.fc.add_gcp_provider()
        self.fc.add_gcp_service_account()

        def b64(obj):
            raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        jwts = ["", ".", "..", "a.b", "a.b.c.d", "\x00.\xff.x", b64([1]) + "." + b64({}) + ".x",
                b64({"alg": "RS256"}) + "." + b64("[" * 5000) + ".x",
                b64({"alg": "RS256", "kid": ["x"]}) + "." + b64({"iss": 5, "sub": {}, "aud": [None]}) + ".x",
                b64({"alg": "RS256", "kid": "fake-rsa-1"}) + "." + b64({"iss": self.fc.issuer, "sub": "s",
                                                                       "aud": "api://AzureADTokenExchange",
                                                                       "exp": "never"}) + ".x",
                b64({"alg": "none"}) + "." + b64({"iss": self.fc.issuer}) + ".",
                self.fc.mint_jwt(alg="HS256"), self.fc.mint_jwt(claims={"exp": None}),
                self.fc.mint_jwt(claims={"aud": ["a", 7, "https:" + harness.FakeCloud.gcp_audience()],
                                         "iat": 1e308}),
                self.fc.mint_jwt(header={"kid": "no-such-key"}), "x" * 40000,
                self.fc.mint_jwt(claims={"nbf": 1e308, "exp": 1e308}),
                b64({"alg": "RS256", "kid": "fake-rsa-1"}) + "." + b64(b'{"iat": Infinity, "exp": NaN}') + ".x"]
        for token in jwts:
            self.assertLess(self.entra(entra_params(token)).status, 500, token[:80])
            self.assertLess(self.gcp_sts(gcp_params(token)).status, 500, token[:80])
        for body in (b"\xff\xfe", b"[" * 10000, b'{"scope": "x"}', b'{"scope": [1]}', b'{"scope":["x"],"lifetime":7}',
                     b'{"scope":["x"],"lifetime":"-5s"}', b"null"):
            self.assertLess(self.generate(self.gcp_token(), body=body).status, 500, body[:40])
        for path in ("/", "/%00/oauth2/v2.0/token", "/t/oauth2/v2.0/token/extra",
                     "/" + "a" * 300 + "/oauth2/v2.0/token"):
            self.assertLess(request(self.fc.urls["entra"], "POST", path, [FORM], b"a=%zz&&=&b", self.ctx).status, 500)
        for path in ("/v1/projects/-/serviceAccounts/:generateAccessToken", "/v1/projects/-/serviceAccounts/a%2Fb@c"
                     ":generateAccessToken", "/v1/token"):
            self.assertLess(request(self.fc.urls["gcp_iam"], "POST", path, [], b"{}", self.ctx).status, 500)
        self.assertEqual(sum(self.fc.count(s_, verdict="FakeCloudBug") for s_ in ("entra", "gcp_sts", "gcp_iam")), 0)

    def test_cloud_no_secrets_in_logs(self):
        self.fc.add_fic(TENANT, CLIENT)
        self.fc.add_gcp_provider()
        self.fc.add_gcp_service_account()
        assertion = self.sts_jwt()
        access = self.entra(entra_params(assertion)).json()["access_token"]
        subject = self.sts_jwt(["https:" + harness.FakeCloud.gcp_audience()])
        fed = self.gcp_sts(gcp_params(subject)).json()["access_token"]
        sa_token = self.generate(fed).json()["accessToken"]
        self.entra(entra_params(assertion, client_id="unknown"))
        dump = json.dumps(self.fc.log()) + json.dumps(self.fc.gcp_tokens())
        stderr = self.fc.log_text()
        for secret in (assertion, access, subject, fed, sa_token):
            self.assertNotIn(secret, dump)
            self.assertNotIn(secret, stderr)
            self.assertNotIn(secret.split(".")[-1][:40], stderr)
        self.assertIn(harness.fingerprint(fed), dump)


# ---------------------------------------------------------------------------
# End to end against the running fake
# ---------------------------------------------------------------------------

class FakeCloudTests(FederationMixin, unittest.TestCase):
    fc = None

    @classmethod
    def setUpClass(cls):
        cls.fc = harness.FakeCloud(keep=True)
        cls.fc.start()
        cls.ctx = cls.fc.ssl_context()
        cls.sts = cls.fc.urls["sts"]
        cls.sts_host = urllib.parse.urlsplit(cls.sts).netloc

    @classmethod
    def tearDownClass(cls):
        directory = cls.fc.dir
        cls.rc = cls.fc.stop()
        log = cls.fc.log_text()
        FakeCloudTests.final = {"rc": cls.rc, "log": log, "dir": directory,
                                "json_left": os.path.exists(os.path.join(directory, "fakecloud.json"))}

    def setUp(self):
        self.fc.reset()

    # -- helpers -----------------------------------------------------------

    def imds_token(self, ttl="21600"):
        r = request(self.fc.urls["imds"], "PUT", "/latest/api/token",
                    [("x-aws-ec2-metadata-token-ttl-seconds", ttl)])
        self.assertEqual(r.status, 200, r.text())
        return r.text()

    def imds_creds(self):
        tok = self.imds_token()
        r = request(self.fc.urls["imds"], "GET", "/latest/meta-data/iam/security-credentials/example-workload-role",
                    [("x-aws-ec2-metadata-token", tok)])
        self.assertEqual(r.status, 200, r.text())
        d = r.json()
        return {"akid": d["AccessKeyId"], "secret": d["SecretAccessKey"], "token": d["Token"],
                "expiration": d["Expiration"]}

    def gwit(self, creds, params=None, **kw):
        body = form(params or gwit_params())
        headers = signed_headers_for(creds, body, self.sts_host, **kw)
        return request(self.sts, "POST", "/", headers, body, self.ctx)

    def assert_sts_error(self, r, status, code, text=None):
        self.assertEqual(r.status, status, r.text())
        self.assertEqual(r.headers.get("content-type"), "text/xml")
        root = r.xml()
        self.assertEqual(root.tag, "{%s}ErrorResponse" % NS["s"])
        self.assertEqual(root.find("s:Error/s:Code", NS).text, code)
        self.assertEqual(root.find("s:Error/s:Type", NS).text, "Receiver" if status >= 500 else "Sender")
        self.assertRegex(root.find("s:RequestId", NS).text, r"^[0-9a-f-]{36}$")
        self.assertEqual(r.headers.get("x-amzn-requestid"), root.find("s:RequestId", NS).text)
        if text:
            self.assertIn(text, root.find("s:Error/s:Message", NS).text)

    def jwt_ok(self, r):
        self.assertEqual(r.status, 200, r.text())
        self.assertEqual(r.headers["content-type"], "text/xml")
        root = r.xml()
        res = root.find("s:GetWebIdentityTokenResult", NS)
        token = res.find("s:WebIdentityToken", NS).text
        expiration = res.find("s:Expiration", NS).text
        self.assertEqual(r.headers["x-amzn-requestid"], root.find("s:ResponseMetadata/s:RequestId", NS).text)
        return token, expiration

    # -- IMDS ----------------------------------------------------------------

    def test_imds_flow(self):
        base = self.fc.urls["imds"]
        tok = self.imds_token()
        self.assertTrue(tok.startswith("AQAE"))
        r = request(base, "GET", "/latest/meta-data/iam/security-credentials/", [("x-aws-ec2-metadata-token", tok)])
        self.assertEqual((r.status, r.text()), (200, "example-workload-role"))
        t0 = time.time()
        r = request(base, "GET", "/latest/meta-data/iam/security-credentials/example-workload-role",
                    [("x-aws-ec2-metadata-token", tok)])
        self.assertEqual(r.status, 200)
        text = r.text()
        keys = re.findall(r'^  "(\w+)" : ', text, re.M)
        self.assertEqual(keys, ["Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token",
                                "Expiration"])
        self.assertTrue(text.startswith("{\n") and text.endswith("\n}"))
        d = json.loads(text)
        self.assertEqual((d["Code"], d["Type"]), ("Success", "AWS-HMAC"))
        self.assertRegex(d["AccessKeyId"], r"^ASIA[A-Z2-7]{16}$")
        self.assertRegex(d["Expiration"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        exp = time.mktime(time.strptime(d["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertAlmostEqual(exp - t0, 6 * 3600, delta=5)
        known = {c["access_key_id"]: c for c in self.fc.creds()}
        self.assertEqual(known[d["AccessKeyId"]]["role_arn"], "arn:aws:iam::111122223333:role/example-workload-role")
        # Other documents the daemon may read.
        r = request(base, "GET", "/latest/meta-data/placement/region", [("x-aws-ec2-metadata-token", tok)])
        self.assertEqual(r.text(), "us-east-2")

    def test_imds_refusals(self):
        base = self.fc.urls["imds"]
        creds_path = "/latest/meta-data/iam/security-credentials/example-workload-role"
        for ttl in ("0", "21601", "abc", "-5", ""):
            r = request(base, "PUT", "/latest/api/token", [("x-aws-ec2-metadata-token-ttl-seconds", ttl)])
            self.assertEqual(r.status, 400, ttl)
        self.assertEqual(request(base, "PUT", "/latest/api/token").status, 400)
        r = request(base, "PUT", "/latest/api/token", [("x-aws-ec2-metadata-token-ttl-seconds", "60"),
                                                       ("X-Forwarded-For", "10.0.0.1")])
        self.assertEqual(r.status, 403)
        self.assertEqual(request(base, "PUT", "/2021-03-23/api/token",
                                 [("x-aws-ec2-metadata-token-ttl-seconds", "60")]).status, 403)
        r = request(base, "GET", creds_path)
        self.assertEqual(r.status, 401)
        self.assertIn("401 - Unauthorized", r.text())
        self.assertEqual(request(base, "GET", creds_path, [("x-aws-ec2-metadata-token", "AQAEbogus")]).status, 401)
        tok = self.imds_token()
        self.assertEqual(request(base, "GET", "/latest/meta-data/iam/security-credentials/other-role",
                                 [("x-aws-ec2-metadata-token", tok)]).status, 404)
        short = self.imds_token("1")
        time.sleep(1.2)
        self.assertEqual(request(base, "GET", creds_path, [("x-aws-ec2-metadata-token", short)]).status, 401)
        self.fc.config(imds_role="other-role")
        r = request(base, "GET", "/latest/meta-data/iam/security-credentials/", [("x-aws-ec2-metadata-token", tok)])
        self.assertEqual(r.text(), "other-role")
        verdicts = [e["verdict"] for e in self.fc.log("imds")]
        self.assertIn("ForwardedFor", verdicts)
        self.assertIn("ExpiredToken", verdicts)

    def test_imds_faults(self):
        base = self.fc.urls["imds"]
        tok = self.imds_token()
        h = [("x-aws-ec2-metadata-token", tok)]
        creds_path = "/latest/meta-data/iam/security-credentials/example-workload-role"
        self.fc.fault("imds", "no_role")
        self.assertEqual(request(base, "GET", "/latest/meta-data/iam/security-credentials/", h).status, 404)
        self.assertEqual(request(base, "GET", "/latest/meta-data/iam/security-credentials/", h).status, 200)
        self.fc.fault("imds", "expired_creds")
        d = request(base, "GET", creds_path, h).json()
        exp = time.mktime(time.strptime(d["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertLess(exp, time.time())
        self.fc.fault("imds", "short_creds", seconds=120)
        d = request(base, "GET", creds_path, h).json()
        exp = time.mktime(time.strptime(d["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertAlmostEqual(exp - time.time(), 120, delta=5)
        self.fc.fault("imds", "throttle", retry_after=7, action="credentials")
        r = request(base, "GET", creds_path, h)
        self.assertEqual((r.status, r.headers.get("retry-after")), (429, "7"))
        self.fc.fault("imds", "status", status=500, count=2, action="token")
        for _ in range(2):
            r = request(base, "PUT", "/latest/api/token", [("x-aws-ec2-metadata-token-ttl-seconds", "60")])
            self.assertEqual(r.status, 500)
            self.assertIn("500 - Internal Server Error", r.text())
        self.imds_token()
        self.assertEqual(self.fc.faults(), [])

    # -- container -------------------------------------------------------------

    def test_container_flow(self):
        base = self.fc.urls["container"]
        auth = [("Authorization", "fake-container-token")]
        r = request(base, "GET", "/v1/credentials", auth)
        self.assertEqual((r.status, r.headers["content-type"]), (200, "application/json"))
        d = r.json()
        self.assertEqual(list(d), ["AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"])
        self.assertEqual(d["AccountId"], "111122223333")
        self.assertTrue(r.text().startswith('{"AccessKeyId": "ASIA'))
        r = request(base, "GET", "/v2/credentials/0123-abcd", auth)
        d = r.json()
        self.assertEqual(list(d), ["AccessKeyId", "Expiration", "RoleArn", "SecretAccessKey", "Token"])
        self.assertEqual(d["RoleArn"], "arn:aws:iam::111122223333:role/example-task-role")
        self.assertTrue(r.text().startswith('{\n    "AccessKeyId": "ASIA'))
        r = request(base, "GET", "/v1/credentials")
        self.assertEqual(r.status, 401)
        self.assertEqual(set(r.json()), {"Code", "Message"})
        r = request(base, "GET", "/v1/credentials", [("Authorization", "wrong")])
        self.assertEqual(r.status, 403)
        self.fc.config(container_token="rotated-token")
        self.assertEqual(request(base, "GET", "/v1/credentials", auth).status, 403)
        self.assertEqual(request(base, "GET", "/v1/credentials", [("Authorization", "rotated-token")]).status, 200)
        log = self.fc.log("container")
        self.assertEqual(log[-1]["headers"]["authorization"], harness.fingerprint("rotated-token"))

    def test_container_faults(self):
        base = self.fc.urls["container"]
        auth = [("Authorization", "fake-container-token")]
        self.fc.fault("container", "status", status=500)
        r = request(base, "GET", "/v1/credentials", auth)
        self.assertEqual(r.status, 500)
        self.assertIn("Code", r.json())
        self.fc.fault("container", "throttle")
        r = request(base, "GET", "/v1/credentials", auth)
        self.assertEqual((r.status, r.headers["retry-after"]), (429, "1"))
        self.fc.fault("container", "error", code="AccessDeniedException", status=403, message="nope")
        r = request(base, "GET", "/v1/credentials", auth)
        self.assertEqual((r.status, r.json()), (403, {"Code": "AccessDeniedException", "Message": "nope"}))
        self.fc.fault("container", "expired_creds")
        d = request(base, "GET", "/v1/credentials", auth).json()
        creds = {"akid": d["AccessKeyId"], "secret": d["SecretAccessKey"], "token": d["Token"]}
        self.assert_sts_error(self.gwit(creds), 400, "ExpiredToken", "is expired")

    # -- STS GetWebIdentityToken ---------------------------------------------

    def test_gwit_rs256(self):
        creds = self.imds_creds()
        t0 = int(time.time())
        token, expiration = self.jwt_ok(self.gwit(creds))
        r = request(self.fc.urls["issuer"], "GET",
                    urllib.parse.urlsplit(self.fc.urls["issuer"]).path + "/.well-known/openid-configuration",
                    ctx=self.ctx)
        conf = r.json()
        self.assertEqual(conf["issuer"], self.fc.urls["issuer"])
        self.assertEqual(conf["id_token_signing_alg_values_supported"], ["RS256", "ES384"])
        self.assertIn("id_token", conf["response_types_supported"])
        self.assertIn("public", conf["subject_types_supported"])
        u = urllib.parse.urlsplit(conf["jwks_uri"])
        jwks = request(f"{u.scheme}://{u.netloc}", "GET", u.path, ctx=self.ctx).json()
        for k in jwks["keys"]:
            self.assertEqual(k["use"], "sig")
        claims = harness.verify_jwt(token, jwks)
        header, _ = harness.decode_jwt(token)
        self.assertEqual(header, {"kid": "fake-rsa-1", "typ": "JWT", "alg": "RS256"})
        self.assertEqual(claims["iss"], self.fc.urls["issuer"])
        self.assertEqual(claims["sub"], "arn:aws:iam::111122223333:role/example-workload-role")
        self.assertEqual(claims["aud"], "api://AzureADTokenExchange")
        self.assertEqual(claims["exp"] - claims["iat"], 300)
        self.assertLessEqual(abs(claims["iat"] - t0), 2)
        uuid.UUID(claims["jti"])
        self.assertEqual(claims["https://sts.amazonaws.com/"],
                         {"aws_account": "111122223333", "source_region": "us-east-2",
                          "principal_id": "arn:aws:iam::111122223333:role/example-workload-role"})
        self.assertEqual(expiration, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(claims["exp"])))
        # A tampered token does not verify.
        h, p, s = token.split(".")
        with self.assertRaises(ValueError):
            harness.verify_jwt(h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:], jwks)
        entry = self.fc.log("sts")[-1]
        self.assertEqual(entry["verdict"], "ok")
        self.assertEqual(entry["issued"]["jti"], claims["jti"])
        self.assertEqual(entry["issued"]["token_fingerprint"], harness.fingerprint(token))
        self.assertEqual(entry["headers"]["x-amz-security-token"], harness.fingerprint(creds["token"]))
        self.assertEqual(self.fc.stats()["sts"]["GetWebIdentityToken"], {"ok": 1})

    def test_gwit_es384_multi_audience_tags(self):
        creds = self.imds_creds()
        params = gwit_params(("api://AzureADTokenExchange", "https://sts.googleapis.com/example"), "ES384", 3600,
                             [("host", "web-01"), ("env", "prod test/=+-@:.")])
        token, _ = self.jwt_ok(self.gwit(creds, params))
        header, _ = harness.decode_jwt(token)
        self.assertEqual(header, {"kid": "fake-ec-1", "typ": "JWT", "alg": "ES384"})
        claims = harness.verify_jwt(token, self.fc.jwks())
        self.assertEqual(claims["aud"], ["api://AzureADTokenExchange", "https://sts.googleapis.com/example"])
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertEqual(claims["https://sts.amazonaws.com/"]["request_tags"],
                         {"host": "web-01", "env": "prod test/=+-@:."})

    def test_gwit_max_token_lifetime_and_static_creds(self):
        self.fc.config(max_token_lifetime=5)
        c = self.fc.add_creds(role_arn="arn:aws:iam::111122223333:user/alice")
        creds = {"akid": c["access_key_id"], "secret": c["secret_access_key"], "token": None}
        token, expiration = self.jwt_ok(self.gwit(creds, gwit_params(duration=3600)))
        claims = harness.verify_jwt(token, self.fc.jwks())
        self.assertEqual(claims["exp"] - claims["iat"], 5)
        self.assertEqual(claims["sub"], "arn:aws:iam::111122223333:user/alice")
        # Long-term keys sent with a session token are refused.
        creds["token"] = "unexpected"
        self.assert_sts_error(self.gwit(creds), 403, "InvalidClientTokenId")

    def test_gwit_signature_errors(self):
        creds = self.imds_creds()
        body = form(gwit_params())
        self.assert_sts_error(request(self.sts, "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")],
                                      body, self.ctx), 403, "MissingAuthenticationToken")
        self.assert_sts_error(self.gwit(dict(creds, akid="ASIAUNKNOWNUNKNOWN00")), 403, "InvalidClientTokenId",
                              "The security token included in the request is invalid.")
        self.assert_sts_error(self.gwit(creds, token=False), 403, "InvalidClientTokenId")
        self.assert_sts_error(self.gwit(dict(creds, token=creds["token"] + "x")), 403, "InvalidClientTokenId")
        self.assert_sts_error(self.gwit(creds, secret=creds["secret"][::-1]), 403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the signature you provided")
        self.assert_sts_error(self.gwit(creds, region="us-east-1"), 403, "SignatureDoesNotMatch",
                              "Credential should be scoped to a valid region")
        self.assert_sts_error(self.gwit(creds, service="iam"), 403, "SignatureDoesNotMatch", "correct service")
        self.assert_sts_error(self.gwit(creds, when=int(time.time()) - 600), 403, "SignatureDoesNotMatch",
                              "Signature expired: ")
        self.assert_sts_error(self.gwit(creds, signed=["content-type", "x-amz-date", "x-amz-security-token"]),
                              403, "IncompleteSignature", "'Host'")
        self.assert_sts_error(self.gwit(creds, signed=["content-type", "host", "x-amz-security-token"]),
                              403, "IncompleteSignature", "X-Amz-Date")
        # Token header present but unsigned is valid SigV4.
        self.jwt_ok(self.gwit(creds, signed=["host", "x-amz-date"]))
        # The fake's clock runs 10 min ahead: a correct request now looks stale.
        self.fc.config(clock_skew=600)
        r = self.gwit(creds)
        self.assert_sts_error(r, 403, "SignatureDoesNotMatch", "Signature expired")
        skewed = time.mktime(time.strptime(r.headers["date"], "%a, %d %b %Y %H:%M:%S GMT")) - time.timezone
        self.assertAlmostEqual(skewed - time.time(), 600, delta=5)
        self.jwt_ok(self.gwit(creds, when=int(time.time()) + 600))
        # Expired signing credentials.
        self.fc.config(clock_skew=0)
        self.fc.fault("imds", "expired_creds")
        self.assert_sts_error(self.gwit(self.imds_creds()), 400, "ExpiredToken",
                              "The security token included in the request is expired")
        verdicts = self.fc.stats()["sts"]["GetWebIdentityToken"]
        self.assertEqual(verdicts["ok"], 2)
        self.assertEqual(verdicts["SignatureDoesNotMatch"], 5)

    def test_gwit_validation(self):
        creds = self.imds_creds()
        cases = [
            (gwit_params(audiences=()), "Value null at 'audience'"),
            (gwit_params(audiences=[f"aud-{i}" for i in range(11)]), "less than or equal to 10"),
            (gwit_params(audiences=["a" * 1001]), "less than or equal to 1000"),
            (gwit_params(audiences=[""]), "greater than or equal to 1"),
            (gwit_params(alg=None), "Value null at 'signingAlgorithm'"),
            (gwit_params(alg="HS256"), "enum value set: [RS256, ES384]"),
            (gwit_params(duration=59), "greater than or equal to 60"),
            (gwit_params(duration=3601), "less than or equal to 3600"),
            (gwit_params(duration="abc"), "Member must be an integer"),
            (gwit_params(tags=[("", "x")]), "tags.1.member.key"),
            (gwit_params(tags=[("k", "v" * 257)]), "tags.1.member.value"),
            (gwit_params(tags=[("bad#key", "v")]), "regular expression"),
            (gwit_params(tags=[(f"k{i}", "v") for i in range(51)]), "less than or equal to 50"),
        ]
        for params, text in cases:
            self.assert_sts_error(self.gwit(creds, params), 400, "ValidationError", text)
        r = self.gwit(creds, gwit_params(alg=None, duration=5))
        self.assert_sts_error(r, 400, "ValidationError", "2 validation errors detected: ")
        self.assert_sts_error(self.gwit(creds, gwit_params(tags=[("Env", "a"), ("env", "b")])), 400,
                              "InvalidParameterValue", "Duplicate tag keys")
        self.assert_sts_error(self.gwit(creds, [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]),
                              400, "InvalidAction")
        self.assert_sts_error(self.gwit(creds, [("Version", "2011-06-15")]), 400, "MissingAction")
        self.assert_sts_error(self.gwit(creds, gwit_params()[:1] + gwit_params()[2:]), 400, "MissingParameter")
        # Duration past the signing session.
        self.fc.fault("imds", "short_creds", seconds=200)
        short = self.imds_creds()
        self.assert_sts_error(self.gwit(short, gwit_params(duration=300)), 403, "SessionDurationEscalationException")
        self.jwt_ok(self.gwit(short, gwit_params(duration=120)))
        self.fc.config(max_payload_bytes=600)
        self.assert_sts_error(self.gwit(creds, gwit_params(tags=[("k" * 128, "v" * 256)])), 400,
                              "JWTPayloadSizeExceededException")

    def test_sts_faults(self):
        creds = self.imds_creds()
        self.fc.fault("sts", "status", status=500)
        self.assert_sts_error(self.gwit(creds), 500, "InternalFailure")
        self.fc.fault("sts", "status", status=503)
        self.assert_sts_error(self.gwit(creds), 503, "ServiceUnavailable")
        self.fc.fault("sts", "throttle", retry_after=3)
        r = self.gwit(creds)
        self.assert_sts_error(r, 400, "Throttling", "Rate exceeded")
        self.assertEqual(r.headers["retry-after"], "3")
        for code, status in [("OutboundWebIdentityFederationDisabledException", 403), ("AccessDenied", 403),
                             ("JWTPayloadSizeExceededException", 400), ("SessionDurationEscalationException", 403),
                             ("RegionDisabledException", 403)]:
            self.fc.fault("sts", "error", code=code)
            self.assert_sts_error(self.gwit(creds), status, code)
        self.fc.fault("sts", "error", code="AccessDenied", message="custom words")
        self.assert_sts_error(self.gwit(creds), 403, "AccessDenied", "custom words")
        # count semantics: 2 then normal; -1 until cleared; action filter.
        self.fc.fault("sts", "status", status=503, count=2)
        self.assertEqual([self.gwit(creds).status for _ in range(3)], [503, 503, 200])
        self.fc.fault("sts", "throttle", count=-1)
        self.assertEqual([self.gwit(creds).status for _ in range(3)], [400, 400, 400])
        self.assertEqual(self.fc.faults()[0]["remaining"], -1)
        self.fc.clear_faults()
        self.jwt_ok(self.gwit(creds))
        fid = self.fc.fault("sts", "status", status=500, action="AssumeRoleWithWebIdentity")
        self.jwt_ok(self.gwit(creds))
        self.assertEqual(len(self.fc.faults()), 1)
        self.fc.fault("imds", "throttle", count=-1)
        self.assertEqual(self.fc.clear_faults(fault_id=fid)["cleared"], 1)
        self.assertEqual(self.fc.clear_faults(service="sts")["cleared"], 0)
        self.assertEqual(self.fc.clear_faults(service="imds")["cleared"], 1)
        entries = [e for e in self.fc.log("sts") if e["fault"]]
        self.assertEqual(entries[0]["fault"], "status")
        self.assertEqual(entries[0]["verdict"], "InternalFailure")

    def test_transport_faults(self):
        creds = self.imds_creds()
        self.fc.fault("sts", "slow", delay=0.6)
        r = self.gwit(creds)
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(r.elapsed, 0.6)
        self.fc.fault("sts", "reset")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            self.gwit(creds)
        self.fc.fault("imds", "reset", action="credentials")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            self.imds_creds()
        self.fc.fault("container", "reset", rst=True)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            request(self.fc.urls["container"], "GET", "/v1/credentials", [("Authorization", "fake-container-token")])
        self.fc.fault("sts", "stall", delay=0.4)
        r = self.gwit(creds)
        self.assertGreaterEqual(r.elapsed, 0.4)
        self.jwt_ok(r)
        self.fc.fault("sts", "malformed")
        r = self.gwit(creds)
        self.assertEqual((r.status, r.headers["content-type"]), (200, "text/xml"))
        with self.assertRaises(ET.ParseError):
            r.xml()
        self.fc.fault("container", "malformed", body="{}")
        self.assertEqual(request(self.fc.urls["container"], "GET", "/v1/credentials",
                                 [("Authorization", "fake-container-token")]).body, b"{}")
        self.fc.fault("sts", "oversized")
        r = self.gwit(creds)
        self.assertEqual((r.status, len(r.body)), (200, 4 << 20))
        self.assertTrue(r.body.startswith(b"<GetWebIdentityTokenResponse"))
        self.fc.fault("imds", "oversized", mib=0.5, action="token")
        r = request(self.fc.urls["imds"], "PUT", "/latest/api/token", [("x-aws-ec2-metadata-token-ttl-seconds", "60")])
        self.assertEqual(len(r.body), 1 << 19)
        self.fc.fault("sts", "wrong_content_type")
        r = self.gwit(creds)
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        r.xml()
        self.fc.fault("issuer", "status", status=503)
        path = urllib.parse.urlsplit(self.fc.urls["issuer"]).path + "/.well-known/jwks.json"
        self.assertEqual(request(self.sts, "GET", path, ctx=self.ctx).status, 503)
        self.assertEqual(request(self.sts, "GET", path, ctx=self.ctx).status, 200)

    def test_keep_alive(self):
        creds = self.imds_creds()
        u = urllib.parse.urlsplit(self.sts)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=self.ctx, timeout=10)
        body = form(gwit_params())
        for _ in range(3):
            r = request(self.sts, "POST", "/", signed_headers_for(creds, body, self.sts_host), body, conn=conn)
            self.jwt_ok(r)
        self.assertIsNotNone(conn.sock)
        conn.close()

    def test_replay_captured_sdk_requests(self):
        """The SDK's exact bytes, replayed over TLS with the fake's clock set
        to the capture time, are accepted; one flipped body byte is not."""
        self.fc.config(clock_skew=STS_NOW + 30 - time.time())
        self.fc.add_creds(access_key_id=STS_AKID, secret_access_key=STS_SECRET, session_token=STS_TOKEN)
        port = urllib.parse.urlsplit(self.sts).port
        names = sorted(f for f in os.listdir(CAPTURED) if f.startswith("sts-getwebidentitytoken") and
                       f.endswith(".http"))

        def send(raw):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                with self.ctx.wrap_socket(s, server_hostname="localhost") as t:
                    t.sendall(raw)
                    resp = http.client.HTTPResponse(t, method="POST")
                    resp.begin()
                    return Response(resp.status, {k.lower(): x for k, x in resp.getheaders()}, resp.read(), 0)

        for name in names:
            raw = read(os.path.join(CAPTURED, name))
            token, _ = self.jwt_ok(send(raw))
            claims = harness.verify_jwt(token, self.fc.jwks())
            self.assertAlmostEqual(claims["iat"], STS_NOW + 30, delta=5, msg=name)
            tampered = raw[:-1] + bytes([raw[-1] ^ 0x01])
            self.assert_sts_error(send(tampered), 403, "SignatureDoesNotMatch")
        self.assertEqual(self.fc.count("sts", "GetWebIdentityToken", "ok"), len(names))

    @unittest.skipUnless(shutil.which("curl"), "curl is not installed")
    def test_curl_aws_sigv4(self):
        """A third-party signer (curl --aws-sigv4) is accepted over the wire."""
        creds = self.imds_creds()
        body = form(gwit_params())
        cmd = ["curl", "-sS", "--max-time", "10", "--cacert", self.fc.ca_file, "--aws-sigv4", "aws:amz:us-east-2:sts",
               "--user", f"{creds['akid']}:{creds['secret']}", "-H", f"x-amz-security-token: {creds['token']}",
               "-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", "@-", self.sts + "/"]
        out = subprocess.run(cmd, input=body, capture_output=True, timeout=20)
        self.assertIn(b"<WebIdentityToken>eyJ", out.stdout, out.stderr)
        cmd[cmd.index("--user") + 1] = f"{creds['akid']}:wrong-secret"
        out = subprocess.run(cmd, input=body, capture_output=True, timeout=20)
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", out.stdout, out.stderr)

    # -- AssumeRoleWithWebIdentity -------------------------------------------

    def arwwi(self, token, role="arn:aws:iam::111122223333:role/example-irsa-role", session="fedtokend-test",
              extra=(), headers=()):
        p = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15")]
        if role is not None:
            p.append(("RoleArn", role))
        if session is not None:
            p.append(("RoleSessionName", session))
        if token is not None:
            p.append(("WebIdentityToken", token))
        body = form(p + list(extra))
        return request(self.sts, "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")] + list(headers),
                       body, self.ctx)

    def test_arwwi(self):
        token = self.fc.mint_irsa()
        t0 = time.time()
        r = self.arwwi(token)
        self.assertEqual(r.status, 200, r.text())
        res = r.xml().find("s:AssumeRoleWithWebIdentityResult", NS)
        c = res.find("s:Credentials", NS)
        creds = {"akid": c.find("s:AccessKeyId", NS).text, "secret": c.find("s:SecretAccessKey", NS).text,
                 "token": c.find("s:SessionToken", NS).text}
        exp = c.find("s:Expiration", NS).text
        self.assertRegex(exp, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertAlmostEqual(time.mktime(time.strptime(exp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - t0, 3600,
                               delta=5)
        self.assertEqual(res.find("s:AssumedRoleUser/s:Arn", NS).text,
                         "arn:aws:sts::111122223333:assumed-role/example-irsa-role/fedtokend-test")
        self.assertEqual(res.find("s:SubjectFromWebIdentityToken", NS).text, "system:serviceaccount:default:fedtokend")
        self.assertEqual(res.find("s:Audience", NS).text, "sts.amazonaws.com")
        token2, _ = self.jwt_ok(self.gwit(creds))
        self.assertEqual(harness.decode_jwt(token2)[1]["sub"], "arn:aws:iam::111122223333:role/example-irsa-role")
        entry = [e for e in self.fc.log("sts") if e["action"] == "AssumeRoleWithWebIdentity"][0]
        self.assertEqual(entry["body_params"]["WebIdentityToken"], harness.fingerprint(token))
        r = self.arwwi(token, extra=[("DurationSeconds", "900")])
        self.assertEqual(r.status, 200)

    def test_arwwi_refusals(self):
        good = self.fc.mint_irsa()
        self.assert_sts_error(self.arwwi(self.fc.mint_irsa(expired=True)), 400, "ExpiredTokenException")
        self.assert_sts_error(self.arwwi(self.fc.mint_irsa(aud="api://other")), 403, "IDPRejectedClaim")
        self.assert_sts_error(self.arwwi(self.fc.mint_irsa(tamper=True)), 400, "InvalidIdentityToken")
        self.assert_sts_error(self.arwwi("not.a.jwt"), 400, "InvalidIdentityToken")
        with open(os.path.join(CAPTURED, "irsa-service-account-token.jwt")) as f:
            self.assert_sts_error(self.arwwi(f.read().strip()), 400, "InvalidIdentityToken")
        self.assert_sts_error(self.arwwi(good, role="arn:aws:iam::1234:role/x"), 400, "ValidationError", "roleArn")
        self.assert_sts_error(self.arwwi(good, session=None), 400, "ValidationError", "roleSessionName")
        self.assert_sts_error(self.arwwi(None), 400, "ValidationError", "webIdentityToken")
        self.assert_sts_error(self.arwwi(good, extra=[("DurationSeconds", "899")]), 400, "ValidationError")
        self.assert_sts_error(self.arwwi(good, headers=[("Authorization", "AWS4-HMAC-SHA256 Credential=x")]), 400,
                              "InvalidParameterCombination")
        self.fc.fault("sts", "short_creds", seconds=30)
        r = self.arwwi(good)
        exp = r.xml().find("s:AssumeRoleWithWebIdentityResult/s:Credentials/s:Expiration", NS).text
        self.assertAlmostEqual(time.mktime(time.strptime(exp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - time.time(),
                               30, delta=5)

    # -- TLS -------------------------------------------------------------------

    def tls_connect(self, host="localhost", ctx=None, server_hostname=None, family=socket.AF_INET):
        port = urllib.parse.urlsplit(self.sts).port
        addr = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        with socket.create_connection((addr, port), timeout=5) as s:
            with (ctx or self.ctx).wrap_socket(s, server_hostname=server_hostname or host) as t:
                return t.getpeercert()

    def test_tls(self):
        cert = self.tls_connect()
        self.assertIn(("DNS", "localhost"), cert["subjectAltName"])
        self.assertIn(("IP Address", "127.0.0.1"), cert["subjectAltName"])
        self.tls_connect(server_hostname="127.0.0.1")
        if self.fc.info.get("sts_ipv6"):
            self.tls_connect(family=socket.AF_INET6)
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.tls_connect(ctx=ssl.create_default_context())
        self.fc.fault("sts", "tls_untrusted")
        with self.assertRaises(ssl.SSLCertVerificationError) as cm:
            self.tls_connect()
        self.assertIn("unable to get local issuer certificate", str(cm.exception))
        self.tls_connect()
        self.fc.fault("issuer", "tls_wrong_host", count=2)
        for _ in range(2):
            with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                self.tls_connect()
            self.assertIn("Hostname mismatch", str(cm.exception))
        self.tls_connect()
        self.assertEqual(self.fc.count("sts", "tls"), 1)
        self.assertEqual(self.fc.count("issuer", "tls", "tls_wrong_host"), 2)
        self.assertEqual(self.imds_creds()["akid"][:4], "ASIA")   # plain services unaffected

    # -- control API and logs --------------------------------------------------

    def test_control_api(self):
        with self.assertRaises(harness.FakeCloudError):
            self.fc.config(no_such_key=1)
        with self.assertRaises(harness.FakeCloudError):
            self.fc.config(creds_lifetime="long")
        with self.assertRaises(harness.FakeCloudError):
            self.fc.fault("sts", "no_role")
        with self.assertRaises(harness.FakeCloudError):
            self.fc.fault("dns", "status", status=500)
        with self.assertRaises(harness.FakeCloudError):
            self.fc.fault("sts", "status")
        with self.assertRaises(harness.FakeCloudError):
            self.fc.fault("sts", "throttle", count=0)
        self.assertEqual(self.fc.config(creds_lifetime=900)["creds_lifetime"], 900)
        d = self.imds_creds()
        exp = time.mktime(time.strptime(d["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertAlmostEqual(exp - time.time(), 900, delta=5)
        self.fc.fault("sts", "throttle", count=-1)
        self.fc.reset()
        self.assertEqual(self.fc.faults(), [])
        self.assertEqual(self.fc.log(), [])
        self.assertEqual(self.fc.stats(), {})
        self.assertEqual(self.fc.creds(), [])
        self.assertEqual(self.fc.control("GET", "/config")["creds_lifetime"], 21600)
        self.assert_sts_error(self.gwit(d), 403, "InvalidClientTokenId")   # creds forgotten by reset
        tok = self.imds_token()
        since = self.fc.log()[-1]["seq"]
        request(self.fc.urls["imds"], "GET", "/latest/meta-data/iam/security-credentials/",
                [("x-aws-ec2-metadata-token", tok)])
        entries = self.fc.log(since=since)
        self.assertEqual(len(entries), 1)
        e = entries[0]
        self.assertEqual((e["service"], e["action"], e["method"], e["verdict"]), ("imds", "list", "GET", "ok"))
        self.assertEqual(e["headers"]["x-aws-ec2-metadata-token"], harness.fingerprint(tok))
        self.assertEqual(self.fc.count("imds"), 2)
        self.assertEqual(self.fc.count("imds", "token", "ok"), 1)

    def test_no_secrets_in_logs(self):
        creds = self.imds_creds()
        tok = self.imds_token()
        self.jwt_ok(self.gwit(creds))
        irsa = self.fc.mint_irsa()
        self.arwwi(irsa)
        dump = json.dumps(self.fc.log())
        stderr = self.fc.log_text()
        for secret in (creds["secret"], creds["token"], tok, irsa, "fake-container-token"):
            self.assertNotIn(secret, dump)
            self.assertNotIn(secret, stderr)
        self.assertIn(harness.fingerprint(creds["token"]), dump)


# ---------------------------------------------------------------------------
# harness.run_fedtokend / Daemon with a stand-in binary
# ---------------------------------------------------------------------------

STANDIN = """#!/usr/bin/python3
import json, os, signal, sys, time
args = sys.argv[1:]
if args and args[-1] == "sleep":
    time.sleep(30)
if args and args[-1] == "daemon":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    open("ready", "w").close()
    while True:
        time.sleep(0.05)
conf = None
if "--config" in args:
    with open(args[args.index("--config") + 1]) as f:
        conf = f.read()
print(json.dumps({"args": args, "env": dict(os.environ), "config": conf}))
sys.stderr.write("stderr line\\n")
sys.exit(3)
"""


class HarnessTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fakecloud-standin-")
        self.bin = os.path.join(self.dir, "fedtokend")
        with open(self.bin, "w") as f:
            f.write(STANDIN)
        os.chmod(self.bin, stat.S_IRWXU)
        self.saved = {k: os.environ.get(k) for k in ("FEDTOKEND", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")}
        os.environ.update(FEDTOKEND=self.bin, AWS_ACCESS_KEY_ID="AKIALEAKEDFROMHOST00", AWS_PROFILE="leak")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        for k, x in self.saved.items():
            if x is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = x

    def test_run_clean_env_and_config(self):
        r = harness.run_fedtokend(["--once"], "[aws]\nregion = us-east-2\n", env={"AWS_REGION": "us-east-2"},
                                  timeout=10)
        self.assertEqual(r.rc, 3)
        self.assertEqual(r.stderr, "stderr line\n")
        out = json.loads(r.stdout)
        self.assertEqual(out["args"], ["--config", r.config_path, "--once"])
        self.assertEqual(out["config"], "[aws]\nregion = us-east-2\n")
        self.assertEqual(out["env"]["AWS_REGION"], "us-east-2")
        self.assertFalse([k for k in out["env"] if k.startswith("AWS_") and k != "AWS_REGION"], out["env"])
        self.assertEqual(os.listdir(out["env"]["HOME"]), [])
        r = harness.run_fedtokend(["-c", "{config}"], "x = 1\n", timeout=10)
        self.assertEqual(json.loads(r.stdout)["args"], ["-c", r.config_path])

    def test_timeout(self):
        r = harness.run_fedtokend(["sleep"], timeout=0.5)
        self.assertTrue(r.timed_out)
        self.assertIsNone(r.rc)

    def test_daemon(self):
        d = harness.Daemon(["daemon"])
        with d:
            self.assertTrue(d.wait_for(lambda: os.path.exists(os.path.join(d.workdir, "ready")), 10))
            self.assertTrue(d.alive())
        self.assertEqual(d.rc, 0)

    def test_check_counts(self):
        saved = dict(harness._counts)
        try:
            harness._counts.update(passed=0, failed=0)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertTrue(harness.check(True, "a true check"))
                self.assertFalse(harness.check(False, "a false check", "detail"))
                self.assertEqual(harness.summary(), 1)
                harness._counts.update(passed=0, failed=0)
                self.assertEqual(harness.summary(), 1)
                harness._counts.update(passed=1, failed=0)
                self.assertEqual(harness.summary(), 0)
            self.assertEqual(out.getvalue(), "ok - a true check\nFAIL - a false check\n    detail\n"
                                             "1 passed, 1 failed\n0 passed, 0 failed\n1 passed, 0 failed\n")
        finally:
            harness._counts.update(saved)


class ZShutdownTests(unittest.TestCase):
    """Runs after FakeCloudTests.tearDownClass (class order is alphabetical)."""

    def test_clean_exit(self):
        final = getattr(FakeCloudTests, "final", None)
        self.assertIsNotNone(final, "the end-to-end tests did not run")
        self.assertEqual(final["rc"], 0, final["log"][-2000:])
        self.assertFalse(final["json_left"], "fakecloud.json should be removed on exit")
        self.assertIn("fakecloud: stopping", final["log"])
        self.assertNotIn("Traceback", final["log"], final["log"][-3000:])
        shutil.rmtree(final["dir"], ignore_errors=True)


def main():
    if not os.path.isdir(SUITE) or not os.path.isdir(CAPTURED):
        print(f"test vectors not found under {SHARED} (set FT_SHARED_DIR)")
        print("0 passed, 1 failed")
        return 1
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for cls in (SigV4SuiteTests, CapturedStsTests, HarnessTests, FakeCloudTests, ZShutdownTests):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    result = unittest.TextTestRunner(verbosity=2 if "-v" in sys.argv else 1, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
