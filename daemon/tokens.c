/* SPDX-License-Identifier: MIT */
#include "tokens.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "creds.h"
#include "exchange.h"
#include "gcp.h"
#include "jwtfetch.h"
#include "log.h"
#include "oauth.h"
#include "timeutil.h"
#include "tokenfile.h"
#include "util.h"

/*
 * The engine is polled at least this often even when nothing is due, so a
 * clock step or a suspend is noticed within this time.
 */
#define MAX_SLEEP_MS 5000
/* A token file feeds SDKs that cache it for up to 10 minutes: rewrite it by 80 % of its life. */
#define FILE_MAX_PERCENT 80
/*
 * Each fetch allocates and frees some hundred kilobytes (the TLS handshake,
 * the response, the parse). glibc reuses the freed chunks, but in an order
 * that touches fresh pages of the heap over time, so private memory creeps
 * up to the heap's high-water mark (a few MiB, reached at start-up while the
 * CA bundle loads). Returning the whole free pages every so many fetches
 * keeps it at what is in use; the heap is small, so this is cheap.
 */
#define TRIM_EVERY_FETCHES 64

struct node {
        struct tokens *tokens;
        int id;
        int parent;
        enum ft_node_kind kind;
        char *name;

        /* The definition (one of them, by kind), for reload comparisons. */
        const struct ft_config_jwt *jwt_def;
        const struct ft_config_azure *azure_def;
        const struct ft_config_gcp *gcp_def;

        /* The fetcher for this kind. */
        struct creds_source *creds;
        struct jwt_fetcher *jwt;
        struct exchange *exchange;

        /* Where the token is also written for unmodified SDKs, or NULL. */
        struct tokenfile *file;
        bool file_failed;              /* the last write failed (logged once) */

        /* What the node holds now (one of them, by kind). */
        struct ft_aws_creds *aws;
        struct jwt_token *token;
        struct ft_access_token *access;
        char fingerprint[FT_FINGERPRINT_LEN];

        bool in_flight;
        int64_t fetch_started_ms;      /* monotonic, for the latency histogram */
        struct ft_diag last_logged;    /* the failure last logged, to log each reason once */
        bool failing_logged;
};

struct tokens {
        uv_loop_t *loop;
        struct fetcher *fetcher;
        const struct ft_config *cfg;
        struct ft_engine *engine;
        tokens_update_fn update;
        void *userdata;
        uv_timer_t timer;
        bool pumping, repump, closing;
        struct tokens_latency latency[4];
        unsigned fetches_since_trim;
        struct node nodes[FT_ENGINE_MAX_NODES];
        size_t n_nodes;
};

static void pump(struct tokens *t);

const double tokens_latency_bounds[TOKENS_LATENCY_BUCKETS] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10 };

static struct ft_now now_both(void)
{
        return (struct ft_now){ .wall_ms = now_wall_ms(), .mono_ms = now_mono_ms() };
}

static int add_node(struct tokens *t, const char *prefix, const char *name, enum ft_node_kind kind, int parent)
{
        struct node *n;
        char *full;
        int id;

        if (t->n_nodes >= FT_ENGINE_MAX_NODES)
                return -E2BIG;
        if (name ? asprintf(&full, "%s.%s", prefix, name) < 0 : !(full = strdup(prefix)))
                return -ENOMEM;
        id = ft_engine_add(t->engine, full, kind, parent);
        if (id < 0) {
                free(full);
                return id;
        }
        n = &t->nodes[id];
        n->tokens = t;
        n->id = id;
        n->parent = parent;
        n->kind = kind;
        n->name = full;
        t->n_nodes = (size_t)id + 1;
        return id;
}

static int find_jwt_node(const struct tokens *t, const char *jwt_name)
{
        char name[128];

        snprintf(name, sizeof(name), "jwt.%s", jwt_name);
        return ft_engine_find(t->engine, name);
}

/* A temporary file this old can only be the leftover of an interrupted write, never one in progress. */
#define STALE_TEMP_S 60

