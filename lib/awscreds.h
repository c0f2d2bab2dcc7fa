/* SPDX-License-Identifier: MIT */
/*
 * awscreds.h: AWS credentials and the sans-I/O half of every provider:
 * environment, shared credentials file, web identity (IRSA), container
 * endpoint (ECS, EKS Pod Identity) and IMDSv2. Builders return the request
 * to send; parsers take the response bytes. daemon/ moves the bytes and reads
 * files; lib/ decides.
 */
#ifndef FT_AWSCREDS_H
#define FT_AWSCREDS_H

#include "ft.h"
#include "httpmsg.h"

struct ft_aws_creds {
        char *access_key_id;
        char *secret_access_key;   /* secret: wiped on free */
        char *session_token;       /* secret, NULL for long-term keys */
        int64_t expiration;        /* epoch seconds; 0 = does not expire */
        char *role_arn;            /* from ARWWI / ECS answers when known, else NULL */
        char *account_id;          /* from Pod Identity answers when known, else NULL */
};

struct ft_aws_creds *ft_aws_creds_new(void);
int ft_aws_creds_dup(const struct ft_aws_creds *c, struct ft_aws_creds **ret);
void ft_aws_creds_free(struct ft_aws_creds *c);   /* wipes, accepts NULL */

/* An environment lookup, so tests can inject one. Returns NULL when unset. */
typedef const char *(*ft_getenv_fn)(const char *name, void *userdata);

/*
 * AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN,
 * AWS_CREDENTIAL_EXPIRATION). -ENOENT when neither key is set; -EINVAL with a
 * diagnosis when only one is, or the expiration does not parse.
 */
int ft_aws_creds_from_env(ft_getenv_fn env, void *ud, struct ft_aws_creds **ret, struct ft_diag *diag);

/*
 * Static keys of `profile` in a shared credentials file's text
 * (aws_access_key_id, aws_secret_access_key, aws_session_token). -ENOENT when
 * the profile is absent; file:line diagnoses for malformed text; -EINVAL
 * naming the missing key when only some are there; -EOPNOTSUPP for a profile
 * that assumes a role (role_arn) or, without static keys, uses
 * credential_process, SSO or a web identity token file.
 */
int ft_aws_creds_from_profile(const char *text, size_t len, const char *filename,
                              const char *profile, struct ft_aws_creds **ret, struct ft_diag *diag);
/*
 * `region` of `profile` in a shared config file's text (section "[profile X]",
 * or "[default]"). -ENOENT if absent, -EINVAL if it is not a region name
 * (lower-case letters, digits, '-'). ret is malloc'd.
 */
int ft_aws_config_region(const char *text, size_t len, const char *profile, char **ret);

/*
 * The JSON the IMDS and container endpoints answer: AccessKeyId,
 * SecretAccessKey, Token, Expiration (+ Code, which must be "Success" when
 * present, RoleArn, AccountId). A 4xx JSON {"Code","Message"} is explained.
 * -EBADMSG for an answer that is not such a document (over 64 KiB, not JSON,
 * a field missing); -EACCES when the endpoint says why it has no credentials
 * (Code other than "Success", or a Message), with the Code in diag->code.
 */
int ft_aws_creds_parse_json(const char *body, size_t len, struct ft_aws_creds **ret, struct ft_diag *diag);

/* IMDSv2. `endpoint` is e.g. "http://169.254.169.254" (no trailing slash needed). */
#define FT_IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define FT_IMDS_DEFAULT_ENDPOINT_V6 "http://[fd00:ec2::254]"
#define FT_IMDS_TOKEN_TTL 21600
/*
 * The three IMDSv2 requests. `endpoint` is scheme://host[:port] with at most a
 * trailing slash; ttl is 1 to 21600; the token must be header-safe; the role
 * is sent as one path segment (percent-encoded), so '/', "." and ".." and
 * control characters are refused. -EINVAL for any of these.
 */
int ft_imds_build_token(const char *endpoint, int ttl, struct ft_request **ret);
int ft_imds_build_role(const char *endpoint, const char *token, struct ft_request **ret);
int ft_imds_build_creds(const char *endpoint, const char *token, const char *role, struct ft_request **ret);
/*
 * The token PUT's answer, trimmed of surrounding white space and checked to
 * be one header-safe token (at most 4 KiB). -EBADMSG otherwise.
 */
int ft_imds_parse_token(const char *body, size_t len, char **ret, struct ft_diag *diag);
/*
 * First non-empty line of the role listing, trimmed, checked to be an IAM
 * role name ([\w+=,.@-]{1,128}). -ENOENT with a diagnosis when the listing
 * is empty (no instance profile), -EBADMSG when the line is not a role name.
 */
int ft_imds_parse_role(const char *body, size_t len, char **ret, struct ft_diag *diag);
/*
 * Explains a non-200 IMDS status (401 → token expired, 404 → no instance
 * profile, …) in diag->msg, and sets diag->retry and diag->http_status.
 * `step` is "token", "role" or "credentials": the request that got it.
 */
void ft_imds_explain_status(long status, const char *step, struct ft_diag *diag);

/*
 * Container provider. The URL is "http://169.254.170.2" + RELATIVE_URI, or
 * FULL_URI, which must be https, or http to a loopback address, localhost,
 * 169.254.170.2, 169.254.170.23 or [fd00:ec2::23] (the SDKs' rule).
 * `authorization` (from AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]) may be NULL;
 * it is refused when it contains CR or LF.
 * ft_container_url: -ENOENT when neither variable is set (or both are empty),
 * -EINVAL with a diagnosis naming the variable, host and rule when refused.
 * ft_container_build checks the URL again by the same rule.
 */
#define FT_ECS_CONTAINER_HOST "http://169.254.170.2"
int ft_container_url(const char *relative_uri, const char *full_uri, char **ret, struct ft_diag *diag);
int ft_container_build(const char *url, const char *authorization, struct ft_request **ret, struct ft_diag *diag);

/* True when plain http to this URL is one the AWS SDKs allow (IMDS/container hosts, loopback). */
bool ft_aws_http_allowed(const char *url);

#endif
