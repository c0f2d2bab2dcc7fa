/* SPDX-License-Identifier: MIT */
#include "jwtsrc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "schedule.h"
#include "sigv4.h"
#include "sts.h"
#include "timeutil.h"
#include "util.h"

/* The requested duration never reaches closer than this to the credentials' expiry. */
#define CREDS_MARGIN_S 60
/* Credentials must cover at least a minimal token plus the margin. */
#define CREDS_MIN_VALID_S (FT_STS_MIN_DURATION + CREDS_MARGIN_S)
/* A response Date this far from our clock means our clock is wrong (the SDKs use 4 min). */
#define SKEW_LIMIT_S 240
#define DISCOVERY_MAX_BODY (64 * 1024)

enum step { STEP_IDLE, STEP_CREDS, STEP_STS, STEP_DISCOVERY, STEP_JWKS };

struct jwt_source {
        uv_loop_t *loop;
        struct fetcher *fetcher;
        struct creds_source *creds;
        const struct ft_config *cfg;
        const struct ft_config_jwt *def;
        jwt_update_fn update;
        void *userdata;

        char *name;                  /* "jwt.NAME" */
        char *endpoint;              /* STS URL */
        struct ft_sigv4_cache *sigv4;
        struct ft_refresh_policy policy;
        struct ft_backoff backoff;
        int64_t clock_offset_s;      /* learned from the STS Date header after a skew error */

        enum step step;
        struct creds_wait *creds_wait;
        struct fetch *inflight;
        uv_timer_t timer;
        bool once, settled;

        /* The current token (a secret) and what we know of it. */
        char *token;
        size_t token_len;
        struct ft_jwt *claims;
        int64_t expires, issued;
        char fingerprint[FT_FINGERPRINT_LEN];
        bool verified;

        /* A token just fetched, held while its signature is verified. */
        char *pending_token;
        struct ft_jwt *pending_claims;
        int64_t pending_expires;
        char *jwks_uri;

        struct ft_diag last_error;
        bool has_error;
        int64_t failing_since, next_attempt;
        unsigned ok_count, fail_count;
        int duration;
};

static void refresh(struct jwt_source *s);

const char *jwt_source_name(const struct jwt_source *s)
{
        return s->name;
}

int jwt_source_new(uv_loop_t *loop, struct fetcher *f, struct creds_source *creds, const struct ft_config *cfg,
                   const struct ft_config_jwt *def, jwt_update_fn update, void *userdata,
                   struct jwt_source **ret, struct ft_diag *diag)
{
        struct jwt_source *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->fetcher = f;
        s->creds = creds;
        s->cfg = cfg;
        s->def = def;
        s->update = update;
        s->userdata = userdata;
        s->policy.percent = cfg->daemon.refresh_percent;
        s->policy.jitter_percent = cfg->daemon.refresh_jitter_percent;
        s->policy.margin_ms = (int64_t)cfg->daemon.refresh_margin * 1000;
        s->backoff.initial_ms = (int64_t)cfg->daemon.backoff_initial * 1000;
        s->backoff.max_ms = (int64_t)cfg->daemon.backoff_max * 1000;
        if (asprintf(&s->name, "jwt.%s", def->name) < 0) {
                free(s);
                return -ENOMEM;
        }
        /* SigV4 needs the region even when the endpoint is overridden. */
        if (!cfg->aws.region) {
                ft_diag_set(diag, "no AWS region: set [aws] region or AWS_REGION (GetWebIdentityToken is served "
                                  "only by regional STS endpoints, and requests are signed for a region)");
                r = -EINVAL;
        } else {
                r = sts_endpoint_resolve(cfg, &s->endpoint, diag);
        }
        if (r >= 0)
                r = ft_sigv4_cache_new(&s->sigv4);
        if (r >= 0)
                r = uv_timer_init(loop, &s->timer);
        if (r < 0) {
                ft_sigv4_cache_free(s->sigv4);
                free(s->endpoint);
                free(s->name);
                free(s);
                return r;
        }
        s->timer.data = s;
        *ret = s;
        return 0;
}

void jwt_source_set_once(struct jwt_source *s, bool once)
{
        s->once = once;
}

bool jwt_source_settled(const struct jwt_source *s)
{
        return s->settled;
}

static void on_timer(uv_timer_t *t)
{
        refresh(t->data);
}

