/* SPDX-License-Identifier: MIT */
#include "jwtfetch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "creds.h"
#include "log.h"
#include "sigv4.h"
#include "sts.h"
#include "timeutil.h"
#include "util.h"

/* A response Date this far from our clock means our clock is wrong (the SDKs use 4 min). */
#define SKEW_LIMIT_S 240
/* How far in the future a token's iat may be before we call the clocks inconsistent. */
#define IAT_SKEW_S 300

struct jwt_fetcher {
        struct fetcher *fetcher;
        const struct ft_config *cfg;
        const struct ft_config_jwt *def;
        char *name;                  /* "jwt.NAME", for log lines */
        char *endpoint;              /* STS URL */
        struct ft_sigv4_cache *sigv4;
        int64_t clock_offset_s;      /* learned from STS's Date header after a skew error */

        /* The fetch under way. */
        bool busy;
        struct fetch *inflight;
        jwt_done_fn done;
        void *done_ud;
        int duration;
        /* Non-secret facts about the signing credentials, for explanations. */
        char *principal_arn;
        char *account_id;
        char *creds_source;
        int64_t creds_expiration;
        /* The token being verified. */
        struct jwt_token *pending;
        char *jwks_uri;
};

void jwt_token_free(struct jwt_token *t)
{
        if (!t)
                return;
        if (t->token) {
                ft_wipe(t->token, t->len);
                free(t->token);
        }
        ft_jwt_free(t->claims);
        free(t);
}

