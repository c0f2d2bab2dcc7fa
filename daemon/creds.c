/* SPDX-License-Identifier: MIT */
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sts.h"
#include "timeutil.h"
#include "util.h"

/* Token files (IRSA, Pod Identity) are JWTs: a few KiB. */
#define TOKEN_FILE_MAX (16 * 1024)
#define SHARED_FILE_MAX (1024 * 1024)
#define IMDS_TIMEOUT_MS 2000

enum imds_step { IMDS_TOKEN, IMDS_ROLE, IMDS_CREDS };

struct creds_source {
        uv_loop_t *loop;
        struct fetcher *fetcher;
        const struct ft_config *cfg;
        ft_getenv_fn env;
        void *env_ud;
        enum ft_cred_provider kind;

        /* The one fetch under way and who gets its outcome. */
        bool busy;
        struct fetch *inflight;
        creds_done_fn done;
        void *done_ud;

        /* IMDSv2 session: the token is reused until 80 % of its TTL or a 401. */
        char *imds_endpoint;
        char *imds_token;
        int64_t imds_token_expires_ms;     /* monotonic */
        enum imds_step imds_step;
        bool imds_retried_401;
        char *imds_role;

        char *sts_endpoint;                /* for AssumeRoleWithWebIdentity */
};

int sts_endpoint_resolve(const struct ft_config *cfg, char **ret, struct ft_diag *diag)
{
        const struct ft_config_aws *a = &cfg->aws;
        int r;

        if (a->sts_endpoint) {
                *ret = strdup(a->sts_endpoint);
                return *ret ? 0 : -ENOMEM;
        }
        if (!a->region) {
                ft_diag_set(diag, "no AWS region: set [aws] region or AWS_REGION (GetWebIdentityToken is served "
                                  "only by regional STS endpoints)");
                return -EINVAL;
        }
        r = ft_sts_endpoint(a->region, a->use_fips_endpoint, a->use_dualstack_endpoint, ret);
        if (r == -EOPNOTSUPP)
                ft_diag_set(diag, "region %s has no %s STS endpoint", a->region,
                            a->use_dualstack_endpoint ? "dual-stack" : "FIPS");
        else if (r < 0)
                ft_diag_set(diag, "\"%s\" is not an AWS region with a regional STS endpoint (the global "
                                  "endpoint does not serve GetWebIdentityToken)", a->region);
        return r;
}

const char *creds_source_kind(const struct creds_source *s)
{
        return ft_cred_provider_name(s->kind);
}

/* The shared credentials file: [aws] shared_credentials_file (AWS_SHARED_CREDENTIALS_FILE), else ~/.aws/credentials. */
static char *shared_credentials_path(const struct ft_config *cfg, ft_getenv_fn env, void *ud)
{
        const char *home = env ? env("HOME", ud) : NULL;
        char *path = NULL;

        if (cfg->aws.shared_credentials_file)
                return strdup(cfg->aws.shared_credentials_file);
        if (!home || home[0] != '/' || asprintf(&path, "%s/.aws/credentials", home) < 0)
                return NULL;
        return path;
}

static bool shared_profile_usable(const struct ft_config *cfg, ft_getenv_fn env, void *ud)
{
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;
        char *path = shared_credentials_path(cfg, env, ud), *text = NULL;
        size_t len;
        int r;

        if (!path)
                return false;
        r = read_file_capped(path, SHARED_FILE_MAX, &text, &len, &diag);
        if (r >= 0) {
                r = ft_aws_creds_from_profile(text, len, path, cfg->aws.profile, &c, &diag);
                ft_wipe(text, len);
                free(text);
        }
        ft_aws_creds_free(c);
        free(path);
        return r == 0;
}

/* The auto chain: the first provider this host is configured for. */
static enum ft_cred_provider choose_provider(const struct ft_config *cfg, ft_getenv_fn env, void *ud,
                                             struct ft_diag *diag)
{
        const struct ft_config_aws *a = &cfg->aws;