static void arm_timer(struct jwt_source *s, int64_t delay_ms)
{
        if (delay_ms < 0)
                delay_ms = 0;
        s->next_attempt = (now_wall_ms() + delay_ms) / 1000;
        uv_timer_stop(&s->timer);
        (void)uv_timer_start(&s->timer, on_timer, (uint64_t)delay_ms, 0);
}

static bool token_servable(const struct jwt_source *s)
{
        return s->token && ft_token_servable(now_wall_ms(), s->expires * 1000,
                                              (int64_t)s->cfg->daemon.min_remaining * 1000);
}

static void drop_token(struct jwt_source *s)
{
        if (s->token) {
                ft_wipe(s->token, s->token_len);
                free(s->token);
        }
        s->token = NULL;
        s->token_len = 0;
        ft_jwt_free(s->claims);
        s->claims = NULL;
        s->expires = s->issued = 0;
        s->verified = false;
}

static void drop_pending(struct jwt_source *s)
{
        ft_free_secret(s->pending_token);
        s->pending_token = NULL;
        ft_jwt_free(s->pending_claims);
        s->pending_claims = NULL;
        s->pending_expires = 0;
}

static void notify(struct jwt_source *s)
{
        if (s->update)
                s->update(s->userdata, s);
}

/*
 * Two failures have the same reason when the upstream gave the same code
 * (its message carries a request id that changes every time), or, without
 * a code, the same sentence.
 */
static bool same_reason(const struct ft_diag *a, const struct ft_diag *b)
{
        if (a->code[0] || b->code[0])
                return strcmp(a->code, b->code) == 0 && a->http_status == b->http_status;
        return strcmp(a->msg, b->msg) == 0;
}

/*
 * One failed attempt: remember why, keep the last good token while it may
 * still be served, and schedule the next attempt by the backoff policy.
 * Logs only when the reason changes, so an outage is one line, not one per
 * retry.
 */
static void fail(struct jwt_source *s, const struct ft_diag *diag)
{
        int64_t delay;
        bool same = s->has_error && same_reason(&s->last_error, diag);

        s->step = STEP_IDLE;
        drop_pending(s);
        if (!s->has_error)
                s->failing_since = now_wall_ms() / 1000;
        s->last_error = *diag;
        s->has_error = true;
        s->fail_count++;
        if (s->token && !token_servable(s))
                drop_token(s);
        delay = ft_backoff_next(&s->backoff, diag->retry, diag->retry_after * 1000, random_u32());
        if (s->once && (diag->retry != FT_RETRY_NOW || delay > 0)) {
                s->settled = true;
                notify(s);
                return;
        }
        arm_timer(s, delay);
        if (!same || log_enabled(LOG_DEBUG))
                log_full(s->token ? LOG_WARNING : LOG_ERR,
                         &(struct log_ctx){ .token = s->name, .upstream = "sts", .code = diag->code[0] ? diag->code : NULL },
                         "%s; %s; next attempt in %.0f s", diag->msg,
                         s->token ? "still serving the previous token" : "no token to serve", delay / 1000.0);
        notify(s);
}

static void fail_msg(struct jwt_source *s, enum ft_retry retry, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fail_msg(struct jwt_source *s, enum ft_retry retry, const char *fmt, ...)
{
        struct ft_diag diag = { .retry = retry };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(diag.msg, sizeof(diag.msg), fmt, ap);
        va_end(ap);
        fail(s, &diag);
}

/* The fetched token passed every check: it becomes the current one. */
static void accept_pending(struct jwt_source *s, bool verified)
{
        const struct ft_jwt *j = s->pending_claims;
        int64_t now_ms = now_wall_ms(), at;
        bool recovered = s->has_error;
        char exp[21];

        drop_token(s);
        s->token = s->pending_token;
        s->token_len = strlen(s->token);
        s->claims = s->pending_claims;
        s->expires = s->pending_expires;
        s->issued = j->iat ? j->iat - s->clock_offset_s : now_ms / 1000;
        s->verified = verified;
        s->pending_token = NULL;
        s->pending_claims = NULL;
        ft_fingerprint(s->token, s->token_len, s->fingerprint);
        s->step = STEP_IDLE;
        s->has_error = false;
        s->failing_since = 0;
        s->ok_count++;
        ft_backoff_reset(&s->backoff);

        at = ft_refresh_time(&s->policy, s->issued * 1000, s->expires * 1000, random_u32());
        if (s->once)
                s->settled = true;
        else
                arm_timer(s, at - now_ms);
        ft_time_format_rfc3339(s->expires, exp);
        log_full(recovered ? LOG_NOTICE : LOG_INFO,
                 &(struct log_ctx){ .token = s->name, .upstream = "sts", .fingerprint = s->fingerprint },
                 "%stoken %s for %s, subject %s, valid until %s%s", recovered ? "recovered: " : "",
                 s->fingerprint, j->n_aud ? j->aud[0] : "?", j->sub ? j->sub : "?", exp,
                 verified ? ", signature verified" : "");
        notify(s);
}

static void on_jwks_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct jwt_source *s = ud;
        struct ft_diag diag = { 0 };

        s->inflight = NULL;
        if (error < 0) {
                fail_msg(s, FT_RETRY_BACKOFF, "cannot fetch the issuer's keys (JWKS): %s", errmsg);
                return;
        }
        if (resp->status != 200) {
                fail_msg(s, resp->status >= 500 ? FT_RETRY_BACKOFF : FT_RETRY_SLOW,
                         "the issuer's JWKS at %s answered HTTP %ld", s->jwks_uri, resp->status);
                return;
        }
        if (ft_jwt_verify_jwks(s->pending_claims, resp->body, resp->body_len, &diag) < 0) {
                char detail[sizeof(diag.msg)];
                snprintf(detail, sizeof(detail), "%s", diag.msg);
                ft_diag_set(&diag, "the token from STS failed signature verification against %s: %s",
                            s->jwks_uri, detail);
                diag.retry = FT_RETRY_SLOW;
                fail(s, &diag);
                return;
        }
        accept_pending(s, true);
}

