/* SPDX-License-Identifier: MIT */
#include "engine.h"

#include <errno.h>
#include <string.h>

#include "schedule.h"

#define DAY_MS (86400 * (int64_t)1000)
/* Policy durations are bounded so that sums of a few of them cannot overflow. */
#define POLICY_MAX_MS (365 * DAY_MS)
/* No token lives ten years; a later expiry from an upstream is clamped to this. */
#define LIFETIME_MAX_MS (3650 * DAY_MS)
/* Node names come from config section names, which are short. */
#define NAME_MAX_LEN 255

struct node {
        char *name;
        enum ft_node_kind kind;
        int parent;
        int refresh_percent;
        int max_percent;               /* 0: no ceiling */
        int64_t child_min_ms;          /* 0: the policy's parent_min_remaining_ms */

        /* The token the daemon holds, as wall-clock facts. */
        bool held;
        bool rejected;                 /* an upstream refused it: no longer servable */
        int64_t issued_wall_ms;
        int64_t expires_wall_ms;       /* 0: never expires */

        /*
         * The next fetch: due_mono_ms drives the daemon's timer; due_wall_ms is
         * the wall-clock time it stands for, so a clock step can re-plan it.
         * Unscheduled only while in flight or holding a token that never
         * expires.
         */
        bool scheduled;
        int64_t due_mono_ms;
        int64_t due_wall_ms;
        bool in_flight;
        bool waiting;                  /* due, but waiting for the parent's next outcome */

        unsigned failures;             /* consecutive, as ft_backoff_next counts them */
        bool failed;                   /* the last outcome was (or counts as) a failure */
        struct ft_diag last_error;     /* meaningful while `failed` */
        int64_t failing_since_wall_ms; /* 0 when not failing */
        unsigned ok_count, fail_count;
};

struct ft_engine {
        struct ft_engine_policy policy;
        bool have_offset;
        int64_t offset_ms;             /* wall minus monotonic when last (re)planned */
        size_t n_nodes;
        struct node *nodes[FT_ENGINE_MAX_NODES];
};

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

static bool duration_ok(int64_t ms, int64_t min)
{
        return ms >= min && ms <= POLICY_MAX_MS;
}

static bool policy_ok(const struct ft_engine_policy *p)
{
        return p->refresh_percent >= 10 && p->refresh_percent <= 90 &&
               p->jitter_percent >= 0 && p->jitter_percent <= 25 &&
               duration_ok(p->refresh_margin_ms, 0) &&
               duration_ok(p->min_remaining_ms, 0) &&
               duration_ok(p->backoff_initial_ms, 1) &&
               duration_ok(p->backoff_max_ms, p->backoff_initial_ms) &&
               duration_ok(p->creds_refresh_ms, 0) &&
               duration_ok(p->parent_min_remaining_ms, 0) &&
               duration_ok(p->clock_tolerance_ms, 0);
}

int ft_engine_new(const struct ft_engine_policy *p, struct ft_engine **ret)
{
        struct ft_engine *e;

        if (!p || !ret || !policy_ok(p))
                return -EINVAL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->policy = *p;
        *ret = e;
        return 0;
}

void ft_engine_free(struct ft_engine *e)
{
        if (!e)
                return;
        for (size_t i = 0; i < e->n_nodes; i++) {
                free(e->nodes[i]->name);
                free(e->nodes[i]);
        }
        free(e);
}

static struct node *node_at(const struct ft_engine *e, int id)
{
        if (!e || id < 0 || (size_t)id >= e->n_nodes)
                return NULL;
        return e->nodes[id];
}

size_t ft_engine_count(const struct ft_engine *e)
{
        return e ? e->n_nodes : 0;
}

int ft_engine_find(const struct ft_engine *e, const char *name)
{
        if (!e || !name)
                return -ENOENT;
        for (size_t i = 0; i < e->n_nodes; i++)
                if (strcmp(e->nodes[i]->name, name) == 0)
                        return (int)i;
        return -ENOENT;
}