        if (a->credentials != FT_CREDS_AUTO)
                return a->credentials;
        if (env && (env("AWS_ACCESS_KEY_ID", ud) || env("AWS_SECRET_ACCESS_KEY", ud)))
                return FT_CREDS_ENV;
        if (shared_profile_usable(cfg, env, ud))
                return FT_CREDS_PROFILE;
        if (a->web_identity_token_file && a->role_arn)
                return FT_CREDS_WEB_IDENTITY;
        if (a->container_relative_uri || a->container_full_uri)
                return FT_CREDS_CONTAINER;
        if (!a->imds_disabled)
                return FT_CREDS_IMDS;
        ft_diag_set(diag,
                    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile in the "
                    "shared credentials file, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or "
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI; the instance metadata service is disabled "
                    "(AWS_EC2_METADATA_DISABLED)");
        diag->retry = FT_RETRY_SLOW;
        return FT_CREDS_AUTO;
}

int creds_source_new(uv_loop_t *loop, struct fetcher *f, const struct ft_config *cfg, ft_getenv_fn env,
                     void *env_ud, struct creds_source **ret, struct ft_diag *diag)
{
        struct creds_source *s;
        enum ft_cred_provider kind;

        kind = choose_provider(cfg, env, env_ud, diag);
        if (kind == FT_CREDS_AUTO)
                return -ENOENT;
        if (kind == FT_CREDS_WEB_IDENTITY && (!cfg->aws.web_identity_token_file || !cfg->aws.role_arn)) {
                ft_diag_set(diag, "credentials = web-identity needs web_identity_token_file and role_arn "
                                  "(AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)");
                return -EINVAL;
        }
        if (kind == FT_CREDS_CONTAINER && !cfg->aws.container_relative_uri && !cfg->aws.container_full_uri) {
                ft_diag_set(diag, "credentials = container needs AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or "
                                  "AWS_CONTAINER_CREDENTIALS_FULL_URI (container_relative_uri, container_full_uri)");
                return -EINVAL;
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->fetcher = f;
        s->cfg = cfg;
        s->env = env;
        s->env_ud = env_ud;
        s->kind = kind;
        s->imds_endpoint = strdup(cfg->aws.imds_endpoint ? cfg->aws.imds_endpoint
                                  : cfg->aws.imds_ipv6 ? FT_IMDS_DEFAULT_ENDPOINT_V6
                                                       : FT_IMDS_DEFAULT_ENDPOINT);
        /* Only web identity talks to STS here; its absence is reported when it is needed. */
        if (kind == FT_CREDS_WEB_IDENTITY && sts_endpoint_resolve(cfg, &s->sts_endpoint, diag) < 0) {
                free(s->imds_endpoint);
                free(s);
                return -EINVAL;
        }
        if (!s->imds_endpoint) {
                creds_source_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/*
 * Hand the outcome to whoever asked, exactly once. The callback may start
 * the next fetch, so the source is idle before it runs.
 */
static void finish(struct creds_source *s, struct ft_aws_creds *c, const struct ft_diag *diag)
{
        creds_done_fn done = s->done;
        void *ud = s->done_ud;

        s->busy = false;
        s->done = NULL;
        s->done_ud = NULL;
        if (c && !c->role_arn && s->imds_role) {
                /* IMDS does not return the ARN; keep the role name for messages. */
                c->role_arn = strdup(s->imds_role);
        }
        done(ud, c, c ? NULL : diag);
}

static void refresh_succeeded(struct creds_source *s, struct ft_aws_creds *c)
{
        finish(s, c, NULL);
}

static void refresh_failed(struct creds_source *s, const struct ft_diag *diag)
{
        finish(s, NULL, diag);
}

/* --- providers --- */

static void fetch_env(struct creds_source *s)
{
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;
        int r;

        r = ft_aws_creds_from_env(s->env, s->env_ud, &c, &diag);
        if (r == -ENOENT)
                ft_diag_set(&diag, "credentials = env, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                refresh_failed(s, &diag);
                return;
        }
        refresh_succeeded(s, c);
}

static void fetch_profile(struct creds_source *s)
{
        char *path = shared_credentials_path(s->cfg, s->env, s->env_ud);
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;
        char *text = NULL;
        size_t len = 0;
        int r;

        if (!path) {
                ft_diag_set(&diag, "credentials = profile, but no shared credentials file is known "
                                   "(set shared_credentials_file or AWS_SHARED_CREDENTIALS_FILE)");
                r = -EINVAL;
        } else {
                r = read_file_capped(path, SHARED_FILE_MAX, &text, &len, &diag);
                if (r >= 0) {
                        r = ft_aws_creds_from_profile(text, len, path, s->cfg->aws.profile, &c, &diag);
                        if (r == -ENOENT)
                                ft_diag_set(&diag, "profile \"%s\" not found in %s", s->cfg->aws.profile, path);
                        ft_wipe(text, len);
                        free(text);
                }
        }
        free(path);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                refresh_failed(s, &diag);
                return;
        }
        refresh_succeeded(s, c);
}

static void on_web_identity_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct creds_source *s = ud;
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;

        s->inflight = NULL;
        if (error < 0) {
                ft_diag_set(&diag, "AssumeRoleWithWebIdentity at %s failed: %s", s->sts_endpoint, errmsg);
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
                return;
        }
        if (resp->status != 200) {
                struct ft_sts_context ctx = {
                        .operation = "AssumeRoleWithWebIdentity",
                        .region = s->cfg->aws.region,
                        .endpoint = s->sts_endpoint,
                        .principal_arn = s->cfg->aws.role_arn,
                        .credential_source = "web-identity",
                        .now = now_wall_ms() / 1000,
                };
                ft_sts_explain_error(resp->status, resp->body, resp->body_len, &ctx, &diag);
                diag.retry_after = resp->retry_after;
                refresh_failed(s, &diag);
                return;
        }
        if (ft_sts_parse_arwwi(resp->body, resp->body_len, &c, &diag) < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
                return;
        }
        refresh_succeeded(s, c);
}

static void fetch_web_identity(struct creds_source *s)
{
        const struct ft_config_aws *a = &s->cfg->aws;
        struct fetch_opts opts = { .timeout_ms = s->cfg->daemon.http_timeout * 1000L };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        char *token = NULL;
        size_t len = 0;
        int r;

        /* The projected token rotates underneath us: read it on every refresh, as the SDKs do. */
        r = read_file_capped(a->web_identity_token_file, TOKEN_FILE_MAX, &token, &len, &diag);
        if (r >= 0 && len == 0) {
                ft_diag_set(&diag, "web identity token file %s is empty", a->web_identity_token_file);
                r = -EINVAL;
        }
        if (r < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                ft_free_secret(token);
                refresh_failed(s, &diag);
                return;
        }
        r = ft_sts_build_arwwi(s->sts_endpoint, a->role_arn, a->role_session_name, token, 0, &req);
        ft_free_secret(token);
        if (r < 0) {
                ft_diag_set(&diag, "cannot build AssumeRoleWithWebIdentity request: %s", strerror(-r));
                diag.retry = FT_RETRY_SLOW;
                refresh_failed(s, &diag);
                return;
        }
        opts.allow_http = ft_aws_http_allowed(s->sts_endpoint) && strncmp(s->sts_endpoint, "http:", 5) == 0;
        r = fetcher_start(s->fetcher, req, &opts, on_web_identity_done, s, &s->inflight);
        if (r < 0) {
                ft_diag_set(&diag, "cannot start request to %s: %s", s->sts_endpoint, strerror(-r));
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
        }
}

/* A non-200 from the container endpoint: its JSON {"Code","Message"} if any, else the status. */
static void explain_container_error(const struct ft_response *resp, const char *url, struct ft_diag *diag)
{
        struct ft_aws_creds *c = NULL;

        if (ft_aws_creds_parse_json(resp->body, resp->body_len, &c, diag) == 0) {
                ft_aws_creds_free(c);
                ft_diag_set(diag, "container credentials endpoint %s answered HTTP %ld", url, resp->status);
        }
        if (resp->status == 401 || resp->status == 403) {
                char detail[sizeof(diag->msg)];
                snprintf(detail, sizeof(detail), "%s", diag->msg);
                ft_diag_set(diag,
                            "container credentials endpoint refused the authorization token (HTTP %ld): check "
                            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and that the pod's service account is "
                            "associated (%s)",
                            resp->status, detail);
                diag->retry = FT_RETRY_SLOW;
        } else if (resp->status == 429 || resp->status >= 500) {
                diag->retry = FT_RETRY_BACKOFF;
        } else {
                diag->retry = FT_RETRY_SLOW;
        }
        diag->http_status = resp->status;
        diag->retry_after = resp->retry_after;
}

static void on_container_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct creds_source *s = ud;
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;
        const char *what = s->cfg->aws.container_relative_uri ? "ECS container credentials endpoint"
                                                              : "container credentials endpoint";

        s->inflight = NULL;
        if (error < 0) {
                ft_diag_set(&diag, "%s: %s", what, errmsg);
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
                return;
        }
        if (resp->status != 200) {
                explain_container_error(resp, what, &diag);
                refresh_failed(s, &diag);
                return;
        }
        if (ft_aws_creds_parse_json(resp->body, resp->body_len, &c, &diag) < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
                return;
        }
        refresh_succeeded(s, c);
}