static int start_get(struct jwt_source *s, const char *url, fetch_done_fn done)
{
        struct fetch_opts opts = { .timeout_ms = s->cfg->daemon.http_timeout * 1000L,
                                   .max_body = DISCOVERY_MAX_BODY };
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
        return fetcher_start(s->fetcher, req, &opts, done, s, &s->inflight);
}

static void on_discovery_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct jwt_source *s = ud;
        struct ft_diag diag = { 0 };
        char *jwks_uri = NULL;
        int r;

        s->inflight = NULL;
        if (error < 0) {
                fail_msg(s, FT_RETRY_BACKOFF, "cannot fetch the issuer's discovery document: %s", errmsg);
                return;
        }
        if (resp->status != 200) {
                fail_msg(s, resp->status >= 500 ? FT_RETRY_BACKOFF : FT_RETRY_SLOW,
                         "the issuer %s answered HTTP %ld for its discovery document", s->pending_claims->iss,
                         resp->status);
                return;
        }
        if (ft_oidc_parse_config(resp->body, resp->body_len, s->pending_claims->iss, &jwks_uri, &diag) < 0) {
                diag.retry = FT_RETRY_SLOW;
                fail(s, &diag);
                return;
        }
        free(s->jwks_uri);
        s->jwks_uri = jwks_uri;
        s->step = STEP_JWKS;
        r = start_get(s, s->jwks_uri, on_jwks_done);
        if (r < 0)
                fail_msg(s, FT_RETRY_BACKOFF, "cannot fetch %s: %s", s->jwks_uri, strerror(-r));
}

static void verify_pending(struct jwt_source *s)
{
        char *url = NULL;
        int r;

        /* Discovery is <iss>/.well-known/openid-configuration, and only ever over https. */
        if (strncmp(s->pending_claims->iss, "https://", 8) != 0) {
                fail_msg(s, FT_RETRY_SLOW, "cannot verify the token: its issuer \"%s\" is not an https URL",
                         s->pending_claims->iss);
                return;
        }
        if (asprintf(&url, "%s%s.well-known/openid-configuration", s->pending_claims->iss,
                     s->pending_claims->iss[strlen(s->pending_claims->iss) - 1] == '/' ? "" : "/") < 0) {
                fail_msg(s, FT_RETRY_BACKOFF, "out of memory");
                return;
        }
        s->step = STEP_DISCOVERY;
        r = start_get(s, url, on_discovery_done);
        free(url);
        if (r < 0)
                fail_msg(s, FT_RETRY_BACKOFF, "cannot start the discovery request: %s", strerror(-r));
}

static bool is_skew_error(const char *code)
{
        return !strcmp(code, "RequestExpired") || !strcmp(code, "RequestTimeTooSkewed") ||
               !strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "InvalidSignatureException");
}

