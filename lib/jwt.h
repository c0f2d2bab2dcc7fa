/* SPDX-License-Identifier: MIT */
/*
 * jwt.h: decode a compact JWS (the AWS-issued OIDC token), read its claims,
 * check it locally and verify its signature (RS256, ES384) against a JWKS.
 * Discovery is data too: ft_oidc_parse_config takes the bytes of
 * <iss>/.well-known/openid-configuration and returns its jwks_uri.
 */
#ifndef FT_JWT_H
#define FT_JWT_H

#include "ft.h"

#define FT_JWT_MAX_LEN (32 * 1024)
#define FT_JWT_MAX_AUD 16
/* Size caps for the documents fetched to verify a token: refused above them. */
#define FT_OIDC_CONFIG_MAX_LEN (64 * 1024)
#define FT_JWKS_MAX_LEN (256 * 1024)

struct ft_jwt {
        char *alg;          /* header "alg" */
        char *kid;          /* header "kid", may be NULL */
        char *iss;
        char *sub;
        char *aud[FT_JWT_MAX_AUD];  /* a string or an array in the token */
        size_t n_aud;
        int64_t exp, iat, nbf;      /* 0 when absent */
        char *jti;
        /* From the "https://sts.amazonaws.com/" object, when present. */
        char *aws_account;
        char *aws_source_region;
        char *aws_principal_id;
        /* What was signed ("header.payload") and the raw signature, for verification. */
        char *signing_input;
        size_t signing_input_len;
        uint8_t *signature;
        size_t signature_len;
};

/*
 * Decode without verifying. Rejects (-EBADMSG) anything that is not three
 * base64url parts (no padding, nothing else) of JSON objects, a header
 * without alg or with crit, a member named twice, claims of the wrong type,
 * times that are not whole seconds between 1970 and 9999, more than
 * FT_JWT_MAX_AUD audiences. The signature part may be empty.
 */
int ft_jwt_decode(const char *token, size_t len, struct ft_jwt **ret, struct ft_diag *diag);
void ft_jwt_free(struct ft_jwt *j);

/* True if `aud` is one of the token's audiences. */
bool ft_jwt_has_audience(const struct ft_jwt *j, const char *aud);

/*
 * Local checks: exp present and later than now + min_remaining, iat (and nbf)
 * not in the future beyond `skew`, every expected audience present (may be
 * NULL/0). -EBADMSG without exp; -EKEYEXPIRED when expired or too close to
 * expiry; -EKEYREJECTED for a token from the future or a missing audience.
 */
int ft_jwt_check(const struct ft_jwt *j, int64_t now, int64_t min_remaining, int64_t skew,
                 const char *const *audiences, size_t n_audiences, struct ft_diag *diag);

/* The jwks_uri of a discovery document, checked to have `issuer` equal to `expected_issuer`. */
int ft_oidc_parse_config(const char *body, size_t len, const char *expected_issuer, char **ret_jwks_uri,
                         struct ft_diag *diag);

/*
 * Verify the signature against a JWKS document (RSA keys for RS256, EC P-384
 * keys for ES384; any other alg, "none" and HS* included, is refused). The
 * key is chosen by kid: the first key with the token's kid and the right kty
 * decides (without kid, every key of the right type is tried). A key's "alg"
 * and "use", when present, must be the token's alg and "sig"; RSA keys need
 * 2048 to 8192 bits; ES384 signatures are raw r||s. At most 100 keys and
 * FT_JWKS_MAX_LEN bytes. 0 when valid; -EBADMSG with a diagnosis otherwise.
 */
int ft_jwt_verify_jwks(const struct ft_jwt *j, const char *jwks, size_t jwks_len, struct ft_diag *diag);

#endif