int jwt_fetcher_new(struct fetcher *f, const struct ft_config *cfg, const struct ft_config_jwt *def,
                    struct jwt_fetcher **ret, struct ft_diag *diag)
{
        struct jwt_fetcher *j;
        int r;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->fetcher = f;
        j->cfg = cfg;
        j->def = def;
        if (asprintf(&j->name, "jwt.%s", def->name) < 0) {
                free(j);
                return -ENOMEM;
        }
        /* SigV4 needs the region even when the endpoint is overridden. */
        if (!cfg->aws.region) {
                ft_diag_set(diag, "no AWS region: set [aws] region or AWS_REGION (GetWebIdentityToken is served "
                                  "only by regional STS endpoints, and requests are signed for a region)");
                r = -EINVAL;
        } else {
                r = sts_endpoint_resolve(cfg, &j->endpoint, diag);
        }
        if (r >= 0)
                r = ft_sigv4_cache_new(&j->sigv4);
        if (r < 0) {
                jwt_fetcher_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

static void clear_fetch(struct jwt_fetcher *j)
{
        jwt_token_free(j->pending);
        j->pending = NULL;
        free(j->principal_arn);
        free(j->account_id);
        free(j->creds_source);
        j->principal_arn = j->account_id = j->creds_source = NULL;
        j->busy = false;
        j->inflight = NULL;
        j->done = NULL;
        j->done_ud = NULL;
}

/* Hand the outcome over exactly once; the fetcher is idle before the callback runs. */
static void finish(struct jwt_fetcher *j, struct jwt_token *tok, const struct ft_diag *diag, bool creds_stale)
{
        jwt_done_fn done = j->done;
        void *ud = j->done_ud;

        if (tok == j->pending)
                j->pending = NULL;
        clear_fetch(j);
        done(ud, tok, tok ? NULL : diag, creds_stale);
}

static void fail_msg(struct jwt_fetcher *j, enum ft_retry retry, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fail_msg(struct jwt_fetcher *j, enum ft_retry retry, const char *fmt, ...)
{
        struct ft_diag diag = { .retry = retry };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(diag.msg, sizeof(diag.msg), fmt, ap);
        va_end(ap);
        finish(j, NULL, &diag, false);
}

static void on_jwks_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct jwt_fetcher *j = ud;
        struct ft_diag diag = { 0 };

        j->inflight = NULL;
        if (error < 0) {
                fail_msg(j, FT_RETRY_BACKOFF, "cannot fetch the issuer's keys (JWKS): %s", errmsg);
                return;
        }
        if (resp->status != 200) {
                fail_msg(j, resp->status >= 500 ? FT_RETRY_BACKOFF : FT_RETRY_SLOW,
                         "the issuer's JWKS at %s answered HTTP %ld", j->jwks_uri, resp->status);
                return;
        }
        if (ft_jwt_verify_jwks(j->pending->claims, resp->body, resp->body_len, &diag) < 0) {
                char detail[sizeof(diag.msg)];
                snprintf(detail, sizeof(detail), "%s", diag.msg);
                ft_diag_set(&diag, "the token from STS failed signature verification against %s: %s",
                            j->jwks_uri, detail);
                diag.retry = FT_RETRY_SLOW;
                finish(j, NULL, &diag, false);
                return;
        }
        j->pending->verified = true;
        finish(j, j->pending, NULL, false);
}

static int start_get(struct jwt_fetcher *j, const char *url, size_t max_body, fetch_done_fn done)
{
        struct fetch_opts opts = { .timeout_ms = j->cfg->daemon.http_timeout * 1000L, .max_body = max_body };
        struct ft_request *req = NULL;
        int r;

        r = ft_request_new(&req, "GET", url);
        if (r < 0)
                return r;
        r = ft_request_add_header(req, "Accept", "application/json");
        if (r < 0) {
                ft_request_free(req);
                return r;
        }
        return fetcher_start(j->fetcher, req, &opts, done, j, &j->inflight);
}

static void on_discovery_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct jwt_fetcher *j = ud;
        const char *iss = j->pending->claims->iss;
        struct ft_diag diag = { 0 };
        char *jwks_uri = NULL;
        int r;

        j->inflight = NULL;
        if (error < 0) {
                fail_msg(j, FT_RETRY_BACKOFF, "cannot fetch the issuer's discovery document: %s", errmsg);
                return;
        }
        if (resp->status != 200) {
                fail_msg(j, resp->status >= 500 ? FT_RETRY_BACKOFF : FT_RETRY_SLOW,
                         "the issuer %s answered HTTP %ld for its discovery document", iss, resp->status);
                return;
        }
        if (ft_oidc_parse_config(resp->body, resp->body_len, iss, &jwks_uri, &diag) < 0) {
                diag.retry = FT_RETRY_SLOW;
                finish(j, NULL, &diag, false);
                return;
        }
        free(j->jwks_uri);
        j->jwks_uri = jwks_uri;
        r = start_get(j, j->jwks_uri, FT_JWKS_MAX_LEN, on_jwks_done);
        if (r < 0)
                fail_msg(j, FT_RETRY_BACKOFF, "cannot fetch %s: %s", j->jwks_uri, strerror(-r));
}

static void verify_pending(struct jwt_fetcher *j)
{
        const char *iss = j->pending->claims->iss;
        char *url = NULL;
        int r;

        /* Discovery is <iss>/.well-known/openid-configuration, and only ever over https. */
        if (!iss || strncmp(iss, "https://", 8) != 0) {
                fail_msg(j, FT_RETRY_SLOW, "cannot verify the token: its issuer \"%s\" is not an https URL",
                         iss ? iss : "");
                return;
        }
        if (asprintf(&url, "%s%s.well-known/openid-configuration", iss, iss[strlen(iss) - 1] == '/' ? "" : "/") < 0) {
                fail_msg(j, FT_RETRY_BACKOFF, "out of memory");
                return;
        }
        r = start_get(j, url, FT_OIDC_CONFIG_MAX_LEN, on_discovery_done);
        free(url);
        if (r < 0)
                fail_msg(j, FT_RETRY_BACKOFF, "cannot start the discovery request: %s", strerror(-r));
}

static bool is_skew_error(const char *code)
{
        return !strcmp(code, "RequestExpired") || !strcmp(code, "RequestTimeTooSkewed") ||
               !strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "InvalidSignatureException");
}