static void fetch_container(struct creds_source *s)
{
        const struct ft_config_aws *a = &s->cfg->aws;
        struct fetch_opts opts = { .timeout_ms = s->cfg->daemon.http_timeout * 1000L };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        _cleanup_free_ char *url = NULL;
        char *auth = NULL;
        size_t len = 0;
        int r;

        r = ft_container_url(a->container_relative_uri, a->container_full_uri, &url, &diag);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                refresh_failed(s, &diag);
                return;
        }
        /* The token file wins over the variable and is re-read every time: Pod Identity rotates it. */
        if (a->container_token_file) {
                r = read_file_capped(a->container_token_file, TOKEN_FILE_MAX, &auth, &len, &diag);
                if (r < 0) {
                        diag.retry = FT_RETRY_BACKOFF;
                        refresh_failed(s, &diag);
                        return;
                }
        } else if (s->env && s->env("AWS_CONTAINER_AUTHORIZATION_TOKEN", s->env_ud)) {
                auth = strdup(s->env("AWS_CONTAINER_AUTHORIZATION_TOKEN", s->env_ud));
                if (!auth) {
                        ft_diag_set(&diag, "out of memory");
                        refresh_failed(s, &diag);
                        return;
                }
        }
        r = ft_container_build(url, auth, &req, &diag);
        ft_free_secret(auth);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                refresh_failed(s, &diag);
                return;
        }
        opts.allow_http = ft_aws_http_allowed(url);
        r = fetcher_start(s->fetcher, req, &opts, on_container_done, s, &s->inflight);
        if (r < 0) {
                ft_diag_set(&diag, "cannot start request to the container endpoint: %s", strerror(-r));
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
        }
}