/*
 * The token file object of a node, and a sweep of the temporary files an
 * interrupted write of an earlier run left beside it: they may hold a token.
 */
static int open_token_file(const char *node, const struct ft_file_sink *sink, struct tokenfile **ret,
                           struct ft_diag *diag)
{
        struct ft_diag sweep_diag = { 0 };
        int r, removed;

        r = tokenfile_new(sink, ret, diag);
        if (r < 0)
                return r;
        removed = tokenfile_sweep(*ret, time(NULL) - STALE_TEMP_S, &sweep_diag);
        if (removed > 0)
                log_full(LOG_NOTICE, &(struct log_ctx){ .token = node },
                         "removed %d temporary file(s) an interrupted write left beside %s", removed,
                         tokenfile_path(*ret));
        else if (removed < 0)
                log_full(LOG_WARNING, &(struct log_ctx){ .token = node }, "%s", sweep_diag.msg);
        return 0;
}

/*
 * The Google external_account configuration: it points client libraries at
 * the JWT file of the target's [jwt.NAME], so they exchange it themselves.
 * It holds no secret and never changes while the configuration does not.
 */
static int write_external_account(const struct ft_config *cfg, const struct ft_config_gcp *def,
                                  struct ft_diag *diag)
{
        const struct ft_config_jwt *src = ft_config_find_jwt(cfg, def->jwt);
        struct ft_file_sink sink = { .path = def->external_account_file, .mode = 0644,
                                     .group = def->file.group };
        struct tokenfile *f = NULL;
        char *json = NULL;
        int r;

        if (!src || !src->file.path) {
                ft_diag_set(diag, "[gcp.%s] external_account_file needs a token file: set file = PATH in [jwt.%s]",
                            def->name, def->jwt);
                return -EINVAL;
        }
        r = ft_gcp_external_account_scoped(def->audience, src->file.path, def->sts_endpoint, def->iam_endpoint,
                                           def->service_account, def->lifetime, def->scope, &json);
        if (r < 0) {
                ft_diag_set(diag, "[gcp.%s]: cannot build the external_account configuration", def->name);
                return r;
        }
        r = tokenfile_new(&sink, &f, diag);
        if (r >= 0)
                r = tokenfile_write(f, json, strlen(json), diag);
        tokenfile_free(f);
        free(json);
        return r;
}

int tokens_new(uv_loop_t *loop, struct fetcher *f, const struct ft_config *cfg, ft_getenv_fn env, void *env_ud,
               bool write_files, tokens_update_fn update, void *userdata, struct tokens **ret,
               struct ft_diag *diag)
{
        const struct ft_config_daemon *d = &cfg->daemon;
        struct ft_engine_policy policy = {
                .refresh_percent = d->refresh_percent,
                .jitter_percent = d->refresh_jitter_percent,
                .refresh_margin_ms = (int64_t)d->refresh_margin * 1000,
                .min_remaining_ms = (int64_t)d->min_remaining * 1000,
                .backoff_initial_ms = (int64_t)d->backoff_initial * 1000,
                .backoff_max_ms = (int64_t)d->backoff_max * 1000,
                .creds_refresh_ms = (int64_t)cfg->aws.credentials_refresh * 1000,
                /* An exchange needs its assertion alive while the upstream looks at it. */
                .parent_min_remaining_ms = (int64_t)(d->min_remaining > 60 ? d->min_remaining : 60) * 1000,
                .clock_tolerance_ms = 2000,
        };
        struct tokens *t;
        int64_t started = now_wall_ms() / 1000;
        int r, id, creds_id;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->loop = loop;
        t->fetcher = f;
        t->cfg = cfg;
        t->update = update;
        t->userdata = userdata;
        r = ft_engine_new(&policy, &t->engine);
        if (r < 0) {
                free(t);
                return r;
        }
        t->timer.loop = NULL;