int ft_engine_add(struct ft_engine *e, const char *name, enum ft_node_kind kind, int parent)
{
        struct node *x;
        size_t len;

        if (!e || !name)
                return -EINVAL;
        len = strnlen(name, NAME_MAX_LEN + 1);
        if (len == 0 || len > NAME_MAX_LEN)
                return -EINVAL;
        if (kind < FT_NODE_AWS_CREDS || kind > FT_NODE_GCP)
                return -EINVAL;
        if (parent != FT_ENGINE_NONE && !node_at(e, parent))
                return -EINVAL;
        if (ft_engine_find(e, name) >= 0)
                return -EEXIST;
        if (e->n_nodes >= FT_ENGINE_MAX_NODES)
                return -ENOSPC;
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->name = ft_strndup(name, len);
        if (!x->name) {
                free(x);
                return -ENOMEM;
        }
        x->kind = kind;
        x->parent = parent;
        x->refresh_percent = e->policy.refresh_percent;
        /* Due at once: the earliest time there is, whatever `now` turns out to be. */
        x->scheduled = true;
        x->due_mono_ms = INT64_MIN;
        x->due_wall_ms = INT64_MIN;
        e->nodes[e->n_nodes] = x;
        return (int)e->n_nodes++;
}

int ft_engine_set_refresh(struct ft_engine *e, int id, int percent, int max_percent)
{
        struct node *x = node_at(e, id);

        if (!x || percent < 10 || percent > 90)
                return -EINVAL;
        if (max_percent != 0 && (max_percent < 10 || max_percent > 95))
                return -EINVAL;
        x->refresh_percent = percent;
        x->max_percent = max_percent;
        return 0;
}

int ft_engine_set_child_margin(struct ft_engine *e, int id, int64_t ms)
{
        struct node *x = node_at(e, id);

        if (!x || ms < 0)
                return -EINVAL;
        x->child_min_ms = ms;
        return 0;
}

/* --- time conversions: a wall-clock instant and the monotonic instant it stands for --- */

static int64_t wall_to_mono(struct ft_now now, int64_t wall_ms)
{
        if (wall_ms <= now.wall_ms)
                return now.mono_ms;
        return now.mono_ms + (wall_ms - now.wall_ms);
}

static int64_t mono_to_wall(struct ft_now now, int64_t mono_ms)
{
        if (mono_ms <= now.mono_ms)
                return now.wall_ms;
        return now.wall_ms + (mono_ms - now.mono_ms);
}

/* Plan the next fetch at a wall-clock time (one in the past means now). */
static void schedule_at(struct node *x, struct ft_now now, int64_t wall_ms)
{
        x->scheduled = true;
        x->due_wall_ms = wall_ms;
        x->due_mono_ms = wall_to_mono(now, wall_ms);
}

static void schedule_in(struct node *x, struct ft_now now, int64_t delay_ms)
{
        x->scheduled = true;
        x->due_wall_ms = now.wall_ms + delay_ms;
        x->due_mono_ms = now.mono_ms + delay_ms;
}

static bool is_due(const struct node *x, struct ft_now now)
{
        return x->scheduled && !x->in_flight && x->due_mono_ms <= now.mono_ms;
}

/* Backing off after a failure: the parent's own retry decides when it is asked again. */
static bool backing_off(const struct node *x, struct ft_now now)
{
        return x->failed && x->scheduled && x->due_mono_ms > now.mono_ms;
}

/* The first wall-clock instant at which the token may no longer be served. */
static int64_t drop_wall(const struct ft_engine *e, const struct node *x)
{
        return x->expires_wall_ms - e->policy.min_remaining_ms + 1;
}

static bool node_servable(const struct ft_engine *e, const struct node *x, int64_t now_wall_ms)
{
        if (!x->held || x->rejected)
                return false;
        return x->expires_wall_ms == 0 ||
               ft_token_servable(now_wall_ms, x->expires_wall_ms, e->policy.min_remaining_ms);
}

bool ft_engine_servable(const struct ft_engine *e, int id, int64_t now_wall_ms)
{
        const struct node *x = node_at(e, id);

        return x && node_servable(e, x, now_wall_ms);
}

static int64_t child_min(const struct ft_engine *e, const struct node *x)
{
        return x->child_min_ms ? x->child_min_ms : e->policy.parent_min_remaining_ms;
}

static bool node_usable_for_child(const struct ft_engine *e, const struct node *x, int64_t now_wall_ms)
{
        if (!node_servable(e, x, now_wall_ms))
                return false;
        return x->expires_wall_ms == 0 || ft_token_servable(now_wall_ms, x->expires_wall_ms, child_min(e, x));
}

bool ft_engine_usable_for_child(const struct ft_engine *e, int id, int64_t now_wall_ms)
{
        const struct node *x = node_at(e, id);

        return x && node_usable_for_child(e, x, now_wall_ms);
}

