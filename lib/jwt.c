/* SPDX-License-Identifier: MIT */
#include "jwt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>

#include "crypto.h"
#include "httpmsg.h"
#include "json.h"
#include "text.h"
#include "timeutil.h"

/* 9999-12-31T23:59:59Z: a NumericDate past it is not a date but an attack on arithmetic. */
#define JWT_TIME_MAX INT64_C(253402300799)
/* Members of one JSON object in a token; AWS tokens have about ten. */
#define JWT_MAX_MEMBERS 256
/* The object AWS puts its own claims in. */
#define AWS_CLAIMS "https://sts.amazonaws.com/"
/* Entra ID keeps at most 100 keys of a JWKS; a longer one is not an issuer's. */
#define JWKS_MAX_KEYS 100
#define RSA_MIN_BITS 2048
/* mbedTLS's own bignum limit; it also bounds the work one key can cost. */
#define RSA_MAX_BITS 8192
#define P384_LEN 48
#define URL_MAX 2048

/*
 * Claims and key ids are untrusted text quoted in diagnoses, and none has a
 * reason to hold anything but ASCII: quote them with the strictest rule.
 */
static const char *printable(const char *s, char *buf, size_t size)
{
        return ft_text_ascii(buf, size, s, strlen(s));
}

/* ---- decoding ---- */

/*
 * A member named twice is refused: the relying party's parser may read the
 * other value than ours did (RFC 7515 section 5.2 allows only rejecting or
 * last-wins, and cJSON gives first-wins).
 */
static int check_members(const cJSON *obj, const char *what, struct ft_diag *diag)
{
        char shown[64];
        size_t n = 0;

        for (const cJSON *a = obj->child; a; a = a->next) {
                if (++n > JWT_MAX_MEMBERS)
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's %s has more than %d members",
                                            what, JWT_MAX_MEMBERS);
                if (!a->string)
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's %s is malformed", what);
                for (const cJSON *b = obj->child; b != a; b = b->next)
                        if (strcmp(a->string, b->string) == 0)
                                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                                    "the token's %s names \"%s\" twice", what,
                                                    printable(a->string, shown, sizeof(shown)));
        }
        return 0;
}

/* One base64url part of the token, which must hold a JSON object. */
static int decode_json_part(const char *part, size_t len, const char *what, cJSON **ret, struct ft_diag *diag)
{
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        cJSON *obj = NULL;
        int r;

        r = ft_base64url_decode(part, len, &raw, &raw_len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's %s is not base64url", what);
        r = ft_json_parse_object((const char *)raw, raw_len, &obj);
        ft_wipe(raw, raw_len);
        free(raw);
        if (r < 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's %s is not a JSON object", what);
        r = check_members(obj, what, diag);
        if (r < 0) {
                cJSON_Delete(obj);
                return r;
        }
        *ret = obj;
        return 0;
}

/* An optional string member; present with another type is an error. */
static int member_string(const cJSON *obj, const char *name, const char *what, char **ret, struct ft_diag *diag)
{
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

        if (!it)
                return 0;
        if (!cJSON_IsString(it))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the token's %s \"%s\" is not a string", what, name);
        *ret = strdup(it->valuestring);
        return *ret ? 0 : -ENOMEM;
}

/* exp, iat, nbf: whole seconds between 1970 and 9999 (0 when absent). */
static int claim_time(const cJSON *payload, const char *name, int64_t *ret, struct ft_diag *diag)
{
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(payload, name);
        double v;

        if (!it)
                return 0;
        if (!cJSON_IsNumber(it))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's %s claim is not a number", name);
        v = it->valuedouble;
        /* Written so that NaN fails too; the cast is safe once the range holds. */
        if (!(v >= 0 && v <= (double)JWT_TIME_MAX) || v != (double)(int64_t)v)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the token's %s claim is not a whole number of seconds between 1970 and 9999",
                                    name);
        *ret = (int64_t)v;
        return 0;
}

static int claim_aud(const cJSON *payload, struct ft_jwt *j, struct ft_diag *diag)
{
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(payload, "aud");
        size_t n = 0;

        if (!it)
                return 0;
        if (cJSON_IsString(it)) {
                if (!*it->valuestring)
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's aud claim is empty");
                j->aud[0] = strdup(it->valuestring);
                if (!j->aud[0])
                        return -ENOMEM;
                j->n_aud = 1;
                return 0;
        }
        if (!cJSON_IsArray(it))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the token's aud claim is neither a string nor an array of strings");
        for (const cJSON *a = it->child; a; a = a->next) {
                if (n == FT_JWT_MAX_AUD)
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                            "the token has more than %d audiences", FT_JWT_MAX_AUD);
                if (!cJSON_IsString(a) || !*a->valuestring)
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                            "the token's aud array holds something other than a non-empty string");
                j->aud[n] = strdup(a->valuestring);
                if (!j->aud[n])
                        return -ENOMEM;
                j->n_aud = ++n;
        }
        if (n == 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's aud claim is an empty array");
        return 0;
}

