#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""fakecloud: a local stand-in for the cloud endpoints fedtokend talks to.

    /usr/bin/python3 fakecloud.py --dir DIR [--region us-east-2] [--account 111122223333]

Serves, on loopback only and on ephemeral ports:
  imds       EC2 IMDSv2 (plain HTTP)
  container  ECS / EKS Pod Identity credentials endpoint (plain HTTP)
  sts        STS GetWebIdentityToken (SigV4-verified) and AssumeRoleWithWebIdentity (HTTPS)
  issuer     the OIDC issuer of the JWTs STS hands out (same HTTPS server as sts)
  entra      Microsoft Entra ID token endpoint with federated identity credentials (HTTPS)
  gcp_sts    Google STS token exchange for workload identity federation (HTTPS)
  gcp_iam    Google IAM Credentials generateAccessToken (HTTPS)
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
import http.client
import http.server
import ipaddress
import json
import math
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
import urllib.error
import urllib.parse
import urllib.request
import uuid
from xml.sax.saxutils import escape as xml_escape

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
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
ENTRA_KID = "fake-entra-1"
MAX_ASSERTION = 32768              # longest client assertion / subject token the fakes decode
MAX_OIDC_DOCUMENT = 1 << 20        # cap on a discovery document or JWKS fetched from an issuer
ENTRA_FIC_AUDIENCE = "api://AzureADTokenExchange"
ENTRA_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ENTRA_WIF_DOC = "https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation"
GCP_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
GCP_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
GCP_SUBJECT_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")
# //iam.googleapis.com/<pool>/providers/<provider>; group 1 is the pool's resource path.
GCP_PROVIDER_RE = re.compile(r"//iam\.googleapis\.com/((?:projects/[0-9]{1,20}/locations/global/workloadIdentityPools"
                             r"|locations/global/workforcePools)/[a-z0-9-]{1,63})/providers/[a-z0-9-]{1,63}")

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
    "entra_token_lifetime": 3599,  # expires_in / ext_expires_in of Entra access tokens
    "entra_refresh_in": None,      # seconds; when set, Entra answers carry refresh_in
    "entra_numbers_as_strings": False,  # expires_in etc. as "3599" (MSAL accepts both)
    "entra_propagation_delay": 0,  # a FIC younger than this (fake clock) answers AADSTS70021
    "entra_clock_tolerance": 300,  # leeway on the assertion's exp / nbf / iat
    "gcp_token_lifetime": 3599,    # expires_in of Google STS federated tokens
    "gcp_max_lifetime": 3600,      # longest generateAccessToken lifetime (org policy raises it to 43200)
    "issuer_cache_seconds": 300,   # how long Entra / Google STS reuse an issuer's discovery document + JWKS
}

SERVICES = ("imds", "container", "sts", "issuer", "entra", "gcp_sts", "gcp_iam")
RESPONSE_MODES = ("status", "throttle", "error", "slow", "reset", "stall", "malformed", "oversized",
                  "wrong_content_type")