/* --- clock steps --- */

/*
 * Keep whichever comes first of the plan's monotonic time and the monotonic
 * time its wall-clock time now stands for: a forward step or a resume makes
 * a plan whose wall-clock time has passed due at once, and a backward step
 * does not postpone it. The wall-clock time is then re-expressed in the new
 * frame, so a later step is judged from here.
 */
static void replan_after_step(struct node *x, struct ft_now now)
{
        int64_t from_wall = wall_to_mono(now, x->due_wall_ms);

        if (from_wall < x->due_mono_ms)
                x->due_mono_ms = from_wall;
        x->due_wall_ms = mono_to_wall(now, x->due_mono_ms);
}

bool ft_engine_check_clock(struct ft_engine *e, struct ft_now now)
{
        int64_t offset, moved;

        if (!e)
                return false;
        offset = now.wall_ms - now.mono_ms;
        if (!e->have_offset) {
                e->have_offset = true;
                e->offset_ms = offset;
                return false;
        }
        moved = offset - e->offset_ms;
        if (moved <= e->policy.clock_tolerance_ms && moved >= -e->policy.clock_tolerance_ms)
                return false;
        /*
         * The reference moves only here, so a slow slew is caught once it adds
         * up to the tolerance and plans never drift further than that.
         */
        e->offset_ms = offset;
        for (size_t i = 0; i < e->n_nodes; i++)
                if (e->nodes[i]->scheduled)
                        replan_after_step(e->nodes[i], now);
        return true;
}

/* --- poll --- */

/*
 * A child needs `p`: make it due at once, unless a fetch is under way, its
 * failure backoff decides, or it is due already. True when it became due.
 */
static bool demand(struct node *p, struct ft_now now)
{
        if (p->in_flight || backing_off(p, now))
                return false;
        if (p->scheduled && p->due_mono_ms <= now.mono_ms)
                return false;
        schedule_in(p, now, 0);
        return true;
}

/* One pass over the nodes in id order; true when a child made its parent due. */
static bool poll_pass(struct ft_engine *e, struct ft_now now, int *ret_ids, size_t max, size_t *n,
                      bool *full)
{
        bool demanded = false;

        for (size_t i = 0; i < e->n_nodes; i++) {
                struct node *x = e->nodes[i];

                if (!is_due(x, now))
                        continue;
                /* A waiting node starts here too, as soon as its parent has a usable token. */
                if (x->parent != FT_ENGINE_NONE &&
                    !node_usable_for_child(e, e->nodes[x->parent], now.wall_ms)) {
                        /* Ask the parent once; its next outcome moves this node on. */
                        if (!x->waiting) {
                                x->waiting = true;
                                demanded |= demand(e->nodes[x->parent], now);
                        }
                        continue;
                }
                if (*n >= max) {
                        *full = true;
                        break;
                }
                x->in_flight = true;
                x->waiting = false;
                x->scheduled = false;
                ret_ids[(*n)++] = (int)i;
        }
        return demanded;
}

static int64_t next_wake(const struct ft_engine *e, struct ft_now now)
{
        int64_t wake = INT64_MAX;

        for (size_t i = 0; i < e->n_nodes; i++) {
                const struct node *x = e->nodes[i];
                int64_t t;

                if (x->scheduled && !x->in_flight && !x->waiting) {
                        t = x->due_mono_ms > now.mono_ms ? x->due_mono_ms : now.mono_ms;
                        if (t < wake)
                                wake = t;
                }
                if (x->held && (x->expires_wall_ms != 0 || x->rejected)) {
                        t = x->rejected ? now.mono_ms : wall_to_mono(now, drop_wall(e, x));
                        if (t < wake)
                                wake = t;
                }
        }
        return wake;
}

size_t ft_engine_poll(struct ft_engine *e, struct ft_now now, uint32_t rnd, int *ret_ids, size_t max,
                      int64_t *ret_wake_mono)
{
        size_t n = 0;
        bool full = false;

        if (!e || (!ret_ids && max > 0))
                return 0;
        ft_engine_check_clock(e, now);
        /*
         * A child's demand makes its parent (a lower id) due after the pass
         * has gone by it, so passes repeat; each climbs one level, so there
         * are at most as many as nodes.
         */
        for (size_t pass = 0; pass <= e->n_nodes; pass++)
                if (!poll_pass(e, now, ret_ids, max, &n, &full) || full)
                        break;
        if (ret_wake_mono)
                *ret_wake_mono = full ? now.mono_ms : next_wake(e, now);
        return n;
}