static bool is_stale_creds_error(const char *code)
{
        return !strcmp(code, "ExpiredToken") || !strcmp(code, "ExpiredTokenException") ||
               !strcmp(code, "SessionDurationEscalationException");
}

static void explain_sts_failure(struct jwt_fetcher *j, const struct ft_response *resp, int64_t now)
{
        struct ft_sts_context ctx = {
                .operation = "GetWebIdentityToken",
                .region = j->cfg->aws.region,
                .endpoint = j->endpoint,
                .principal_arn = j->principal_arn,
                .account_id = j->account_id,
                .credential_source = j->creds_source,
                .creds_expiration = j->creds_expiration,
                .duration = j->duration,
                .now = now,
        };
        struct ft_diag diag = { 0 };

        ft_sts_explain_error(resp->status, resp->body, resp->body_len, &ctx, &diag);
        diag.retry_after = resp->retry_after;
        if (is_skew_error(diag.code) && resp->date &&
            (resp->date - now > SKEW_LIMIT_S || now - resp->date > SKEW_LIMIT_S)) {
                /* Our clock is off: sign with STS's time from now on, as the SDKs do. */
                j->clock_offset_s = resp->date - now;
                snprintf(diag.msg + strlen(diag.msg), sizeof(diag.msg) - strlen(diag.msg),
                         " (this host's clock is %lld s %s STS's: fix time synchronisation; "
                         "signing with STS's time meanwhile)",
                         (long long)(j->clock_offset_s < 0 ? -j->clock_offset_s : j->clock_offset_s),
                         j->clock_offset_s < 0 ? "ahead of" : "behind");
                diag.retry = FT_RETRY_NOW;
        }
        finish(j, NULL, &diag, is_stale_creds_error(diag.code));
}

static void on_sts_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct jwt_fetcher *j = ud;
        struct ft_diag diag = { 0 };
        struct jwt_token *tok;
        int64_t expiration = 0, now = now_wall_ms() / 1000;
        const char *const *auds = (const char *const *)j->def->audiences;

        j->inflight = NULL;
        if (error < 0) {
                fail_msg(j, FT_RETRY_BACKOFF, "STS GetWebIdentityToken at %s failed: %s", j->endpoint, errmsg);
                return;
        }
        if (resp->status != 200) {
                explain_sts_failure(j, resp, now);
                return;
        }
        tok = calloc(1, sizeof(*tok));
        if (!tok) {
                fail_msg(j, FT_RETRY_BACKOFF, "out of memory");
                return;
        }
        j->pending = tok;
        if (ft_sts_parse_gwit(resp->body, resp->body_len, &tok->token, &expiration, &diag) < 0 ||
            ft_jwt_decode(tok->token, strlen(tok->token), &tok->claims, &diag) < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                finish(j, NULL, &diag, false);
                return;
        }
        tok->len = strlen(tok->token);
        /* Trust the token's own exp over the envelope, and never a token that is already unusable. */
        if (tok->claims->exp && tok->claims->exp < expiration)
                expiration = tok->claims->exp;
        tok->claims->exp = expiration;
        /* Judge the token by STS's time when our clock is known to be off. */
        if (ft_jwt_check(tok->claims, now + j->clock_offset_s, j->cfg->daemon.min_remaining, IAT_SKEW_S, auds,
                         j->def->n_audiences, &diag) < 0) {
                char detail[sizeof(diag.msg)];
                snprintf(detail, sizeof(detail), "%s", diag.msg);
                ft_diag_set(&diag, "STS returned an unusable token: %s", detail);
                diag.retry = FT_RETRY_BACKOFF;
                finish(j, NULL, &diag, false);
                return;
        }
        /*
         * Times are kept on the local clock: with a known offset, a token
         * STS says expires at T is unusable here at T - offset, and that is
         * when we must stop handing it out.
         */
        tok->expires = expiration - j->clock_offset_s;
        tok->issued = tok->claims->iat ? tok->claims->iat - j->clock_offset_s : now;
        tok->duration = j->duration;
        if (j->def->verify)
                verify_pending(j);
        else
                finish(j, tok, NULL, false);
}