        creds_id = r = add_node(t, "aws", NULL, FT_NODE_AWS_CREDS, FT_ENGINE_NONE);
        if (r >= 0)
                r = ft_engine_set_child_margin(t->engine, creds_id, (int64_t)JWT_CREDS_MIN_VALID_S * 1000);
        if (r >= 0)
                r = creds_source_new(loop, f, cfg, env, env_ud, &t->nodes[creds_id].creds, diag);
        for (size_t i = 0; r >= 0 && i < cfg->n_jwts; i++) {
                const struct ft_config_jwt *def = cfg->jwts[i];
                r = id = add_node(t, "jwt", def->name, FT_NODE_JWT, creds_id);
                if (r >= 0)
                        t->nodes[id].jwt_def = def;
                if (r >= 0)
                        r = jwt_fetcher_new(f, cfg, def, &t->nodes[id].jwt, diag);
                if (r >= 0 && def->file.path)
                        r = ft_engine_set_refresh(t->engine, id, d->refresh_percent, FILE_MAX_PERCENT);
                if (r >= 0 && def->file.path && write_files)
                        r = open_token_file(t->nodes[id].name, &def->file, &t->nodes[id].file, diag);
        }
        for (size_t i = 0; r >= 0 && i < cfg->n_azures; i++) {
                const struct ft_config_azure *def = cfg->azures[i];
                r = id = add_node(t, "azure", def->name, FT_NODE_AZURE, find_jwt_node(t, def->jwt));
                if (r >= 0)
                        t->nodes[id].azure_def = def;
                if (r >= 0)
                        r = exchange_new_azure(f, cfg, def, started, &t->nodes[id].exchange);
                if (r >= 0 && def->file.path && write_files)
                        r = open_token_file(t->nodes[id].name, &def->file, &t->nodes[id].file, diag);
        }
        for (size_t i = 0; r >= 0 && i < cfg->n_gcps; i++) {
                const struct ft_config_gcp *def = cfg->gcps[i];
                r = id = add_node(t, "gcp", def->name, FT_NODE_GCP, find_jwt_node(t, def->jwt));
                if (r >= 0)
                        t->nodes[id].gcp_def = def;
                if (r >= 0)
                        r = exchange_new_gcp(f, cfg, def, &t->nodes[id].exchange);
                if (r >= 0 && def->file.path && write_files)
                        r = open_token_file(t->nodes[id].name, &def->file, &t->nodes[id].file, diag);
                if (r >= 0 && def->external_account_file && write_files)
                        r = write_external_account(cfg, def, diag);
        }
        if (r >= 0)
                r = uv_timer_init(loop, &t->timer);
        if (r < 0) {
                t->timer.loop = NULL;
                tokens_free(t);
                return r;
        }
        t->timer.data = t;
        *ret = t;
        return 0;
}

size_t tokens_count(const struct tokens *t)
{
        return t->n_nodes;
}

int tokens_find(const struct tokens *t, const char *name)
{
        return ft_engine_find(t->engine, name);
}

const char *tokens_creds_kind(const struct tokens *t)
{
        return creds_source_kind(t->nodes[0].creds);
}

/* Wipe whatever the node holds. */
static void drop_value(struct node *n)
{
        ft_aws_creds_free(n->aws);
        n->aws = NULL;
        jwt_token_free(n->token);
        n->token = NULL;
        ft_access_token_free(n->access);
        n->access = NULL;
        memset(n->fingerprint, 0, sizeof(n->fingerprint));
}