/* --- outcomes --- */

/* The wall-clock time at `percent` of the lifetime from `basis` to `expires`, rounded as ft_refresh_time does. */
static int64_t share_of(int64_t basis, int64_t expires, int percent)
{
        int64_t life = expires - basis;

        return basis + life / 100 * percent + life % 100 * percent / 100;
}

/*
 * The refresh time of the node's new token, counting its lifetime from
 * `basis`. The margin is at least min_remaining, so that a token is renewed
 * before it stops being servable whenever its lifetime allows.
 */
static int64_t plan_from(const struct ft_engine *e, const struct node *x, int64_t basis, struct ft_now now,
                         int64_t hint_wall_ms, uint32_t rnd)
{
        int64_t t;

        if (x->kind == FT_NODE_AWS_CREDS) {
                int64_t half = now.wall_ms + (x->expires_wall_ms - now.wall_ms) / 2;

                t = x->expires_wall_ms - max64(e->policy.creds_refresh_ms, e->policy.min_remaining_ms);
                if (t < half)
                        t = half;
        } else {
                struct ft_refresh_policy rp = {
                        .percent = x->refresh_percent,
                        .jitter_percent = e->policy.jitter_percent,
                        .margin_ms = max64(e->policy.refresh_margin_ms, e->policy.min_remaining_ms),
                };
                t = ft_refresh_time(&rp, basis, x->expires_wall_ms, rnd);
        }
        if (hint_wall_ms > 0 && hint_wall_ms < t) {
                int64_t floor = basis + (t - basis) / 2;

                t = hint_wall_ms > floor ? hint_wall_ms : floor;
        }
        if (x->max_percent) {
                int64_t cap = share_of(basis, x->expires_wall_ms, x->max_percent);

                if (t > cap)
                        t = cap;
        }
        return t;
}

static int64_t plan_refresh(const struct ft_engine *e, const struct node *x, struct ft_now now,
                            int64_t hint_wall_ms, uint32_t rnd)
{
        int64_t t = plan_from(e, x, x->issued_wall_ms, now, hint_wall_ms, rnd);

        /*
         * An issue time far in our past (the upstream's clock is behind ours)
         * would put the plan behind us and renew in a loop; count the
         * lifetime from now instead.
         */
        if (t < now.wall_ms)
                t = plan_from(e, x, now.wall_ms, now, hint_wall_ms, rnd);
        return t;
}

static void set_failed(struct node *x, struct ft_now now)
{
        x->failed = true;
        if (!x->failing_since_wall_ms)
                x->failing_since_wall_ms = now.wall_ms;
}

static void clear_failed(struct node *x)
{
        x->failed = false;
        x->failures = 0;
        x->failing_since_wall_ms = 0;
        ft_diag_clear(&x->last_error);
}

static void back_off(const struct ft_engine *e, struct node *x, struct ft_now now, enum ft_retry retry,
                     int64_t retry_after_s, uint32_t rnd)
{
        struct ft_backoff b = {
                .initial_ms = e->policy.backoff_initial_ms,
                .max_ms = e->policy.backoff_max_ms,
                .failures = x->failures,
        };
        int64_t delay;

        /* ft_backoff_next caps the delay at a day; cap first so the product cannot overflow. */
        if (retry_after_s < 0)
                retry_after_s = 0;
        if (retry_after_s > DAY_MS / 1000)
                retry_after_s = DAY_MS / 1000;
        delay = ft_backoff_next(&b, retry, retry_after_s * 1000, rnd);
        x->failures = b.failures;
        schedule_in(x, now, delay);
}

/* A success the daemon cannot serve: explain it and retry along the backoff (see engine.h). */
static void unservable_success(const struct ft_engine *e, struct node *x, struct ft_now now, uint32_t rnd)
{
        int64_t left_s = (x->expires_wall_ms - now.wall_ms) / 1000;

        ft_diag_clear(&x->last_error);
        if (x->expires_wall_ms <= now.wall_ms)
                (void)ft_diag_set(&x->last_error,
                                  "the token received had already expired by this host's clock (%lld s ago); "
                                  "check that the system clock is right",
                                  (long long)-left_s);
        else
                (void)ft_diag_set(&x->last_error,
                                  "the token received expires in %lld s, less than the %lld s a token must "
                                  "have left to be served; check the system clock and the token lifetime",
                                  (long long)left_s, (long long)(e->policy.min_remaining_ms / 1000));
        x->last_error.retry = FT_RETRY_BACKOFF;
        set_failed(x, now);
        back_off(e, x, now, FT_RETRY_BACKOFF, 0, rnd);
}