static int read_header(const cJSON *header, struct ft_jwt *j, struct ft_diag *diag)
{
        int r;

        /* Extensions we would have to understand to process the token correctly (RFC 7515 4.1.11). */
        if (cJSON_GetObjectItemCaseSensitive(header, "crit"))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW,
                                    "the token's header names critical extensions (crit), which fedtokend does not "
                                    "know");
        r = member_string(header, "alg", "header member", &j->alg, diag);
        if (r < 0)
                return r;
        if (!j->alg || !*j->alg)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's header has no alg");
        return member_string(header, "kid", "header member", &j->kid, diag);
}

static int read_claims(const cJSON *payload, struct ft_jwt *j, struct ft_diag *diag)
{
        const cJSON *aws = cJSON_GetObjectItemCaseSensitive(payload, AWS_CLAIMS);
        int r;

        r = member_string(payload, "iss", "claim", &j->iss, diag);
        if (r >= 0)
                r = member_string(payload, "sub", "claim", &j->sub, diag);
        if (r >= 0)
                r = member_string(payload, "jti", "claim", &j->jti, diag);
        if (r >= 0)
                r = claim_aud(payload, j, diag);
        if (r >= 0)
                r = claim_time(payload, "exp", &j->exp, diag);
        if (r >= 0)
                r = claim_time(payload, "iat", &j->iat, diag);
        if (r >= 0)
                r = claim_time(payload, "nbf", &j->nbf, diag);
        if (r < 0 || !aws)
                return r;
        if (!cJSON_IsObject(aws))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the token's \"" AWS_CLAIMS "\" claim is not an object");
        r = check_members(aws, "\"" AWS_CLAIMS "\" claim", diag);
        if (r >= 0)
                r = member_string(aws, "aws_account", "AWS claim", &j->aws_account, diag);
        if (r >= 0)
                r = member_string(aws, "source_region", "AWS claim", &j->aws_source_region, diag);
        if (r >= 0)
                r = member_string(aws, "principal_id", "AWS claim", &j->aws_principal_id, diag);
        return r;
}

/* Where the two dots are; the token's bytes were already checked. */
static int split_token(const char *token, size_t len, size_t *ret_dot1, size_t *ret_dot2, struct ft_diag *diag)
{
        size_t dots[2], n = 0;

        for (size_t i = 0; i < len; i++) {
                if (token[i] == '.') {
                        if (n == 2)
                                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                                    "the token has more than three parts (an encrypted JWE?)");
                        dots[n++] = i;
                } else if (!ft_text_is_base64url(token[i])) {
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                            "the token holds a byte outside base64url at offset %zu", i);
                }
        }
        if (n != 2)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the token is not three dot-separated parts (header.payload.signature)");
        if (dots[0] == 0 || dots[1] == dots[0] + 1)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's header or payload is empty");
        *ret_dot1 = dots[0];
        *ret_dot2 = dots[1];
        return 0;
}