void tokens_view(const struct tokens *t, int id, struct token_view *ret)
{
        const struct node *n = &t->nodes[id];
        struct ft_now now = now_both();
        bool servable = ft_engine_servable(t->engine, id, now.wall_ms);

        memset(ret, 0, sizeof(*ret));
        ret->name = n->name;
        ret->kind = n->kind;
        ft_engine_status(t->engine, id, now, &ret->status);
        ret->issued = ret->status.issued_wall_ms / 1000;
        ret->expires = ret->status.expires_wall_ms / 1000;
        memcpy(ret->fingerprint, n->fingerprint, sizeof(ret->fingerprint));
        if (n->token) {
                ret->claims = n->token->claims;
                ret->verified = n->token->verified;
                if (servable) {
                        ret->value = n->token->token;
                        ret->len = n->token->len;
                }
        } else if (n->access) {
                ret->token_type = n->access->token_type ? n->access->token_type : "Bearer";
                if (servable) {
                        ret->value = n->access->access_token;
                        ret->len = n->access->access_token_len;
                }
        }
}

bool tokens_servable(const struct tokens *t, int id, int64_t now_wall_ms)
{
        return ft_engine_servable(t->engine, id, now_wall_ms);
}

const struct tokens_latency *tokens_latency(const struct tokens *t, enum ft_node_kind kind)
{
        return &t->latency[kind <= FT_NODE_GCP ? kind : 0];
}

static void record_latency(struct node *n)
{
        struct tokens_latency *l = &n->tokens->latency[n->kind];
        double s = (now_mono_ms() - n->fetch_started_ms) / 1000.0;
        size_t i;

        for (i = 0; i < TOKENS_LATENCY_BUCKETS && s > tokens_latency_bounds[i]; i++)
                ;
        if (i < TOKENS_LATENCY_BUCKETS)
                l->buckets[i]++;
        l->count++;
        l->sum_s += s;
}

bool tokens_settled(const struct tokens *t, int id)
{
        struct ft_node_status st;

        ft_engine_status(t->engine, id, now_both(), &st);
        if (st.in_flight)
                return false;
        if (st.ok_count > 0 && !st.last_error)
                return true;
        /* "Retry now" (a new IMDS token, a corrected clock) deserves its one immediate retry. */
        return st.last_error && (st.last_error->retry != FT_RETRY_NOW || st.fail_count > 1);
}

/*
 * Two failures have the same reason when the upstream gave the same code
 * (its message carries a request id that changes every time), or, without a
 * code, the same sentence. An outage is then one log line, not one a retry.
 */
static bool same_reason(const struct ft_diag *a, const struct ft_diag *b)
{
        if (a->code[0] || b->code[0])
                return strcmp(a->code, b->code) == 0 && a->http_status == b->http_status;
        return strcmp(a->msg, b->msg) == 0;
}

static const char *upstream_of(const struct node *n)
{
        switch (n->kind) {
        case FT_NODE_AWS_CREDS: return creds_source_kind(n->creds);
        case FT_NODE_JWT: return "sts";
        case FT_NODE_AZURE: return "entra";
        default: return "gcp";
        }
}

static void notify(struct tokens *t, int id)
{
        if (t->update)
                t->update(t->userdata, t, id);
}

/* Rewrite the node's token file with what it now holds; a failure is logged once until a write works. */
static void write_file(struct node *n, const char *value, size_t len)
{
        struct ft_diag diag = { 0 };

        if (!n->file)
                return;
        if (tokenfile_write(n->file, value, len, &diag) < 0) {
                if (!n->file_failed)
                        log_full(LOG_ERR, &(struct log_ctx){ .token = n->name }, "cannot write the token file: %s",
                                 diag.msg);
                n->file_failed = true;
                return;
        }
        if (n->file_failed)
                log_full(LOG_NOTICE, &(struct log_ctx){ .token = n->name }, "token file %s written again",
                         tokenfile_path(n->file));
        n->file_failed = false;
}

/* A token that may not be handed out any more disappears from its file too: an SDK must not read it. */
static void remove_file(struct node *n)
{
        struct ft_diag diag = { 0 };

        if (n->file && tokenfile_remove(n->file, &diag) < 0)
                log_full(LOG_WARNING, &(struct log_ctx){ .token = n->name }, "cannot remove the token file: %s",
                         diag.msg);
}

static void fetch_finished(struct tokens *t)
{
        if (++t->fetches_since_trim >= TRIM_EVERY_FETCHES) {
                t->fetches_since_trim = 0;
                (void)malloc_trim(0);
        }
}