static void record_waiting_failure(struct node *c, const struct node *p, const struct ft_diag *why,
                                   struct ft_now now)
{
        struct ft_diag d = *why;

        (void)ft_diag_set(&d, "waiting for %s: %s", p->name, why->msg);
        c->last_error = d;
        c->fail_count++;
        set_failed(c, now);
}

/*
 * The node `id` has had an outcome. With a token usable for a child there is
 * nothing to do: a waiting child is due, so the next poll starts it.
 * Otherwise each waiting child, and each waiting child of those, records why
 * and keeps waiting without a schedule of its own.
 */
static void settle_children(struct ft_engine *e, int id, struct ft_now now)
{
        const struct node *x = e->nodes[id];
        bool failed_here[FT_ENGINE_MAX_NODES] = { false };
        struct ft_diag short_lived;
        const struct ft_diag *why;

        if (node_usable_for_child(e, x, now.wall_ms))
                return;
        if (x->failed) {
                why = &x->last_error;
        } else {
                ft_diag_clear(&short_lived);
                (void)ft_diag_set(&short_lived,
                                  "its token expires in %lld s, too soon to exchange (at least %lld s must be "
                                  "left); make its lifetime longer",
                                  (long long)((x->expires_wall_ms - now.wall_ms) / 1000),
                                  (long long)(child_min(e, x) / 1000));
                short_lived.retry = FT_RETRY_SLOW;
                why = &short_lived;
        }
        /* Children have higher ids than their parents, so one forward pass reaches every level. */
        failed_here[id] = true;
        for (size_t i = (size_t)id + 1; i < e->n_nodes; i++) {
                struct node *c = e->nodes[i];
                const struct node *p;

                if (!c->waiting || c->parent == FT_ENGINE_NONE || !failed_here[c->parent])
                        continue;
                p = e->nodes[c->parent];
                record_waiting_failure(c, p, c->parent == id ? why : &p->last_error, now);
                failed_here[i] = true;
        }
}

/* Bring an upstream's expiry into a range the arithmetic can take. */
static int64_t clamp_expiry(int64_t expires_wall_ms, struct ft_now now)
{
        if (expires_wall_ms < 0)
                return 1; /* nonsense: long expired, but not "never" */
        if (expires_wall_ms > 0 && expires_wall_ms - LIFETIME_MAX_MS > now.wall_ms)
                return now.wall_ms + LIFETIME_MAX_MS;
        return expires_wall_ms;
}

void ft_engine_succeeded(struct ft_engine *e, int id, struct ft_now now, int64_t issued_wall_ms,
                         int64_t expires_wall_ms, int64_t refresh_hint_wall_ms, uint32_t rnd)
{
        struct node *x = node_at(e, id);
        int64_t expires;

        if (!x || !x->in_flight)
                return;
        x->in_flight = false;
        x->ok_count++;
        expires = clamp_expiry(expires_wall_ms, now);
        if (issued_wall_ms <= 0 || (expires != 0 && issued_wall_ms > expires))
                issued_wall_ms = expires != 0 && expires < now.wall_ms ? expires : now.wall_ms;
        x->held = true;
        x->rejected = false;
        x->issued_wall_ms = issued_wall_ms;
        x->expires_wall_ms = expires;
        if (!node_servable(e, x, now.wall_ms)) {
                unservable_success(e, x, now, rnd);
        } else {
                clear_failed(x);
                if (expires == 0)
                        x->scheduled = false;
                else
                        schedule_at(x, now, plan_refresh(e, x, now, refresh_hint_wall_ms, rnd));
        }
        settle_children(e, id, now);
}