int ft_jwt_decode(const char *token, size_t len, struct ft_jwt **ret, struct ft_diag *diag)
{
        cJSON *header = NULL, *payload = NULL;
        struct ft_jwt *j;
        size_t dot1 = 0, dot2 = 0;
        int r;

        if ((!token && len) || !ret)
                return -EINVAL;
        if (len == 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token is empty");
        if (len > FT_JWT_MAX_LEN)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the token is %zu bytes, more than the %d accepted", len, FT_JWT_MAX_LEN);
        r = split_token(token, len, &dot1, &dot2, diag);
        if (r < 0)
                return r;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        r = decode_json_part(token, dot1, "header", &header, diag);
        if (r >= 0)
                r = decode_json_part(token + dot1 + 1, dot2 - dot1 - 1, "payload", &payload, diag);
        if (r >= 0)
                r = read_header(header, j, diag);
        if (r >= 0)
                r = read_claims(payload, j, diag);
        /* An empty signature decodes to nothing; verification refuses it (alg "none"). */
        if (r >= 0 && dot2 + 1 < len) {
                r = ft_base64url_decode(token + dot2 + 1, len - dot2 - 1, &j->signature, &j->signature_len);
                if (r < 0 && r != -ENOMEM)
                        r = ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token's signature is not base64url");
        }
        if (r >= 0) {
                j->signing_input = ft_strndup(token, dot2);
                j->signing_input_len = dot2;
                if (!j->signing_input)
                        r = -ENOMEM;
        }
        cJSON_Delete(header);
        cJSON_Delete(payload);
        if (r < 0) {
                ft_jwt_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

void ft_jwt_free(struct ft_jwt *j)
{
        if (!j)
                return;
        free(j->alg);
        free(j->kid);
        free(j->iss);
        free(j->sub);
        for (size_t i = 0; i < j->n_aud; i++)
                free(j->aud[i]);
        free(j->jti);
        free(j->aws_account);
        free(j->aws_source_region);
        free(j->aws_principal_id);
        /* With its signature, the token is a bearer credential: wipe both halves. */
        if (j->signing_input) {
                ft_wipe(j->signing_input, j->signing_input_len);
                free(j->signing_input);
        }
        if (j->signature) {
                ft_wipe(j->signature, j->signature_len);
                free(j->signature);
        }
        ft_wipe(j, sizeof(*j));
        free(j);
}

bool ft_jwt_has_audience(const struct ft_jwt *j, const char *aud)
{
        if (!j || !aud)
                return false;
        for (size_t i = 0; i < j->n_aud; i++)
                if (j->aud[i] && strcmp(j->aud[i], aud) == 0)
                        return true;
        return false;
}

/* ---- local checks ---- */

static int audience_missing(const struct ft_jwt *j, const char *want, struct ft_diag *diag)
{
        char list[640], one[200], shown[200];
        size_t o = 0;

        list[0] = '\0';
        for (size_t i = 0; i < j->n_aud; i++) {
                int n = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
                                 printable(j->aud[i], one, sizeof(one)));
                if (n < 0 || (size_t)n >= sizeof(list) - o) {
                        memcpy(list + sizeof(list) - 4, "...", 4);
                        break;
                }
                o += (size_t)n;
        }
        return ft_diag_fail(diag, -EKEYREJECTED, FT_RETRY_SLOW, "audience \"%s\" missing; token is for [%s]",
                            printable(want, shown, sizeof(shown)), list);
}

int ft_jwt_check(const struct ft_jwt *j, int64_t now, int64_t min_remaining, int64_t skew,
                 const char *const *audiences, size_t n_audiences, struct ft_diag *diag)
{
        int64_t horizon;
        char when[21];

        if (!j || now < 0 || min_remaining < 0 || skew < 0 || (n_audiences && !audiences))
                return -EINVAL;
        if (!j->exp)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the token has no exp claim");
        ft_time_format_rfc3339(j->exp, when);
        if (j->exp <= now)
                return ft_diag_fail(diag, -EKEYEXPIRED, FT_RETRY_NOW, "the token expired at %s (%lld s ago)", when,
                                    (long long)(now - j->exp));
        if (j->exp - now < min_remaining)
                return ft_diag_fail(diag, -EKEYEXPIRED, FT_RETRY_NOW,
                                    "the token expires at %s and has only %lld s left, less than the %lld s required",
                                    when, (long long)(j->exp - now), (long long)min_remaining);
        /* A skew so large that now + skew overflows means "nothing is in the future". */
        if (__builtin_add_overflow(now, skew, &horizon))
                horizon = INT64_MAX;
        if (j->iat > horizon) {
                ft_time_format_rfc3339(j->iat, when);
                return ft_diag_fail(diag, -EKEYREJECTED, FT_RETRY_SLOW,
                                    "the token was issued at %s, %lld s in the future (more than the %lld s of clock "
                                    "skew allowed): check this host's clock", when, (long long)(j->iat - now),
                                    (long long)skew);
        }
        if (j->nbf > horizon) {
                ft_time_format_rfc3339(j->nbf, when);
                return ft_diag_fail(diag, -EKEYREJECTED, FT_RETRY_SLOW,
                                    "the token is not valid before %s, %lld s from now: check this host's clock", when,
                                    (long long)(j->nbf - now));
        }
        for (size_t i = 0; i < n_audiences; i++) {
                if (!audiences[i])
                        return -EINVAL;
                if (!ft_jwt_has_audience(j, audiences[i]))
                        return audience_missing(j, audiences[i], diag);
        }
        return 0;
}

/* ---- discovery ---- */

static bool is_https_url(const char *s)
{
        struct ft_url u;

        if (strlen(s) > URL_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '\\')
                        return false;
        return ft_url_split(s, &u) == 0 && u.scheme_len == 5 && strncasecmp(u.scheme, "https", 5) == 0;
}

int ft_oidc_parse_config(const char *body, size_t len, const char *expected_issuer, char **ret_jwks_uri,
                         struct ft_diag *diag)
{
        char shown[256], expected[256];
        const char *issuer, *jwks_uri;
        cJSON *root = NULL;
        int r;

        if ((!body && len) || !expected_issuer || !ret_jwks_uri)
                return -EINVAL;
        if (len > FT_OIDC_CONFIG_MAX_LEN)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the OpenID discovery document is %zu bytes, more than the %d accepted", len,
                                    FT_OIDC_CONFIG_MAX_LEN);
        if (ft_json_parse_object(body, len, &root) < 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the OpenID discovery document is not a JSON object");
        issuer = ft_json_string(root, "issuer");
        jwks_uri = ft_json_string(root, "jwks_uri");
        printable(expected_issuer, expected, sizeof(expected));
        /* The issuer must be the one asked for, byte for byte (OpenID Connect Discovery 4.3). */
        if (!issuer)
                r = ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the OpenID discovery document of %s has no issuer",
                                 expected);
        else if (strcmp(issuer, expected_issuer) != 0)
                r = ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW,
                                 "the OpenID discovery document names issuer \"%s\", not the expected \"%s\"",
                                 printable(issuer, shown, sizeof(shown)), expected);
        else if (!jwks_uri)
                r = ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                 "the OpenID discovery document of %s has no jwks_uri", expected);
        else if (!is_https_url(jwks_uri))
                r = ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW,
                                 "the OpenID discovery document of %s names jwks_uri \"%s\", which is not an https URL",
                                 expected, printable(jwks_uri, shown, sizeof(shown)));
        else if (!(*ret_jwks_uri = strdup(jwks_uri)))
                r = -ENOMEM;
        else
                r = 0;
        cJSON_Delete(root);
        return r;
}