static void succeeded(struct node *n, int64_t issued_s, int64_t expires_s, int64_t hint_s, const char *detail)
{
        struct tokens *t = n->tokens;
        struct ft_now now = now_both();
        bool recovered = n->failing_logged;
        char exp[21] = "never";

        n->in_flight = false;
        record_latency(n);
        fetch_finished(t);
        ft_engine_succeeded(t->engine, n->id, now, issued_s * 1000, expires_s * 1000, hint_s * 1000, random_u32());
        if (expires_s)
                ft_time_format_rfc3339(expires_s, exp);
        log_full(recovered ? LOG_NOTICE : LOG_INFO,
                 &(struct log_ctx){ .token = n->name, .upstream = upstream_of(n),
                                    .fingerprint = n->fingerprint[0] ? n->fingerprint : NULL },
                 "%s%s%s%s, valid until %s", recovered ? "recovered: " : "", n->fingerprint[0] ? "token " : "",
                 n->fingerprint, detail, exp);
        n->failing_logged = false;
        memset(&n->last_logged, 0, sizeof(n->last_logged));
        notify(t, n->id);
        pump(t);
}

static void failed(struct node *n, const struct ft_diag *diag)
{
        struct tokens *t = n->tokens;
        struct ft_now now = now_both();
        struct ft_node_status st;

        n->in_flight = false;
        record_latency(n);
        fetch_finished(t);
        ft_engine_failed(t->engine, n->id, now, diag, random_u32());
        ft_engine_status(t->engine, n->id, now, &st);
        if (!n->failing_logged || !same_reason(&n->last_logged, diag) || log_enabled(LOG_DEBUG)) {
                bool serving = st.state == FT_NODE_STALE;
                double next = st.next_fetch_wall_ms ? (st.next_fetch_wall_ms - now.wall_ms) / 1000.0 : 0;
                log_full(serving || n->kind == FT_NODE_AWS_CREDS ? LOG_WARNING : LOG_ERR,
                         &(struct log_ctx){ .token = n->name, .upstream = upstream_of(n),
                                            .code = diag->code[0] ? diag->code : NULL },
                         "%s; %s; next attempt in %.0f s", diag->msg,
                         n->kind == FT_NODE_AWS_CREDS ? (serving ? "the current credentials stay in use"
                                                                 : "no credentials to sign with")
                                                      : (serving ? "still serving the previous token"
                                                                 : "no token to serve"),
                         next < 0 ? 0 : next);
        }
        n->last_logged = *diag;
        n->failing_logged = true;
        notify(t, n->id);
        pump(t);
}

/* An upstream rejected what the parent holds: the parent is refetched before the next attempt. */
static void parent_stale(struct node *n)
{
        if (n->parent != FT_ENGINE_NONE)
                ft_engine_invalidate(n->tokens->engine, n->parent, now_both());
}

/*
 * A fetch brought something that expires too soon to be of use: it must
 * neither replace what the node holds (which may still be good for a
 * while) nor reach a token file. It counts as a failure.
 */
static bool too_short(struct node *n, int64_t expires_s, int64_t need_ms)
{
        struct ft_diag diag = { .retry = FT_RETRY_BACKOFF };
        int64_t left_ms = expires_s * 1000 - now_wall_ms();
        char exp[21];

        if (expires_s == 0 || left_ms >= need_ms)
                return false;
        ft_time_format_rfc3339(expires_s, exp);
        ft_diag_set(&diag, "%s answered with %s that expires at %s, %lld s from now: less than the %lld s it must "
                           "have left to be used; keeping what we have and retrying",
                    upstream_of(n), n->kind == FT_NODE_AWS_CREDS ? "credentials" : "a token", exp,
                    (long long)(left_ms / 1000), (long long)(need_ms / 1000));
        failed(n, &diag);
        return true;
}