CREDS_MODES = ("expired_creds", "short_creds")
TLS_MODES = ("tls_untrusted", "tls_wrong_host")
MODES_BY_SERVICE = {
    "imds": RESPONSE_MODES + CREDS_MODES + ("no_role",),
    "container": RESPONSE_MODES + CREDS_MODES,
    "sts": RESPONSE_MODES + CREDS_MODES + TLS_MODES,
    "issuer": RESPONSE_MODES + TLS_MODES,
    "entra": RESPONSE_MODES + TLS_MODES,
    "gcp_sts": RESPONSE_MODES + TLS_MODES,
    "gcp_iam": RESPONSE_MODES + TLS_MODES,
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
SECRET_PARAMS = ("WebIdentityToken", "client_assertion", "client_secret", "subject_token", "assertion",
                 "access_token", "refresh_token")


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


# --secrets-file: every secret handed out is appended here, one per line, so
# that a test can prove none of them reached a log (tests/reliability/scan_secrets.py).
SECRETS_FILE = None
_secrets_lock = threading.Lock()


def note_secret(*values):
    if SECRETS_FILE is None:
        return
    with _secrets_lock, open(SECRETS_FILE, "a") as f:
        for v in values:
            if v:
                f.write(v + "\n")


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
        token = signing_input.decode("ascii") + "." + b64url(sig)
        note_secret(token, b64url(sig))
        return token


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
            # Requests that began before this reset (a slow fault still sleeping) must not
            # land in the new log and stats: they are recorded under their own generation.
            self.generation = getattr(self, "generation", 0) + 1
            self.config = dict(DEFAULT_CONFIG)
            self.config["account"] = self.default_account
            self.creds = {}
            self.imds_tokens = {}
            self.faults = []
            self.log = []
            self.seq = 0
            self.stats = {}
            self.entra_fics = []          # dicts, see add_fic()
            self.entra_apps = set()       # (tenant lower-case, client_id) registered without a FIC
            self.gcp_providers = {}       # audience -> provider dict
            self.gcp_service_accounts = {}  # email -> {"email", "members"}
            self.gcp_tokens = {}          # access token -> what it stands for (federated or service account)
            self.oidc_cache = {}          # (service, issuer) -> (monotonic time, JWKS dict)

    def now(self):
        return time.time() + self.config["clock_skew"]

    def set_config(self, updates):
        if not isinstance(updates, dict):
            raise ValueError("config is a JSON object")
        types = {"creds_lifetime": int, "max_token_lifetime": int, "clock_skew": (int, float),
                 "container_token": str, "imds_role": str, "container_role": str, "account": str,
                 "max_skew": int, "max_payload_bytes": int, "entra_token_lifetime": int,
                 "entra_refresh_in": (int, type(None)), "entra_numbers_as_strings": bool,
                 "entra_propagation_delay": (int, float), "entra_clock_tolerance": int,
                 "gcp_token_lifetime": int, "gcp_max_lifetime": int, "issuer_cache_seconds": (int, float)}
        for k, v in updates.items():
            if k not in types:
                raise ValueError(f"unknown config key {k!r}; known: {', '.join(sorted(types))}")
            if not isinstance(v, types[k]) or (isinstance(v, bool) and types[k] is not bool):
                raise ValueError(f"config key {k!r} has the wrong type")
        for k in ("entra_token_lifetime", "gcp_token_lifetime", "gcp_max_lifetime"):
            if k in updates and updates[k] < 1:
                raise ValueError(f"{k} must be at least 1")
        if updates.get("entra_refresh_in") is not None and updates["entra_refresh_in"] < 1:
            raise ValueError("entra_refresh_in must be at least 1 (or null for none)")
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
        note_secret(c.secret, c.token)
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
        note_secret(secret, token)
        with self.lock:
            self.creds[akid] = c
        d = c.public()
        d.update({"secret_access_key": secret, "session_token": token})
        return d

    def lookup_creds(self, akid):
        with self.lock:
            return self.creds.get(akid)

    # -- Entra ID applications and federated identity credentials -----------

    def add_fic(self, spec):
        """Register a federated identity credential on (tenant, client_id).
        Entra's own limits apply: 20 per application, issuer + subject unique."""
        spec = _object(spec, "a federated identity credential",
                       ("tenant", "client_id", "issuer", "subject", "audience", "name"))
        tenant = _text(spec, "tenant", 256)
        client_id = _text(spec, "client_id", 256)
        issuer = _text(spec, "issuer", 600, self.issuer_url)
        subject = _text(spec, "subject", 600)
        audience = _text(spec, "audience", 600, ENTRA_FIC_AUDIENCE)
        for name, value in (("tenant", tenant), ("client_id", client_id), ("issuer", issuer), ("audience", audience)):
            if re.search(r"\s", value):
                raise ValueError(f"{name} must not contain white space")
        with self.lock:
            same = self.entra_fics_of(tenant, client_id)
            if len(same) >= 20:
                raise ValueError("an application takes at most 20 federated identity credentials")
            for f in same:
                if f["issuer"] == issuer and f["subject"] == subject:
                    raise ValueError(f"FIC {f['id']} of this application already has this issuer and subject "
                                     "(Entra requires the pair to be unique)")
            fic_id = next(_fic_ids)
            fic = {"id": fic_id, "name": spec.get("name") or f"fic-{fic_id}", "tenant": tenant,
                   "client_id": client_id, "issuer": issuer, "subject": subject, "audience": audience,
                   "created": self.now()}
            self.entra_fics.append(fic)
            return dict(fic)

    def add_entra_app(self, spec):
        """An application (or managed identity) with no FIC yet: known to its tenant."""
        spec = _object(spec, "an application", ("tenant", "client_id"))
        tenant = _text(spec, "tenant", 256)
        client_id = _text(spec, "client_id", 256)
        with self.lock:
            self.entra_apps.add((tenant.lower(), client_id.lower()))
        return {"tenant": tenant, "client_id": client_id}

    def clear_fics(self, fic_id=None, tenant=None, client_id=None):
        with self.lock:
            n = len(self.entra_fics)
            self.entra_fics = [f for f in self.entra_fics
                               if not ((fic_id is None or f["id"] == fic_id) and
                                       (tenant is None or f["tenant"].lower() == tenant.lower()) and
                                       (client_id is None or f["client_id"].lower() == client_id.lower()))]
            if fic_id is None and tenant is None and client_id is None:
                self.entra_apps = set()
            return n - len(self.entra_fics)

    def entra_fics_of(self, tenant, client_id):
        with self.lock:
            return [dict(f) for f in self.entra_fics
                    if f["tenant"].lower() == tenant.lower() and f["client_id"].lower() == client_id.lower()]

    def entra_tenant_known(self, tenant):
        t = tenant.lower()
        with self.lock:
            return any(f["tenant"].lower() == t for f in self.entra_fics) or any(a[0] == t for a in self.entra_apps)

    def entra_app_known(self, tenant, client_id):
        with self.lock:
            return bool(self.entra_fics_of(tenant, client_id)) or \
                (tenant.lower(), client_id.lower()) in self.entra_apps

    # -- Google workload identity providers and service accounts ----------------

    def add_gcp_provider(self, spec):
        spec = _object(spec, "a workload identity provider", ("audience", "issuer", "allowed_audiences", "disabled"))
        audience = _text(spec, "audience", 1000)
        m = GCP_PROVIDER_RE.fullmatch(audience)
        if m is None:
            raise ValueError("audience must be //iam.googleapis.com/projects/N/locations/global/"
                             "workloadIdentityPools/POOL/providers/PROVIDER (or a workforce pool provider)")
        issuer = _text(spec, "issuer", 2000, self.issuer_url)
        allowed = spec.get("allowed_audiences", [])
        if not isinstance(allowed, list) or not all(isinstance(a, str) and a for a in allowed) or len(allowed) > 10:
            raise ValueError("allowed_audiences must be a list of at most 10 non-empty strings")
        disabled = spec.get("disabled", False)
        if not isinstance(disabled, bool):
            raise ValueError("disabled must be true or false")
        pool = m.group(1)
        # Without allowed audiences Google accepts the provider's own resource
        # name, with or without the https: prefix.
        effective = list(allowed) or ["https:" + audience, audience]
        p = {"audience": audience, "issuer": issuer, "allowed_audiences": list(allowed),
             "effective_audiences": effective, "disabled": disabled, "pool": pool,
             "principal_prefix": f"principal://iam.googleapis.com/{pool}/subject/",
             "principal_set": f"principalSet://iam.googleapis.com/{pool}/*"}
        with self.lock:
            self.gcp_providers[audience] = p
        return dict(p)

    def add_gcp_service_account(self, spec):
        spec = _object(spec, "a service account", ("email", "members"))
        email = _text(spec, "email", 320)
        if not re.fullmatch(r"[^@/\s:]+@[^@/\s:]+", email):
            raise ValueError("email must look like NAME@PROJECT.iam.gserviceaccount.com")
        members = spec.get("members", [])
        if not isinstance(members, list) or not all(isinstance(x, str) for x in members):
            raise ValueError("members must be a list of strings")
        for x in members:
            if not (x.startswith("principal://iam.googleapis.com/") or
                    x.startswith("principalSet://iam.googleapis.com/")):
                raise ValueError(f"member {x[:100]!r} is neither principal://iam.googleapis.com/... nor "
                                 "principalSet://iam.googleapis.com/...")
        sa = {"email": email, "members": list(members)}
        with self.lock:
            self.gcp_service_accounts[email] = sa
        return dict(sa)

    def issue_gcp_token(self, prefix, info, lifetime):
        token = prefix + secrets.token_urlsafe(600)
        note_secret(token)
        now = self.now()
        info = dict(info, expires=now + lifetime, fingerprint=fingerprint(token))
        with self.lock:
            for t in [t for t, i in self.gcp_tokens.items() if i["expires"] < now - 3600]:
                del self.gcp_tokens[t]
            self.gcp_tokens[token] = info
        return token, info

    def lookup_gcp_token(self, token):
        with self.lock:
            info = self.gcp_tokens.get(token)
            return dict(info) if info else None

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
            if entry.pop("_generation", self.generation) != self.generation:
                return
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)
            if len(self.log) > MAX_LOG_ENTRIES:
                del self.log[:len(self.log) - MAX_LOG_ENTRIES]
            svc = self.stats.setdefault(entry["service"], {})
            act = svc.setdefault(entry.get("action") or "-", {})
            act[entry["verdict"]] = act.get(entry["verdict"], 0) + 1


_fic_ids = iter(range(1, 1 << 62))


def _object(spec, what, keys):
    if not isinstance(spec, dict):
        raise ValueError(f"{what} is a JSON object")
    unknown = sorted(set(spec) - set(keys))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in {what}; known: {', '.join(keys)}")
    return spec


def _text(spec, key, limit, default=None):
    value = spec.get(key)
    if value is None:
        value = default
    if value is None:
        raise ValueError(f"{key} is required")
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{key} must be a non-empty string of at most {limit} characters")
    return value


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
        self.detail = None                        # which check decided the verdict, when useful

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

    def who(self, req):
        """A few words naming the caller for the stderr line."""
        return ""


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
            note_secret(token)
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

    def who(self, req):
        auth = req.header("authorization")
        if auth and "Credential=" in auth:
            return " akid=" + auth.split("Credential=", 1)[1].split("/", 1)[0][:32]
        return ""

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


# -- JWT verification against an issuer's published keys -------------------

