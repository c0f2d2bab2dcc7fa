/* SPDX-License-Identifier: MIT */
/*
 * entra.h: Microsoft Entra ID client-credentials grant with the AWS JWT as a
 * federated client assertion: the request (exactly the five protocol fields
 * the Azure Identity SDK sends), the success JSON and a plain-language
 * diagnosis of every AADSTS error that names the values actually sent.
 */
#ifndef FT_ENTRA_H
#define FT_ENTRA_H

#include "ft.h"
#include "httpmsg.h"
#include "jwt.h"
#include "oauth.h"

#define FT_ENTRA_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define FT_ENTRA_MAX_BODY (64 * 1024)

struct ft_entra_params {
        const char *authority;   /* https://login.microsoftonline.com (AZURE_AUTHORITY_HOST) */
        const char *tenant_id;
        const char *client_id;
        const char *scope;       /* one resource, ".../.default" */
        const char *assertion;   /* the AWS JWT (secret) */
};

/*
 * POST <authority>/<tenant>/oauth2/v2.0/token with headers Host and
 * Content-Type (application/x-www-form-urlencoded;charset=utf-8) and the
 * form body client_id, scope, grant_type=client_credentials,
 * client_assertion, client_assertion_type, in MSAL's order and encoding
 * (encodeURIComponent), byte-identical to its request without telemetry.
 * authority NULL or "" means FT_ENTRA_DEFAULT_AUTHORITY; trailing slashes
 * are dropped; it must be https (http only to loopback, for tests). The
 * tenant is a GUID or a domain name (not "common"/"organizations"), the
 * client id a GUID, the scope one resource ending in "/.default" without
 * white space, the assertion three non-empty base64url parts of at most
 * FT_JWT_MAX_LEN bytes. -EINVAL with a diagnosis naming the offending
 * value (the assertion only by fingerprint).
 */
int ft_entra_build(const struct ft_entra_params *p, struct ft_request **ret, struct ft_diag *diag);

/*
 * 200 body: token_type, expires_in, ext_expires_in, access_token, optional
 * refresh_in; numbers may be strings of digits. access_token is required
 * (visible ASCII, no space), token_type must be Bearer when present,
 * expires_in a whole number of seconds in 1..10 years; ext_expires_in is
 * ignored, and so is a refresh_in that is malformed or not below
 * expires_in. expires_at = now + expires_in, refresh_at = now + refresh_in
 * (0 without). At most FT_ENTRA_MAX_BODY bytes; a member read twice is
 * refused. -EBADMSG / -EMSGSIZE with a diagnosis that never quotes the token.
 */
int ft_entra_parse(const char *body, size_t len, int64_t now, struct ft_access_token **ret, struct ft_diag *diag);

/* What was sent, so the diagnosis can name it. Any field may be NULL/0. */
struct ft_entra_context {
        const char *tenant_id;
        const char *client_id;
        const char *scope;
        const char *authority;
        const struct ft_jwt *assertion;   /* decoded claims of the JWT sent (iss, sub, aud, iat, exp) */
        int64_t now;
        bool recently_created;            /* first minutes after start: 70021 may be FIC propagation */
};

/*
 * A non-200 answer: parses {"error","error_description","error_codes",...},
 * sets diag->code to "AADSTS<n>" (the first of error_codes), else the OAuth
 * error, else "HTTP <status>" for a body that is no Entra ID error;
 * diag->retry to the class the code calls for (5xx and 429 always back
 * off), diag->http_status, and diag->msg to a sentence saying what Entra ID
 * found wrong with which values and what to do, followed by a tamed excerpt
 * of error_description and the trace and correlation ids. The whole of
 * *diag is overwritten. diag->retry_after is a floor for two codes
 * (AADSTS50196 loop detection, AADSTS70021 while recently_created): the
 * caller keeps the larger of it and the response's Retry-After. `ctx` may
 * be NULL.
 */
void ft_entra_explain_error(long status, const char *body, size_t len, const struct ft_entra_context *ctx,
                            struct ft_diag *diag);

#endif
