# SPDX-License-Identifier: MIT
"""Independent AWS Signature Version 4 verifier for the fake cloud.

Written from the SigV4 rules (see shared/vectors/sigv4/README.md), sharing
no code with the C library, so that the fake can say no to a request the C
signer got wrong. Header mode only (Authorization header), HMAC-SHA256.

Strings are handled as the HTTP layer hands them over: Python's http.server
decodes the request line and header values as ISO-8859-1, so every str here
holds raw bytes one per character and is turned back into bytes with
`latin-1` before hashing or percent-encoding.

Public API:
    verify(method, target, headers, body, *, lookup, now, region, service,
           normalize=True, max_skew=300) -> Verified
    canonical_request(...), string_to_sign(...), signing_key(...), sign(...)
    parse_authorization(value) -> Authorization
    SigV4Error(code, message, status)
"""

import calendar
import hashlib
import hmac
import re
import time
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_WS_RUN = re.compile(r"[ \t\r\n]+")
_AMZ_DATE = re.compile(r"^(\d{8})T(\d{6})Z$")


class SigV4Error(Exception):
    """A rejection, with the AWS error code and HTTP status STS would use."""

    def __init__(self, code, message, status=403):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class Authorization:
    """The parsed parts of an `Authorization: AWS4-HMAC-SHA256 ...` header."""

    def __init__(self, access_key, date, region, service, terminator, signed_headers, signature):
        self.access_key = access_key
        self.date = date
        self.region = region
        self.service = service
        self.terminator = terminator
        self.signed_headers = signed_headers
        self.signature = signature

    @property
    def scope(self):
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


class Verified:
    """What a successful verification established."""

    def __init__(self, auth, amz_date, canonical, to_sign, signature):
        self.access_key = auth.access_key
        self.region = auth.region
        self.service = auth.service
        self.signed_headers = auth.signed_headers
        self.amz_date = amz_date
        self.canonical_request = canonical
        self.string_to_sign = to_sign
        self.signature = signature


def _bytes(s):
    return s if isinstance(s, bytes) else s.encode("latin-1")


def uri_encode(data):
    """Percent-encode every byte except the RFC 3986 unreserved set."""
    out = []
    for b in _bytes(data):
        if b in _UNRESERVED:
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def canonical_path(path, normalize=True):
    """The CanonicalURI: optional dot-segment removal, then each segment
    encoded as is (a path already percent-encoded on the wire gets encoded
    again, as non-S3 services do)."""
    if path == "":
        path = "/"
    if normalize:
        out = []
        for seg in path.split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                if out:
                    out.pop()
                continue
            out.append(seg)
        trailing = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
        path = "/" + "/".join(out)
        if trailing and out:
            path += "/"
    return "/".join(uri_encode(seg) for seg in path.split("/"))


def canonical_query(query):
    """CanonicalQueryString: decode each key and value, re-encode with the
    strict set, sort by key then value."""
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        if part == "":
            continue
        key, _, value = part.partition("=")
        k = uri_encode(urllib.parse.unquote_to_bytes(_bytes(key)))
        v = uri_encode(urllib.parse.unquote_to_bytes(_bytes(value)))
        pairs.append((k, v))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_header_value(value):
    """Trim and collapse runs of whitespace (this also joins folded lines)."""
    return _WS_RUN.sub(" ", value).strip(" \t\r\n")


def header_map(headers):
    """{lower-name: [values in order]} from a list of (name, value)."""
    out = {}
    for name, value in headers:
        out.setdefault(name.strip().lower(), []).append(value)
    return out


def canonical_request(method, target, headers, signed_headers, payload_hash, normalize=True):
    """The canonical request as a str (latin-1 bytes), or SigV4Error when a
    signed header is absent from the request."""
    path, _, query = target.partition("?")
    hmap = header_map(headers)
    lines = []
    for name in signed_headers:
        if name not in hmap:
            raise SigV4Error("IncompleteSignature",
                             f"Header '{name}' is listed in SignedHeaders but is not present in the request.")
        lines.append(name + ":" + ",".join(canonical_header_value(v) for v in hmap[name]))
    return "\n".join([
        method.upper(),
        canonical_path(path, normalize),
        canonical_query(query),
        "\n".join(lines) + "\n",
        ";".join(signed_headers),
        payload_hash,
    ])


def string_to_sign(amz_date, scope, creq):
    digest = hashlib.sha256(_bytes(creq)).hexdigest()
    return "\n".join([ALGORITHM, amz_date, scope, digest])


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode("utf-8"), hashlib.sha256).digest()
    return k


def sign(secret, date, region, service, to_sign):
    key = signing_key(secret, date, region, service)
    return hmac.new(key, _bytes(to_sign), hashlib.sha256).hexdigest()