/* ---- signature verification ---- */

static int note(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Why a candidate key did not verify; returns -EBADMSG. */
static int note(char *why, size_t size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

/* A base64url member of a JWK, at most max_len encoded characters. */
static int jwk_bytes(const cJSON *key, const char *name, size_t max_len, uint8_t **ret, size_t *ret_len)
{
        const char *s = ft_json_string(key, name);

        if (!s || !*s || strlen(s) > max_len)
                return -EBADMSG;
        return ft_base64url_decode(s, strlen(s), ret, ret_len);
}

static int verify_rs256(const struct ft_jwt *j, const cJSON *key, const char *label, char *why, size_t why_size)
{
        uint8_t *n = NULL, *e = NULL, hash[FT_SHA256_LEN];
        size_t n_len = 0, e_len = 0, skip = 0, bits;
        mbedtls_rsa_context rsa;
        int r;

        /* Bound the work before decoding: 8192 bits of modulus are 1366 base64url characters. */
        r = jwk_bytes(key, "n", (RSA_MAX_BITS / 8 * 4 + 2) / 3 + 4, &n, &n_len);
        if (r >= 0)
                r = jwk_bytes(key, "e", 16, &e, &e_len);
        if (r == -ENOMEM)
                goto out;
        if (r < 0) {
                r = note(why, why_size, "key %s has no usable RSA n and e (base64url, at most %d bits)", label,
                         RSA_MAX_BITS);
                goto out;
        }
        while (skip < n_len && n[skip] == 0)
                skip++;
        bits = skip < n_len ? (n_len - skip - 1) * 8 + 1 : 0;
        for (uint8_t top = skip < n_len ? n[skip] : 0; top > 1; top >>= 1)
                bits++;
        if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
                r = note(why, why_size, "key %s is a %zu-bit RSA key; fedtokend accepts %d to %d bits", label,
                         bits, RSA_MIN_BITS, RSA_MAX_BITS);
                goto out;
        }
        /* PKCS #1 signatures are exactly as long as the modulus (RFC 8017 8.2.2). */
        if (j->signature_len != n_len - skip) {
                r = note(why, why_size, "the RS256 signature is %zu bytes, but key %s needs %zu", j->signature_len,
                         label, n_len - skip);
                goto out;
        }
        mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V15, 0);
        if (mbedtls_rsa_import_raw(&rsa, n + skip, n_len - skip, NULL, 0, NULL, 0, NULL, 0, e, e_len) != 0 ||
            mbedtls_rsa_complete(&rsa) != 0 || mbedtls_rsa_check_pubkey(&rsa) != 0)
                r = note(why, why_size, "key %s is not a valid RSA public key", label);
        else if (mbedtls_sha256_ret((const unsigned char *)j->signing_input, j->signing_input_len, hash, 0) != 0)
                r = -EIO;
        else if (mbedtls_rsa_pkcs1_verify(&rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256,
                                          FT_SHA256_LEN, hash, j->signature) != 0)
                r = note(why, why_size, "the RS256 signature does not match key %s", label);
        else
                r = 0;
        mbedtls_rsa_free(&rsa);
out:
        free(n);
        free(e);
        return r;
}

