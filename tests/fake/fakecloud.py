#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""fakecloud: a local stand-in for the AWS endpoints fedtokend talks to.

    /usr/bin/python3 fakecloud.py --dir DIR [--region us-east-2] [--account 111122223333]

Serves, on loopback only and on ephemeral ports:
  imds       EC2 IMDSv2 (plain HTTP)
  container  ECS / EKS Pod Identity credentials endpoint (plain HTTP)
  sts        STS GetWebIdentityToken (SigV4-verified) and AssumeRoleWithWebIdentity (HTTPS)
  issuer     the OIDC issuer of the JWTs STS hands out (same HTTPS server as sts)
  control    a JSON API to inject faults, change settings and read the request log (plain HTTP)

On start it creates a throwaway CA and certificates in DIR, the JWT signing
keys, and writes DIR/fakecloud.json (atomically) naming every URL. The wire
formats follow shared/vectors/captured/ byte for byte where a capture exists.
See README.md next to this file for the control API.
"""

import argparse
import base64
import datetime
import email.utils
import errno
import hashlib
import http.server
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import unicodedata
import urllib.parse
import uuid
from xml.sax.saxutils import escape as xml_escape

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigv4_verify  # noqa: E402

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
STS_VERSION = "2011-06-15"
MAX_REQUEST_BODY = 1 << 20
MAX_LOG_ENTRIES = 20000
JWT_RSA_KID = "fake-rsa-1"
JWT_EC_KID = "fake-ec-1"
IRSA_KID = "fake-irsa-1"

DEFAULT_CONFIG = {
    "creds_lifetime": 21600,       # IMDS / container credentials, seconds
    "max_token_lifetime": 3600,    # cap on a GetWebIdentityToken JWT lifetime
    "clock_skew": 0,               # the fake's clock = real time + this
    "container_token": "fake-container-token",
    "imds_role": "example-workload-role",
    "container_role": "example-task-role",
    "account": "111122223333",
    "max_skew": 300,               # SigV4 x-amz-date window, seconds
    "max_payload_bytes": 8192,     # JWT claims larger than this: JWTPayloadSizeExceededException
}

SERVICES = ("imds", "container", "sts", "issuer")
RESPONSE_MODES = ("status", "throttle", "error", "slow", "reset", "stall", "malformed", "oversized",
                  "wrong_content_type")
CREDS_MODES = ("expired_creds", "short_creds")
TLS_MODES = ("tls_untrusted", "tls_wrong_host")
MODES_BY_SERVICE = {
    "imds": RESPONSE_MODES + CREDS_MODES + ("no_role",),
    "container": RESPONSE_MODES + CREDS_MODES,
    "sts": RESPONSE_MODES + CREDS_MODES + TLS_MODES,
    "issuer": RESPONSE_MODES + TLS_MODES,
}

# Code -> (HTTP status, Type, message) for STS errors the fake can serve.
STS_ERRORS = {
    "OutboundWebIdentityFederationDisabledException":
        (403, "Sender", "Outbound web identity federation is disabled for this account."),
    "JWTPayloadSizeExceededException": (400, "Sender", "The JWT payload size exceeds the allowed maximum."),
    "SessionDurationEscalationException":
        (403, "Sender", "The requested DurationSeconds exceeds the remaining lifetime of the calling session."),
    "AccessDenied": (403, "Sender", "User: {principal} is not authorized to perform: sts:{action}"),
    "RegionDisabledException":
        (403, "Sender", "STS is not activated in this region for account:{account}. Your account administrator "
                        "can activate STS in this region using the IAM Console."),
    "ExpiredToken": (400, "Sender", "The security token included in the request is expired"),
    "ExpiredTokenException": (400, "Sender", "Token expired."),
    "InvalidClientTokenId": (403, "Sender", "The security token included in the request is invalid."),
    "SignatureDoesNotMatch": (403, "Sender", "The request signature we calculated does not match the signature "
                                             "you provided."),
    "IncompleteSignature": (403, "Sender", "The request signature does not conform to AWS standards."),
    "MissingAuthenticationToken": (403, "Sender", "Request is missing Authentication Token"),
    "InvalidIdentityToken": (400, "Sender", "Couldn't retrieve verification key from your identity provider."),
    "IDPRejectedClaim": (403, "Sender", "Token was rejected by the identity provider."),
    "IDPCommunicationError": (400, "Sender", "Couldn't communicate with the identity provider."),
    "ValidationError": (400, "Sender", "1 validation error detected."),
    "InvalidParameterValue": (400, "Sender", "An invalid or out-of-range value was supplied for the input "
                                             "parameter."),
    "InvalidAction": (400, "Sender", "Could not find operation for version 2011-06-15"),
    "MissingAction": (400, "Sender", "Missing Action"),
    "Throttling": (400, "Sender", "Rate exceeded"),
    "RequestExpired": (400, "Sender", "Request has expired."),
    "InternalFailure": (500, "Receiver", "An internal error has occurred."),
    "ServiceUnavailable": (503, "Receiver", "Service is unavailable. Please try again later."),
}
STS_STATUS_CODES = {400: "InvalidParameterValue", 403: "AccessDenied", 404: "NotFound", 429: "Throttling",
                    500: "InternalFailure", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
HTTP_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 413: "Payload Too Large", 429: "Too Many Requests",
                500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout"}
SECRET_HEADERS = ("x-amz-security-token", "x-aws-ec2-metadata-token")
SECRET_PARAMS = ("WebIdentityToken",)


def fingerprint(secret):
    """Same form as ft_fingerprint(): "sha256:" and 12 hex digits."""
    if isinstance(secret, str):
        secret = secret.encode("latin-1", "replace")
    return "sha256:" + hashlib.sha256(secret).hexdigest()[:12]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def iso8601(epoch, millis=False):
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch)))
    return t + (".000Z" if millis else "Z")


def int_bytes(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


def log_line(text):
    sys.stderr.write(time.strftime("%H:%M:%S ") + text + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Keys and certificates
# --------------------------------------------------------------------------

class Keys:
    """Throwaway PKI and JWT signing keys, written to DIR."""

    def __init__(self, directory):
        self.dir = directory
        now = datetime.datetime.now(datetime.timezone.utc)
        self.not_before = now - datetime.timedelta(days=1)
        self.not_after = now + datetime.timedelta(days=30)

        # The CAs use P-256 keys because RSA key generation dominates the
        # start-up time; the server's own key is RSA, as on AWS endpoints.
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = self._ca_cert(ca_key, "fakecloud test CA")
        bad_ca_key = ec.generate_private_key(ec.SECP256R1())
        bad_ca = self._ca_cert(bad_ca_key, "fakecloud UNTRUSTED CA")
        server_key = rsa.generate_private_key(65537, 2048)
        good_names = [x509.DNSName("localhost"), x509.IPAddress(_ip("127.0.0.1")), x509.IPAddress(_ip("::1"))]
        server = self._leaf(server_key, "localhost", good_names, ca, ca_key)
        untrusted = self._leaf(server_key, "localhost", good_names, bad_ca, bad_ca_key)
        wrong_host = self._leaf(server_key, "wrong-host.invalid", [x509.DNSName("wrong-host.invalid")], ca, ca_key)

        self.paths = {
            "ca_file": self._write("ca.pem", _pem(ca)),
            "server_cert": self._write("server.pem", _pem(server)),
            "server_key": self._write("server.key", server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600),
            "untrusted_ca": self._write("untrusted-ca.pem", _pem(bad_ca)),
            "untrusted_cert": self._write("untrusted-server.pem", _pem(untrusted)),
            "wrong_host_cert": self._write("wrong-host-server.pem", _pem(wrong_host)),
        }

        self.jwt_rsa = rsa.generate_private_key(65537, 2048)
        self.jwt_ec = ec.generate_private_key(ec.SECP384R1())
        self.irsa = rsa.generate_private_key(65537, 2048)
        self.jwks = {"keys": [_rsa_jwk(self.jwt_rsa, JWT_RSA_KID), _ec_jwk(self.jwt_ec, JWT_EC_KID)]}
        self.paths["jwks"] = self._write("jwks.json", json.dumps(self.jwks, indent=2).encode())
        self.paths["irsa_jwks"] = self._write(
            "irsa-jwks.json", json.dumps({"keys": [_rsa_jwk(self.irsa, IRSA_KID)]}, indent=2).encode())

    def _ca_cert(self, key, cn):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(self.not_before).not_valid_after(self.not_after)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))

    def _leaf(self, key, cn, names, ca, ca_key):
        return (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(self.not_before).not_valid_after(self.not_after)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))

    def _write(self, name, data, mode=0o644):
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def tls_context(self, cert_path):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_path, self.paths["server_key"])
        return ctx

    def sign_jwt(self, header, claims, alg):
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode("ascii")
        if alg == "RS256":
            sig = self.jwt_rsa.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES384":
            r, s = decode_dss_signature(self.jwt_ec.sign(signing_input, ec.ECDSA(hashes.SHA384())))
            sig = int_bytes(r, 48) + int_bytes(s, 48)
        elif alg == "IRSA":
            sig = self.irsa.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise ValueError(alg)
        return signing_input.decode("ascii") + "." + b64url(sig)


def _ip(text):
    return ipaddress.ip_address(text)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _rsa_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64url(int_bytes(pub.n)), "e": b64url(int_bytes(pub.e))}


def _ec_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "use": "sig", "alg": "ES384", "crv": "P-384",
            "x": b64url(int_bytes(pub.x, 48)), "y": b64url(int_bytes(pub.y, 48))}


# --------------------------------------------------------------------------
# Shared state
# --------------------------------------------------------------------------

class Creds:
    def __init__(self, akid, secret, token, expiration, role_arn, account, source):
        self.akid = akid
        self.secret = secret
        self.token = token
        self.expiration = expiration      # epoch seconds, or None for long-term keys
        self.role_arn = role_arn
        self.account = account
        self.source = source

    def public(self):
        return {"access_key_id": self.akid, "expiration": self.expiration, "role_arn": self.role_arn,
                "account": self.account, "source": self.source,
                "secret_fingerprint": fingerprint(self.secret),
                "token_fingerprint": fingerprint(self.token) if self.token else None}


class Fault:
    _ids = iter(range(1, 1 << 62))

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        self.service = spec.get("service")
        self.mode = spec.get("mode")
        if self.service not in MODES_BY_SERVICE:
            raise ValueError(f"service must be one of {', '.join(SERVICES)}")
        if self.mode not in MODES_BY_SERVICE[self.service]:
            raise ValueError(f"mode {self.mode!r} is not valid for {self.service}; valid: "
                             f"{', '.join(MODES_BY_SERVICE[self.service])}")
        self.count = spec.get("count", 1)
        if not isinstance(self.count, int) or self.count == 0 or self.count < -1:
            raise ValueError("count must be a positive integer or -1")
        self.action = spec.get("action")
        self.path = spec.get("path")
        self.params = dict(spec)
        if self.mode == "status" and not isinstance(spec.get("status"), int):
            raise ValueError("mode status needs an integer 'status'")
        if self.mode == "error" and not isinstance(spec.get("code"), str):
            raise ValueError("mode error needs a string 'code'")
        if self.mode in ("slow", "stall") and not isinstance(spec.get("delay", 0), (int, float)):
            raise ValueError("delay must be a number of seconds")
        if self.mode == "short_creds" and not isinstance(spec.get("seconds"), int):
            raise ValueError("mode short_creds needs an integer 'seconds'")
        self.id = next(Fault._ids)

    def matches(self, modes, action, path):
        if self.mode not in modes:
            return False
        if self.action is not None and self.action != action:
            return False
        if self.path is not None and not (path or "").startswith(self.path):
            return False
        return True

    def get(self, key, default=None):
        return self.params.get(key, default)

    def public(self):
        d = dict(self.params)
        d["id"] = self.id
        d["remaining"] = self.count
        return d


class State:
    def __init__(self, region, account, keys):
        self.lock = threading.RLock()
        self.region = region
        self.default_account = account
        self.keys = keys
        self.issuer_url = None
        self.urls = {}
        self.reset()

    def reset(self):
        with self.lock:
            self.config = dict(DEFAULT_CONFIG)
            self.config["account"] = self.default_account
            self.creds = {}
            self.imds_tokens = {}
            self.faults = []
            self.log = []
            self.seq = 0
            self.stats = {}

    def now(self):
        return time.time() + self.config["clock_skew"]

    def set_config(self, updates):
        if not isinstance(updates, dict):
            raise ValueError("config is a JSON object")
        types = {"creds_lifetime": int, "max_token_lifetime": int, "clock_skew": (int, float),
                 "container_token": str, "imds_role": str, "container_role": str, "account": str,
                 "max_skew": int, "max_payload_bytes": int}
        for k, v in updates.items():
            if k not in types:
                raise ValueError(f"unknown config key {k!r}; known: {', '.join(sorted(types))}")
            if not isinstance(v, types[k]) or isinstance(v, bool):
                raise ValueError(f"config key {k!r} has the wrong type")
        if "account" in updates and not re.fullmatch(r"\d{12}", updates["account"]):
            raise ValueError("account must be 12 digits")
        with self.lock:
            self.config.update(updates)
            return dict(self.config)

    # -- credentials --------------------------------------------------------

    def issue_creds(self, service, role_arn, account, lifetime, action=None, path=None):
        """Mint and register temporary credentials, honouring expired_creds /
        short_creds faults for `service`."""
        now = int(self.now())
        fault = self.take_fault(service, CREDS_MODES, action, path)
        if fault is not None and fault.mode == "expired_creds":
            expiration = now - int(fault.get("ago", 60))
        elif fault is not None:
            expiration = now + int(fault.get("seconds"))
        else:
            expiration = now + int(lifetime)
        c = Creds("ASIA" + _rand_upper(16), _rand_secret(40),
                  "IQoJb3JpZ2luX2VjEAKE" + base64.b64encode(secrets.token_bytes(600)).decode(),
                  expiration, role_arn, account, service)
        with self.lock:
            self.creds[c.akid] = c
        return c, fault

    def add_creds(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("creds is a JSON object")
        account = spec.get("account", self.config["account"])
        role = spec.get("role_arn", f"arn:aws:iam::{account}:role/{self.config['imds_role']}")
        akid = spec.get("access_key_id") or ("AKIA" + _rand_upper(16))
        secret = spec.get("secret_access_key") or _rand_secret(40)
        token = spec.get("session_token")
        expiration = spec.get("expiration")
        if expiration is None and "expires_in" in spec:
            expiration = int(self.now()) + int(spec["expires_in"])
        for k, v in (("access_key_id", akid), ("secret_access_key", secret)):
            if not isinstance(v, str) or not v:
                raise ValueError(f"{k} must be a non-empty string")
        c = Creds(akid, secret, token, expiration, role, account, "control")
        with self.lock:
            self.creds[akid] = c
        d = c.public()
        d.update({"secret_access_key": secret, "session_token": token})
        return d

    def lookup_creds(self, akid):
        with self.lock:
            return self.creds.get(akid)

    # -- faults --------------------------------------------------------------

    def add_fault(self, spec):
        f = Fault(spec)
        with self.lock:
            self.faults.append(f)
        return f

    def clear_faults(self, service=None, fault_id=None):
        """Remove every fault, or those of one service, or the one with fault_id."""
        with self.lock:
            n = len(self.faults)
            if fault_id is not None:
                self.faults = [f for f in self.faults if f.id != fault_id]
            elif service is not None:
                self.faults = [f for f in self.faults if f.service != service]
            else:
                self.faults = []
            return n - len(self.faults)

    def take_fault(self, services, modes, action=None, path=None):
        if isinstance(services, str):
            services = (services,)
        with self.lock:
            for f in self.faults:
                if f.service in services and f.matches(modes, action, path):
                    if f.count > 0:
                        f.count -= 1
                        if f.count == 0:
                            self.faults.remove(f)
                    return f
        return None

    # -- log -------------------------------------------------------------------

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)
            if len(self.log) > MAX_LOG_ENTRIES:
                del self.log[:len(self.log) - MAX_LOG_ENTRIES]
            svc = self.stats.setdefault(entry["service"], {})
            act = svc.setdefault(entry.get("action") or "-", {})
            act[entry["verdict"]] = act.get(entry["verdict"], 0) + 1


def _rand_upper(n):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _rand_secret(n):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------------------
# Requests and replies
# --------------------------------------------------------------------------

class Reply:
    def __init__(self, status, body=b"", content_type="text/plain", headers=None, verdict="ok"):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = list(headers or [])
        self.verdict = verdict


class Req:
    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.headers = headers                    # [(name, value)] as received
        self.hmap = sigv4_verify.header_map(headers)
        self.body = body
        self.params = {}
        self.action = None
        self.issued = None

    def header(self, name):
        values = self.hmap.get(name.lower())
        return values[-1] if values else None

    def logged_headers(self, extra_secret=()):
        out = {}
        for name, values in self.hmap.items():
            value = ",".join(values)
            if name in SECRET_HEADERS or name in extra_secret:
                value = fingerprint(value)
            out[name] = value
        return out

    def logged_params(self):
        return {k: (fingerprint(v) if k in SECRET_PARAMS else v) for k, v in self.params.items()}


def parse_form(body):
    """awsQuery form body -> {name: value}; '+' is a space as in HTML forms."""
    out = {}
    text = body.decode("latin-1")
    for part in text.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        k = urllib.parse.unquote_plus(k, encoding="utf-8", errors="replace")
        out[k] = urllib.parse.unquote_plus(v, encoding="utf-8", errors="replace")
    return out


class Service:
    """Base of the emulated services: routing key, normal answers, error bodies."""

    name = "?"
    content_type = "text/plain"

    def __init__(self, state):
        self.state = state

    def prepare(self, req):
        req.action = "request"

    def handle(self, req):
        raise NotImplementedError

    def error(self, req, status, code=None, message=None):
        return Reply(status, f"{status} {HTTP_REASONS.get(status, 'Error')}\n", "text/plain",
                     verdict=code or f"HTTP{status}")

    def throttle(self, req, fault):
        r = self.error(req, 429, "Throttling")
        r.headers.append(("Retry-After", str(fault.get("retry_after", 1))))
        return r

    def modeled_error(self, req, fault):
        return self.error(req, int(fault.get("status", 400)), fault.get("code"), fault.get("message"))

    def garbage(self, req):
        return b"\x00\xff<<not the answer you expected>>\r\n{\"Code\" : "

    def oversize_prefix(self, req):
        return b""

    def secret_headers(self):
        return ()


# -- IMDS ------------------------------------------------------------------

IMDS_ERROR_PAGE = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{status} - {reason}</title>
 </head>
 <body>
  <h1>{status} - {reason}</h1>
 </body>
</html>
"""
IMDS_CREDS_PREFIX = "/latest/meta-data/iam/security-credentials"