void ft_engine_failed(struct ft_engine *e, int id, struct ft_now now, const struct ft_diag *diag, uint32_t rnd)
{
        struct node *x = node_at(e, id);

        if (!x || !x->in_flight)
                return;
        x->in_flight = false;
        x->fail_count++;
        if (diag) {
                x->last_error = *diag;
                x->last_error.msg[sizeof(x->last_error.msg) - 1] = '\0';
                x->last_error.code[sizeof(x->last_error.code) - 1] = '\0';
        } else {
                ft_diag_clear(&x->last_error);
                (void)ft_diag_set(&x->last_error, "the fetch failed for an unknown reason");
        }
        set_failed(x, now);
        back_off(e, x, now, x->last_error.retry, x->last_error.retry_after, rnd);
        settle_children(e, id, now);
}

void ft_engine_cancelled(struct ft_engine *e, int id, struct ft_now now)
{
        struct node *x = node_at(e, id);

        if (!x || !x->in_flight)
                return;
        x->in_flight = false;
        schedule_in(x, now, 0);
}

void ft_engine_invalidate(struct ft_engine *e, int id, struct ft_now now)
{
        struct node *x = node_at(e, id);

        if (!x || !x->held)
                return;
        x->rejected = true;
        if (!x->in_flight && !backing_off(x, now))
                schedule_in(x, now, 0);
}

size_t ft_engine_take_expired(struct ft_engine *e, struct ft_now now, int *ret_ids, size_t max)
{
        size_t n = 0;

        if (!e || !ret_ids)
                return 0;
        for (size_t i = 0; i < e->n_nodes && n < max; i++) {
                struct node *x = e->nodes[i];

                if (!x->held || node_servable(e, x, now.wall_ms))
                        continue;
                x->held = false;
                x->rejected = false;
                x->issued_wall_ms = 0;
                x->expires_wall_ms = 0;
                /* Its refresh was planned before this instant; this only guards the invariant. */
                if (!x->in_flight && !x->scheduled)
                        schedule_in(x, now, 0);
                ret_ids[n++] = (int)i;
        }
        return n;
}

static enum ft_node_state node_state(const struct ft_engine *e, const struct node *x, int64_t now_wall_ms)
{
        bool servable = node_servable(e, x, now_wall_ms);

        if (x->failed)
                return servable ? FT_NODE_STALE : FT_NODE_FAILING;
        return servable ? FT_NODE_FRESH : FT_NODE_PENDING;
}

void ft_engine_status(const struct ft_engine *e, int id, struct ft_now now, struct ft_node_status *ret)
{
        const struct node *x = node_at(e, id);
        bool planned;

        if (!x || !ret)
                return;
        planned = x->scheduled && !x->in_flight && !x->waiting;
        *ret = (struct ft_node_status){
                .name = x->name,
                .kind = x->kind,
                .parent = x->parent,
                .state = node_state(e, x, now.wall_ms),
                .in_flight = x->in_flight,
                .waiting_for_parent = x->waiting,
                .issued_wall_ms = x->held ? x->issued_wall_ms : 0,
                .expires_wall_ms = x->held ? x->expires_wall_ms : 0,
                .next_fetch_wall_ms = planned ? mono_to_wall(now, x->due_mono_ms) : 0,
                .failing_since_wall_ms = x->failing_since_wall_ms,
                .last_error = x->failed ? &x->last_error : NULL,
                .ok_count = x->ok_count,
                .fail_count = x->fail_count,
        };
}

int ft_engine_adopt(struct ft_engine *dst, int new_id, const struct ft_engine *src, int old_id)
{
        struct node *to = node_at(dst, new_id);
        const struct node *from = node_at(src, old_id);

        if (!to || !from || to->kind != from->kind)
                return -EINVAL;
        if (to->in_flight || from->in_flight)
                return -EBUSY;
        to->held = from->held;
        to->rejected = from->rejected;
        to->issued_wall_ms = from->issued_wall_ms;
        to->expires_wall_ms = from->expires_wall_ms;
        to->scheduled = from->scheduled;
        to->due_mono_ms = from->due_mono_ms;
        to->due_wall_ms = from->due_wall_ms;
        /* A node that was waiting is due: the next poll asks its (new) parent afresh. */
        to->waiting = false;
        to->failures = from->failures;
        to->failed = from->failed;
        to->last_error = from->last_error;
        to->failing_since_wall_ms = from->failing_since_wall_ms;
        to->ok_count = from->ok_count;
        to->fail_count = from->fail_count;
        /* The plans copied were made in the old engine's clock frame: keep judging steps from it. */
        if (!dst->have_offset && src->have_offset) {
                dst->have_offset = true;
                dst->offset_ms = src->offset_ms;
        }
        return 0;
}