def parse_authorization(value):
    """Split `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    value = value.strip()
    algo, _, rest = value.partition(" ")
    if algo != ALGORITHM:
        raise SigV4Error("IncompleteSignature", f"Unsupported AWS 'algorithm': '{algo[:40]}'.")
    fields = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        k, eq, v = item.partition("=")
        if not eq or k in fields:
            raise SigV4Error("IncompleteSignature",
                             f"Authorization header requires each component to be of the form key=value; "
                             f"got '{k[:40]}'.")
        fields[k] = v
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise SigV4Error("IncompleteSignature",
                         " ".join(f"Authorization header requires '{k}' parameter." for k in missing))
    extra = sorted(set(fields) - {"Credential", "SignedHeaders", "Signature"})
    if extra:
        raise SigV4Error("IncompleteSignature", f"Authorization header has unknown component '{extra[0][:40]}'.")
    cred = fields["Credential"].split("/")
    if len(cred) != 5 or not all(cred):
        raise SigV4Error("IncompleteSignature",
                         "Credential must have exactly 5 slash-delimited elements, e.g. "
                         "keyid/date/region/service/term.")
    signed = fields["SignedHeaders"].split(";")
    if not all(signed) or signed != sorted(signed) or len(set(signed)) != len(signed) or \
            any(h != h.lower() for h in signed):
        raise SigV4Error("IncompleteSignature",
                         "SignedHeaders must be lower-case, sorted, unique header names separated by ';'.")
    if not re.fullmatch(r"[0-9a-f]{64}", fields["Signature"]):
        raise SigV4Error("IncompleteSignature", "Signature must be 64 lower-case hex digits.")
    return Authorization(cred[0], cred[1], cred[2], cred[3], cred[4], signed, fields["Signature"])


def amz_date_epoch(amz_date):
    m = _AMZ_DATE.match(amz_date)
    if not m:
        return None
    try:
        return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except (ValueError, OverflowError):
        return None


def fmt_amz_date(epoch):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def verify(method, target, headers, body, *, lookup, now, region, service, normalize=True, max_skew=300):
    """Verify a header-signed request.

    headers: list of (name, value) as received (order kept, duplicates kept).
    body: bytes. lookup(access_key) returns the secret key or raises
    SigV4Error (unknown key, bad session token). now: epoch seconds of the
    verifier's clock. Returns Verified or raises SigV4Error.
    """
    hmap = header_map(headers)
    auth_values = hmap.get("authorization")
    if not auth_values:
        raise SigV4Error("MissingAuthenticationToken", "Request is missing Authentication Token")
    if len(auth_values) != 1:
        raise SigV4Error("IncompleteSignature", "Request carries more than one Authorization header.")
    auth = parse_authorization(auth_values[0])

    if "host" not in auth.signed_headers:
        raise SigV4Error("IncompleteSignature",
                         "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    date_values = hmap.get("x-amz-date")
    if not date_values:
        raise SigV4Error("IncompleteSignature",
                         "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if "x-amz-date" not in auth.signed_headers:
        raise SigV4Error("IncompleteSignature", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    amz_date = canonical_header_value(date_values[-1])
    when = amz_date_epoch(amz_date)
    if when is None:
        raise SigV4Error("IncompleteSignature",
                         f"Date must be in ISO-8601 'basic format'. Got '{amz_date[:40]}'. "
                         "See http://en.wikipedia.org/wiki/ISO_8601")

    if auth.terminator != "aws4_request":
        raise SigV4Error("SignatureDoesNotMatch",
                         f"Credential should be scoped with a valid terminator: 'aws4_request', "
                         f"not '{auth.terminator[:40]}'.")
    if auth.date != amz_date[:8]:
        raise SigV4Error("SignatureDoesNotMatch",
                         f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                         f"from HTTP: '{auth.date[:40]}' != '{amz_date[:8]}', from '{amz_date}'.")
    if auth.service != service:
        raise SigV4Error("SignatureDoesNotMatch",
                         f"Credential should be scoped to correct service: '{service}'. ")
    if auth.region != region:
        raise SigV4Error("SignatureDoesNotMatch",
                         f"Credential should be scoped to a valid region, not '{auth.region[:40]}'. ")

    if when < now - max_skew:
        raise SigV4Error("SignatureDoesNotMatch",
                         f"Signature expired: {amz_date} is now earlier than {fmt_amz_date(now - max_skew)} "
                         f"({fmt_amz_date(now)} - {max_skew // 60} min.)")
    if when > now + max_skew:
        raise SigV4Error("SignatureDoesNotMatch",
                         f"Signature not yet current: {amz_date} is still later than "
                         f"{fmt_amz_date(now + max_skew)} ({fmt_amz_date(now)} + {max_skew // 60} min.)")

    secret = lookup(auth.access_key)

    creq = canonical_request(method, target, headers, auth.signed_headers,
                             hashlib.sha256(body).hexdigest(), normalize)
    to_sign = string_to_sign(amz_date, auth.scope, creq)
    expected = sign(secret, auth.date, auth.region, auth.service, to_sign)
    if not hmac.compare_digest(expected, auth.signature):
        raise SigV4Error("SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature you provided. "
                         "Check your AWS Secret Access Key and signing method. "
                         "Consult the service documentation for details.")
    return Verified(auth, amz_date, creq, to_sign, expected)