class ImdsService(Service):
    name = "imds"

    def prepare(self, req):
        p = req.path
        if p == "/latest/api/token":
            req.action = "token"
        elif p in (IMDS_CREDS_PREFIX, IMDS_CREDS_PREFIX + "/"):
            req.action = "list"
        elif p.startswith(IMDS_CREDS_PREFIX + "/"):
            req.action = "credentials"
        else:
            req.action = "other"

    def error(self, req, status, code=None, message=None):
        reason = HTTP_REASONS.get(status, "Error")
        return Reply(status, IMDS_ERROR_PAGE.format(status=status, reason=reason), "text/html",
                     verdict=code or f"HTTP{status}")

    def modeled_error(self, req, fault):
        return self.error(req, int(fault.get("status", 500)), fault.get("code"))

    def garbage(self, req):
        if req.action == "credentials":
            return b'{\n  "Code" : "Success",\n  "AccessKeyId" : "ASIA\x00\xff'
        return b"\x00\xff\r\n<<garbage>>\r\n"

    def oversize_prefix(self, req):
        return b'{\n  "Code" : "Success",\n  "AccessKeyId" : "' if req.action == "credentials" else b""

    def handle(self, req):
        st = self.state
        if req.method == "PUT":
            if req.action != "token":
                return self.error(req, 403 if req.path.endswith("/api/token") else 405, "Forbidden")
            if req.header("x-forwarded-for") is not None:
                return self.error(req, 403, "ForwardedFor")
            ttl = req.header("x-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None:
                return self.error(req, 400, "MissingTTL")
            ttl = ttl.strip()
            if not re.fullmatch(r"[0-9]{1,6}", ttl) or not 1 <= int(ttl) <= 21600:
                return self.error(req, 400, "BadTTL")
            token = "AQAE" + base64.b64encode(secrets.token_bytes(43)).decode()
            with st.lock:
                st.imds_tokens[token] = st.now() + int(ttl)
            req.issued = {"token_fingerprint": fingerprint(token), "ttl": int(ttl)}
            return Reply(200, token, "text/plain", [("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)])
        if req.method != "GET":
            return self.error(req, 405, "MethodNotAllowed")
        token = req.header("x-aws-ec2-metadata-token")
        if token is None:
            return self.error(req, 401, "MissingToken")
        with st.lock:
            expiry = st.imds_tokens.get(token.strip())
        if expiry is None:
            return self.error(req, 401, "InvalidToken")
        if st.now() >= expiry:
            return self.error(req, 401, "ExpiredToken")

        role = st.config["imds_role"]
        account = st.config["account"]
        if req.action in ("list", "credentials"):
            if st.take_fault("imds", ("no_role",), req.action, req.path) is not None:
                return self.error(req, 404, "NoRole")
        if req.action == "list":
            return Reply(200, role, "text/plain")
        if req.action == "credentials":
            if req.path[len(IMDS_CREDS_PREFIX) + 1:] != role:
                return self.error(req, 404, "NotFound")
            c, fault = st.issue_creds("imds", f"arn:aws:iam::{account}:role/{role}", account,
                                      st.config["creds_lifetime"], req.action, req.path)
            req.issued = {"access_key_id": c.akid, "expiration": c.expiration,
                          "fault": fault.mode if fault else None}
            doc = ("{\n"
                   '  "Code" : "Success",\n'
                   f'  "LastUpdated" : "{iso8601(st.now())}",\n'
                   '  "Type" : "AWS-HMAC",\n'
                   f'  "AccessKeyId" : "{c.akid}",\n'
                   f'  "SecretAccessKey" : "{c.secret}",\n'
                   f'  "Token" : "{c.token}",\n'
                   f'  "Expiration" : "{iso8601(c.expiration)}"\n'
                   "}")
            return Reply(200, doc, "text/plain")
        if req.path == "/latest/meta-data/placement/region":
            return Reply(200, st.region, "text/plain")
        if req.path == "/latest/meta-data/iam/info":
            doc = json.dumps({"Code": "Success", "LastUpdated": iso8601(st.now()),
                              "InstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/{role}",
                              "InstanceProfileId": "AIPAFAKECLOUD0000001"}, indent=2).replace('": ', '" : ')
            return Reply(200, doc, "text/plain")
        if req.path == "/latest/dynamic/instance-identity/document":
            doc = json.dumps({"accountId": account, "region": st.region, "instanceId": "i-0fakec1oud0000001",
                              "availabilityZone": st.region + "a", "architecture": "x86_64"},
                             indent=2).replace('": ', '" : ')
            return Reply(200, doc, "text/plain")
        return self.error(req, 404, "NotFound")


# -- container credentials endpoint ----------------------------------------

class ContainerService(Service):
    name = "container"
    content_type = "application/json"

    def prepare(self, req):
        req.action = "credentials"

    def secret_headers(self):
        return ("authorization",)

    def error(self, req, status, code=None, message=None):
        code = code or {401: "Unauthorized", 403: "AccessDenied", 404: "NotFound", 429: "TooManyRequestsException",
                        500: "InternalServerError", 503: "ServiceUnavailable"}.get(status, f"HTTP{status}")
        message = message or HTTP_REASONS.get(status, "Error")
        return Reply(status, json.dumps({"Code": code, "Message": message}), "application/json", verdict=code)

    def throttle(self, req, fault):
        r = self.error(req, 429, "TooManyRequestsException", "Rate exceeded")
        r.headers.append(("Retry-After", str(fault.get("retry_after", 1))))
        return r

    def garbage(self, req):
        return b'{"AccessKeyId": "ASIA\x00\xff'

    def oversize_prefix(self, req):
        return b'{"AccessKeyId": "'

    def handle(self, req):
        st = self.state
        if req.method != "GET":
            return self.error(req, 405, "MethodNotAllowed", "Only GET is supported")
        auth = req.header("authorization")
        if auth is None:
            return self.error(req, 401, "MissingAuthorization", "Authorization header is missing")
        if auth != st.config["container_token"]:
            return self.error(req, 403, "InvalidAuthorization", "The authorization token is not valid")
        account = st.config["account"]
        role_arn = f"arn:aws:iam::{account}:role/{st.config['container_role']}"
        c, fault = st.issue_creds("container", role_arn, account, st.config["creds_lifetime"],
                                  req.action, req.path)
        req.issued = {"access_key_id": c.akid, "expiration": c.expiration, "fault": fault.mode if fault else None}
        if req.path.startswith("/v1/"):
            # EKS Pod Identity agent shape (compact, AccountId).
            doc = json.dumps({"AccessKeyId": c.akid, "SecretAccessKey": c.secret, "Token": c.token,
                              "AccountId": account, "Expiration": iso8601(c.expiration)})
        else:
            # ECS task role shape (sorted keys, 4-space indent, RoleArn).
            doc = json.dumps({"AccessKeyId": c.akid, "Expiration": iso8601(c.expiration), "RoleArn": role_arn,
                              "SecretAccessKey": c.secret, "Token": c.token}, indent=4, sort_keys=True)
        return Reply(200, doc, "application/json")


# -- STS ---------------------------------------------------------------------

def sts_error_xml(type_, code, message, request_id):
    return (f'<ErrorResponse xmlns="{STS_NS}">\n'
            "  <Error>\n"
            f"    <Type>{type_}</Type>\n"
            f"    <Code>{xml_escape(code)}</Code>\n"
            f"    <Message>{xml_escape(message)}</Message>\n"
            "  </Error>\n"
            f"  <RequestId>{request_id}</RequestId>\n"
            "</ErrorResponse>\n")


class StsError(Exception):
    def __init__(self, code, message=None, status=None):
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


def _tag_chars_ok(text):
    for ch in text:
        if ch in "_.:/=+-@":
            continue
        if unicodedata.category(ch)[0] in "LZN":
            continue
        return False
    return True


def _validation_error(errors):
    n = len(errors)
    head = f"{n} validation error{'s' if n > 1 else ''} detected: "
    return StsError("ValidationError", head + "; ".join(errors), 400)


class StsService(Service):
    name = "sts"
    content_type = "text/xml"

    def prepare(self, req):
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if req.method == "POST" and ctype == "application/x-www-form-urlencoded":
            req.params = parse_form(req.body)
        req.action = req.params.get("Action") or "-"

    def reply_error(self, code, message=None, status=None):
        default_status, type_, default_message = STS_ERRORS.get(
            code, (status or 400, "Receiver" if (status or 400) >= 500 else "Sender", code))
        status = status or default_status
        if status >= 500:
            type_ = "Receiver"
        message = message or default_message.format(
            account=self.state.config["account"], action="GetWebIdentityToken",
            principal=f"arn:aws:sts::{self.state.config['account']}:assumed-role/"
                      f"{self.state.config['imds_role']}/i-0fakec1oud0000001")
        rid = str(uuid.uuid4())
        return Reply(status, sts_error_xml(type_, code, message, rid), "text/xml",
                     [("x-amzn-RequestId", rid)], verdict=code)

    def error(self, req, status, code=None, message=None):
        code = code or STS_STATUS_CODES.get(status, "InternalFailure" if status >= 500 else "InvalidRequest")
        return self.reply_error(code, message, status)

    def throttle(self, req, fault):
        r = self.reply_error("Throttling", fault.get("message", "Rate exceeded"), int(fault.get("status", 400)))
        r.headers.append(("Retry-After", str(fault.get("retry_after", 1))))
        return r

    def modeled_error(self, req, fault):
        return self.reply_error(fault.get("code"), fault.get("message"), fault.get("status"))

    def garbage(self, req):
        return (f'<GetWebIdentityTokenResponse xmlns="{STS_NS}">\n  <GetWebIdentityTokenResult>\n'
                f'    <WebIdentityToken>eyJ&bogus;<</Expiration>\x00\xff').encode("latin-1")

    def oversize_prefix(self, req):
        return (f'<GetWebIdentityTokenResponse xmlns="{STS_NS}">\n  <GetWebIdentityTokenResult>\n'
                f'    <WebIdentityToken>eyJ').encode()

    def handle(self, req):
        try:
            if req.path != "/":
                raise StsError("InvalidAction", f"Unknown path {req.path[:100]!r}: the STS endpoint is POST /", 404)
            if req.method != "POST":
                raise StsError("InvalidAction", "fakecloud STS accepts POST only", 400)
            if not req.params:
                raise StsError("MissingAction", "Missing Action (expected a form-encoded POST body)", 400)
            action = req.params.get("Action")
            if not action:
                raise StsError("MissingAction", "Missing Action", 400)
            if action not in ("GetWebIdentityToken", "AssumeRoleWithWebIdentity"):
                raise StsError("InvalidAction", f"Could not find operation {action[:100]} for version "
                                                f"{req.params.get('Version', STS_VERSION)[:20]}", 400)
            version = req.params.get("Version")
            if version is None:
                raise StsError("MissingParameter", "The request must contain the parameter Version", 400)
            if version != STS_VERSION:
                raise StsError("InvalidAction", f"Could not find operation {action} for version {version[:20]}",
                               400)
            if action == "GetWebIdentityToken":
                return self.get_web_identity_token(req)
            return self.assume_role_with_web_identity(req)
        except StsError as e:
            return self.reply_error(e.code, e.message, e.status)

    # GetWebIdentityToken ------------------------------------------------------

    def _lookup(self, req, found):
        def lookup(akid):
            c = self.state.lookup_creds(akid)
            if c is None:
                raise sigv4_verify.SigV4Error("InvalidClientTokenId",
                                              "The security token included in the request is invalid.")
            token = req.header("x-amz-security-token")
            if (c.token is None) != (token is None) or (c.token is not None and token != c.token):
                raise sigv4_verify.SigV4Error("InvalidClientTokenId",
                                              "The security token included in the request is invalid.")
            found.append(c)
            return c.secret
        return lookup

    def get_web_identity_token(self, req):
        st = self.state
        now = st.now()
        found = []
        try:
            sigv4_verify.verify(req.method, req.target, req.headers, req.body, lookup=self._lookup(req, found),
                                now=int(now), region=st.region, service="sts",
                                max_skew=st.config["max_skew"])
        except sigv4_verify.SigV4Error as e:
            raise StsError(e.code, e.message, e.status)
        creds = found[0]
        if creds.expiration is not None and now >= creds.expiration:
            raise StsError("ExpiredToken", "The security token included in the request is expired", 400)

        p = req.params
        errors = []
        audiences = self._members(p, "Audience.member.", errors, "audience")
        if not audiences and not any(k.startswith("Audience.member.") for k in p):
            errors.append("Value null at 'audience' failed to satisfy constraint: Member must not be null")
        if len(audiences) > 10:
            errors.append(f"Value '[{', '.join(audiences)[:200]}]' at 'audience' failed to satisfy constraint: "
                          "Member must have length less than or equal to 10")
        for i, a in enumerate(audiences, 1):
            if not 1 <= len(a) <= 1000:
                errors.append(f"Value '{a[:100]}' at 'audience.{i}.member' failed to satisfy constraint: "
                              f"Member must have length {'greater' if not a else 'less'} than or equal to "
                              f"{1 if not a else 1000}")
        alg = p.get("SigningAlgorithm")
        if alg is None:
            errors.append("Value null at 'signingAlgorithm' failed to satisfy constraint: Member must not be null")
        elif alg not in ("RS256", "ES384"):
            errors.append(f"Value '{alg[:100]}' at 'signingAlgorithm' failed to satisfy constraint: "
                          "Member must satisfy enum value set: [RS256, ES384]")
        duration = 300
        if "DurationSeconds" in p:
            d = p["DurationSeconds"]
            if not re.fullmatch(r"-?[0-9]{1,9}", d):
                errors.append(f"Value '{d[:40]}' at 'durationSeconds' failed to satisfy constraint: "
                              "Member must be an integer")
            else:
                duration = int(d)
                if duration < 60:
                    errors.append(f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
                                  "Member must have value greater than or equal to 60")
                elif duration > 3600:
                    errors.append(f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
                                  "Member must have value less than or equal to 3600")
        tags = self._tags(p, errors)
        if errors:
            raise _validation_error(errors)

        iat = int(now)
        if creds.expiration is not None and iat + duration > creds.expiration:
            raise StsError("SessionDurationEscalationException",
                           f"The requested DurationSeconds ({duration}) exceeds the remaining lifetime "
                           f"({max(0, int(creds.expiration - iat))} s) of the calling session.", 403)
        lifetime = min(duration, st.config["max_token_lifetime"])
        exp = iat + lifetime
        sts_claims = {"aws_account": creds.account, "source_region": st.region, "principal_id": creds.role_arn}
        if tags:
            sts_claims["request_tags"] = dict(tags)
        claims = {"aud": audiences[0] if len(audiences) == 1 else audiences, "sub": creds.role_arn,
                  "https://sts.amazonaws.com/": sts_claims, "iss": st.issuer_url, "exp": exp, "iat": iat,
                  "jti": str(uuid.uuid4())}
        if len(json.dumps(claims, separators=(",", ":"))) > st.config["max_payload_bytes"]:
            raise StsError("JWTPayloadSizeExceededException",
                           f"The JWT payload size exceeds the allowed maximum of "
                           f"{st.config['max_payload_bytes']} bytes.", 400)
        kid = JWT_RSA_KID if alg == "RS256" else JWT_EC_KID
        token = st.keys.sign_jwt({"kid": kid, "typ": "JWT", "alg": alg}, claims, alg)
        req.issued = {"jti": claims["jti"], "iat": iat, "exp": exp, "kid": kid, "alg": alg, "aud": claims["aud"],
                      "sub": creds.role_arn, "access_key_id": creds.akid, "token_fingerprint": fingerprint(token)}
        rid = str(uuid.uuid4())
        body = (f'<GetWebIdentityTokenResponse xmlns="{STS_NS}">\n'
                "  <GetWebIdentityTokenResult>\n"
                f"    <WebIdentityToken>{token}</WebIdentityToken>\n"
                f"    <Expiration>{iso8601(exp, millis=True)}</Expiration>\n"
                "  </GetWebIdentityTokenResult>\n"
                "  <ResponseMetadata>\n"
                f"    <RequestId>{rid}</RequestId>\n"
                "  </ResponseMetadata>\n"
                "</GetWebIdentityTokenResponse>\n")
        return Reply(200, body, "text/xml", [("x-amzn-RequestId", rid)])

    @staticmethod
    def _members(p, prefix, errors, field):
        indexed = []
        for k, v in p.items():
            if k.startswith(prefix):
                n = k[len(prefix):]
                if not re.fullmatch(r"[1-9][0-9]{0,3}", n):
                    errors.append(f"Parameter '{k[:60]}' is not a valid list member of '{field}'")
                    continue
                indexed.append((int(n), v))
        indexed.sort()
        return [v for _, v in indexed]

    @staticmethod
    def _tags(p, errors):
        found = {}
        for k, v in p.items():
            m = re.fullmatch(r"Tags\.member\.([1-9][0-9]{0,3})\.(Key|Value)", k)
            if m:
                found.setdefault(int(m.group(1)), {})[m.group(2)] = v
            elif k.startswith("Tags."):
                errors.append(f"Parameter '{k[:60]}' is not a valid member of 'tags'")
        tags = []
        for n in sorted(found):
            t = found[n]
            if "Key" not in t:
                errors.append(f"Value null at 'tags.{n}.member.key' failed to satisfy constraint: "
                              "Member must not be null")
                continue
            if "Value" not in t:
                errors.append(f"Value null at 'tags.{n}.member.value' failed to satisfy constraint: "
                              "Member must not be null")
                continue
            key, value = t["Key"], t["Value"]
            if not 1 <= len(key) <= 128:
                errors.append(f"Value '{key[:60]}' at 'tags.{n}.member.key' failed to satisfy constraint: "
                              "Member must have length between 1 and 128")
            elif not _tag_chars_ok(key):
                errors.append(f"Value '{key[:60]}' at 'tags.{n}.member.key' failed to satisfy constraint: "
                              "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+")
            if len(value) > 256:
                errors.append(f"Value '{value[:60]}' at 'tags.{n}.member.value' failed to satisfy constraint: "
                              "Member must have length less than or equal to 256")
            elif not _tag_chars_ok(value):
                errors.append(f"Value '{value[:60]}' at 'tags.{n}.member.value' failed to satisfy constraint: "
                              "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*")
            tags.append((key, value))
        if len(tags) > 50:
            errors.append("Value at 'tags' failed to satisfy constraint: Member must have length less than or "
                          "equal to 50")
        keys = [k.lower() for k, _ in tags]
        if len(set(keys)) != len(keys):
            raise StsError("InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are "
                                                    "case insensitive.", 400)
        return tags

    # AssumeRoleWithWebIdentity -----------------------------------------------

    def assume_role_with_web_identity(self, req):
        st = self.state
        now = int(st.now())
        if req.header("authorization") is not None:
            raise StsError("InvalidParameterCombination",
                           "fakecloud: AssumeRoleWithWebIdentity must be sent unsigned (no Authorization header)",
                           400)
        p = req.params
        errors = []
        role_arn = p.get("RoleArn")
        m = None
        if role_arn is None:
            errors.append("Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
        else:
            m = re.fullmatch(r"arn:aws:iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})", role_arn)
            if m is None:
                errors.append(f"Value '{role_arn[:100]}' at 'roleArn' failed to satisfy constraint: Member must "
                              "satisfy regular expression pattern: arn:aws:iam::\\d{12}:role/...")
        session = p.get("RoleSessionName")
        if session is None:
            errors.append("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
        elif not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
            errors.append(f"Value '{session[:80]}' at 'roleSessionName' failed to satisfy constraint: Member must "
                          "satisfy regular expression pattern: [\\w+=,.@-]*")
        token = p.get("WebIdentityToken")
        if token is None:
            errors.append("Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null")
        elif not 4 <= len(token) <= 20000:
            errors.append("Value at 'webIdentityToken' failed to satisfy constraint: Member must have length "
                          "between 4 and 20000")
        duration = 3600
        if "DurationSeconds" in p:
            d = p["DurationSeconds"]
            if not re.fullmatch(r"[0-9]{1,9}", d) or not 900 <= int(d) <= 43200:
                errors.append(f"Value '{d[:40]}' at 'durationSeconds' failed to satisfy constraint: Member must "
                              "have value between 900 and 43200")
            else:
                duration = int(d)
        if errors:
            raise _validation_error(errors)

        claims = self._verify_irsa_token(token, now)
        account, role_name = m.group(1), m.group(3)
        c, fault = st.issue_creds("sts", role_arn, account, duration, req.action, req.path)
        req.issued = {"access_key_id": c.akid, "expiration": c.expiration, "fault": fault.mode if fault else None,
                      "role_arn": role_arn}
        rid = str(uuid.uuid4())
        issuer = str(claims.get("iss", ""))
        provider = issuer.split("://", 1)[-1]
        body = (f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">\n'
                "  <AssumeRoleWithWebIdentityResult>\n"
                f"    <SubjectFromWebIdentityToken>{xml_escape(str(claims.get('sub', '')))}"
                "</SubjectFromWebIdentityToken>\n"
                "    <Audience>sts.amazonaws.com</Audience>\n"
                "    <AssumedRoleUser>\n"
                f"      <Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn>\n"
                f"      <AssumedRoleId>AROA{_rand_upper(17)}:{session}</AssumedRoleId>\n"
                "    </AssumedRoleUser>\n"
                "    <Credentials>\n"
                f"      <SessionToken>{c.token}</SessionToken>\n"
                f"      <SecretAccessKey>{c.secret}</SecretAccessKey>\n"
                f"      <Expiration>{iso8601(c.expiration)}</Expiration>\n"
                f"      <AccessKeyId>{c.akid}</AccessKeyId>\n"
                "    </Credentials>\n"
                "    <SourceIdentity></SourceIdentity>\n"
                f"    <Provider>arn:aws:iam::{account}:oidc-provider/{xml_escape(provider)}</Provider>\n"
                "  </AssumeRoleWithWebIdentityResult>\n"
                "  <ResponseMetadata>\n"
                f"    <RequestId>{rid}</RequestId>\n"
                "  </ResponseMetadata>\n"
                "</AssumeRoleWithWebIdentityResponse>\n")
        return Reply(200, body, "text/xml", [("x-amzn-RequestId", rid)])

    def _verify_irsa_token(self, token, now):
        parts = token.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not three parts")
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not objects")
        except (ValueError, UnicodeDecodeError):
            raise StsError("InvalidIdentityToken", "The web identity token that was passed could not be "
                                                   "validated by AWS. Get a new identity token from the identity "
                                                   "provider and then retry the request.", 400)
        if header.get("alg") != "RS256" or header.get("kid") != IRSA_KID:
            raise StsError("InvalidIdentityToken", "Couldn't retrieve verification key from your identity "
                                                   "provider, please reference AssumeRoleWithWebIdentity "
                                                   "documentation for requirements", 400)
        try:
            self.state.keys.irsa.public_key().verify(sig, (parts[0] + "." + parts[1]).encode("ascii"),
                                                     padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise StsError("InvalidIdentityToken", "The web identity token that was passed could not be "
                                                   "validated by AWS. Get a new identity token from the identity "
                                                   "provider and then retry the request.", 400)
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if "sts.amazonaws.com" not in auds:
            raise StsError("IDPRejectedClaim", "Incorrect token audience", 403)
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or now >= exp:
            raise StsError("ExpiredTokenException", f"Token expired: current date/time {now} must be before the "
                                                    f"expiration date/time {exp}", 400)
        return claims


# -- OIDC issuer -------------------------------------------------------------

class IssuerService(Service):
    name = "issuer"
    content_type = "application/json"

    def prepare(self, req):
        base = urllib.parse.urlsplit(self.state.issuer_url).path
        if req.path == base + "/.well-known/openid-configuration":
            req.action = "openid-configuration"
        elif req.path == base + "/.well-known/jwks.json":
            req.action = "jwks"
        else:
            req.action = "other"

    def error(self, req, status, code=None, message=None):
        return Reply(status, json.dumps({"error": code or HTTP_REASONS.get(status, "Error"),
                                         "message": message or HTTP_REASONS.get(status, "Error")}),
                     "application/json", verdict=code or f"HTTP{status}")

    def garbage(self, req):
        return b'{"issuer": "https://\x00\xff'

    def oversize_prefix(self, req):
        return b'{"keys": [{"kty": "RSA", "n": "'

    def handle(self, req):
        if req.method != "GET":
            return self.error(req, 405, "MethodNotAllowed")
        st = self.state
        if req.action == "openid-configuration":
            doc = {"issuer": st.issuer_url, "jwks_uri": st.issuer_url + "/.well-known/jwks.json",
                   "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                   "id_token_signing_alg_values_supported": ["RS256", "ES384"],
                   "claims_supported": ["aud", "exp", "iat", "iss", "jti", "sub", "https://sts.amazonaws.com/"]}
            return Reply(200, json.dumps(doc, indent=2), "application/json")
        if req.action == "jwks":
            return Reply(200, json.dumps(st.keys.jwks, indent=2), "application/json")
        return self.error(req, 404, "NotFound")


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class Listener(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, name, app, router, tls_select=None, family=socket.AF_INET):
        self.address_family = family
        self.name = name
        self.app = app
        self.router = router              # req -> Service
        self.tls_select = tls_select      # () -> SSLContext, or None for plain HTTP
        super().__init__(addr, handler)

    def server_bind(self):
        # HTTPServer.server_bind() would resolve the host name (getfqdn), which
        # can stall on a machine without DNS.
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        log_line(f"{self.name}: connection from {client_address[0]} ended: {type(exc).__name__}: {exc}")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakecloud/1"
    sys_version = ""
    timeout = 30

    def setup(self):
        self.tls_failed = False
        if self.server.tls_select is not None:
            self.request.settimeout(10)
            ctx = self.server.tls_select()
            try:
                self.request = ctx.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                # wrap_socket() has taken over and closed the descriptor.
                self.tls_failed = True
                log_line(f"{self.server.name}: TLS handshake failed: {e}")
                return
        super().setup()

    def handle(self):
        if not self.tls_failed:
            super().handle()

    def finish(self):
        if not self.tls_failed:
            super().finish()

    def version_string(self):
        return self.server_version

    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, format, *args):
        log_line(f"{self.server.name}: " + (format % args))

    def date_time_string(self, timestamp=None):
        return email.utils.formatdate(self.server.app.state.now(), usegmt=True)

    def do_GET(self):
        self.serve()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(100)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(10)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise ValueError("bad Content-Length")
        n = int(length)
        if n > MAX_REQUEST_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def serve(self):
        app = self.server.app
        try:
            body = self.read_body()
        except ValueError as e:
            self.close_connection = True
            self.write_reply(Reply(413 if "large" in str(e) else 400, str(e) + "\n", verdict="BadRequest"))
            return
        req = Req(self.command, self.path, list(self.headers.items()), body)
        service = self.server.router(req)
        if service is None:
            reply = app.control.handle(req)
            log_line(f"control: {req.method} {req.path} -> {reply.status}")
            self.write_reply(reply)
            return
        try:
            service.prepare(req)
            reply, fault = app.dispatch(service, req)
        except Exception:
            # A bug in the fake, not a modelled failure: answer 500 and say so.
            log_line(f"{service.name}: internal error in the fake:\n{traceback.format_exc()}")
            reply, fault = Reply(500, "fakecloud internal error\n", verdict="FakeCloudBug"), None
        entry = {"service": service.name, "action": req.action, "method": req.method, "path": req.target,
                 "headers": req.logged_headers(service.secret_headers()), "body_params": req.logged_params(),
                 "body_length": len(req.body), "verdict": reply.verdict, "status": reply.status,
                 "fault": fault.mode if fault else None, "issued": req.issued, "time": app.state.now()}
        # Record before answering: a client that has its answer may read
        # /log or /stats at once and must find this request there.
        app.state.record(entry)
        who = ""
        auth = req.header("authorization")
        if service.name == "sts" and auth and "Credential=" in auth:
            who = " akid=" + auth.split("Credential=", 1)[1].split("/", 1)[0][:32]
        log_line(f"{service.name}: {req.method} {req.path} {req.action}{who} -> {reply.status} "
                 f"{reply.verdict}" + (f" [fault {fault.mode}]" if fault else ""))
        self.write_reply(reply, fault)

    def write_reply(self, reply, fault=None):
        mode = fault.mode if fault else None
        body = reply.body
        ctype = reply.content_type
        length = len(body)
        if mode == "wrong_content_type":
            ctype = fault.get("content_type", "text/html; charset=utf-8")
        elif mode == "oversized":
            length = int(float(fault.get("mib", 4)) * (1 << 20))
        try:
            self.send_response(reply.status, HTTP_REASONS.get(reply.status) if reply.status != 200 else "OK")
            self.send_header("Content-Type", ctype)
            for k, v in reply.headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(length))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                return
            if mode == "oversized":
                self.wfile.write(body)
                left = length - len(body)
                block = b"A" * 65536
                while left > 0:
                    n = min(left, len(block))
                    self.wfile.write(block[:n])
                    left -= n
            elif mode in ("reset", "stall"):
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                if mode == "reset":
                    self.close_connection = True
                    if fault.get("rst"):
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                time.sleep(float(fault.get("delay", 5)))
                self.wfile.write(body[half:])
            else:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            self.close_connection = True


class App:
    def __init__(self, state):
        self.state = state
        self.imds = ImdsService(state)
        self.container = ContainerService(state)
        self.sts = StsService(state)
        self.issuer = IssuerService(state)
        self.control = ControlService(state)

    def https_router(self, req):
        base = urllib.parse.urlsplit(self.state.issuer_url).path
        if req.path.startswith(base + "/"):
            return self.issuer
        return self.sts

    def dispatch(self, service, req):
        """Apply a response fault if one is queued, else answer normally."""
        st = self.state
        fault = st.take_fault(service.name, RESPONSE_MODES, req.action, req.path)
        mode = fault.mode if fault else None
        if mode == "slow":
            time.sleep(float(fault.get("delay", 5)))
        if mode == "status":
            return service.error(req, int(fault.get("status")), fault.get("code"), fault.get("message")), fault
        if mode == "throttle":
            return service.throttle(req, fault), fault
        if mode == "error":
            return service.modeled_error(req, fault), fault
        if mode == "malformed":
            body = fault.get("body")
            body = body.encode("utf-8") if isinstance(body, str) else service.garbage(req)
            return Reply(200, body, service.content_type, verdict="malformed"), fault
        if mode == "oversized":
            return Reply(200, service.oversize_prefix(req), service.content_type, verdict="oversized"), fault
        reply = service.handle(req)
        if mode in ("reset", "stall", "wrong_content_type") and reply.verdict == "ok":
            reply.verdict = mode
        return reply, fault

    def tls_select(self):
        st = self.state
        fault = st.take_fault(("sts", "issuer"), TLS_MODES)
        if fault is None:
            return self.tls_good
        st.record({"service": fault.service, "action": "tls", "method": "-", "path": "-", "headers": {},
                   "body_params": {}, "body_length": 0, "verdict": fault.mode, "status": None,
                   "fault": fault.mode, "issued": None, "time": st.now()})
        log_line(f"tls: serving the {fault.mode} certificate")
        return self.tls_untrusted if fault.mode == "tls_untrusted" else self.tls_wrong_host


# -- control API ---------------------------------------------------------------

class ControlService(Service):
    name = "control"

    def json_reply(self, status, obj):
        return Reply(status, json.dumps(obj, indent=1, sort_keys=True) + "\n", "application/json",
                     verdict="ok" if status < 400 else "error")

    def handle(self, req):
        try:
            return self._handle(req)
        except (ValueError, TypeError, KeyError) as e:
            return self.json_reply(400, {"error": str(e)})

    def _json(self, req):
        if not req.body.strip():
            return {}
        try:
            return json.loads(req.body)
        except json.JSONDecodeError as e:
            raise ValueError(f"request body is not JSON: {e}")

    def _handle(self, req):
        st = self.state
        q = urllib.parse.parse_qs(req.query)
        route = (req.method, req.path)
        if route == ("GET", "/health"):
            return self.json_reply(200, {"ok": True, "pid": os.getpid()})
        if route == ("POST", "/reset"):
            st.reset()
            return self.json_reply(200, {"ok": True})
        if route == ("GET", "/config"):
            return self.json_reply(200, st.config)
        if route == ("POST", "/config"):
            return self.json_reply(200, st.set_config(self._json(req)))
        if route == ("POST", "/fault"):
            spec = self._json(req)
            specs = spec if isinstance(spec, list) else [spec]
            for s in specs:
                Fault(s)          # validate all before adding any
            ids = [st.add_fault(s).id for s in specs]
            return self.json_reply(200, {"ok": True, "ids": ids})
        if route == ("GET", "/fault"):
            with st.lock:
                return self.json_reply(200, [f.public() for f in st.faults])
        if route == ("DELETE", "/fault"):
            service = q.get("service", [None])[0]
            fault_id = int(q["id"][0]) if "id" in q else None
            return self.json_reply(200, {"ok": True, "cleared": st.clear_faults(service, fault_id)})
        if route == ("POST", "/mint/irsa"):
            return self.json_reply(200, self.mint_irsa(self._json(req)))
        if route == ("POST", "/creds"):
            return self.json_reply(200, st.add_creds(self._json(req)))
        if route == ("GET", "/creds"):
            with st.lock:
                return self.json_reply(200, [c.public() for c in st.creds.values()])
        if route == ("GET", "/log"):
            since = int(q.get("since", ["0"])[0])
            service = q.get("service", [None])[0]
            with st.lock:
                entries = [e for e in st.log if e["seq"] > since and (service is None or e["service"] == service)]
            return self.json_reply(200, entries)
        if route == ("GET", "/stats"):
            with st.lock:
                return self.json_reply(200, st.stats)
        return self.json_reply(404, {"error": f"no route {req.method} {req.path}"})

    def mint_irsa(self, opts):
        st = self.state
        if not isinstance(opts, dict):
            raise ValueError("options are a JSON object")
        now = int(st.now())
        lifetime = int(opts.get("lifetime", 3600))
        iat = now - lifetime - 60 if opts.get("expired") else now
        claims = {"aud": opts.get("aud", ["sts.amazonaws.com"]), "exp": iat + lifetime, "iat": iat,
                  "iss": opts.get("iss", f"https://oidc.eks.{st.region}.amazonaws.com/id/FAKECLOUD0000000000000001"),
                  "sub": opts.get("sub", "system:serviceaccount:default:fedtokend")}
        token = st.keys.sign_jwt({"alg": "RS256", "kid": IRSA_KID}, claims, "IRSA")
        if opts.get("tamper"):
            head, _, sig = token.rpartition(".")
            token = head + "." + ("B" if sig[0] != "B" else "C") + sig[1:]
        return {"token": token, "claims": claims, "fingerprint": fingerprint(token)}


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def make_listener(name, app, router, tls_select=None, host="127.0.0.1", also_ipv6=False):
    """Bind `host` on an ephemeral port; with also_ipv6, also bind ::1 on the
    same port (best effort) so that "localhost" works whichever address a
    client resolves first."""
    for _ in range(20):
        srv = Listener((host, 0), Handler, name, app, router, tls_select)
        if not also_ipv6:
            return [srv]
        port = srv.server_address[1]
        try:
            srv6 = Listener(("::1", port), Handler, name, app, router, tls_select, family=socket.AF_INET6)
            return [srv, srv6]
        except OSError as e:
            if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return [srv]
            srv.server_close()
    raise RuntimeError("could not bind a port on both 127.0.0.1 and ::1")


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="directory for certificates, keys and fakecloud.json")
    ap.add_argument("--region", default="us-east-2")
    ap.add_argument("--account", default="111122223333")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"\d{12}", args.account):
        ap.error("--account must be 12 digits")
    os.makedirs(args.dir, exist_ok=True)
    directory = os.path.abspath(args.dir)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    keys = Keys(directory)
    state = State(args.region, args.account, keys)
    app = App(state)
    app.tls_good = keys.tls_context(keys.paths["server_cert"])
    app.tls_untrusted = keys.tls_context(keys.paths["untrusted_cert"])
    app.tls_wrong_host = keys.tls_context(keys.paths["wrong_host_cert"])

    imds = make_listener("imds", app, lambda req: app.imds)
    container = make_listener("container", app, lambda req: app.container)
    https = make_listener("sts", app, app.https_router, app.tls_select, also_ipv6=True)
    control = make_listener("control", app, lambda req: None)
    sts_port = https[0].server_address[1]
    state.issuer_url = f"https://localhost:{sts_port}/{uuid.uuid4()}"

    servers = imds + container + https + control
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
               for s in servers]
    for t in threads:
        t.start()

    def url(scheme, srv, host="127.0.0.1"):
        return f"{scheme}://{host}:{srv[0].server_address[1]}"

    info = {"imds": url("http", imds), "container": url("http", container),
            "sts": url("https", https, "localhost"), "issuer": state.issuer_url,
            "control": url("http", control), "ca_file": keys.paths["ca_file"],
            "region": args.region, "account": args.account, "pid": os.getpid(),
            "sts_ipv6": len(https) > 1, "files": keys.paths}
    state.urls = info
    info_path = os.path.join(directory, "fakecloud.json")
    write_json_atomic(info_path, info)
    log_line(f"fakecloud: ready pid={os.getpid()} imds={info['imds']} container={info['container']} "
             f"sts={info['sts']} control={info['control']} issuer={info['issuer']}")

    while not stop.wait(0.5):
        pass
    log_line("fakecloud: stopping")
    for s in servers:
        s.shutdown()
        s.server_close()
    try:
        os.unlink(info_path)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
