#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# make.py: writes the signed test tokens, JWKS and discovery document that
# tests/unit/test_jwt.c and tests/fuzz/fuzz_oidc_jwks.c use.
#
# Run it from anywhere with Debian's python3-cryptography:
#
#     /usr/bin/python3 tests/data/jwt/make.py            # keep the keys, re-sign
#     /usr/bin/python3 tests/data/jwt/make.py --new-keys # new keys too
#
# The private keys in keys/ are throwaway test keys, generated once and kept
# so that re-running gives the same JWKS and the same RS256 tokens (PKCS#1
# v1.5 is deterministic; ES384 signatures change on every run, which is
# harmless). They sign nothing but these fixtures. After --new-keys, also
# copy the new rs256.jwt and es384.jwt into tests/fuzz/fuzz_oidc_jwks.c, the
# first two keys of jwks.json into tests/fuzz/fuzz_jwt.c, and the new files
# into the seeds of tests/fuzz/corpus/{jwt,oidc_jwks}/ that were taken from
# them (jwks-valid-*, rs256*, es384*).
#
# Every token is frozen at the captured vectors' clock, 2025-12-01T12:00:00Z
# (1764590400): iat is that instant and exp one hour later, unless the file
# name says otherwise.

import base64
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "keys")
NOW = 1764590400
ISSUER = "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws"
ROLE = "arn:aws:iam::111122223333:role/example-workload-role"
AZURE_AUD = "api://AzureADTokenExchange"
GCP_AUD = ("//iam.googleapis.com/projects/123456789012/locations/global/"
           "workloadIdentityPools/example-pool/providers/example-aws")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_bytes(i, size=None):
    size = size or (i.bit_length() + 7) // 8
    return i.to_bytes(size, "big")


def load_or_make(name, make, fresh):
    path = os.path.join(KEYS, name)
    if os.path.exists(path) and not fresh:
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    key = make()
    os.makedirs(KEYS, exist_ok=True)
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return key


def rsa_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64url(int_bytes(pub.n)), "e": b64url(int_bytes(pub.e))}


def ec_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "EC", "use": "sig", "alg": "ES384", "kid": kid, "crv": "P-384",
            "x": b64url(int_bytes(pub.x, 48)), "y": b64url(int_bytes(pub.y, 48))}


def part(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims(aud, iat=NOW, exp=NOW + 3600, jti="1"):
    return {
        "aud": aud,
        "sub": ROLE,
        "https://sts.amazonaws.com/": {
            "aws_account": "111122223333",
            "source_region": "us-east-2",
            "principal_id": ROLE,
        },
        "iss": ISSUER,
        "exp": exp,
        "iat": iat,
        "jti": "00000000-test-jti0-0000-00000000000" + jti,
    }


def sign_rs256(key, header, payload):
    signing_input = (part(header) + "." + part(payload)).encode()
    sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode() + "." + b64url(sig)


def sign_es384(key, header, payload, raw=True):
    signing_input = (part(header) + "." + part(payload)).encode()
    der = key.sign(signing_input, ec.ECDSA(hashes.SHA384()))
    if not raw:
        return signing_input.decode() + "." + b64url(der)
    r, s = decode_dss_signature(der)
    return signing_input.decode() + "." + b64url(int_bytes(r, 48) + int_bytes(s, 48))


def flip_signature(token):
    head, _, sig = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return head + "." + b64url(bytes(raw))


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


def main():
    fresh = "--new-keys" in sys.argv[1:]
    rsa1 = load_or_make("test-rsa-1.pem",
                        lambda: rsa.generate_private_key(65537, 2048), fresh)
    rsa2 = load_or_make("test-rsa-2.pem",
                        lambda: rsa.generate_private_key(65537, 2048), fresh)
    weak = load_or_make("test-rsa-weak-1024.pem",
                        lambda: rsa.generate_private_key(65537, 1024), fresh)
    ec1 = load_or_make("test-ec-1.pem",
                       lambda: ec.generate_private_key(ec.SECP384R1()), fresh)

    jwks = {"keys": [rsa_jwk(rsa1, "test-rsa-1"), ec_jwk(ec1, "test-ec-1"),
                     rsa_jwk(rsa2, "test-rsa-2")]}
    write("jwks.json", json.dumps(jwks, indent=2) + "\n")
    write("jwks-weak.json", json.dumps({"keys": [rsa_jwk(weak, "test-rsa-weak")]}, indent=2) + "\n")
    write("openid-configuration.json", json.dumps({
        "issuer": ISSUER,
        "jwks_uri": ISSUER + "/.well-known/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES384"],
    }, indent=2) + "\n")

    rs_head = {"kid": "test-rsa-1", "typ": "JWT", "alg": "RS256"}
    es_head = {"kid": "test-ec-1", "typ": "JWT", "alg": "ES384"}
    both = [AZURE_AUD, GCP_AUD]

    good = sign_rs256(rsa1, rs_head, claims(AZURE_AUD))
    write("rs256.jwt", good)
    write("rs256-multi-aud.jwt", sign_rs256(rsa1, rs_head, claims(both, jti="2")))
    write("rs256-nokid.jwt", sign_rs256(rsa2, {"typ": "JWT", "alg": "RS256"},
                                        claims(AZURE_AUD, jti="3")))
    write("rs256-expired.jwt", sign_rs256(rsa1, rs_head,
                                          claims(AZURE_AUD, NOW - 7200, NOW - 3600, "4")))
    write("rs256-wrong-kid.jwt", sign_rs256(rsa1, dict(rs_head, kid="test-rsa-unknown"),
                                            claims(AZURE_AUD, jti="5")))
    write("rs256-weak.jwt", sign_rs256(weak, dict(rs_head, kid="test-rsa-weak"),
                                       claims(AZURE_AUD, jti="6")))
    # The payload of another principal under the good token's signature.
    tampered = claims(AZURE_AUD)
    tampered["sub"] = "arn:aws:iam::111122223333:role/someone-else"
    head, _, sig = good.split(".")
    write("rs256-tampered-payload.jwt", head + "." + part(tampered) + "." + sig)
    write("rs256-tampered-signature.jwt", flip_signature(good))

    es = sign_es384(ec1, es_head, claims(both, jti="7"))
    write("es384.jwt", es)
    write("es384-tampered-signature.jwt", flip_signature(es))
    # ASN.1 DER instead of the raw r||s that JWS requires (RFC 7518 3.4).
    write("es384-der-signature.jwt", sign_es384(ec1, es_head, claims(both, jti="8"), raw=False))

    # Unsigned and HMAC tokens must never verify against a JWKS; the HMAC key
    # is the RSA key's public modulus, the classic algorithm-confusion attack.
    write("alg-none.jwt", part({"typ": "JWT", "alg": "none"}) + "." + part(claims(AZURE_AUD)) + ".")
    hs_input = (part({"kid": "test-rsa-1", "typ": "JWT", "alg": "HS256"}) + "." +
                part(claims(AZURE_AUD))).encode()
    mac = hmac.HMAC(int_bytes(rsa1.public_key().public_numbers().n), hashes.SHA256())
    mac.update(hs_input)
    write("hs256.jwt", hs_input.decode() + "." + b64url(mac.finalize()))


if __name__ == "__main__":
    main()