static void imds_next(struct creds_source *s);

static void imds_drop_token(struct creds_source *s)
{
        ft_free_secret(s->imds_token);
        s->imds_token = NULL;
        s->imds_token_expires_ms = 0;
}

static const char *imds_step_name(enum imds_step step)
{
        return step == IMDS_TOKEN ? "token" : step == IMDS_ROLE ? "role" : "credentials";
}

static void on_imds_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct creds_source *s = ud;
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;
        char *value = NULL;

        s->inflight = NULL;
        if (error < 0) {
                ft_diag_set(&diag, "instance metadata service (%s) %s request: %s", s->imds_endpoint,
                            imds_step_name(s->imds_step), errmsg);
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
                return;
        }
        if (resp->status == 401 && s->imds_step != IMDS_TOKEN && !s->imds_retried_401) {
                /* The session token expired or IMDS restarted: one new token, then give up this round. */
                s->imds_retried_401 = true;
                imds_drop_token(s);
                s->imds_step = IMDS_TOKEN;
                imds_next(s);
                return;
        }
        if (resp->status != 200) {
                ft_imds_explain_status(resp->status, imds_step_name(s->imds_step), &diag);
                diag.retry_after = resp->retry_after;
                diag.http_status = resp->status;
                if (resp->status == 401)
                        imds_drop_token(s);
                refresh_failed(s, &diag);
                return;
        }
        switch (s->imds_step) {
        case IMDS_TOKEN:
                if (ft_imds_parse_token(resp->body, resp->body_len, &value, &diag) < 0) {
                        diag.retry = FT_RETRY_BACKOFF;
                        refresh_failed(s, &diag);
                        return;
                }
                imds_drop_token(s);
                s->imds_token = value;
                /* Renew at 80 % of the TTL so a token never dies between two requests. */
                s->imds_token_expires_ms = now_mono_ms() + FT_IMDS_TOKEN_TTL * 800L;
                s->imds_step = IMDS_ROLE;
                break;
        case IMDS_ROLE:
                if (ft_imds_parse_role(resp->body, resp->body_len, &value, &diag) < 0) {
                        diag.retry = FT_RETRY_BACKOFF;
                        refresh_failed(s, &diag);
                        return;
                }
                free(s->imds_role);
                s->imds_role = value;
                s->imds_step = IMDS_CREDS;
                break;
        case IMDS_CREDS:
                if (ft_aws_creds_parse_json(resp->body, resp->body_len, &c, &diag) < 0) {
                        diag.retry = FT_RETRY_BACKOFF;
                        refresh_failed(s, &diag);
                        return;
                }
                if (c->expiration && c->expiration <= now_wall_ms() / 1000) {
                        char exp[21];
                        ft_time_format_rfc3339(c->expiration, exp);
                        ft_diag_set(&diag, "instance metadata service returned credentials that already expired "
                                           "(at %s); the instance clock may be wrong", exp);
                        diag.retry = FT_RETRY_BACKOFF;
                        ft_aws_creds_free(c);
                        refresh_failed(s, &diag);
                        return;
                }
                refresh_succeeded(s, c);
                return;
        }
        imds_next(s);
}