static int verify_es384(const struct ft_jwt *j, const cJSON *key, const char *label, char *why, size_t why_size)
{
        uint8_t *x = NULL, *y = NULL, point[1 + 2 * P384_LEN], hash[64];
        const char *crv = ft_json_string(key, "crv");
        size_t x_len = 0, y_len = 0;
        mbedtls_ecp_group grp;
        mbedtls_ecp_point q;
        mbedtls_mpi sig_r, sig_s;
        int r;

        if (!crv || strcmp(crv, "P-384") != 0)
                return note(why, why_size, "key %s is not on curve P-384, which ES384 needs", label);
        r = jwk_bytes(key, "x", 2 * P384_LEN, &x, &x_len);
        if (r >= 0)
                r = jwk_bytes(key, "y", 2 * P384_LEN, &y, &y_len);
        if (r == -ENOMEM)
                goto out;
        /* RFC 7518 6.2.1.2: coordinates are the full 48 bytes, leading zeros kept. */
        if (r < 0 || x_len != P384_LEN || y_len != P384_LEN) {
                r = note(why, why_size, "key %s has no usable P-384 x and y (48 bytes each)", label);
                goto out;
        }
        /* JWS carries r||s raw (RFC 7518 3.4), never the DER form. */
        if (j->signature_len != 2 * P384_LEN) {
                r = note(why, why_size, "the ES384 signature is %zu bytes, not the 96 of raw r||s",
                         j->signature_len);
                goto out;
        }
        point[0] = 0x04;
        memcpy(point + 1, x, P384_LEN);
        memcpy(point + 1 + P384_LEN, y, P384_LEN);
        mbedtls_ecp_group_init(&grp);
        mbedtls_ecp_point_init(&q);
        mbedtls_mpi_init(&sig_r);
        mbedtls_mpi_init(&sig_s);
        if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP384R1) != 0)
                r = -EIO;
        else if (mbedtls_ecp_point_read_binary(&grp, &q, point, sizeof(point)) != 0 ||
                 mbedtls_ecp_check_pubkey(&grp, &q) != 0)
                r = note(why, why_size, "key %s is not a point on P-384", label);
        else if (mbedtls_mpi_read_binary(&sig_r, j->signature, P384_LEN) != 0 ||
                 mbedtls_mpi_read_binary(&sig_s, j->signature + P384_LEN, P384_LEN) != 0)
                r = -ENOMEM;
        else if (mbedtls_sha512_ret((const unsigned char *)j->signing_input, j->signing_input_len, hash, 1) != 0)
                r = -EIO;
        else if (mbedtls_ecdsa_verify(&grp, hash, 48, &q, &sig_r, &sig_s) != 0)
                r = note(why, why_size, "the ES384 signature does not match key %s", label);
        else
                r = 0;
        mbedtls_mpi_free(&sig_s);
        mbedtls_mpi_free(&sig_r);
        mbedtls_ecp_point_free(&q);
        mbedtls_ecp_group_free(&grp);
out:
        free(x);
        free(y);
        return r;
}

