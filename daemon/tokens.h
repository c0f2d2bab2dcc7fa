/* SPDX-License-Identifier: MIT */
/*
 * tokens.h: every token fedtokend holds (the AWS credentials, each
 * [jwt.NAME], [azure.NAME] and [gcp.NAME]), renewed by the engine of
 * lib/engine.h. This module is the glue: it asks the engine what is due,
 * starts the fetches (creds.c, jwtfetch.c, exchange.c), stores what they
 * bring (wiping what they replace), reports outcomes back to the engine and
 * logs each change of state once.
 */
#ifndef FT_TOKENS_H
#define FT_TOKENS_H

#include <uv.h>

#include "config.h"
#include "crypto.h"
#include "engine.h"
#include "fetch.h"
#include "jwt.h"

struct tokens;

/* A node as readers see it. Everything is borrowed until control returns to the loop. */
struct token_view {
        const char *name;              /* "aws", "jwt.azure", "azure.storage", "gcp.gcs" */
        enum ft_node_kind kind;
        const char *value;             /* the token, NULL unless servable now; never for AWS credentials */
        size_t len;
        const char *token_type;        /* "Bearer" for access tokens, NULL otherwise */
        int64_t issued, expires;       /* epoch s; 0 when none */
        const struct ft_jwt *claims;   /* JWT nodes: the current token's claims */
        bool verified;                 /* JWT nodes: signature checked against the JWKS */
        char fingerprint[FT_FINGERPRINT_LEN];
        struct ft_node_status status;  /* the engine's view: state, last error, next fetch, counts */
};

/* Called after every outcome of `id` (and when a token is dropped at expiry). */
typedef void (*tokens_update_fn)(void *userdata, struct tokens *t, int id);

/* `write_files` false (--once): token files and external_account configurations are left alone. */
int tokens_new(uv_loop_t *loop, struct fetcher *f, const struct ft_config *cfg, ft_getenv_fn env, void *env_ud,
               bool write_files, tokens_update_fn update, void *userdata, struct tokens **ret,
               struct ft_diag *diag);

/*
 * Remove the token files of `t` that `keep` (may be NULL) does not write
 * too: at shutdown, so no SDK reads a token nobody renews, and after a
 * reload for the sections that went away.
 */
void tokens_remove_files(struct tokens *t, const struct tokens *keep);
/*
 * Reload: every node of `t` whose definition is the same in `old` (and whose
 * parent was kept too) takes over the old token and its schedule, so an
 * unchanged token is neither refetched nor lost. Returns how many were kept.
 * Call before tokens_start(t), then free `old`.
 */
size_t tokens_adopt(struct tokens *t, struct tokens *old);

/* First fetches now; renewals follow by themselves. */
int tokens_start(struct tokens *t);

size_t tokens_count(const struct tokens *t);
int tokens_find(const struct tokens *t, const char *name);
void tokens_view(const struct tokens *t, int id, struct token_view *ret);
/* True when `id` holds a token that may be handed out now (at least min_remaining left). */
bool tokens_servable(const struct tokens *t, int id, int64_t now_wall_ms);

/* Fetch durations by node kind (AWS credentials, STS, Entra, Google), for /metrics. */
#define TOKENS_LATENCY_BUCKETS 9
extern const double tokens_latency_bounds[TOKENS_LATENCY_BUCKETS];
struct tokens_latency {
        uint64_t buckets[TOKENS_LATENCY_BUCKETS];   /* not cumulative */
        uint64_t count;                             /* every fetch, +Inf included */
        double sum_s;
};
const struct tokens_latency *tokens_latency(const struct tokens *t, enum ft_node_kind kind);

/* The AWS credential provider in use ("imds", ...). */
const char *tokens_creds_kind(const struct tokens *t);
/* --once: true when `id` has an outcome the engine will not retry at once. */
bool tokens_settled(const struct tokens *t, int id);

/* Cancels every fetch, wipes every token, closes the timers; frees itself once the loop ran the close callbacks. */
void tokens_free(struct tokens *t);

#endif