static void imds_next(struct creds_source *s)
{
        struct fetch_opts opts = { .allow_http = true, .timeout_ms = IMDS_TIMEOUT_MS };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        int r;

        if (s->imds_step != IMDS_TOKEN && (!s->imds_token || now_mono_ms() >= s->imds_token_expires_ms)) {
                imds_drop_token(s);
                s->imds_step = IMDS_TOKEN;
        }
        switch (s->imds_step) {
        case IMDS_TOKEN:
                r = ft_imds_build_token(s->imds_endpoint, FT_IMDS_TOKEN_TTL, &req);
                break;
        case IMDS_ROLE:
                r = ft_imds_build_role(s->imds_endpoint, s->imds_token, &req);
                break;
        case IMDS_CREDS:
        default:
                r = ft_imds_build_creds(s->imds_endpoint, s->imds_token, s->imds_role, &req);
                break;
        }
        if (r < 0) {
                ft_diag_set(&diag, "cannot build the instance metadata %s request for %s: %s",
                            imds_step_name(s->imds_step), s->imds_endpoint, strerror(-r));
                diag.retry = FT_RETRY_SLOW;
                refresh_failed(s, &diag);
                return;
        }
        r = fetcher_start(s->fetcher, req, &opts, on_imds_done, s, &s->inflight);
        if (r < 0) {
                ft_diag_set(&diag, "cannot start the instance metadata request: %s", strerror(-r));
                diag.retry = FT_RETRY_BACKOFF;
                refresh_failed(s, &diag);
        }
}

static void fetch_imds(struct creds_source *s)
{
        s->imds_retried_401 = false;
        s->imds_step = IMDS_ROLE;   /* imds_next goes back to TOKEN when there is none */
        imds_next(s);
}

int creds_fetch(struct creds_source *s, creds_done_fn done, void *userdata)
{
        if (!done)
                return -EINVAL;
        if (s->busy)
                return -EBUSY;
        s->busy = true;
        s->done = done;
        s->done_ud = userdata;
        switch (s->kind) {
        case FT_CREDS_ENV:
                fetch_env(s);
                break;
        case FT_CREDS_PROFILE:
                fetch_profile(s);
                break;
        case FT_CREDS_WEB_IDENTITY:
                fetch_web_identity(s);
                break;
        case FT_CREDS_CONTAINER:
                fetch_container(s);
                break;
        case FT_CREDS_IMDS:
        case FT_CREDS_AUTO:
        default:
                fetch_imds(s);
                break;
        }
        return 0;
}

void creds_fetch_cancel(struct creds_source *s)
{
        if (!s || !s->busy)
                return;
        if (s->inflight)
                fetch_cancel(s->inflight);
        s->inflight = NULL;
        s->busy = false;
        s->done = NULL;
        s->done_ud = NULL;
}

void creds_source_free(struct creds_source *s)
{
        if (!s)
                return;
        creds_fetch_cancel(s);
        imds_drop_token(s);
        free(s->imds_role);
        free(s->imds_endpoint);
        free(s->sts_endpoint);
        free(s);
}