static void on_creds_done(void *userdata, struct ft_aws_creds *c, const struct ft_diag *diag)
{
        struct node *n = userdata;
        char detail[256];

        if (!c) {
                failed(n, diag);
                return;
        }
        if (too_short(n, c->expiration, (int64_t)JWT_CREDS_MIN_VALID_S * 1000)) {
                ft_aws_creds_free(c);
                return;
        }
        drop_value(n);
        n->aws = c;
        snprintf(detail, sizeof(detail), "AWS credentials from %s%s%s", creds_source_kind(n->creds),
                 c->role_arn ? " for " : "", c->role_arn ? c->role_arn : "");
        succeeded(n, now_wall_ms() / 1000, c->expiration, 0, detail);
}

static void on_jwt_done(void *userdata, struct jwt_token *tok, const struct ft_diag *diag, bool creds_stale)
{
        struct node *n = userdata;
        char detail[512];

        if (!tok) {
                if (creds_stale)
                        parent_stale(n);
                failed(n, diag);
                return;
        }
        drop_value(n);
        n->token = tok;
        ft_fingerprint(tok->token, tok->len, n->fingerprint);
        write_file(n, tok->token, tok->len);
        snprintf(detail, sizeof(detail), " for %s, subject %s%s", tok->claims->n_aud ? tok->claims->aud[0] : "?",
                 tok->claims->sub ? tok->claims->sub : "?", tok->verified ? ", signature verified" : "");
        succeeded(n, tok->issued, tok->expires, 0, detail);
}

static void on_exchange_done(void *userdata, struct ft_access_token *tok, const struct ft_diag *diag, bool jwt_stale)
{
        struct node *n = userdata;

        if (!tok) {
                if (jwt_stale)
                        parent_stale(n);
                failed(n, diag);
                return;
        }
        if (too_short(n, tok->expires_at, (int64_t)n->tokens->cfg->daemon.min_remaining * 1000)) {
                ft_access_token_free(tok);
                return;
        }
        drop_value(n);
        n->access = tok;
        ft_fingerprint(tok->access_token, tok->access_token_len, n->fingerprint);
        write_file(n, tok->access_token, tok->access_token_len);
        succeeded(n, now_wall_ms() / 1000, tok->expires_at, tok->refresh_at, "");
}

static void start_fetch(struct tokens *t, int id)
{
        struct node *n = &t->nodes[id];
        struct node *p = n->parent != FT_ENGINE_NONE ? &t->nodes[n->parent] : NULL;
        struct ft_diag diag = { .retry = FT_RETRY_BACKOFF };
        int r;

        n->in_flight = true;
        n->fetch_started_ms = now_mono_ms();
        switch (n->kind) {
        case FT_NODE_AWS_CREDS:
                r = creds_fetch(n->creds, on_creds_done, n);
                break;
        case FT_NODE_JWT:
                /* The engine starts a child only when its parent is usable; check what we hold anyway. */
                if (!p || !p->aws) {
                        ft_diag_set(&diag, "no AWS credentials to sign with yet");
                        failed(n, &diag);
                        return;
                }
                r = jwt_fetch(n->jwt, p->aws, creds_source_kind(p->creds), on_jwt_done, n);
                break;
        case FT_NODE_AZURE:
        case FT_NODE_GCP:
        default:
                if (!p || !p->token) {
                        ft_diag_set(&diag, "no token from %s to exchange yet", p ? p->name : "its [jwt] section");
                        failed(n, &diag);
                        return;
                }
                r = exchange_fetch(n->exchange, p->token->token, on_exchange_done, n);
                break;
        }
        if (r < 0) {
                ft_diag_set(&diag, "cannot start the fetch: %s", strerror(-r));
                failed(n, &diag);
        }
}

static void on_timer(uv_timer_t *h)
{
        pump(h->data);
}

/*
 * Ask the engine what is due, wipe what expired, start the fetches, sleep
 * until the next thing is due. Outcomes can arrive inside a fetch start
 * (synchronous providers) and call pump again: that nested call only asks
 * the running one for another round.
 */
