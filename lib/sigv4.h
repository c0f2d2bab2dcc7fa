/* SPDX-License-Identifier: MIT */
/*
 * sigv4.h: AWS Signature Version 4 (header signing) of a struct ft_request.
 *
 * The signer adds Host (from the URL, when the request has none, because
 * that is what curl would send), X-Amz-Date, X-Amz-Security-Token (signed,
 * or appended unsigned after signing when omit_session_token is set),
 * x-amz-content-sha256 (when sign_body_hash is set) and the Authorization
 * header. Every other header present on the request when it is signed is
 * signed too, except Authorization itself, so callers add Content-Type and
 * friends first and unsigned headers (User-Agent) afterwards. The derived
 * signing key is cached per (secret, date, region, service) in a struct
 * ft_sigv4_cache so one key derivation serves a whole day.
 *
 * The canonical URI is the URL path as it goes on the wire, normalised when
 * asked (".", ".." and empty segments removed, a trailing '/' kept) and then
 * percent-encoded once more, segment by segment, as AWS requires for every
 * service but S3. The canonical query is percent-decoded and re-encoded, then
 * sorted by key and value. S3's single-encoding rules are not supported.
 */
#ifndef FT_SIGV4_H
#define FT_SIGV4_H

#include "ft.h"
#include "httpmsg.h"

struct ft_aws_creds;

struct ft_sigv4_params {
        const char *region;        /* e.g. "us-east-2" */
        const char *service;       /* e.g. "sts" */
        int64_t now;               /* epoch seconds: the x-amz-date */
        bool normalize_path;       /* true except for S3-style signing */
        bool sign_body_hash;       /* add and sign x-amz-content-sha256 */
        bool omit_session_token;   /* append X-Amz-Security-Token after signing (unsigned) */
};

/*
 * Opaque cache of the derived signing key; one per credential source. It
 * holds one key and a keyed digest of the secret it came from, so a rotated
 * secret, a new day, region or service derives a fresh key. Not thread-safe:
 * one cache belongs to one event loop.
 */
struct ft_sigv4_cache;
int ft_sigv4_cache_new(struct ft_sigv4_cache **ret);
void ft_sigv4_cache_free(struct ft_sigv4_cache *c);   /* wipes the key, accepts NULL */

/*
 * Sign in place. `cache` may be NULL. Region and service are 1..63 characters
 * of [A-Za-z0-9._-]; the access key id is 1..128 alphanumerics. Returns
 * -EINVAL for a malformed argument, URL or header name, -E2BIG when the
 * request has no room for the headers to add, -ENOMEM. On failure the request
 * may carry some of the added headers and must not be sent.
 */
int ft_sigv4_sign(struct ft_request *req, const struct ft_aws_creds *creds,
                  const struct ft_sigv4_params *p, struct ft_sigv4_cache *cache);

/*
 * The intermediate forms, for tests and for debugging a SignatureDoesNotMatch.
 * They use the request's headers as they are (the caller has added X-Amz-Date
 * and the token header when wanted); an Authorization header is never signed.
 * Returned strings are malloc'd. The canonical request holds header values,
 * the session token among them: free it with ft_free_secret.
 * ret_signed_headers may be NULL.
 */
int ft_sigv4_canonical_request(const struct ft_request *req, bool normalize_path,
                               char **ret_creq, char **ret_signed_headers);
/* `amz_date` is "YYYYMMDDTHHMMSSZ"; its first 8 characters date the scope. */
int ft_sigv4_string_to_sign(const char *creq, const char *amz_date, const char *region,
                            const char *service, char **ret_sts);
/* Derives the signing key afresh (no cache) and writes the lower-case hex HMAC. */
int ft_sigv4_signature(const char *secret, const char *date8, const char *region,
                       const char *service, const char *sts, char ret_hex[65]);

#endif