/* A key of the right type: check what it declares about itself, then the signature. */
static int verify_with_key(const struct ft_jwt *j, bool rsa, const cJSON *key, char *why, size_t why_size)
{
        const cJSON *use = cJSON_GetObjectItemCaseSensitive(key, "use");
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(key, "alg");
        const char *kid = ft_json_string(key, "kid");
        char label[80], shown[64];

        if (kid)
                snprintf(label, sizeof(label), "\"%s\"", printable(kid, shown, sizeof(shown)));
        else
                snprintf(label, sizeof(label), "(without kid)");
        if (use && !(cJSON_IsString(use) && strcmp(use->valuestring, "sig") == 0))
                return note(why, why_size, "key %s is not for signatures (its use is not \"sig\")", label);
        if (alg && !(cJSON_IsString(alg) && strcmp(alg->valuestring, j->alg) == 0))
                return note(why, why_size, "key %s is not for alg %s", label, j->alg);
        return rsa ? verify_rs256(j, key, label, why, why_size) : verify_es384(j, key, label, why, why_size);
}

static int verify_with_keys(const struct ft_jwt *j, bool rsa, const cJSON *keys, struct ft_diag *diag)
{
        const char *kty_wanted = rsa ? "RSA" : "EC";
        char why[512] = "", shown[64];
        size_t n_keys = 0, tried = 0;
        int r;

        for (const cJSON *key = keys->child; key; key = key->next) {
                const char *kid = ft_json_string(key, "kid"), *kty = ft_json_string(key, "kty");

                n_keys++;
                if (!cJSON_IsObject(key) || (j->kid && (!kid || strcmp(kid, j->kid) != 0)))
                        continue;
                if (!kty || strcmp(kty, kty_wanted) != 0) {
                        if (j->kid)
                                note(why, sizeof(why), "key \"%s\" is not an %s key, which %s needs",
                                     printable(j->kid, shown, sizeof(shown)), kty_wanted, j->alg);
                        continue;
                }
                tried++;
                r = verify_with_key(j, rsa, key, why, sizeof(why));
                if (r != -EBADMSG)
                        return r;
                /* Key ids are unique within a JWKS: the first usable key with the token's kid decides. */
                if (j->kid)
                        break;
        }
        if (j->kid && !why[0])
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_NOW,
                                    "no key in the JWKS (%zu keys) has the token's kid \"%s\": the issuer may have "
                                    "rotated its keys; fetch the JWKS again", n_keys,
                                    printable(j->kid, shown, sizeof(shown)));
        if (!why[0])
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW,
                                    "the JWKS (%zu keys) has no %s key for the token's %s", n_keys, kty_wanted, j->alg);
        if (tried > 1)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW,
                                    "none of the JWKS's %zu %s keys verifies the token's signature (the last: %s)",
                                    tried, kty_wanted, why);
        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW, "the token's signature does not verify: %s", why);
}

int ft_jwt_verify_jwks(const struct ft_jwt *j, const char *jwks, size_t jwks_len, struct ft_diag *diag)
{
        const cJSON *keys;
        char shown[32];
        size_t n = 0;
        cJSON *root = NULL;
        bool rsa;
        int r;

        if (!j || !j->alg || !j->signing_input || (!jwks && jwks_len))
                return -EINVAL;
        /* Only the asymmetric algorithms AWS signs with: never "none", never an HMAC keyed with a public key. */
        if (strcmp(j->alg, "RS256") == 0)
                rsa = true;
        else if (strcmp(j->alg, "ES384") == 0)
                rsa = false;
        else
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW,
                                    "the token's alg \"%s\" is not accepted: only RS256 and ES384 are",
                                    printable(j->alg, shown, sizeof(shown)));
        if (jwks_len > FT_JWKS_MAX_LEN)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the JWKS is %zu bytes, more than the %d accepted", jwks_len, FT_JWKS_MAX_LEN);
        if (ft_json_parse_object(jwks, jwks_len, &root) < 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the JWKS is not a JSON object");
        keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
        for (const cJSON *k = cJSON_IsArray(keys) ? keys->child : NULL; k; k = k->next)
                n++;
        if (!cJSON_IsArray(keys))
                r = ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the JWKS has no keys array");
        else if (n > JWKS_MAX_KEYS)
                r = ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW, "the JWKS holds %zu keys, more than the %d accepted", n,
                                 JWKS_MAX_KEYS);
        else
                r = verify_with_keys(j, rsa, keys, diag);
        cJSON_Delete(root);
        return r;
}