static void pump(struct tokens *t)
{
        int ids[FT_ENGINE_MAX_NODES];
        int64_t wake = INT64_MAX, delay;
        struct ft_now now;
        size_t n;

        if (t->closing)
                return;
        if (t->pumping) {
                t->repump = true;
                return;
        }
        t->pumping = true;
        do {
                t->repump = false;
                now = now_both();
                if (ft_engine_check_clock(t->engine, now))
                        log_notice("the system clock jumped or the host resumed from suspend: re-checking every "
                                   "token's expiry");
                n = ft_engine_take_expired(t->engine, now, ids, FT_ELEMENTSOF(ids));
                for (size_t i = 0; i < n; i++) {
                        struct node *x = &t->nodes[ids[i]];
                        log_full(x->kind == FT_NODE_AWS_CREDS ? LOG_INFO : LOG_WARNING,
                                 &(struct log_ctx){ .token = x->name,
                                                    .fingerprint = x->fingerprint[0] ? x->fingerprint : NULL },
                                 "%s%s can no longer be served (expiring, or rejected upstream): dropped", x->fingerprint[0] ? "token " : "credentials",
                                 x->fingerprint);
                        drop_value(x);
                        remove_file(x);
                        notify(t, ids[i]);
                }
                n = ft_engine_poll(t->engine, now, random_u32(), ids, FT_ELEMENTSOF(ids), &wake);
                for (size_t i = 0; i < n && !t->closing; i++)
                        start_fetch(t, ids[i]);
        } while (t->repump && !t->closing);
        t->pumping = false;
        if (t->closing)
                return;
        delay = wake == INT64_MAX ? MAX_SLEEP_MS : wake - now_mono_ms();
        if (delay > MAX_SLEEP_MS)
                delay = MAX_SLEEP_MS;
        if (delay < 0)
                delay = 0;
        uv_timer_stop(&t->timer);
        (void)uv_timer_start(&t->timer, on_timer, (uint64_t)delay, 0);
}