def jwt_decode(token):
    """Compact JWS -> (header, claims, signing input, signature); ValueError
    for anything else. Never verifies."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_ASSERTION:
        raise ValueError("empty or too long")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise ValueError("not three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"undecodable: {type(e).__name__}")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header or claims not a JSON object")
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), sig


def jwk_verify(jwk, alg, data, sig):
    """True when `sig` over `data` verifies with the public JWK for `alg`
    (RS256, ES256, ES384); False for a mismatch or a key of the wrong kind."""
    def num(name):
        return int.from_bytes(b64url_decode(jwk[name]), "big")
    if jwk.get("alg") not in (None, alg):
        return False
    try:
        if alg == "RS256" and jwk.get("kty") == "RSA":
            rsa.RSAPublicNumbers(num("e"), num("n")).public_key().verify(sig, data, padding.PKCS1v15(),
                                                                        hashes.SHA256())
            return True
        curves = {"ES256": ("P-256", ec.SECP256R1(), hashes.SHA256(), 32),
                  "ES384": ("P-384", ec.SECP384R1(), hashes.SHA384(), 48)}
        if alg in curves and jwk.get("kty") == "EC" and jwk.get("crv") == curves[alg][0]:
            crv, curve, digest, size = curves[alg]
            if len(sig) != 2 * size:
                return False
            pub = ec.EllipticCurvePublicNumbers(num("x"), num("y"), curve).public_key()
            pub.verify(encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")),
                       data, ec.ECDSA(digest))
            return True
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return False


class OidcError(Exception):
    """kind: "fetch" (discovery or JWKS unreachable or invalid), "nokey" (no
    key with the token's kid), "signature" (the key does not verify it)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def _loopback_https(url):
    """The fakes fetch only from this machine: https on localhost / 127.x / ::1."""
    try:
        u = urllib.parse.urlsplit(url)
        host = u.hostname or ""
        if u.scheme != "https" or u.username or u.password:
            return False
        if host == "localhost":
            return True
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OidcKeys:
    """What Entra ID and Google STS do with a federated token's issuer: fetch
    <iss>/.well-known/openid-configuration over HTTPS (trusting only the
    fake CA, loopback only), then its jwks_uri; cache both per issuer for
    issuer_cache_seconds (each fake service its own cache, as they are
    separate clouds); refetch once when the token's kid is unknown."""

    def __init__(self, state):
        self.state = state

    def _get_json(self, url, who):
        if not _loopback_https(url):
            raise OidcError("fetch", f"{url[:200]} is not an https URL on this machine (the fake fetches only "
                                     "from loopback)")
        ctx = ssl.create_default_context(cafile=self.state.keys.paths["ca_file"])
        req = urllib.request.Request(url, headers={"User-Agent": f"fakecloud-{who}/1", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                body = r.read(MAX_OIDC_DOCUMENT + 1)
        except urllib.error.HTTPError as e:
            raise OidcError("fetch", f"GET {url[:200]} answered HTTP {e.code}")
        except (urllib.error.URLError, OSError, ssl.SSLError, http.client.HTTPException) as e:
            raise OidcError("fetch", f"GET {url[:200]} failed: {type(e).__name__}: {str(e)[:200]}")
        if len(body) > MAX_OIDC_DOCUMENT:
            raise OidcError("fetch", f"GET {url[:200]}: document larger than {MAX_OIDC_DOCUMENT} bytes")
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise OidcError("fetch", f"GET {url[:200]}: not JSON")
        if not isinstance(doc, dict):
            raise OidcError("fetch", f"GET {url[:200]}: not a JSON object")
        return doc

    def jwks(self, issuer, who, refresh=False):
        st = self.state
        with st.lock:
            cached = st.oidc_cache.get((who, issuer))
        if cached and not refresh and time.monotonic() - cached[0] < st.config["issuer_cache_seconds"]:
            return cached[1]
        conf = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", who)
        if conf.get("issuer") != issuer:
            raise OidcError("fetch", f"the discovery document names issuer {str(conf.get('issuer'))[:200]!r}, "
                                     f"not {issuer[:200]!r}")
        jwks_uri = conf.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise OidcError("fetch", "the discovery document has no jwks_uri")
        jwks = self._get_json(jwks_uri, who)
        if not isinstance(jwks.get("keys"), list):
            raise OidcError("fetch", "the JWKS has no keys array")
        with st.lock:
            st.oidc_cache[(who, issuer)] = (time.monotonic(), jwks)
        return jwks

    def verify(self, issuer, header, data, sig, who):
        """Verify with the issuer's key named by the header's kid (the only
        key, when the token names none); raises OidcError."""
        alg, kid = header.get("alg"), header.get("kid")
        for attempt in (False, True):
            keys = [k for k in self.jwks(issuer, who, refresh=attempt)["keys"] if isinstance(k, dict)]
            if kid is not None:
                keys = [k for k in keys if k.get("kid") == kid]
            if len(keys) == 1:
                break
        else:
            raise OidcError("nokey", f"no single key with kid {str(kid)[:100]!r} in the issuer's JWKS")
        if not jwk_verify(keys[0], alg, data, sig):
            raise OidcError("signature", f"the signature does not verify with key {str(kid)[:100]!r}")


# -- Microsoft Entra ID --------------------------------------------------------

# AADSTS code -> (HTTP status, OAuth error, description). Placeholders are
# filled from the request; those not known print as "<unknown>".
ENTRA_ERRORS = {
    70021: (400, "invalid_request", "No matching federated identity record found for presented assertion. "
                                    "Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: "
                                    "'{aud}'. " + ENTRA_WIF_DOC),
    700211: (401, "invalid_client", "No matching federated identity record found for presented assertion issuer "
                                    "'{iss}'. Please check your federated identity credential Subject, Audience "
                                    "and Issuer against the presented assertion. " + ENTRA_WIF_DOC),
    700212: (401, "invalid_client", "No matching federated identity record found for presented assertion audience "
                                    "'{aud}'. Please check your federated identity credential Subject, Audience "
                                    "and Issuer against the presented assertion. " + ENTRA_WIF_DOC),
    700213: (401, "invalid_client", "No matching federated identity record found for presented assertion subject "
                                    "'{sub}'. Please check your federated identity credential Subject, Audience "
                                    "and Issuer against the presented assertion. " + ENTRA_WIF_DOC),
    7002137: (401, "invalid_client", "No matching federated identity record found for presented assertion subject "
                                     "'{sub}'. Please note that the matching is done using a case-sensitive "
                                     "comparison. Check your federated identity credential Subject, Audience and "
                                     "Issuer against the presented assertion. " + ENTRA_WIF_DOC),
    700024: (401, "invalid_client", "Client assertion is not within its valid time range. Current time: {now}, "
                                    "assertion valid from {nbf}, expiry time of assertion {exp}. Review the "
                                    "documentation at https://learn.microsoft.com/entra/identity-platform/"
                                    "certificate-credentials ."),
    700027: (401, "invalid_client", "Client assertion failed signature validation. [Reason - {reason}, Key id "
                                    "used by client: '{kid}', issuer: '{iss}'.]"),
    50027: (400, "invalid_request", "JWT token is invalid or malformed."),
    50166: (400, "invalid_request", "Request to External OIDC endpoint failed."),
    90002: (400, "invalid_request", "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                                    "and are signing into the correct cloud. Check with your subscription "
                                    "administrator, this may happen if there are no active subscriptions for the "
                                    "tenant."),
    700016: (400, "unauthorized_client", "Application with identifier '{client}' was not found in the directory "
                                         "'{tenant}'. This can happen if the application has not been installed by "
                                         "the administrator of the tenant or consented to by any user in the "
                                         "tenant. You may have sent your authentication request to the wrong "
                                         "tenant."),
    900144: (400, "invalid_request", "The request body must contain the following parameter: '{param}'."),
    7000218: (401, "invalid_client", "The request body must contain the following parameter: 'client_assertion' "
                                     "or 'client_secret'."),
    7000215: (401, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in the request is "
                                     "the client secret value, not the client secret ID, for a secret added to app "
                                     "'{client}'."),
    70003: (400, "unsupported_grant_type", "The app requested an unsupported grant type '{grant_type}'."),
    70011: (400, "invalid_scope", "The provided value for the input parameter 'scope' is not valid. The scope "
                                  "{scope} is not valid."),
    700022: (400, "invalid_scope", "The provided value for the input parameter scope is not valid because it "
                                   "contains more than one resource. Scope {scope} is not valid."),
    900561: (400, "invalid_request", "The endpoint only accepts POST requests. Received a {method} request."),
    700229: (400, "invalid_client", "ForbiddenTokenType: For the federated identity credential flow only app-only "
                                    "tokens are accepted from this issuer."),
    500011: (400, "invalid_resource", "The resource principal named {resource} was not found in the tenant named "
                                      "{tenant}."),
    50196: (400, "invalid_grant", "The server terminated an operation because it encountered a client request "
                                  "loop. Please contact your app vendor."),
    90055: (429, "temporarily_unavailable", "There are too many incoming requests. Please try again later."),
    90100: (400, "invalid_request", "Invalid request parameter."),
    90024: (503, "temporarily_unavailable", "A transient error has occurred. Please try again."),
    50033: (500, "temporarily_unavailable", "A transient error has occurred. Please try again."),
}
ENTRA_ERROR_BY_STATUS = {400: "invalid_request", 401: "invalid_client", 403: "unauthorized_client",
                         404: "invalid_request", 429: "temporarily_unavailable"}
ENTRA_CODE_BY_STATUS = {400: 90100, 401: 7000218, 429: 90055, 503: 90024}


class _Unknown(dict):
    def __missing__(self, key):
        return "<unknown>"


def entra_time(epoch):
    """2025-08-29T05:47:32.1501147Z, as in AADSTS700024 (clamped to years 1970-9999)."""
    epoch = min(max(epoch, 0), 253402300799)
    whole = int(epoch // 1)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%07dZ" % int((epoch - whole) * 1e7)


class EntraError(Exception):
    def __init__(self, code, detail=None, **values):
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.values = values


class EntraService(Service):
    """POST /<tenant>/oauth2/v2.0/token (client credentials with a federated
    client assertion), GET /<tenant>/v2.0/.well-known/openid-configuration,
    GET /<tenant|common>/discovery/v2.0/keys."""

    name = "entra"
    content_type = "application/json; charset=utf-8"
    ROUTES = (("token", re.compile(r"/([^/]{1,256})/oauth2/v2\.0/token")),
              ("openid-configuration", re.compile(r"/([^/]{1,256})/v2\.0/\.well-known/openid-configuration")),
              ("keys", re.compile(r"/([^/]{1,256})/discovery/v2\.0/keys")))

    def __init__(self, state, oidc):
        super().__init__(state)
        self.oidc = oidc

    def prepare(self, req):
        req.action, req.tenant = "other", None
        for action, rx in self.ROUTES:
            m = rx.fullmatch(req.path)
            if m:
                req.action, req.tenant = action, urllib.parse.unquote(m.group(1))
                break
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if req.method == "POST" and ctype == "application/x-www-form-urlencoded":
            req.params = parse_form(req.body)

    def secret_headers(self):
        return ("authorization",)

    def who(self, req):
        parts = []
        if req.tenant:
            parts.append(f" tenant={req.tenant[:64]}")
        if req.params.get("client_id"):
            parts.append(f" client_id={req.params['client_id'][:64]}")
        return "".join(parts)

    # -- error bodies ---------------------------------------------------------

    def reply_error(self, req, code, status=None, error=None, message=None, values=None):
        try:
            code = int(str(code).upper().removeprefix("AADSTS"))
        except ValueError:
            code = 90100
        d_status, d_error, template = ENTRA_ERRORS.get(code, (None, None, "fakecloud: modelled error {code}."))
        status = int(status or d_status or 400)
        if error is None:
            error = d_error or ENTRA_ERROR_BY_STATUS.get(status, "temporarily_unavailable" if status >= 500
                                                         else "invalid_request")
        v = _Unknown(values or {})
        v.setdefault("tenant", getattr(req, "tenant", None) or "<unknown>")
        v.setdefault("client", req.params.get("client_id") or "<unknown>")
        v.setdefault("scope", req.params.get("scope") or "<unknown>")
        v.setdefault("method", req.method)
        v["code"] = code
        text = message if message is not None else template.format_map(v)
        now = self.state.now()
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(int(now)))
        trace_id = str(uuid.uuid4())
        correlation_id = self.correlation_id(req)
        body = {"error": error,
                "error_description": f"AADSTS{code}: {text} Trace ID: {trace_id} Correlation ID: {correlation_id} "
                                     f"Timestamp: {stamp}",
                "error_codes": [code], "timestamp": stamp, "trace_id": trace_id, "correlation_id": correlation_id,
                "error_uri": f"{self.state.urls.get('entra', 'https://login.microsoftonline.com')}/error?code={code}"}
        return Reply(status, json.dumps(body, separators=(",", ":")), self.content_type,
                     self.common_headers(req, trace_id), verdict=f"AADSTS{code}")

    def correlation_id(self, req):
        """Entra echoes the client's client-request-id as the correlation id."""
        q = urllib.parse.parse_qs(req.query)
        for value in (q.get("client-request-id", [None])[0], req.params.get("client-request-id"),
                      req.header("client-request-id"), req.header("x-ms-client-request-id")):
            if value and re.fullmatch(r"[0-9A-Fa-f-]{36}", value):
                return value.lower()
        return str(uuid.uuid4())

    def common_headers(self, req, trace_id=None):
        return [("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache"),
                ("x-ms-request-id", trace_id or str(uuid.uuid4())),
                ("client-request-id", self.correlation_id(req))]

    def error(self, req, status, code=None, message=None):
        code = code or ENTRA_CODE_BY_STATUS.get(status, 50033 if status >= 500 else 90100)
        return self.reply_error(req, code, status, message=message)

    def throttle(self, req, fault):
        r = self.reply_error(req, fault.get("code", 90055), int(fault.get("status", 429)), message=fault.get("message"))
        r.headers.append(("Retry-After", str(fault.get("retry_after", 1))))
        return r

    def modeled_error(self, req, fault):
        return self.reply_error(req, fault.get("code"), fault.get("status"), fault.get("error"), fault.get("message"))

    def garbage(self, req):
        return b'{"token_type":"Bearer","expires_in":35\x00\xff,"access_token":"eyJ'

    def oversize_prefix(self, req):
        return b'{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ'

    # -- answers --------------------------------------------------------------

    def handle(self, req):
        try:
            if req.action == "other":
                req.detail = "path"
                return Reply(404, json.dumps({"error": "not_found", "error_description": "fakecloud Entra ID: "
                                              "unknown path " + req.path[:200]}), self.content_type,
                             verdict="NotFound")
            if req.action == "token":
                return self.token(req)
            if req.method != "GET":
                raise EntraError(900561, "method")
            if req.action == "keys":
                return self.keys(req)
            return self.openid_configuration(req)
        except EntraError as e:
            req.detail = req.detail or e.detail
            return self.reply_error(req, e.code, values=e.values)

    def openid_configuration(self, req):
        t = req.tenant
        if not self.state.entra_tenant_known(t):
            req.detail = "tenant"
            return self.reply_error(req, 90002, error="invalid_tenant")
        base = self.state.urls.get("entra", "https://localhost")
        doc = {"token_endpoint": f"{base}/{t}/oauth2/v2.0/token",
               "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                         "client_secret_basic"],
               "jwks_uri": f"{base}/{t}/discovery/v2.0/keys",
               "response_modes_supported": ["query", "fragment", "form_post"],
               "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
               "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
               "scopes_supported": ["openid", "profile", "email", "offline_access"],
               "issuer": f"{base}/{t}/v2.0", "request_uri_parameter_supported": False,
               "userinfo_endpoint": f"{base}/oidc/userinfo",
               "authorization_endpoint": f"{base}/{t}/oauth2/v2.0/authorize",
               "device_authorization_endpoint": f"{base}/{t}/oauth2/v2.0/devicecode",
               "http_logout_supported": True, "frontchannel_logout_supported": True,
               "end_session_endpoint": f"{base}/{t}/oauth2/v2.0/logout",
               "claims_supported": ["sub", "iss", "aud", "exp", "iat"],
               "kerberos_endpoint": f"{base}/{t}/kerberos", "tenant_region_scope": "EU",
               "cloud_instance_name": "microsoftonline.com", "cloud_graph_host_name": "graph.windows.net",
               "msgraph_host": "graph.microsoft.com", "rbac_url": "https://pas.windows.net"}
        return Reply(200, json.dumps(doc, indent=2), self.content_type, self.common_headers(req))

    def keys(self, req):
        jwk = _rsa_jwk(self.state.keys.jwt_rsa, ENTRA_KID)
        jwk.pop("alg")
        jwk["issuer"] = "https://login.microsoftonline.com/{tenantid}/v2.0"
        return Reply(200, json.dumps({"keys": [jwk]}), self.content_type, self.common_headers(req))

    def token(self, req):
        st = self.state
        p = req.params
        if req.method != "POST":
            raise EntraError(900561, "method")
        if not st.entra_tenant_known(req.tenant):
            raise EntraError(90002, "tenant")
        grant_type = p.get("grant_type")
        if not grant_type:
            raise EntraError(900144, "grant_type", param="grant_type")
        if grant_type != "client_credentials":
            raise EntraError(70003, "grant_type", grant_type=grant_type[:100])
        client_id = p.get("client_id")
        if not client_id:
            raise EntraError(900144, "client_id", param="client_id")
        scope = p.get("scope")
        if not scope:
            raise EntraError(900144, "scope", param="scope")
        # An unknown assertion type is no credential at all, as for Entra.
        if "client_secret" not in p and (not p.get("client_assertion") or
                                         p.get("client_assertion_type") != ENTRA_ASSERTION_TYPE):
            raise EntraError(7000218, "client_assertion")
        if not st.entra_app_known(req.tenant, client_id):
            raise EntraError(700016, "client_id")
        scopes = scope.split()
        resources = [s_ for s_ in scopes if s_.endswith("/.default")]
        if len(resources) > 1:
            raise EntraError(700022, "scope")
        if len(scopes) != 1 or len(resources) != 1 or scopes[0] == "/.default":
            raise EntraError(70011, "scope")
        if "client_secret" in p:
            raise EntraError(7000215, "client_secret")   # no secrets in this fake: assertions only
        fic, claims = self.check_assertion(req, p["client_assertion"], client_id)
        return self.issue(req, client_id, resources[0][:-len("/.default")], fic, claims)

    def check_assertion(self, req, assertion, client_id):
        """Entra's checks, in this order: a JWT at all (50027), RS256 (700027),
        the issuer against the application's FICs (70021 / 700211) before any
        network fetch, the signature with the issuer's published keys (50166
        when they cannot be fetched, 700027), the time window (700024), then
        subject (700213) and audience (700212). A matching FIC younger than
        entra_propagation_delay answers 70021."""
        st = self.state
        try:
            header, claims, data, sig = jwt_decode(assertion)
        except ValueError:
            raise EntraError(50027, "malformed")
        iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
        auds = [a for a in (aud if isinstance(aud, list) else [aud]) if isinstance(a, str)]
        values = {"iss": iss, "sub": sub, "aud": ", ".join(auds) if auds else aud, "kid": header.get("kid")}
        if header.get("alg") != "RS256":
            raise EntraError(700027, "alg", reason=f"The signature algorithm '{str(header.get('alg'))[:20]}' is "
                                                   "not supported; only RS256 is", **values)
        if not isinstance(iss, str) or not isinstance(sub, str) or not auds:
            raise EntraError(50027, "claims")
        all_fics = st.entra_fics_of(req.tenant, client_id)
        now = st.now()
        mature = [f for f in all_fics if now - f["created"] >= st.config["entra_propagation_delay"]]

        def matches(f):
            return f["issuer"] == iss and f["subject"] == sub and f["audience"] in auds
        if not any(matches(f) for f in mature) and any(matches(f) for f in all_fics):
            raise EntraError(70021, "propagation", **values)
        if not any(f["issuer"] == iss for f in mature):
            if any(f["subject"] == sub or f["audience"] in auds for f in mature):
                raise EntraError(700211, "issuer", **values)
            raise EntraError(70021, "no_match", **values)
        try:
            self.oidc.verify(iss, header, data, sig, "entra")
        except OidcError as e:
            log_line(f"entra: issuer {iss[:200]}: {e.message}")
            if e.kind == "fetch":
                raise EntraError(50166, "oidc_fetch", **values)
            reason = ("The key was not found." if e.kind == "nokey" else
                      "The provided signature value did not match the expected signature value.")
            raise EntraError(700027, "signature", reason=reason, **values)
        tol = st.config["entra_clock_tolerance"]
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        start = nbf if _is_number(nbf) else 0
        if (not _is_number(exp) or now > exp + tol or now < start - tol or
                (_is_number(iat) and now < iat - tol)):
            raise EntraError(700024, "time", now=entra_time(now), nbf=entra_time(start),
                             exp=entra_time(exp) if _is_number(exp) else "<none>", **values)
        with_iss = [f for f in mature if f["issuer"] == iss]
        with_sub = [f for f in with_iss if f["subject"] == sub]
        if not with_sub:
            raise EntraError(700213, "subject", **values)
        full = [f for f in with_sub if f["audience"] in auds]
        if not full:
            raise EntraError(700212, "audience", **values)
        return full[0], claims

    def issue(self, req, client_id, resource, fic, assertion_claims):
        st = self.state
        now = int(st.now())
        lifetime = st.config["entra_token_lifetime"]
        refresh_in = st.config["entra_refresh_in"]
        tenant = req.tenant
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fakecloud:{tenant.lower()}:{client_id.lower()}"))
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{tenant}/", "iat": now, "nbf": now,
                  "exp": now + lifetime, "appid": client_id, "appidacr": "2", "idtyp": "app", "oid": oid,
                  "sub": oid, "tid": tenant, "uti": b64url(secrets.token_bytes(16)), "ver": "1.0",
                  "xms_fic": fic["id"]}
        token = st.keys.sign_jwt({"typ": "JWT", "alg": "RS256", "kid": ENTRA_KID}, claims, "RS256")
        num = str if st.config["entra_numbers_as_strings"] else int
        body = {"token_type": "Bearer", "expires_in": num(lifetime), "ext_expires_in": num(lifetime)}
        if refresh_in is not None:
            body["refresh_in"] = num(refresh_in)
        body["access_token"] = token
        req.issued = {"token_fingerprint": fingerprint(token), "tenant": tenant, "client_id": client_id,
                      "resource": resource, "expires_in": lifetime, "refresh_in": refresh_in, "fic": fic["id"],
                      "assertion_sub": assertion_claims.get("sub"), "assertion_iss": assertion_claims.get("iss")}
        return Reply(200, json.dumps(body, separators=(",", ":")), self.content_type, self.common_headers(req))


def _is_number(v):
    """A JSON number that is finite (Python's json also reads Infinity and NaN)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# -- Google STS (workload identity federation token exchange) -----------------

GCP_STS_STATUS_ERRORS = {400: "invalid_request", 401: "invalid_client", 403: "access_denied", 404: "invalid_request",
                         429: "rate_limit_exceeded", 500: "server_error", 503: "temporarily_unavailable"}
GCP_STS_ERROR_STATUS = {"server_error": 500, "temporarily_unavailable": 503, "rate_limit_exceeded": 429,
                        "invalid_client": 401, "access_denied": 403}


class GcpError(Exception):
    def __init__(self, code, message, detail, status=None):
        super().__init__(code)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status


class GcpStsService(Service):
    """POST /v1/token: RFC 8693 token exchange of an OIDC JWT for a federated
    access token, as sts.googleapis.com does for workload identity pools."""

    name = "gcp_sts"
    content_type = "application/json; charset=utf-8"

    def __init__(self, state, oidc):
        super().__init__(state)
        self.oidc = oidc

    def prepare(self, req):
        req.action = "token" if req.path == "/v1/token" else "other"
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if req.method == "POST" and ctype == "application/x-www-form-urlencoded":
            req.params = parse_form(req.body)

    def secret_headers(self):
        return ("authorization",)

    def who(self, req):
        aud = req.params.get("audience")
        return f" audience={aud[:160]}" if aud else ""

    def reply_error(self, code, message, status=None):
        status = int(status or GCP_STS_ERROR_STATUS.get(code, 400))
        return Reply(status, json.dumps({"error": code, "error_description": message}, indent=2) + "\n",
                     self.content_type, verdict=code)

    def error(self, req, status, code=None, message=None):
        code = code or GCP_STS_STATUS_ERRORS.get(status, "server_error" if status >= 500 else "invalid_request")
        return self.reply_error(code, message or HTTP_REASONS.get(status, "Error"), status)

    def throttle(self, req, fault):
        r = self.reply_error(fault.get("code", "rate_limit_exceeded"),
                             fault.get("message", "Quota exceeded for quota metric 'Token exchange requests'."),
                             int(fault.get("status", 429)))
        r.headers.append(("Retry-After", str(fault.get("retry_after", 1))))
        return r

    def modeled_error(self, req, fault):
        code = fault.get("code")
        return self.reply_error(code, fault.get("message", f"fakecloud: modelled {code}"), fault.get("status"))

    def garbage(self, req):
        return b'{\n  "access_token": "ya29.\x00\xff\n'

    def oversize_prefix(self, req):
        return b'{\n  "access_token": "ya29.d.'

    def handle(self, req):
        try:
            if req.action != "token":
                raise GcpError("not_found", f"fakecloud Google STS: unknown path {req.path[:200]}", "path", 404)
            if req.method != "POST":
                raise GcpError("invalid_request", f"The {req.method} method is not allowed on /v1/token.", "method",
                               405)
            return self.exchange(req)
        except GcpError as e:
            req.detail = e.detail
            return self.reply_error(e.code, e.message, e.status)

    def exchange(self, req):
        st = self.state
        p = req.params
        grant_type = p.get("grant_type")
        if not grant_type:
            raise GcpError("invalid_request", 'Invalid value for "grant_type". This value is required.', "grant_type")
        if grant_type != GCP_GRANT_TYPE:
            raise GcpError("unsupported_grant_type", f"Invalid grant_type: {grant_type[:100]}. Expected "
                                                     f"{GCP_GRANT_TYPE}.", "grant_type")
        requested = p.get("requested_token_type")
        if requested != GCP_ACCESS_TOKEN_TYPE:
            raise GcpError("invalid_request", 'Invalid value for "requested_token_type". Expected '
                                              f"{GCP_ACCESS_TOKEN_TYPE}.", "requested_token_type")
        subject_type = p.get("subject_token_type")
        if subject_type not in GCP_SUBJECT_TOKEN_TYPES:
            raise GcpError("invalid_request", 'Invalid value for "subject_token_type". Supported values are '
                                              "urn:ietf:params:oauth:token-type:jwt, urn:ietf:params:oauth:token-"
                                              "type:id_token, urn:ietf:params:oauth:token-type:saml2, "
                                              "urn:ietf:params:aws:token-type:aws4_request.", "subject_token_type")
        token = p.get("subject_token")
        if not token:
            raise GcpError("invalid_request", 'Invalid value for "subject_token". This value is required.',
                           "subject_token")
        audience = p.get("audience", "")
        if GCP_PROVIDER_RE.fullmatch(audience) is None:
            raise GcpError("invalid_request", 'Invalid value for "audience". This value should be the full resource '
                                              "name of the Identity Provider. See https://cloud.google.com/iam/docs/"
                                              "reference/sts/rest/v1/TopLevel/token for the list of possible "
                                              "formats.", "audience")
        with st.lock:
            provider = st.gcp_providers.get(audience)
            provider = dict(provider) if provider else None
        if provider is None or provider["disabled"]:
            raise GcpError("invalid_target", 'The target service indicated by the "audience" parameters is invalid. '
                                             "This might either be because the pool or provider is disabled or "
                                             "deleted or because it doesn't exist.", "provider")
        claims = self.check_token(token, provider)
        lifetime = st.config["gcp_token_lifetime"]
        sub = claims["sub"]
        principal = provider["principal_prefix"] + sub
        access, info = st.issue_gcp_token("ya29.d.", {"kind": "federated", "principal": principal, "subject": sub,
                                                      "pool": provider["pool"], "audience": audience,
                                                      "scope": p.get("scope")}, lifetime)
        req.issued = {"token_fingerprint": info["fingerprint"], "principal": principal, "audience": audience,
                      "expires_in": lifetime, "scope": p.get("scope")}
        body = {"access_token": access, "issued_token_type": GCP_ACCESS_TOKEN_TYPE, "token_type": "Bearer",
                "expires_in": lifetime}
        return Reply(200, json.dumps(body, indent=2) + "\n", self.content_type)

    def check_token(self, token, provider):
        st = self.state
        try:
            header, claims, data, sig = jwt_decode(token)
        except ValueError:
            raise GcpError("invalid_grant", "Unable to parse the ID Token.", "malformed")
        alg = header.get("alg")
        if alg not in ("RS256", "ES256"):
            raise GcpError("invalid_grant", f"The ID Token's signing algorithm {str(alg)[:20]} is not supported. "
                                            "Supported algorithms are RS256 and ES256.", "alg")
        if not isinstance(header.get("kid"), str):
            raise GcpError("invalid_grant", "The ID Token header has no \"kid\".", "kid")
        iss = claims.get("iss")
        if iss != provider["issuer"]:
            raise GcpError("invalid_grant", f"The issuer in ID Token {str(iss)[:300]} does not match the expected "
                                            f"issuer {provider['issuer']}.", "issuer")
        try:
            self.oidc.verify(iss, header, data, sig, "gcp-sts")
        except OidcError as e:
            log_line(f"gcp_sts: issuer {iss[:200]}: {e.message}")
            if e.kind == "fetch":
                raise GcpError("invalid_grant", f"Unable to retrieve the OpenID Connect discovery document or the "
                                                f"JWKS of issuer {iss[:300]}.", "oidc_fetch")
            raise GcpError("invalid_grant", "Invalid ID Token signature. The ID Token was not signed by a key of "
                                            "the issuer's JWKS.", "signature")
        now = st.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not _is_number(iat) or not _is_number(exp):
            raise GcpError("invalid_grant", "The ID Token must have numeric \"iat\" and \"exp\" claims.", "time")
        if iat > now:
            raise GcpError("invalid_grant", f"ID Token issued at {int(iat)} is in the future (current time "
                                            f"{int(now)}).", "iat")
        if exp <= now:
            raise GcpError("invalid_grant", f"The ID Token expired at {int(exp)} (current time {int(now)}).", "exp")
        if exp - iat > 48 * 3600:
            raise GcpError("invalid_grant", f"The ID Token's lifetime ({int(exp - iat)} s from iat to exp) exceeds "
                                            "the maximum of 48 hours.", "lifetime")
        aud = claims.get("aud")
        auds = [a for a in (aud if isinstance(aud, list) else [aud]) if isinstance(a, str)]
        if not any(a in provider["effective_audiences"] for a in auds):
            raise GcpError("invalid_grant", f"The audience in ID Token [{', '.join(auds)[:500]}] does not match the "
                                            "expected audience.", "audience")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise GcpError("invalid_grant", "The ID Token has no \"sub\" claim to map to google.subject.", "subject")
        if len(sub.encode("utf-8")) > 127:
            raise GcpError("invalid_grant", "The size of mapped attribute google.subject exceeds the 127 bytes limit. "
                                            "Either modify your attribute mapping or the incoming assertion to "
                                            "produce a mapped attribute that is less than 127 bytes.", "subject")
        return claims


# -- Google IAM Credentials (service account impersonation) -------------------

GCP_RPC_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                  503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
GCP_RPC_CODE = {v: k for k, v in GCP_RPC_STATUS.items()}
GCP_RPC_MESSAGES = {
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "UNAUTHENTICATED": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                       "or other valid authentication credential. See https://developers.google.com/identity/sign-in/"
                       "web/devconsole-project.",
    "PERMISSION_DENIED": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
    "NOT_FOUND": "Requested entity was not found.",
    "RESOURCE_EXHAUSTED": "Quota exceeded for quota metric 'Generate credentials requests' and limit 'Generate "
                          "credentials requests per minute' of service 'iamcredentials.googleapis.com'.",
    "INTERNAL": "Internal error encountered.",
    "UNAVAILABLE": "The service is currently unavailable.",
    "DEADLINE_EXCEEDED": "The request timed out.",
}
GCP_IAM_PATH = re.compile(r"/v1/projects/([^/]{1,100})/serviceAccounts/([^/:]{1,400}):generateAccessToken")


class GcpIamService(Service):
    """POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken with
    a federated access token from the fake Google STS."""

    name = "gcp_iam"
    content_type = "application/json; charset=UTF-8"

    def prepare(self, req):
        m = GCP_IAM_PATH.fullmatch(req.path)
        req.action = "generateAccessToken" if m else "other"
        req.sa = urllib.parse.unquote(m.group(2)) if m else None

    def secret_headers(self):
        return ("authorization",)

    def who(self, req):
        return f" sa={req.sa[:120]}" if req.sa else ""

    def rpc_error(self, status, rpc_status=None, message=None, details=None, headers=()):
        rpc_status = rpc_status or GCP_RPC_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        err = {"code": status, "message": message or GCP_RPC_MESSAGES.get(rpc_status, HTTP_REASONS.get(status, "")),
               "status": rpc_status}
        if details:
            err["details"] = details
        return Reply(status, json.dumps({"error": err}, indent=2) + "\n", self.content_type, list(headers),
                     verdict=rpc_status)

    def error(self, req, status, code=None, message=None):
        return self.rpc_error(status, code, message)

    def throttle(self, req, fault):
        r = self.rpc_error(int(fault.get("status", 429)), fault.get("code"), fault.get("message"))
        r.headers.append(("Retry-After", str(fault.get("retry_after", 1))))
        return r

    def modeled_error(self, req, fault):
        code = fault.get("code")
        status = int(fault.get("status") or GCP_RPC_CODE.get(code, 400))
        return self.rpc_error(status, code, fault.get("message"))

    def garbage(self, req):
        return b'{\n  "accessToken": "ya29.\x00\xff'

    def oversize_prefix(self, req):
        return b'{\n  "accessToken": "ya29.c.'

    def handle(self, req):
        if req.action != "generateAccessToken":
            req.detail = "path"
            return self.rpc_error(404, message=f"fakecloud IAM Credentials: unknown path {req.path[:200]}")
        if req.method != "POST":
            req.detail = "method"
            return self.rpc_error(405, "METHOD_NOT_ALLOWED", f"The {req.method} method is not allowed.")
        st = self.state
        auth = req.header("authorization") or ""
        m = re.fullmatch(r"Bearer ([!-~]+)", auth.strip())
        info = st.lookup_gcp_token(m.group(1)) if m else None
        if info is None or info["kind"] != "federated" or st.now() >= info["expires"]:
            req.detail = "missing" if not auth else ("expired" if info else "unknown_token")
            return self.rpc_error(401, headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", '
                                                                     'error="invalid_token"')])
        try:
            body = json.loads(req.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            req.detail = "json"
            return self.rpc_error(400, message="Invalid JSON payload received. Unexpected token.")
        if not isinstance(body, dict):
            req.detail = "json"
            return self.rpc_error(400, message="Invalid JSON payload received. Expected an object.")
        unknown = [k for k in body if k not in ("scope", "lifetime", "delegates")]
        if unknown:
            req.detail = "json"
            return self.rpc_error(400, message=f'Invalid JSON payload received. Unknown name "{unknown[0][:60]}": '
                                               "Cannot find field.")
        req.params = {k: json.dumps(v)[:300] for k, v in body.items()}
        scope = body.get("scope")
        if not isinstance(scope, list) or not scope or not all(isinstance(x, str) and x for x in scope):
            req.detail = "scope"
            return self.rpc_error(400, details=[self._violation("scope", "Scope required.")])
        with st.lock:
            sa = st.gcp_service_accounts.get(req.sa)
            sa = dict(sa) if sa else None
        if sa is None:
            req.detail = "service_account"
            return self.rpc_error(404, message=f"Not found; Gaia id not found for email {req.sa[:320]}")
        principal = info["principal"]
        pool_set = f"principalSet://iam.googleapis.com/{info['pool']}/*"
        if principal not in sa["members"] and pool_set not in sa["members"]:
            req.detail = "not_member"
            return self.rpc_error(403, details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                 "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                                                 "metadata": {"permission": "iam.serviceAccounts.getAccessToken"}}])
        lifetime_text = body.get("lifetime", "3600s")
        lm = re.fullmatch(r"([0-9]{1,9})(?:\.[0-9]{1,9})?s", lifetime_text) if isinstance(lifetime_text, str) else None
        max_lifetime = st.config["gcp_max_lifetime"]
        if lm is None:
            req.detail = "lifetime"
            return self.rpc_error(400, message="Invalid value at 'lifetime' (type.googleapis.com/google.protobuf."
                                               "Duration), Field 'lifetime', Illegal duration format; duration must "
                                               "end with 's'")
        lifetime = int(lm.group(1))
        if not 600 <= lifetime <= max_lifetime:
            req.detail = "lifetime"
            return self.rpc_error(400, details=[self._violation(
                "lifetime", f"The lifetime requested ({lifetime}s) must be between 600s and {max_lifetime}s.")])
        token, tinfo = st.issue_gcp_token("ya29.c.", {"kind": "service_account", "email": req.sa,
                                                      "principal": principal, "scope": scope}, lifetime)
        req.issued = {"token_fingerprint": tinfo["fingerprint"], "service_account": req.sa, "principal": principal,
                      "lifetime": lifetime, "scope": scope}
        doc = {"accessToken": token, "expireTime": iso8601(st.now() + lifetime)}
        return Reply(200, json.dumps(doc, indent=2) + "\n", self.content_type)

    @staticmethod
    def _violation(field, description):
        return {"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": description}]}


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
        generation = app.state.generation
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
                 "fault": fault.mode if fault else None, "issued": req.issued, "detail": req.detail,
                 "time": app.state.now(), "_generation": generation}
        # Record before answering: a client that has its answer may read
        # /log or /stats at once and must find this request there.
        app.state.record(entry)
        try:
            who = service.who(req)
        except Exception:
            who = ""
        log_line(f"{service.name}: {req.method} {req.path[:200]} {req.action}{who} -> {reply.status} "
                 f"{reply.verdict}" + (f" ({req.detail})" if req.detail else "") +
                 (f" [fault {fault.mode}]" if fault else ""))
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
        self.oidc = OidcKeys(state)
        self.entra = EntraService(state, self.oidc)
        self.gcp_sts = GcpStsService(state, self.oidc)
        self.gcp_iam = GcpIamService(state)
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

    def tls_select(self, services=("sts", "issuer")):
        """The certificate for the next handshake on a port serving
        `services`: a queued TLS fault of one of them, else the good one."""
        st = self.state
        fault = st.take_fault(services, TLS_MODES)
        if fault is None:
            return self.tls_good
        st.record({"service": fault.service, "action": "tls", "method": "-", "path": "-", "headers": {},
                   "body_params": {}, "body_length": 0, "verdict": fault.mode, "status": None,
                   "fault": fault.mode, "issued": None, "detail": None, "time": st.now()})
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
        if route == ("POST", "/mint/jwt"):
            return self.json_reply(200, self.mint_jwt(self._json(req)))
        if req.path.startswith(("/entra/", "/gcp/")):
            return self._cloud_route(req, q)
        return self.json_reply(404, {"error": f"no route {req.method} {req.path}"})

    def _cloud_route(self, req, q):
        """Entra ID applications and FICs, Google providers and service accounts."""
        st = self.state
        one = lambda name: q.get(name, [None])[0]  # noqa: E731
        route = (req.method, req.path)
        if route == ("POST", "/entra/fic"):
            spec = self._json(req)
            if isinstance(spec, list):
                return self.json_reply(200, [st.add_fic(s_) for s_ in spec])
            return self.json_reply(200, st.add_fic(spec))
        if route == ("GET", "/entra/fic"):
            with st.lock:
                return self.json_reply(200, [dict(f) for f in st.entra_fics])
        if route == ("DELETE", "/entra/fic"):
            fic_id = int(one("id")) if one("id") is not None else None
            return self.json_reply(200, {"ok": True, "cleared": st.clear_fics(fic_id, one("tenant"),
                                                                               one("client_id"))})
        if route == ("POST", "/entra/app"):
            return self.json_reply(200, st.add_entra_app(self._json(req)))
        if route == ("GET", "/entra/app"):
            with st.lock:
                apps = {(f["tenant"].lower(), f["client_id"].lower()) for f in st.entra_fics} | st.entra_apps
            return self.json_reply(200, [{"tenant": t, "client_id": c} for t, c in sorted(apps)])
        if route == ("POST", "/gcp/provider"):
            return self.json_reply(200, st.add_gcp_provider(self._json(req)))
        if route == ("GET", "/gcp/provider"):
            with st.lock:
                return self.json_reply(200, [dict(x) for x in st.gcp_providers.values()])
        if route == ("DELETE", "/gcp/provider"):
            with st.lock:
                n = len(st.gcp_providers)
                st.gcp_providers = {} if one("audience") is None else \
                    {k: x for k, x in st.gcp_providers.items() if k != one("audience")}
                return self.json_reply(200, {"ok": True, "cleared": n - len(st.gcp_providers)})
        if route == ("POST", "/gcp/service_account"):
            return self.json_reply(200, st.add_gcp_service_account(self._json(req)))
        if route == ("GET", "/gcp/service_account"):
            with st.lock:
                return self.json_reply(200, [dict(x) for x in st.gcp_service_accounts.values()])
        if route == ("DELETE", "/gcp/service_account"):
            with st.lock:
                n = len(st.gcp_service_accounts)
                st.gcp_service_accounts = {} if one("email") is None else \
                    {k: x for k, x in st.gcp_service_accounts.items() if k != one("email")}
                return self.json_reply(200, {"ok": True, "cleared": n - len(st.gcp_service_accounts)})
        if route == ("GET", "/gcp/tokens"):
            with st.lock:
                return self.json_reply(200, [dict(i) for i in st.gcp_tokens.values()])
        return self.json_reply(404, {"error": f"no route {req.method} {req.path}"})

    def mint_jwt(self, opts):
        """A JWT signed by the fake issuer's keys (the ones STS uses) with any
        claims: for the edges STS itself never produces (48 h lifetimes,
        future iat, odd audiences). Options: alg (RS256 | ES384 | HS256),
        lifetime (300), claims (merged over the defaults; null removes one),
        header (merged over the default header), tamper."""
        st = self.state
        opts = _object(opts, "mint options", ("alg", "lifetime", "claims", "header", "tamper"))
        alg = opts.get("alg", "RS256")
        if alg not in ("RS256", "ES384", "HS256"):
            raise ValueError("alg must be RS256, ES384 or HS256")
        lifetime = opts.get("lifetime", 300)
        if not _is_number(lifetime):
            raise ValueError("lifetime must be a number of seconds")
        now = int(st.now())
        account = st.config["account"]
        claims = {"aud": ENTRA_FIC_AUDIENCE, "sub": f"arn:aws:iam::{account}:role/{st.config['imds_role']}",
                  "https://sts.amazonaws.com/": {"aws_account": account, "source_region": st.region,
                                                 "principal_id": f"arn:aws:iam::{account}:role/"
                                                                 f"{st.config['imds_role']}"},
                  "iss": st.issuer_url, "exp": now + int(lifetime), "iat": now, "jti": str(uuid.uuid4())}
        extra = opts.get("claims", {})
        if not isinstance(extra, dict):
            raise ValueError("claims must be a JSON object")
        for k, v in extra.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        header = {"kid": {"RS256": JWT_RSA_KID, "ES384": JWT_EC_KID, "HS256": "fake-hmac"}[alg], "typ": "JWT",
                  "alg": alg}
        extra = opts.get("header", {})
        if not isinstance(extra, dict):
            raise ValueError("header must be a JSON object")
        header.update(extra)
        if alg == "HS256":
            import hmac
            signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                             b64url(json.dumps(claims, separators=(",", ":")).encode()))
            token = signing_input + "." + b64url(hmac.new(b"fakecloud", signing_input.encode(), "sha256").digest())
        else:
            token = st.keys.sign_jwt(header, claims, alg)
        if opts.get("tamper"):
            head, _, sig = token.rpartition(".")
            token = head + "." + ("B" if sig[0] != "B" else "C") + sig[1:]
        return {"token": token, "header": header, "claims": claims, "fingerprint": fingerprint(token)}

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
    ap.add_argument("--secrets-file", help="append every secret handed out to this file, one per line")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"\d{12}", args.account):
        ap.error("--account must be 12 digits")
    os.makedirs(args.dir, exist_ok=True)
    directory = os.path.abspath(args.dir)
    if args.secrets_file:
        global SECRETS_FILE
        SECRETS_FILE = os.path.abspath(args.secrets_file)

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
    entra = make_listener("entra", app, lambda req: app.entra, lambda: app.tls_select(("entra",)), also_ipv6=True)
    gcp_sts = make_listener("gcp_sts", app, lambda req: app.gcp_sts, lambda: app.tls_select(("gcp_sts",)),
                            also_ipv6=True)
    gcp_iam = make_listener("gcp_iam", app, lambda req: app.gcp_iam, lambda: app.tls_select(("gcp_iam",)),
                            also_ipv6=True)
    control = make_listener("control", app, lambda req: None)
    sts_port = https[0].server_address[1]
    state.issuer_url = f"https://localhost:{sts_port}/{uuid.uuid4()}"

    servers = imds + container + https + entra + gcp_sts + gcp_iam + control
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
            "sts_ipv6": len(https) > 1, "files": keys.paths,
            "entra": url("https", entra, "localhost"), "gcp_sts": url("https", gcp_sts, "localhost") + "/v1/token",
            "gcp_iam": url("https", gcp_iam, "localhost")}
    state.urls = info
    info_path = os.path.join(directory, "fakecloud.json")
    write_json_atomic(info_path, info)
    log_line(f"fakecloud: ready pid={os.getpid()} imds={info['imds']} container={info['container']} "
             f"sts={info['sts']} control={info['control']} issuer={info['issuer']} entra={info['entra']} "
             f"gcp_sts={info['gcp_sts']} gcp_iam={info['gcp_iam']}")

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