static void on_sts_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct jwt_source *s = ud;
        struct ft_diag diag = { 0 };
        struct ft_jwt *claims = NULL;
        char *token = NULL;
        int64_t expiration = 0, now = now_wall_ms() / 1000;
        const char *const *auds = (const char *const *)s->def->audiences;

        s->inflight = NULL;
        if (error < 0) {
                fail_msg(s, FT_RETRY_BACKOFF, "STS GetWebIdentityToken at %s failed: %s", s->endpoint, errmsg);
                return;
        }
        if (resp->status != 200) {
                const struct ft_aws_creds *c = creds_peek(s->creds);
                struct ft_sts_context ctx = {
                        .operation = "GetWebIdentityToken",
                        .region = s->cfg->aws.region,
                        .endpoint = s->endpoint,
                        .credential_source = creds_source_kind(s->creds),
                        .duration = s->duration,
                        .now = now,
                };
                /* Name the principal and account when the cache still holds them. */
                if (c) {
                        ctx.principal_arn = c->role_arn;
                        ctx.account_id = c->account_id;
                        ctx.creds_expiration = c->expiration;
                }
                ft_sts_explain_error(resp->status, resp->body, resp->body_len, &ctx, &diag);
                diag.retry_after = resp->retry_after;
                if (is_skew_error(diag.code) && resp->date &&
                    (resp->date - now > SKEW_LIMIT_S || now - resp->date > SKEW_LIMIT_S)) {
                        /* Our clock is off: sign with STS's time from now on, as the SDKs do. */
                        s->clock_offset_s = resp->date - now;
                        snprintf(diag.msg + strlen(diag.msg), sizeof(diag.msg) - strlen(diag.msg),
                                 " (this host's clock is %lld s %s STS's: fix time synchronisation; "
                                 "signing with STS's time meanwhile)",
                                 (long long)(s->clock_offset_s < 0 ? -s->clock_offset_s : s->clock_offset_s),
                                 s->clock_offset_s < 0 ? "ahead of" : "behind");
                        diag.retry = FT_RETRY_NOW;
                }
                if (!strcmp(diag.code, "ExpiredToken") || !strcmp(diag.code, "ExpiredTokenException") ||
                    !strcmp(diag.code, "SessionDurationEscalationException"))
                        creds_invalidate(s->creds);
                fail(s, &diag);
                return;
        }
        if (ft_sts_parse_gwit(resp->body, resp->body_len, &token, &expiration, &diag) < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                fail(s, &diag);
                return;
        }
        if (ft_jwt_decode(token, strlen(token), &claims, &diag) < 0) {
                ft_free_secret(token);
                diag.retry = FT_RETRY_BACKOFF;
                fail(s, &diag);
                return;
        }
        /* Trust the token's own exp over the envelope, and never a token that is already unusable. */
        if (claims->exp && claims->exp < expiration)
                expiration = claims->exp;
        claims->exp = expiration;
        /* Judge the token by STS's time when our clock is known to be off. */
        if (ft_jwt_check(claims, now + s->clock_offset_s, s->cfg->daemon.min_remaining, 300, auds,
                         s->def->n_audiences, &diag) < 0) {
                char detail[sizeof(diag.msg)];
                snprintf(detail, sizeof(detail), "%s", diag.msg);
                ft_diag_set(&diag, "STS returned an unusable token: %s", detail);
                diag.retry = FT_RETRY_BACKOFF;
                ft_free_secret(token);
                ft_jwt_free(claims);
                fail(s, &diag);
                return;
        }
        drop_pending(s);
        s->pending_token = token;
        s->pending_claims = claims;
        /*
         * Expiry is kept on the local clock: with a known offset, a token
         * STS says expires at T is unusable here at T - offset, and that is
         * when we must stop handing it out.
         */
        s->pending_expires = expiration - s->clock_offset_s;
        if (s->def->verify)
                verify_pending(s);
        else
                accept_pending(s, false);
}