static bool str_eq(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool sink_eq(const struct ft_file_sink *a, const struct ft_file_sink *b)
{
        return str_eq(a->path, b->path) && a->mode == b->mode && str_eq(a->group, b->group);
}

/* Everything in [aws] (and the [daemon] keys that shape a fetch) that decides which credentials we get. */
static bool aws_eq(const struct ft_config *a, const struct ft_config *b)
{
        const struct ft_config_aws *x = &a->aws, *y = &b->aws;

        return x->credentials == y->credentials && str_eq(x->region, y->region) && str_eq(x->profile, y->profile) &&
               str_eq(x->shared_credentials_file, y->shared_credentials_file) &&
               str_eq(x->config_file, y->config_file) && str_eq(x->sts_endpoint, y->sts_endpoint) &&
               x->use_fips_endpoint == y->use_fips_endpoint &&
               x->use_dualstack_endpoint == y->use_dualstack_endpoint && str_eq(x->imds_endpoint, y->imds_endpoint) &&
               x->imds_ipv6 == y->imds_ipv6 && x->imds_disabled == y->imds_disabled &&
               str_eq(x->web_identity_token_file, y->web_identity_token_file) && str_eq(x->role_arn, y->role_arn) &&
               str_eq(x->role_session_name, y->role_session_name) &&
               str_eq(x->container_relative_uri, y->container_relative_uri) &&
               str_eq(x->container_full_uri, y->container_full_uri) &&
               str_eq(x->container_token_file, y->container_token_file) &&
               str_eq(a->daemon.ca_file, b->daemon.ca_file);
}

static bool node_eq(const struct tokens *t, const struct node *n, const struct tokens *old, const struct node *o)
{
        if (n->kind != o->kind || strcmp(n->name, o->name) != 0)
                return false;
        switch (n->kind) {
        case FT_NODE_AWS_CREDS:
                return aws_eq(t->cfg, old->cfg);
        case FT_NODE_JWT:
                return ft_config_jwt_equal(n->jwt_def, o->jwt_def);
        case FT_NODE_AZURE:
                return str_eq(n->azure_def->jwt, o->azure_def->jwt) &&
                       str_eq(n->azure_def->tenant_id, o->azure_def->tenant_id) &&
                       str_eq(n->azure_def->client_id, o->azure_def->client_id) &&
                       str_eq(n->azure_def->scope, o->azure_def->scope) &&
                       str_eq(n->azure_def->authority, o->azure_def->authority) &&
                       sink_eq(&n->azure_def->file, &o->azure_def->file);
        case FT_NODE_GCP:
        default:
                return str_eq(n->gcp_def->jwt, o->gcp_def->jwt) &&
                       str_eq(n->gcp_def->audience, o->gcp_def->audience) &&
                       str_eq(n->gcp_def->scope, o->gcp_def->scope) &&
                       str_eq(n->gcp_def->service_account, o->gcp_def->service_account) &&
                       n->gcp_def->lifetime == o->gcp_def->lifetime &&
                       str_eq(n->gcp_def->sts_endpoint, o->gcp_def->sts_endpoint) &&
                       str_eq(n->gcp_def->iam_endpoint, o->gcp_def->iam_endpoint) &&
                       sink_eq(&n->gcp_def->file, &o->gcp_def->file);
        }
}

size_t tokens_adopt(struct tokens *t, struct tokens *old)
{
        bool kept[FT_ENGINE_MAX_NODES] = { false };
        size_t n_kept = 0;

        /* Nodes come parents first, so a child is kept only with its parent's very token. */
        for (size_t i = 0; i < t->n_nodes; i++) {
                struct node *n = &t->nodes[i];
                int oid = ft_engine_find(old->engine, n->name);
                struct node *o;

                if (oid < 0)
                        continue;
                o = &old->nodes[oid];
                if (o->in_flight || !node_eq(t, n, old, o))
                        continue;
                if (n->parent != FT_ENGINE_NONE && !kept[n->parent])
                        continue;
                if (ft_engine_adopt(t->engine, n->id, old->engine, oid) < 0)
                        continue;
                n->aws = o->aws;
                n->token = o->token;
                n->access = o->access;
                o->aws = NULL;
                o->token = NULL;
                o->access = NULL;
                memcpy(n->fingerprint, o->fingerprint, sizeof(n->fingerprint));
                n->failing_logged = o->failing_logged;
                n->last_logged = o->last_logged;
                kept[i] = true;
                n_kept++;
        }
        memcpy(t->latency, old->latency, sizeof(t->latency));
        return n_kept;
}

static bool writes_path(const struct tokens *t, const char *path)
{
        for (size_t i = 0; t && i < t->n_nodes; i++)
                if (t->nodes[i].file && strcmp(tokenfile_path(t->nodes[i].file), path) == 0)
                        return true;
        return false;
}

void tokens_remove_files(struct tokens *t, const struct tokens *keep)
{
        for (size_t i = 0; t && i < t->n_nodes; i++) {
                struct node *n = &t->nodes[i];
                if (n->file && !writes_path(keep, tokenfile_path(n->file)))
                        remove_file(n);
        }
}

int tokens_start(struct tokens *t)
{
        pump(t);
        return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
        free(h->data);
}

void tokens_free(struct tokens *t)
{
        if (!t)
                return;
        t->closing = true;
        for (size_t i = 0; i < t->n_nodes; i++) {
                struct node *n = &t->nodes[i];
                creds_source_free(n->creds);
                jwt_fetcher_free(n->jwt);
                exchange_free(n->exchange);
                tokenfile_free(n->file);
                drop_value(n);
                free(n->name);
        }
        ft_engine_free(t->engine);
        if (t->timer.loop) {
                uv_close((uv_handle_t *)&t->timer, on_timer_closed);
        } else {
                free(t);
        }
}
