/* SPDX-License-Identifier: MIT */
/*
 * gcp.h: Google Cloud workload identity federation with the AWS JWT: the STS
 * token exchange, optional service account impersonation
 * (generateAccessToken), their responses and errors, and the
 * external_account credential configuration that Google client libraries
 * read (GOOGLE_APPLICATION_CREDENTIALS).
 */
#ifndef FT_GCP_H
#define FT_GCP_H

#include "ft.h"
#include "httpmsg.h"
#include "jwt.h"
#include "oauth.h"

#define FT_GCP_DEFAULT_STS "https://sts.googleapis.com/v1/token"
#define FT_GCP_DEFAULT_IAM "https://iamcredentials.googleapis.com"
#define FT_GCP_DEFAULT_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define FT_GCP_MAX_BODY (64 * 1024)

/*
 * Endpoints are https URLs; plain http is accepted only for a loopback host
 * (localhost, 127.0.0.0/8, ::1), for tests and local proxies. A scope is one
 * or more https scope URLs separated by single spaces (NULL: cloud-platform).
 */
struct ft_gcp_sts_params {
        const char *endpoint;        /* https://sts.googleapis.com/v1/token */
        const char *audience;        /* //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X
                                        or //iam.googleapis.com/locations/global/workforcePools/P/providers/X */
        const char *scope;           /* sent as is without impersonation; cloud-platform with it */
        bool impersonate;
        const char *subject_token;   /* the AWS JWT (secret) */
};

/*
 * The token-exchange POST, as google-auth-library sends it (gcp-sts*.http):
 * Host, Content-Type application/x-www-form-urlencoded;charset=UTF-8, Accept,
 * no Authorization; the six form fields in the library's order and encoding
 * (URLSearchParams: several scopes are joined by '+').
 */
int ft_gcp_build_sts(const struct ft_gcp_sts_params *p, struct ft_request **ret, struct ft_diag *diag);
/*
 * {"access_token","issued_token_type","token_type","expires_in"}: expires_in
 * (a number or a numeric string, 1 s to 1 day) becomes expires_at = now +
 * expires_in. token_type and issued_token_type, when present, must be Bearer
 * and an access token. -EBADMSG (with diag, retry BACKOFF) otherwise.
 */
int ft_gcp_parse_sts(const char *body, size_t len, int64_t now, struct ft_access_token **ret, struct ft_diag *diag);

/*
 * POST <iam>/v1/projects/-/serviceAccounts/<sa>:generateAccessToken, Bearer
 * <federated token>, body {"scope":[...],"lifetime":"<n>s"} with the scopes
 * of `scope` (NULL: cloud-platform) and lifetime 600-43200 s.
 */
int ft_gcp_build_generate(const char *iam_endpoint, const char *service_account, const char *federated_token,
                          const char *scope, int lifetime, struct ft_request **ret, struct ft_diag *diag);
/* {"accessToken","expireTime"}; expireTime is RFC 3339. */
int ft_gcp_parse_generate(const char *body, size_t len, struct ft_access_token **ret, struct ft_diag *diag);

/* What was sent, so the diagnosis can name it. Any field may be NULL/0. */
struct ft_gcp_context {
        const char *step;              /* "sts" or "iam" */
        const char *audience;
        const char *service_account;
        const struct ft_jwt *subject;  /* decoded claims of the JWT sent */
        int64_t now;
        const char *scope;             /* the scopes requested (space-separated) */
        int lifetime;                  /* the generateAccessToken lifetime requested, seconds */
};
/*
 * A non-200 answer: OAuth {"error","error_description"} (STS) or Google
 * {"error":{"code","message","status"}} (IAM). Sets diag->code to the OAuth
 * error or the Google status, diag->retry (BACKOFF for 429, 5xx and
 * transient statuses, SLOW for what a person must fix, NOW for a token that
 * had expired on the way) and a sentence naming the values sent. Google's
 * own message is quoted capped, cleaned and with token-like strings removed.
 */
void ft_gcp_explain_error(long status, const char *body, size_t len, const struct ft_gcp_context *ctx,
                          struct ft_diag *diag);

/*
 * The external_account JSON (protocols.md 4.3) pointing Google client
 * libraries at `token_file` (an absolute path, format text); impersonation
 * URL and lifetime (600-43200 s) when `service_account` is set. A
 * NUL-terminated, newline-terminated document to free(); -EINVAL for a value
 * that is not valid.
 */
int ft_gcp_external_account(const char *audience, const char *token_file, const char *sts_endpoint,
                            const char *iam_endpoint, const char *service_account, int lifetime, char **ret_json);
/*
 * The same, plus "scopes" (the space-separated `scope` as a list) when
 * `scope` is set and is not the libraries' default, cloud-platform alone.
 */
int ft_gcp_external_account_scoped(const char *audience, const char *token_file, const char *sts_endpoint,
                                   const char *iam_endpoint, const char *service_account, int lifetime,
                                   const char *scope, char **ret_json);

#endif