static void request_token(struct jwt_source *s, const struct ft_aws_creds *c)
{
        struct ft_gwit_params p = {
                .audiences = (const char *const *)s->def->audiences,
                .n_audiences = s->def->n_audiences,
                .signing_algorithm = s->def->signing_algorithm,
        };
        struct ft_sts_tag tags[FT_CONFIG_MAX_TAGS];
        struct ft_sigv4_params sp = { .region = s->cfg->aws.region, .service = "sts", .normalize_path = true };
        struct fetch_opts opts = { .timeout_ms = s->cfg->daemon.http_timeout * 1000L };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        int64_t now = now_wall_ms() / 1000 + s->clock_offset_s;
        int duration, r;

        duration = ft_sts_clamp_duration(s->def->duration, c->expiration, now, CREDS_MARGIN_S);
        if (duration < 0) {
                char exp[21];
                ft_time_format_rfc3339(c->expiration, exp);
                creds_invalidate(s->creds);
                fail_msg(s, FT_RETRY_NOW,
                         "the AWS credentials from %s expire at %s, too soon for even a %d s token; fetching "
                         "fresh credentials",
                         creds_source_kind(s->creds), exp, FT_STS_MIN_DURATION);
                return;
        }
        if (duration < s->def->duration)
                log_full(LOG_DEBUG, &(struct log_ctx){ .token = s->name },
                         "requesting %d s instead of %d s: the signing credentials expire sooner", duration,
                         s->def->duration);
        s->duration = duration;
        p.duration = duration;
        for (size_t i = 0; i < s->def->n_tags; i++) {
                tags[i].key = s->def->tag_keys[i];
                tags[i].value = s->def->tag_values[i];
        }
        p.tags = tags;
        p.n_tags = s->def->n_tags;

        r = ft_sts_build_gwit(s->endpoint, &p, &req, &diag);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                fail(s, &diag);
                return;
        }
        sp.now = now;
        r = ft_sigv4_sign(req, c, &sp, s->sigv4);
        if (r < 0) {
                ft_request_free(req);
                fail_msg(s, FT_RETRY_SLOW, "cannot sign the STS request: %s", strerror(-r));
                return;
        }
        s->step = STEP_STS;
        opts.allow_http = strncmp(s->endpoint, "http:", 5) == 0 && ft_aws_http_allowed(s->endpoint);
        r = fetcher_start(s->fetcher, req, &opts, on_sts_done, s, &s->inflight);
        if (r < 0)
                fail_msg(s, FT_RETRY_BACKOFF, "cannot start the STS request: %s", strerror(-r));
}

static void on_creds(void *ud, const struct ft_aws_creds *c, const struct ft_diag *diag)
{
        struct jwt_source *s = ud;

        s->creds_wait = NULL;
        if (!c) {
                struct ft_diag d = *diag;
                /* The credential source retries on its own schedule; we follow ours. */
                if (d.retry == FT_RETRY_NOW)
                        d.retry = FT_RETRY_BACKOFF;
                fail(s, &d);
                return;
        }
        request_token(s, c);
}

static void refresh(struct jwt_source *s)
{
        const struct ft_aws_creds *c = NULL;
        int r;

        if (s->step != STEP_IDLE)
                return;
        s->step = STEP_CREDS;
        r = creds_get(s->creds, CREDS_MIN_VALID_S, on_creds, s, &s->creds_wait, &c);
        if (r == 0) {
                request_token(s, c);
        } else if (r < 0) {
                s->step = STEP_IDLE;
                fail_msg(s, FT_RETRY_BACKOFF, "cannot ask for AWS credentials: %s", strerror(-r));
        }
}

void jwt_source_start(struct jwt_source *s)
{
        arm_timer(s, 0);
}

void jwt_source_status(const struct jwt_source *s, struct jwt_status *ret)
{
        bool servable = token_servable(s);

        memset(ret, 0, sizeof(*ret));
        if (!s->token && !s->has_error)
                ret->state = JWT_PENDING;
        else if (!s->has_error)
                ret->state = servable ? JWT_FRESH : JWT_FAILING;
        else
                ret->state = servable ? JWT_STALE : JWT_FAILING;
        if (servable) {
                ret->token = s->token;
                ret->token_len = s->token_len;
        }
        ret->claims = s->token ? s->claims : NULL;
        ret->expires = s->expires;
        ret->issued = s->issued;
        memcpy(ret->fingerprint, s->fingerprint, sizeof(ret->fingerprint));
        ret->verified = s->verified;
        ret->last_error = s->has_error ? &s->last_error : NULL;
        ret->failing_since = s->failing_since;
        ret->next_attempt = s->next_attempt;
        ret->ok_count = s->ok_count;
        ret->fail_count = s->fail_count;
        ret->duration = s->duration;
}

static void on_timer_closed(uv_handle_t *h)
{
        free(h->data);
}

void jwt_source_free(struct jwt_source *s)
{
        if (!s)
                return;
        if (s->creds_wait)
                creds_wait_cancel(s->creds_wait);
        if (s->inflight)
                fetch_cancel(s->inflight);
        drop_token(s);
        drop_pending(s);
        ft_sigv4_cache_free(s->sigv4);
        free(s->jwks_uri);
        free(s->endpoint);
        free(s->name);
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