static int dup_or_null(const char *s, char **ret)
{
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

int jwt_fetch(struct jwt_fetcher *j, const struct ft_aws_creds *c, const char *creds_source, jwt_done_fn done,
              void *userdata)
{
        struct ft_gwit_params p = {
                .audiences = (const char *const *)j->def->audiences,
                .n_audiences = j->def->n_audiences,
                .signing_algorithm = j->def->signing_algorithm,
        };
        struct ft_sts_tag tags[FT_CONFIG_MAX_TAGS];
        struct ft_sigv4_params sp = { .region = j->cfg->aws.region, .service = "sts", .normalize_path = true };
        struct fetch_opts opts = { .timeout_ms = j->cfg->daemon.http_timeout * 1000L };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        int64_t now = now_wall_ms() / 1000 + j->clock_offset_s;
        int duration, r;

        if (!c || !done)
                return -EINVAL;
        if (j->busy)
                return -EBUSY;
        j->busy = true;
        j->done = done;
        j->done_ud = userdata;
        j->creds_expiration = c->expiration;
        if (dup_or_null(c->role_arn, &j->principal_arn) < 0 || dup_or_null(c->account_id, &j->account_id) < 0 ||
            dup_or_null(creds_source, &j->creds_source) < 0) {
                fail_msg(j, FT_RETRY_BACKOFF, "out of memory");
                return 0;
        }

        duration = ft_sts_clamp_duration(j->def->duration, c->expiration, now, JWT_CREDS_MARGIN_S);
        if (duration < 0) {
                char exp[21];
                ft_time_format_rfc3339(c->expiration, exp);
                ft_diag_set(&diag, "the AWS credentials from %s expire at %s, too soon to sign for even a %d s token",
                            creds_source, exp, FT_STS_MIN_DURATION);
                diag.retry = FT_RETRY_NOW;
                finish(j, NULL, &diag, true);
                return 0;
        }
        if (duration < j->def->duration)
                log_full(LOG_DEBUG, &(struct log_ctx){ .token = j->name },
                         "requesting %d s instead of %d s: the signing credentials expire sooner", duration,
                         j->def->duration);
        j->duration = duration;
        p.duration = duration;
        for (size_t i = 0; i < j->def->n_tags; i++) {
                tags[i].key = j->def->tag_keys[i];
                tags[i].value = j->def->tag_values[i];
        }
        p.tags = tags;
        p.n_tags = j->def->n_tags;

        r = ft_sts_build_gwit(j->endpoint, &p, &req, &diag);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                finish(j, NULL, &diag, false);
                return 0;
        }
        sp.now = now;
        r = ft_sigv4_sign(req, c, &sp, j->sigv4);
        if (r < 0) {
                ft_request_free(req);
                fail_msg(j, FT_RETRY_SLOW, "cannot sign the STS request: %s", strerror(-r));
                return 0;
        }
        opts.allow_http = strncmp(j->endpoint, "http:", 5) == 0 && ft_aws_http_allowed(j->endpoint);
        r = fetcher_start(j->fetcher, req, &opts, on_sts_done, j, &j->inflight);
        if (r < 0)
                fail_msg(j, FT_RETRY_BACKOFF, "cannot start the STS request: %s", strerror(-r));
        return 0;
}

void jwt_fetch_cancel(struct jwt_fetcher *j)
{
        if (!j || !j->busy)
                return;
        if (j->inflight)
                fetch_cancel(j->inflight);
        clear_fetch(j);
}

void jwt_fetcher_free(struct jwt_fetcher *j)
{
        if (!j)
                return;
        jwt_fetch_cancel(j);
        ft_sigv4_cache_free(j->sigv4);
        free(j->jwks_uri);
        free(j->endpoint);
        free(j->name);
        free(j);
}
