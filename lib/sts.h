/* SPDX-License-Identifier: MIT */
/*
 * sts.h: AWS STS over the query protocol: GetWebIdentityToken (signed) and
 * AssumeRoleWithWebIdentity (unsigned), endpoint resolution, response and
 * error XML (expat), and a plain-language explanation of every error.
 */
#ifndef FT_STS_H
#define FT_STS_H

#include "ft.h"
#include "httpmsg.h"

struct ft_aws_creds;

#define FT_STS_MAX_AUDIENCES 10
#define FT_STS_MIN_DURATION 60
#define FT_STS_MAX_DURATION 3600
#define FT_STS_DEFAULT_DURATION 300
#define FT_STS_MAX_BODY (64 * 1024)

struct ft_sts_tag {
        const char *key;
        const char *value;
};

struct ft_gwit_params {
        const char *const *audiences;   /* 1..10 */
        size_t n_audiences;
        const char *signing_algorithm;  /* "RS256" (default when NULL) or "ES384" */
        int duration;                   /* 60..3600; 0 = omit (STS default 300) */
        const struct ft_sts_tag *tags;
        size_t n_tags;
};

/*
 * Regional endpoint URL for `region`, as the AWS SDKs resolve it:
 * "https://sts.<region>.amazonaws.com/", "sts-fips." with `fips`,
 * ".api.aws" with `dualstack`, ".amazonaws.com.cn" (dual-stack
 * ".api.amazonwebservices.com.cn") for cn-*; in GovCloud the plain name is
 * already the FIPS endpoint. Always sign with `region` itself.
 * There is deliberately no global endpoint: GetWebIdentityToken is served by
 * regional endpoints only, so "aws-global" is refused like any string that
 * does not look like a region (lower-case letters and digits in at least
 * three '-'-separated labels, the last all digits, at most 40 characters).
 * -EINVAL for such a region, -EOPNOTSUPP for dual-stack in a partition
 * without it (the ISO partitions).
 */
int ft_sts_endpoint(const char *region, bool fips, bool dualstack, char **ret_url);

/*
 * The unsigned POST: Host, Content-Type (application/x-www-form-urlencoded;
 * charset=utf-8) and the body, byte-identical to the AWS SDK's. The caller
 * signs it with ft_sigv4_sign(service "sts"). Every parameter is checked
 * against STS's limits first (audiences 1..1000 characters, tag keys
 * 1..128 and values 0..256 characters of STS's tag alphabet, keys unique
 * ignoring case); -EINVAL with a diagnosis naming the offending value.
 */
int ft_sts_build_gwit(const char *endpoint_url, const struct ft_gwit_params *p,
                      struct ft_request **ret, struct ft_diag *diag);
/*
 * The unsigned AssumeRoleWithWebIdentity POST (IRSA): Host, Content-Type
 * application/x-www-form-urlencoded, body Action, Version, RoleArn,
 * RoleSessionName, WebIdentityToken (sent exactly as given, untrimmed, as
 * the SDKs send the file content) and DurationSeconds when `duration` > 0
 * (900..43200). -EINVAL for an ARN not starting "arn:", a session name
 * outside [A-Za-z0-9_+=,.@-]{2,64}, an empty or >20000-byte token: the
 * caller validates configuration beforehand to say which.
 */
int ft_sts_build_arwwi(const char *endpoint_url, const char *role_arn, const char *session_name,
                       const char *web_identity_token, int duration, struct ft_request **ret);

/*
 * Success bodies (at most FT_STS_MAX_BODY bytes; no DOCTYPE; namespace
 * prefixes ignored; every element read must appear once). The token is a
 * secret: free it with ft_free_secret. ARWWI fills access key, secret,
 * session token, expiration, role_arn (the AssumedRoleUser ARN) and
 * account_id (from that ARN). -EBADMSG / -EMSGSIZE with a diagnosis.
 */
int ft_sts_parse_gwit(const char *body, size_t len, char **ret_token, int64_t *ret_expiration,
                      struct ft_diag *diag);
int ft_sts_parse_arwwi(const char *body, size_t len, struct ft_aws_creds **ret, struct ft_diag *diag);

/* What the caller knows, so the explanation can name it. Any field may be NULL/0. */
struct ft_sts_context {
        const char *operation;      /* "GetWebIdentityToken" (the default) or "AssumeRoleWithWebIdentity" */
        const char *region;
        const char *endpoint;
        const char *account_id;     /* when known */
        const char *principal_arn;  /* role ARN when known */
        const char *credential_source; /* "imds", "env", ... */
        int duration;               /* requested DurationSeconds */
        int64_t creds_expiration;
        int64_t now;
};

/*
 * Turn a non-200 answer into a diagnosis: parses the ErrorResponse XML (Code,
 * Message, Type, RequestId; also <Response><Errors><Error>), sets diag->code
 * to the Code, diag->retry to the class the Code calls for (not the HTTP
 * status), diag->http_status, and diag->msg to a sentence saying what
 * happened and what to do, followed by AWS's quoted Message and the request
 * id. Works on malformed or empty bodies too (then it speaks of the status).
 * `ctx` may be NULL. The whole of *diag is overwritten: set retry_after from
 * the response afterwards.
 */
void ft_sts_explain_error(long status, const char *body, size_t len, const struct ft_sts_context *ctx,
                          struct ft_diag *diag);

/*
 * DurationSeconds that does not outlive the signing credentials:
 * min(requested, creds_expiration - now - margin). Returns the duration, or
 * -ERANGE when less than 60 s would be left (fetch fresh credentials first).
 * creds_expiration 0 means the credentials do not expire. `requested` 0
 * stands for STS's default of 300 s and is returned as 0 when that fits.
 * -EINVAL for a requested duration outside 60..3600 or a negative margin.
 */
int ft_sts_clamp_duration(int requested, int64_t creds_expiration, int64_t now, int margin);

#endif
