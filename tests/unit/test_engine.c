/* SPDX-License-Identifier: MIT */
/*
 * test_engine.c: the renewal engine's policy, proven in simulated time.
 *
 * A small simulator plays the daemon: it wipes what ft_engine_take_expired
 * names, starts what ft_engine_poll names, completes each fetch after a
 * latency with a scripted answer (tokens of a given lifetime, or failures of
 * a given class and Retry-After during an outage window), and sleeps until
 * the next wake time or completion. At every step, and at the last instant
 * before every next step, it checks what users rely on:
 * - a token reported servable has at least min_remaining left;
 * - a token that may not be served any more has been dropped;
 * - no node has two fetches in flight;
 * - a child is fetched only with a parent token usable for it;
 * - a retry after a failure comes within the window the backoff allows
 *   (never earlier, and never later unless waiting for the parent);
 * - optionally: once served, a token stays servable (steady state).
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "engine.h"
#include "test.h"

#define SEC ((int64_t)1000)
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define T0_WALL ((int64_t)1700000000000) /* 2023-11-14 */
#define T0_MONO ((int64_t)5000000)
#define SIM_MAX 16

static const struct ft_engine_policy defaults = {
        .refresh_percent = 50,
        .jitter_percent = 10,
        .refresh_margin_ms = 120 * SEC,
        .min_remaining_ms = 60 * SEC,
        .backoff_initial_ms = 1 * SEC,
        .backoff_max_ms = 60 * SEC,
        .creds_refresh_ms = 900 * SEC,
        .parent_min_remaining_ms = 120 * SEC,
        .clock_tolerance_ms = 2 * SEC,
};

static uint32_t xorshift(uint32_t *s)
{
        uint32_t x = *s;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *s = x;
}

static int64_t min64(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

/* `ms` after the start of a test, on both clocks. */
static struct ft_now at(int64_t ms)
{
        return (struct ft_now){ .wall_ms = T0_WALL + ms, .mono_ms = T0_MONO + ms };
}

static struct ft_engine *engine_new(const struct ft_engine_policy *p)
{
        struct ft_engine *e = NULL;

        CHECK_INT(ft_engine_new(p, &e), 0);
        return e;
}

static struct ft_diag diag_of(enum ft_retry retry, int64_t retry_after_s, const char *code, const char *msg)
{
        struct ft_diag d;

        ft_diag_clear(&d);
        (void)ft_diag_set(&d, "%s", msg);
        snprintf(d.code, sizeof(d.code), "%s", code);
        d.retry = retry;
        d.retry_after = retry_after_s;
        return d;
}

/* Poll at `t`; returns how many started (ids in *ids) and the wake time relative to at(0). */
static size_t poll_at(struct ft_engine *e, int64_t t, int *ids, size_t max, int64_t *ret_wake)
{
        int64_t wake;
        size_t n = ft_engine_poll(e, at(t), 0, ids, max, &wake);

        *ret_wake = wake == INT64_MAX ? INT64_MAX : wake - T0_MONO;
        return n;
}

/* --- the simulator --- */

/* How the fake upstream answers one node's fetches. */
struct upstream {
        int64_t lifetime_ms;        /* 0: tokens that never expire */
        int64_t hint_ms;            /* refresh_in, counted from issue; 0: none */
        int64_t latency_ms;
        int64_t fixed_expiry_ms;    /* != 0: every token expires at this offset from the start */
        /* Fetches starting within [fail_from, fail_until) of the run's start fail. */
        int64_t fail_from[2], fail_until[2];
        enum ft_retry fail_class;
        int64_t retry_after_s;
        bool rejects_parent;        /* failures say the parent's token was refused: invalidate it */
};

struct sim_node {
        struct upstream up;
        int parent;
        enum ft_node_kind kind;
        bool in_flight, will_fail;
        int64_t done_mono;
        /* The token the "daemon" holds. */
        bool held, rejected;
        int64_t issued, expires;
        bool served_once;
        unsigned starts, successes, failures, late;
        double min_frac, max_frac;
        /* The retry window the backoff allows after the last failure. */
        unsigned run;
        bool retrying;
        int64_t retry_lo, retry_hi;
        /* The failing period: when it began (or the last clock event) and the attempts since. */
        int64_t period_start;
        unsigned period_attempts;
};

struct sim {
        const char *name;
        struct ft_engine_policy pol;
        struct ft_engine *e;
        struct ft_now now;
        int64_t mono0, wall0;
        uint32_t seed;
        size_t n;
        struct sim_node nodes[SIM_MAX];
        bool continuous;            /* steady state: a token once served stays servable */
        bool stepped;               /* a clock event happened: refresh shares no longer measured */
        unsigned violations;
};

static void violation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(struct sim *s, const char *fmt, ...)
{
        va_list ap;

        if (s->violations++ >= 5)
                return;
        fprintf(stderr, "%s (seed %u) at %.3f s: ", s->name, s->seed, (double)(s->now.mono_ms - s->mono0) / 1000);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static void sim_init(struct sim *s, const char *name, const struct ft_engine_policy *pol, uint32_t seed)
{
        memset(s, 0, sizeof(*s));
        s->name = name;
        s->pol = *pol;
        s->e = engine_new(pol);
        s->now = at(0);
        s->mono0 = s->now.mono_ms;
        s->wall0 = s->now.wall_ms;
        s->seed = seed ? seed : 1;
}

static void sim_free(struct sim *s)
{
        ft_engine_free(s->e);
        s->e = NULL;
}

static int sim_add(struct sim *s, const char *name, enum ft_node_kind kind, int parent, struct upstream up)
{
        int id = ft_engine_add(s->e, name, kind, parent);

        CHECK_INT(id, (int)s->n);
        if (id < 0 || id >= SIM_MAX)
                abort();
        s->nodes[id] = (struct sim_node){ .up = up, .parent = parent, .kind = kind, .min_frac = 1.0 };
        s->n++;
        return id;
}

static int64_t sim_t(const struct sim *s)
{
        return s->now.mono_ms - s->mono0;
}

static bool failing_at(const struct upstream *up, int64_t t)
{
        for (int i = 0; i < 2; i++)
                if (t >= up->fail_from[i] && t < up->fail_until[i])
                        return true;
        return false;
}

/* The window schedule.h promises for the next attempt after this failure. */
static void model_retry(struct sim *s, struct sim_node *x, enum ft_retry cls, int64_t retry_after_s)
{
        int64_t ini = s->pol.backoff_initial_ms, cap = ini, lo, hi;
        int64_t ra = min64(max64(retry_after_s, 0), 86400) * SEC;
        unsigned n = x->run++;

        /*
         * The attempts of a failing period are bounded by its length: one free
         * "retry now", then at least backoff_initial between attempts.
         */
        if (n == 0) {
                x->period_start = s->now.mono_ms;
                x->period_attempts = 0;
        }
        if (++x->period_attempts > 2 + (s->now.mono_ms - x->period_start) / ini)
                violation(s, "%u attempts in a failing period of %lld ms", x->period_attempts,
                          (long long)(s->now.mono_ms - x->period_start));
        if (cls == FT_RETRY_NOW && n == 0) {
                lo = hi = 0;
        } else if (cls == FT_RETRY_SLOW) {
                lo = s->pol.backoff_max_ms;
                hi = 2 * s->pol.backoff_max_ms;
        } else {
                unsigned k = cls == FT_RETRY_NOW ? n - 1 : n;

                while (k-- > 0 && cap < s->pol.backoff_max_ms)
                        cap *= 2;
                cap = min64(cap, s->pol.backoff_max_ms);
                lo = min64(ini, cap);
                hi = cap;
        }
        lo = min64(max64(lo, ra), DAY);
        hi = min64(max64(hi, ra), DAY);
        x->retrying = true;
        x->retry_lo = s->now.mono_ms + lo;
        x->retry_hi = s->now.mono_ms + hi;
}

static void sim_start(struct sim *s, int id)
{
        struct sim_node *x;

        if (id < 0 || (size_t)id >= s->n) {
                violation(s, "poll returned unknown id %d", id);
                return;
        }
        x = &s->nodes[id];
        if (x->in_flight)
                violation(s, "node %d started while its fetch is in flight", id);
        if (x->parent != FT_ENGINE_NONE) {
                const struct sim_node *p = &s->nodes[x->parent];
                int64_t need = max64(s->pol.parent_min_remaining_ms, s->pol.min_remaining_ms);

                if (!p->held || p->rejected)
                        violation(s, "node %d started while its parent holds no good token", id);
                else if (p->expires != 0 && p->expires - s->now.wall_ms < need)
                        violation(s, "node %d started with a parent token that has %lld ms left", id,
                                  (long long)(p->expires - s->now.wall_ms));
        }
        if (x->retrying && s->now.mono_ms < x->retry_lo)
                violation(s, "node %d retried %lld ms before its backoff allowed", id,
                          (long long)(x->retry_lo - s->now.mono_ms));
        if (x->held && x->expires != 0 && !x->retrying && !s->stepped) {
                double frac = (double)(s->now.wall_ms - x->issued) / (double)(x->expires - x->issued);

                x->min_frac = frac < x->min_frac ? frac : x->min_frac;
                x->max_frac = frac > x->max_frac ? frac : x->max_frac;
                if (s->now.wall_ms > x->expires - s->pol.refresh_margin_ms)
                        x->late++;
        }
        x->in_flight = true;
        x->starts++;
        x->done_mono = s->now.mono_ms + x->up.latency_ms;
        x->will_fail = failing_at(&x->up, sim_t(s));
}

static void sim_complete(struct sim *s, int id)
{
        struct sim_node *x = &s->nodes[id];
        int64_t issued, expires, hint;

        x->in_flight = false;
        if (x->will_fail) {
                struct ft_diag d = diag_of(x->up.fail_class, x->up.retry_after_s, "ServiceUnavailable",
                                           "the STS endpoint answered HTTP 503; it is retried");

                if (x->up.rejects_parent && x->parent != FT_ENGINE_NONE) {
                        ft_engine_invalidate(s->e, x->parent, s->now);
                        if (s->nodes[x->parent].held)
                                s->nodes[x->parent].rejected = true;
                }
                ft_engine_failed(s->e, id, s->now, &d, xorshift(&s->seed));
                x->failures++;
                model_retry(s, x, x->up.fail_class, x->up.retry_after_s);
                return;
        }
        issued = s->now.wall_ms;
        if (x->up.fixed_expiry_ms)
                expires = s->wall0 + x->up.fixed_expiry_ms;
        else
                expires = x->up.lifetime_ms ? issued + x->up.lifetime_ms : 0;
        hint = x->up.hint_ms ? issued + x->up.hint_ms : 0;
        ft_engine_succeeded(s->e, id, s->now, issued, expires, hint, xorshift(&s->seed));
        x->successes++;
        /* The daemon stores every token it receives; an unservable one is named by take_expired. */
        x->held = true;
        x->rejected = false;
        x->issued = issued;
        x->expires = expires;
        if (ft_engine_servable(s->e, id, s->now.wall_ms)) {
                x->run = 0;
                x->retrying = false;
                x->served_once = true;
        } else {
                model_retry(s, x, FT_RETRY_BACKOFF, 0);
        }
}

static size_t sim_take_expired(struct sim *s, int *ids, size_t max)
{
        size_t n = ft_engine_take_expired(s->e, s->now, ids, max);

        for (size_t i = 0; i < n; i++) {
                struct sim_node *x = &s->nodes[ids[i]];

                if (!x->held)
                        violation(s, "node %d reported dropped but holds nothing", ids[i]);
                else if (!x->rejected &&
                         (x->expires == 0 || x->expires - s->now.wall_ms >= s->pol.min_remaining_ms))
                        violation(s, "node %d dropped with %lld ms left", ids[i],
                                  (long long)(x->expires - s->now.wall_ms));
                x->held = false;
                x->rejected = false;
        }
        return n;
}

/* The promises at instant `t`; `settled` after take_expired and poll ran at that instant. */
static void sim_check(struct sim *s, struct ft_now t, bool settled)
{
        for (size_t i = 0; i < s->n; i++) {
                struct sim_node *x = &s->nodes[i];
                bool servable = ft_engine_servable(s->e, (int)i, t.wall_ms);
                struct ft_node_status st;

                if (servable && (!x->held || x->rejected))
                        violation(s, "node %zu servable without a (good) token", i);
                else if (servable && x->expires != 0 && x->expires - t.wall_ms < s->pol.min_remaining_ms)
                        violation(s, "node %zu servable with %lld ms left", i, (long long)(x->expires - t.wall_ms));
                if (s->continuous && x->served_once && !servable)
                        violation(s, "node %zu not servable in steady state", i);
                if (!settled)
                        continue;
                if (x->held && (x->rejected || (x->expires != 0 && x->expires - t.wall_ms < s->pol.min_remaining_ms)))
                        violation(s, "node %zu holds an unservable token that was not dropped", i);
                ft_engine_status(s->e, (int)i, t, &st);
                if (st.in_flight != x->in_flight)
                        violation(s, "node %zu in flight: engine %d, daemon %d", i, st.in_flight, x->in_flight);
                if (x->retrying && !x->in_flight && t.mono_ms > x->retry_hi && !st.waiting_for_parent)
                        violation(s, "node %zu retry overdue by %lld ms", i, (long long)(t.mono_ms - x->retry_hi));
                if (x->held && st.expires_wall_ms != x->expires)
                        violation(s, "node %zu: engine and daemon disagree on the expiry", i);
        }
}

/* Run the daemon's loop for `duration` of monotonic time. */
static void sim_run(struct sim *s, int64_t duration)
{
        int64_t end = s->now.mono_ms + duration;
        unsigned same = 0;

        for (;;) {
                int ids[SIM_MAX];
                int64_t wake, next;
                size_t n;

                sim_take_expired(s, ids, SIM_MAX);
                n = ft_engine_poll(s->e, s->now, xorshift(&s->seed), ids, SIM_MAX, &wake);
                for (size_t i = 0; i < n; i++)
                        sim_start(s, ids[i]);
                sim_check(s, s->now, true);
                if (wake < s->now.mono_ms)
                        violation(s, "wake time %lld ms in the past", (long long)(s->now.mono_ms - wake));
                if (s->now.mono_ms >= end)
                        break;
                next = min64(wake, end);
                for (size_t i = 0; i < s->n; i++)
                        if (s->nodes[i].in_flight)
                                next = min64(next, s->nodes[i].done_mono);
                if (next <= s->now.mono_ms) {
                        if (++same > 100) {
                                violation(s, "busy loop");
                                break;
                        }
                        next = s->now.mono_ms;
                } else {
                        same = 0;
                }
                if (next > s->now.mono_ms + 1) {
                        struct ft_now before = { s->now.wall_ms + (next - 1 - s->now.mono_ms), next - 1 };

                        sim_check(s, before, false);
                }
                s->now.wall_ms += next - s->now.mono_ms;
                s->now.mono_ms = next;
                for (size_t i = 0; i < s->n; i++)
                        if (s->nodes[i].in_flight && s->nodes[i].done_mono <= s->now.mono_ms)
                                sim_complete(s, (int)i);
        }
}

/* A clock step (mono_delta 0) or a suspend/resume (wall advances, mono stands still). */
static void sim_jump(struct sim *s, int64_t wall_delta, int64_t mono_delta)
{
        s->now.wall_ms += wall_delta;
        s->now.mono_ms += mono_delta;
        s->stepped = true;
        /* A plan whose wall-clock time has come is due at once: retries may come early. */
        for (size_t i = 0; i < s->n; i++) {
                s->nodes[i].retry_lo = min64(s->nodes[i].retry_lo, s->now.mono_ms);
                s->nodes[i].period_start = s->now.mono_ms;
                s->nodes[i].period_attempts = 0;
        }
}

static struct ft_node_status sim_status(const struct sim *s, int id)
{
        struct ft_node_status st;

        memset(&st, 0, sizeof(st));
        ft_engine_status(s->e, id, s->now, &st);
        return st;
}

/* --- API contract --- */

static void test_policy_validation(void)
{
        struct ft_engine_policy p;
        struct ft_engine *e = NULL;

        p = defaults;
        p.refresh_percent = 5;
        CHECK_INT(ft_engine_new(&p, &e), -EINVAL);
        p = defaults;
        p.jitter_percent = 30;
        CHECK_INT(ft_engine_new(&p, &e), -EINVAL);
        p = defaults;
        p.backoff_initial_ms = 0; /* a zero backoff would retry in a loop */
        CHECK_INT(ft_engine_new(&p, &e), -EINVAL);
        p = defaults;
        p.backoff_max_ms = 500;
        CHECK_INT(ft_engine_new(&p, &e), -EINVAL);
        p = defaults;
        p.min_remaining_ms = -1;
        CHECK_INT(ft_engine_new(&p, &e), -EINVAL);
        p = defaults;
        p.refresh_margin_ms = 400 * DAY;
        CHECK_INT(ft_engine_new(&p, &e), -EINVAL);
        CHECK_INT(ft_engine_new(NULL, &e), -EINVAL);
        CHECK(e == NULL);
        ft_engine_free(NULL);
}

static void test_nodes(void)
{
        struct ft_engine *e = engine_new(&defaults);
        char name[300];
        struct ft_node_status st;
        int c, j, a;

        c = ft_engine_add(e, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE);
        j = ft_engine_add(e, "jwt", FT_NODE_JWT, c);
        a = ft_engine_add(e, "azure", FT_NODE_AZURE, j);
        CHECK_INT(c, 0);
        CHECK_INT(j, 1);
        CHECK_INT(a, 2);
        CHECK_INT(ft_engine_add(e, "jwt", FT_NODE_JWT, c), -EEXIST);
        CHECK_INT(ft_engine_add(e, "x", FT_NODE_JWT, 3), -EINVAL);
        CHECK_INT(ft_engine_add(e, "x", FT_NODE_JWT, -2), -EINVAL);
        CHECK_INT(ft_engine_add(e, "", FT_NODE_JWT, FT_ENGINE_NONE), -EINVAL);
        CHECK_INT(ft_engine_add(e, NULL, FT_NODE_JWT, FT_ENGINE_NONE), -EINVAL);
        CHECK_INT(ft_engine_add(e, "x", (enum ft_node_kind)7, FT_ENGINE_NONE), -EINVAL);
        memset(name, 'n', sizeof(name));
        name[256] = '\0';
        CHECK_INT(ft_engine_add(e, name, FT_NODE_GCP, j), -EINVAL);
        name[255] = '\0';
        CHECK_INT(ft_engine_add(e, name, FT_NODE_GCP, j), 3);
        CHECK_INT(ft_engine_find(e, "azure"), a);
        CHECK_INT(ft_engine_find(e, "nope"), -ENOENT);
        CHECK_INT(ft_engine_count(e), 4);

        CHECK_INT(ft_engine_set_refresh(e, j, 9, 0), -EINVAL);
        CHECK_INT(ft_engine_set_refresh(e, j, 91, 0), -EINVAL);
        CHECK_INT(ft_engine_set_refresh(e, j, 50, 9), -EINVAL);
        CHECK_INT(ft_engine_set_refresh(e, j, 50, 96), -EINVAL);
        CHECK_INT(ft_engine_set_refresh(e, 99, 50, 80), -EINVAL);
        CHECK_INT(ft_engine_set_refresh(e, j, 50, 80), 0);

        /* A new node is due at once and has nothing to serve. */
        ft_engine_status(e, a, at(0), &st);
        CHECK_STR(st.name, "azure");
        CHECK_INT(st.kind, FT_NODE_AZURE);
        CHECK_INT(st.parent, j);
        CHECK_INT(st.state, FT_NODE_PENDING);
        CHECK_INT(st.next_fetch_wall_ms, T0_WALL);
        CHECK(st.last_error == NULL);
        CHECK(!ft_engine_servable(e, a, T0_WALL));
        CHECK(!ft_engine_servable(e, 99, T0_WALL));
        CHECK(!ft_engine_usable_for_child(e, -1, T0_WALL));
        st.name = "untouched";
        ft_engine_status(e, 42, at(0), &st);
        CHECK_STR(st.name, "untouched");

        /* The bound: FT_ENGINE_MAX_NODES nodes, then -ENOSPC. */
        for (int i = 4; i < FT_ENGINE_MAX_NODES; i++) {
                snprintf(name, sizeof(name), "n%d", i);
                CHECK(ft_engine_add(e, name, FT_NODE_GCP, j) == i);
        }
        CHECK_INT(ft_engine_add(e, "one-too-many", FT_NODE_GCP, j), -ENOSPC);
        CHECK_INT(ft_engine_count(e), FT_ENGINE_MAX_NODES);
        ft_engine_free(e);
}

static void test_outcomes_need_a_fetch(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_diag d = diag_of(FT_RETRY_BACKOFF, 0, "", "connection refused by sts.amazonaws.com:443");
        struct ft_node_status st;
        int id = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE), ids[4];
        int64_t wake;

        /* Reports for a node that is not in flight are ignored. */
        ft_engine_succeeded(e, id, at(0), T0_WALL, T0_WALL + 300 * SEC, 0, 0);
        ft_engine_failed(e, id, at(0), &d, 0);
        ft_engine_status(e, id, at(0), &st);
        CHECK_INT(st.ok_count, 0);
        CHECK_INT(st.fail_count, 0);
        CHECK(!ft_engine_servable(e, id, T0_WALL));

        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        CHECK_INT(ids[0], id);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 0);
        CHECK_INT(wake, INT64_MAX);
        /* A cancelled fetch is due again at once, and its backoff goes on where it was. */
        ft_engine_failed(e, id, at(0), &d, UINT32_MAX);
        CHECK_INT(poll_at(e, 1 * SEC, ids, 4, &wake), 1);
        ft_engine_cancelled(e, id, at(1 * SEC));
        ft_engine_status(e, id, at(1 * SEC), &st);
        CHECK(!st.in_flight);
        CHECK_INT(st.next_fetch_wall_ms, T0_WALL + 1 * SEC);
        CHECK_INT(poll_at(e, 1 * SEC, ids, 4, &wake), 1);
        ft_engine_failed(e, id, at(1 * SEC), &d, UINT32_MAX);
        CHECK_INT(poll_at(e, 1 * SEC, ids, 4, &wake), 0);
        CHECK_INT(wake, 3 * SEC);
        /* max 0 starts nothing and asks to be called again at once. */
        CHECK_INT(poll_at(e, 3 * SEC, ids, 0, &wake), 0);
        CHECK_INT(wake, 3 * SEC);
        ft_engine_free(e);
}

/* --- retries --- */

/* Start the node at `t`, fail it with `d`, and return the delay until it is due again. */
static int64_t fail_and_wait(struct ft_engine *e, int id, int64_t t, const struct ft_diag *d, uint32_t rnd)
{
        int ids[4];
        int64_t wake;

        if (poll_at(e, t, ids, 4, &wake) != 1 || ids[0] != id)
                return -1;
        ft_engine_failed(e, id, at(t), d, rnd);
        if (poll_at(e, t, ids, 4, &wake) != 0 && wake != t)
                return 0; /* retried at once (FT_RETRY_NOW) */
        return wake - t;
}

static void test_backoff_sequence(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_diag d = diag_of(FT_RETRY_BACKOFF, 0, "", "no answer from sts.amazonaws.com within 10 s");
        int64_t caps[] = { 1, 2, 4, 8, 16, 32, 60, 60, 60 }, t = 0, delay;
        int id = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE);
        struct ft_node_status st;

        for (size_t i = 0; i < FT_ELEMENTSOF(caps); i++) {
                delay = fail_and_wait(e, id, t, &d, UINT32_MAX);
                CHECK_INT(delay, caps[i] * SEC);
                t += delay;
        }
        ft_engine_status(e, id, at(t), &st);
        CHECK_INT(st.state, FT_NODE_FAILING);
        CHECK_INT(st.fail_count, FT_ELEMENTSOF(caps));
        CHECK_INT(st.failing_since_wall_ms, T0_WALL);
        CHECK(st.last_error && strstr(st.last_error->msg, "no answer"));
        /* Full jitter: the smallest draw is the floor. */
        CHECK_INT(fail_and_wait(e, id, t, &d, 0), 1 * SEC);
        t += 1 * SEC;
        /* A success resets the backoff and the failure record. */
        {
                int ids[4];
                int64_t wake;

                CHECK_INT(poll_at(e, t, ids, 4, &wake), 1);
                ft_engine_succeeded(e, id, at(t), T0_WALL + t, T0_WALL + t + 300 * SEC, 0, 0);
                ft_engine_status(e, id, at(t), &st);
                CHECK_INT(st.state, FT_NODE_FRESH);
                CHECK(st.last_error == NULL);
                CHECK_INT(st.failing_since_wall_ms, 0);
                CHECK_INT(poll_at(e, t, ids, 4, &wake), 0);
                CHECK(wake >= t + 135 * SEC && wake <= t + 165 * SEC);
                t = wake;
        }
        CHECK_INT(fail_and_wait(e, id, t, &d, UINT32_MAX), 1 * SEC);
        ft_engine_status(e, id, at(t), &st);
        CHECK_INT(st.state, FT_NODE_STALE);
        ft_engine_free(e);
}

static void test_retry_after_honoured(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_diag d = diag_of(FT_RETRY_BACKOFF, 120, "Throttling", "STS is throttling requests (HTTP 429)");
        int id = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE), ids[4];
        int64_t wake;

        CHECK_INT(fail_and_wait(e, id, 0, &d, UINT32_MAX), 120 * SEC);
        CHECK_INT(poll_at(e, 120 * SEC - 1, ids, 4, &wake), 0);
        /* A hostile Retry-After cannot stall the node for more than a day, nor overflow. */
        d.retry_after = INT64_MAX;
        CHECK_INT(fail_and_wait(e, id, 120 * SEC, &d, 0), DAY);
        d.retry_after = -5;
        CHECK_INT(fail_and_wait(e, id, 120 * SEC + DAY, &d, 0), 1 * SEC);
        ft_engine_free(e);
}

static void test_slow_class(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_diag d = diag_of(FT_RETRY_SLOW, 0, "AccessDenied",
                                   "the role may not call sts:GetWebIdentityToken; grant it in IAM");
        int id = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE);
        uint32_t seed = 7;
        int64_t t = 0;

        CHECK_INT(fail_and_wait(e, id, t, &d, 0), 60 * SEC);
        t += 60 * SEC;
        CHECK_INT(fail_and_wait(e, id, t, &d, UINT32_MAX), 120 * SEC);
        t += 120 * SEC;
        /* Slow and steady: a person must act, and the daemon notices within two minutes. */
        for (int i = 0; i < 50; i++) {
                int64_t delay = fail_and_wait(e, id, t, &d, xorshift(&seed));

                CHECK(delay >= 60 * SEC && delay <= 120 * SEC);
                t += delay;
        }
        ft_engine_free(e);
}

static void test_now_class_once(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_diag d = diag_of(FT_RETRY_NOW, 0, "AADSTS700024", "the client assertion has expired");
        int id = ft_engine_add(e, "azure", FT_NODE_AZURE, FT_ENGINE_NONE), ids[4];
        int64_t wake;

        /* At once, the first time only. */
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        ft_engine_failed(e, id, at(0), &d, UINT32_MAX);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        ft_engine_failed(e, id, at(0), &d, UINT32_MAX);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 0);
        CHECK_INT(wake, 1 * SEC);
        CHECK_INT(fail_and_wait(e, id, 1 * SEC, &d, UINT32_MAX), 2 * SEC);
        /* After a success the next run may again retry at once. */
        CHECK_INT(poll_at(e, 3 * SEC, ids, 4, &wake), 1);
        ft_engine_succeeded(e, id, at(3 * SEC), T0_WALL + 3 * SEC, T0_WALL + 3 * SEC + HOUR, 0, 0);
        CHECK_INT(poll_at(e, 3 * SEC, ids, 4, &wake), 0);
        CHECK_INT(fail_and_wait(e, id, wake, &d, UINT32_MAX), 0);
        ft_engine_free(e);
}

/* --- refresh plans --- */

/*
 * A fresh node of `kind` (refresh `percent`, 0: the policy's) succeeds at 0
 * with a token issued at `issued`, expiring after `lifetime` (and a refresh
 * hint at `hint`, 0: none). Returns when it is due again, relative to 0.
 */
static int64_t planned(const struct ft_engine_policy *p, enum ft_node_kind kind, int percent, int max_percent,
                       int64_t issued, int64_t lifetime, int64_t hint, uint32_t rnd)
{
        struct ft_engine *e = engine_new(p);
        int id = ft_engine_add(e, "n", kind, FT_ENGINE_NONE), ids[4];
        int64_t wake = -1;

        if (percent)
                CHECK_INT(ft_engine_set_refresh(e, id, percent, max_percent), 0);
        if (poll_at(e, 0, ids, 4, &wake) == 1) {
                ft_engine_succeeded(e, id, at(0), T0_WALL + issued, lifetime ? T0_WALL + lifetime : 0,
                                    hint ? T0_WALL + hint : 0, rnd);
                if (poll_at(e, 0, ids, 4, &wake) != 0)
                        wake = -1;
        }
        ft_engine_free(e);
        return wake;
}

static void test_refresh_share_and_jitter(void)
{
        uint32_t seed = 4242;
        int64_t lo = INT64_MAX, hi = INT64_MIN;

        CHECK_INT(planned(&defaults, FT_NODE_JWT, 0, 0, 0, 300 * SEC, 0, 0), 135 * SEC);
        CHECK_INT(planned(&defaults, FT_NODE_JWT, 0, 0, 0, 300 * SEC, 0, UINT32_MAX), 165 * SEC);
        for (int i = 0; i < 2000; i++) {
                int64_t t = planned(&defaults, FT_NODE_AZURE, 0, 0, 0, 3600 * SEC, 0, xorshift(&seed));

                lo = min64(lo, t);
                hi = max64(hi, t);
        }
        CHECK(lo >= 1620 * SEC && lo < 1640 * SEC);
        CHECK(hi <= 1980 * SEC && hi > 1960 * SEC);
        /* Per-node share. */
        CHECK_INT(planned(&defaults, FT_NODE_AZURE, 20, 0, 0, 3600 * SEC, 0, 0), 648 * SEC);
        /* An issue time far in the past (upstream clock behind): the life is counted from now, no loop. */
        CHECK_INT(planned(&defaults, FT_NODE_JWT, 0, 0, -3000 * SEC, 3600 * SEC, 0, 0), 1620 * SEC);
        /* No issue time: now. */
        CHECK_INT(planned(&defaults, FT_NODE_JWT, 0, 0, -T0_WALL, 300 * SEC, 0, 0), 135 * SEC);
        /* The margin is at least min_remaining: a token is renewed before it stops being servable. */
        {
                struct ft_engine_policy p = defaults;

                p.refresh_margin_ms = 30 * SEC;
                CHECK_INT(planned(&p, FT_NODE_JWT, 90, 0, 0, 300 * SEC, 0, UINT32_MAX), 240 * SEC);
        }
        /* Never refreshed: a token that does not expire. */
        CHECK_INT(planned(&defaults, FT_NODE_AWS_CREDS, 0, 0, 0, 0, 0, 0), INT64_MAX);
        /* An absurd expiry is clamped, not overflowed: about five years. */
        {
                int64_t t = planned(&defaults, FT_NODE_JWT, 0, 0, 0, INT64_MAX - T0_WALL, 0, 0);

                CHECK(t > 4 * 365 * DAY && t < 6 * 365 * DAY);
        }
}

static void test_refresh_hint(void)
{
        struct ft_engine_policy p = defaults;
        int64_t life = 86400 * SEC;

        p.jitter_percent = 0;
        CHECK_INT(planned(&p, FT_NODE_AZURE, 0, 0, 0, life, 0, 0), life / 2);
        /* Entra's refresh_in brings the refresh earlier ... */
        CHECK_INT(planned(&p, FT_NODE_AZURE, 0, 0, 0, life, life * 40 / 100, 0), life * 40 / 100);
        CHECK_INT(planned(&p, FT_NODE_AZURE, 0, 0, 0, life, 43199 * SEC, UINT32_MAX), 43199 * SEC);
        /* ... never later ... */
        CHECK_INT(planned(&p, FT_NODE_AZURE, 0, 0, 0, life, life * 70 / 100, 0), life / 2);
        /* ... and never into a loop: at most half way to the plan. */
        CHECK_INT(planned(&p, FT_NODE_AZURE, 0, 0, 0, life, 1 * SEC, 0), life / 4);
        CHECK_INT(planned(&p, FT_NODE_AZURE, 0, 0, 0, life, -1 * HOUR, 0), life / 4);
}

static void test_max_percent(void)
{
        uint32_t seed = 99;
        int64_t life = 3600 * SEC;
        bool below = false, at_cap = false;

        /* 90 % ± 10 % would be up to 99 % (margin: 3480 s); the token file ceiling is 80 %. */
        for (int i = 0; i < 500; i++)
                CHECK_INT(planned(&defaults, FT_NODE_JWT, 90, 80, 0, life, 0, xorshift(&seed)), 2880 * SEC);
        /* 75 % ± 10 % spans 67.5 .. 82.5 %: jitter below the ceiling stays, above it is cut. */
        for (int i = 0; i < 500; i++) {
                int64_t t = planned(&defaults, FT_NODE_JWT, 75, 80, 0, 86400 * SEC, 0, xorshift(&seed));

                CHECK(t >= 58320 * SEC && t <= 69120 * SEC);
                below |= t < 69120 * SEC;
                at_cap |= t == 69120 * SEC;
        }
        CHECK(below && at_cap);
}

static void test_aws_creds_window(void)
{
        /* Long-lived: creds_refresh before expiry, no jitter needed. */
        CHECK_INT(planned(&defaults, FT_NODE_AWS_CREDS, 0, 0, 0, 6 * HOUR, 0, 12345), 6 * HOUR - 900 * SEC);
        /* Short-lived: half the remaining life when that is later. */
        CHECK_INT(planned(&defaults, FT_NODE_AWS_CREDS, 0, 0, 0, 20 * MINUTE, 0, 0), 10 * MINUTE);
        CHECK_INT(planned(&defaults, FT_NODE_AWS_CREDS, 0, 0, -50 * MINUTE, 10 * MINUTE, 0, 0), 5 * MINUTE);
}

/* IMDS handing out the same credentials until they lapse: renewals slow down, never loop. */
static void test_aws_creds_fixed_expiry(void)
{
        struct sim s;
        int c;

        sim_init(&s, "creds-fixed-expiry", &defaults, 31);
        c = sim_add(&s, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE,
                    (struct upstream){ .fixed_expiry_ms = 20 * MINUTE, .latency_ms = 50 });
        sim_run(&s, 20 * MINUTE);
        CHECK_INT(s.violations, 0);
        /* 1 + halvings at 600, 300, 150, 75 s left, then a few backoff steps once unservable. */
        CHECK(s.nodes[c].starts >= 5 && s.nodes[c].starts <= 16);
        sim_free(&s);
}

/* --- the dependency graph --- */

static void test_one_fetch_for_five_children(void)
{
        struct ft_engine *e = engine_new(&defaults);
        int c = ft_engine_add(e, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE);
        int j = ft_engine_add(e, "jwt", FT_NODE_JWT, c);
        int ids[16], kids[5];
        struct ft_node_status st;
        int64_t wake;
        size_t n;

        for (int i = 0; i < 5; i++) {
                char name[32];

                snprintf(name, sizeof(name), "azure%d", i);
                kids[i] = ft_engine_add(e, name, FT_NODE_AZURE, j);
        }
        /* Everything is due; only the root can start. */
        CHECK_INT(poll_at(e, 0, ids, 16, &wake), 1);
        CHECK_INT(ids[0], c);
        ft_engine_status(e, j, at(0), &st);
        CHECK(st.waiting_for_parent);
        CHECK_INT(st.next_fetch_wall_ms, 0);
        CHECK_INT(wake, INT64_MAX);
        ft_engine_succeeded(e, c, at(100), T0_WALL + 100, 0, 0, 0);
        /* One JWT fetch, shared by the five children. */
        CHECK_INT(poll_at(e, 100, ids, 16, &wake), 1);
        CHECK_INT(ids[0], j);
        CHECK_INT(poll_at(e, 200, ids, 16, &wake), 0);
        ft_engine_succeeded(e, j, at(300), T0_WALL + 300, T0_WALL + 300 + 300 * SEC, 0, 0);
        n = poll_at(e, 300, ids, 16, &wake);
        CHECK_INT(n, 5);
        for (size_t i = 0; i < n && i < 5; i++)
                CHECK_INT(ids[i], kids[i]);
        for (int i = 0; i < 5; i++)
                ft_engine_succeeded(e, kids[i], at(400), T0_WALL + 400, T0_WALL + 400 + HOUR, 0, 0);

        /* Later the JWT is gone (it failed past its life) while the five children all fall due. */
        {
                struct ft_diag d = diag_of(FT_RETRY_BACKOFF, 0, "", "no answer from sts.amazonaws.com within 10 s");
                int64_t t = 150 * SEC;
                unsigned jwt_fetches = 0;

                CHECK_INT(poll_at(e, 0, ids, 16, &wake), 0);
                t = wake;
                /* Fail every JWT attempt until the children are due (~1800 s). */
                for (int guard = 0; t < 2000 * SEC && guard < 1000; guard++) {
                        n = poll_at(e, t, ids, 16, &wake);
                        for (size_t i = 0; i < n; i++) {
                                CHECK_INT(ids[i], j);
                                jwt_fetches++;
                                ft_engine_failed(e, j, at(t), &d, UINT32_MAX);
                        }
                        if (n) {
                                (void)poll_at(e, t, ids, 16, &wake);
                        }
                        if (ft_engine_take_expired(e, at(t), ids, 16) > 0) {
                                (void)poll_at(e, t, ids, 16, &wake);
                        }
                        t = wake;
                }
                /* Every child is waiting with the JWT's reason; none was fetched. */
                for (int i = 0; i < 5; i++) {
                        ft_engine_status(e, kids[i], at(t), &st);
                        CHECK(st.waiting_for_parent);
                        CHECK_INT(st.state, FT_NODE_STALE);
                        CHECK(st.last_error && strstr(st.last_error->msg, "waiting for jwt: no answer from"));
                        CHECK_INT(st.ok_count, 1);
                }
                /* About 1850 s of 60 s backoff: one attempt a minute, not one per child. */
                CHECK(jwt_fetches >= 30 && jwt_fetches <= 40);
                /* The JWT comes back: one fetch, then all five children at once. */
                n = poll_at(e, t, ids, 16, &wake);
                CHECK_INT(n, 1);
                CHECK_INT(ids[0], j);
                ft_engine_succeeded(e, j, at(t), T0_WALL + t, T0_WALL + t + 300 * SEC, 0, 0);
                CHECK_INT(poll_at(e, t, ids, 16, &wake), 5);
        }
        ft_engine_free(e);
}

/*
 * A child falls due while its parent's token, though servable, is too close
 * to expiry to exchange, and the parent's own refresh is later: the parent
 * starts in the same poll, then gets its normal plan.
 */
static void test_child_demand_starts_parent(void)
{
        struct ft_engine_policy p = defaults;
        struct ft_engine *e;
        struct ft_node_status st;
        int j, a, ids[4];
        int64_t wake;

        p.jitter_percent = 0;
        p.refresh_margin_ms = 30 * SEC;
        e = engine_new(&p);
        j = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE);
        a = ft_engine_add(e, "azure", FT_NODE_AZURE, j);
        CHECK_INT(ft_engine_set_refresh(e, j, 90, 0), 0);
        CHECK_INT(ft_engine_set_refresh(e, a, 35, 0), 0);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        ft_engine_succeeded(e, j, at(0), T0_WALL, T0_WALL + 300 * SEC, 0, 0);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        CHECK_INT(ids[0], a);
        ft_engine_succeeded(e, a, at(0), T0_WALL, T0_WALL + 600 * SEC, 0, 0);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 0);
        CHECK_INT(wake, 210 * SEC);
        /* At 210 s the JWT has 90 s left (< 120 s); its own plan is 240 s (min_remaining before expiry). */
        CHECK_INT(poll_at(e, 210 * SEC, ids, 4, &wake), 1);
        CHECK_INT(ids[0], j);
        ft_engine_status(e, a, at(210 * SEC), &st);
        CHECK(st.waiting_for_parent);
        CHECK_INT(poll_at(e, 210 * SEC, ids, 4, &wake), 0);
        ft_engine_succeeded(e, j, at(211 * SEC), T0_WALL + 211 * SEC, T0_WALL + 511 * SEC, 0, 0);
        CHECK_INT(poll_at(e, 211 * SEC, ids, 4, &wake), 1);
        CHECK_INT(ids[0], a);
        ft_engine_status(e, j, at(211 * SEC), &st);
        CHECK_INT(st.next_fetch_wall_ms, T0_WALL + 211 * SEC + 240 * SEC);
        ft_engine_free(e);
}

/* A waiting child carries its parent's reason, through every level, and starts when the parent succeeds. */
static void test_waiting_chain_reason(void)
{
        struct sim s;
        struct ft_node_status st;
        int c, j, a;

        sim_init(&s, "waiting-chain", &defaults, 5);
        c = sim_add(&s, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE,
                    (struct upstream){ .lifetime_ms = HOUR, .latency_ms = 100,
                                       .fail_from = { 40 * MINUTE }, .fail_until = { 2 * HOUR },
                                       .fail_class = FT_RETRY_SLOW });
        j = sim_add(&s, "jwt", FT_NODE_JWT, c, (struct upstream){ .lifetime_ms = 300 * SEC, .latency_ms = 300 });
        a = sim_add(&s, "azure", FT_NODE_AZURE, j, (struct upstream){ .lifetime_ms = HOUR, .latency_ms = 300 });
        CHECK_INT(ft_engine_set_refresh(s.e, a, 10, 0), 0);
        sim_run(&s, 70 * MINUTE);
        st = sim_status(&s, j);
        CHECK(st.waiting_for_parent);
        CHECK_INT(st.state, FT_NODE_FAILING);
        CHECK(st.last_error && strstr(st.last_error->msg, "waiting for creds: the STS endpoint answered HTTP 503"));
        CHECK(st.last_error && st.last_error->retry == FT_RETRY_SLOW);
        CHECK(st.last_error && strcmp(st.last_error->code, "ServiceUnavailable") == 0);
        st = sim_status(&s, a);
        CHECK(st.waiting_for_parent);
        CHECK(st.last_error && strstr(st.last_error->msg, "waiting for jwt: waiting for creds: the STS"));
        /* A waiting node records one failure per parent failure and is never fetched meanwhile. */
        CHECK(st.fail_count >= 1 && st.fail_count <= s.nodes[c].failures);
        {
                unsigned jwt_starts = s.nodes[j].starts, azure_starts = s.nodes[a].starts;

                sim_run(&s, 40 * MINUTE);
                CHECK_INT(s.nodes[j].starts, jwt_starts);
                CHECK_INT(s.nodes[a].starts, azure_starts);
        }
        /* Recovery: the creds retry (slow: within two minutes), then the JWT, then Azure. */
        sim_run(&s, 2 * HOUR + 2 * MINUTE + 2 * SEC - sim_t(&s));
        CHECK(ft_engine_servable(s.e, c, s.now.wall_ms));
        CHECK(ft_engine_servable(s.e, j, s.now.wall_ms));
        CHECK(ft_engine_servable(s.e, a, s.now.wall_ms));
        CHECK(sim_status(&s, a).last_error == NULL);
        CHECK_INT(s.violations, 0);
        sim_free(&s);
}

/* A parent whose tokens are too short-lived to exchange: its children wait, and never multiply its fetches. */
static void test_short_lived_parent(void)
{
        struct sim s;
        struct ft_node_status st;
        int j, a, g;

        sim_init(&s, "short-lived-parent", &defaults, 17);
        j = sim_add(&s, "jwt", FT_NODE_JWT, FT_ENGINE_NONE, (struct upstream){ .lifetime_ms = 100 * SEC });
        a = sim_add(&s, "azure", FT_NODE_AZURE, j, (struct upstream){ .lifetime_ms = HOUR });
        g = sim_add(&s, "gcp", FT_NODE_GCP, j, (struct upstream){ .lifetime_ms = HOUR });
        sim_run(&s, HOUR);
        CHECK_INT(s.violations, 0);
        CHECK_INT(s.nodes[a].starts, 0);
        CHECK_INT(s.nodes[g].starts, 0);
        /* Its own plan: a quarter of 100 s (the margin exceeds the life), 144 an hour, nothing extra. */
        CHECK(s.nodes[j].starts >= 140 && s.nodes[j].starts <= 146);
        st = sim_status(&s, a);
        CHECK(st.waiting_for_parent);
        CHECK(st.last_error && strstr(st.last_error->msg, "waiting for jwt: its token expires in"));
        CHECK(st.last_error && st.last_error->retry == FT_RETRY_SLOW);
        sim_free(&s);
}

/* --- tokens that cannot be served --- */

static void test_unservable_success(void)
{
        struct ft_engine *e = engine_new(&defaults);
        int j = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE);
        int a = ft_engine_add(e, "azure", FT_NODE_AZURE, j), ids[4];
        struct ft_node_status st;
        int64_t wake;

        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        ft_engine_succeeded(e, j, at(0), T0_WALL, T0_WALL + 30 * SEC, 0, UINT32_MAX);
        ft_engine_status(e, j, at(0), &st);
        CHECK_INT(st.ok_count, 1);
        CHECK_INT(st.fail_count, 0);
        CHECK_INT(st.state, FT_NODE_FAILING);
        CHECK(st.last_error && strstr(st.last_error->msg, "expires in 30 s, less than the 60 s"));
        CHECK(!ft_engine_servable(e, j, T0_WALL));
        /* The daemon stored it; it is named for wiping once, and retried at the backoff floor. */
        CHECK_INT(ft_engine_take_expired(e, at(0), ids, 4), 1);
        CHECK_INT(ids[0], j);
        CHECK_INT(ft_engine_take_expired(e, at(0), ids, 4), 0);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 0);
        CHECK_INT(wake, 1 * SEC);
        ft_engine_status(e, a, at(0), &st);
        CHECK(st.waiting_for_parent);
        CHECK(st.last_error && strstr(st.last_error->msg, "waiting for jwt: the token received expires in 30 s"));
        /* Repeats back off like failures: no loop against an upstream that keeps doing it. */
        CHECK_INT(poll_at(e, 1 * SEC, ids, 4, &wake), 1);
        ft_engine_succeeded(e, j, at(1 * SEC), T0_WALL - HOUR, T0_WALL - HOUR + 300 * SEC, 0, UINT32_MAX);
        ft_engine_status(e, j, at(1 * SEC), &st);
        CHECK(st.last_error && strstr(st.last_error->msg, "had already expired by this host's clock"));
        /* Until it is taken, the dropped token makes poll ask to be called at once. */
        CHECK_INT(poll_at(e, 1 * SEC, ids, 4, &wake), 0);
        CHECK_INT(wake, 1 * SEC);
        CHECK_INT(ft_engine_take_expired(e, at(1 * SEC), ids, 4), 1);
        CHECK_INT(poll_at(e, 1 * SEC, ids, 4, &wake), 0);
        CHECK_INT(wake, 3 * SEC);
        /* A good token frees the child. */
        CHECK_INT(poll_at(e, 3 * SEC, ids, 4, &wake), 1);
        ft_engine_succeeded(e, j, at(3 * SEC), T0_WALL + 3 * SEC, T0_WALL + 303 * SEC, 0, 0);
        CHECK_INT(poll_at(e, 3 * SEC, ids, 4, &wake), 1);
        CHECK_INT(ids[0], a);
        ft_engine_free(e);
}

/*
 * Entra refuses the JWT five children presented: the JWT is dropped and
 * fetched once, and the children start again with the new one.
 */
static void test_invalidate_parent(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_diag d = diag_of(FT_RETRY_NOW, 0, "AADSTS700024", "the client assertion is not within its valid time range");
        struct ft_node_status st;
        int j = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE), kids[5], ids[8];
        int64_t wake;

        for (int i = 0; i < 5; i++) {
                char name[32];

                snprintf(name, sizeof(name), "azure%d", i);
                kids[i] = ft_engine_add(e, name, FT_NODE_AZURE, j);
        }
        /* Nothing held: nothing to do. */
        ft_engine_invalidate(e, j, at(0));
        ft_engine_invalidate(e, 99, at(0));
        CHECK_INT(poll_at(e, 0, ids, 8, &wake), 1);
        ft_engine_succeeded(e, j, at(0), T0_WALL, T0_WALL + 300 * SEC, 0, 0);
        CHECK_INT(poll_at(e, 0, ids, 8, &wake), 5);
        for (int i = 0; i < 5; i++) {
                ft_engine_invalidate(e, j, at(1 * SEC));
                ft_engine_failed(e, kids[i], at(1 * SEC), &d, 0);
        }
        CHECK(!ft_engine_servable(e, j, T0_WALL + 1 * SEC));
        CHECK(!ft_engine_usable_for_child(e, j, T0_WALL + 1 * SEC));
        /* Until the daemon takes it, poll asks to be called at once. */
        CHECK_INT(poll_at(e, 1 * SEC, ids, 8, &wake), 1);
        CHECK_INT(ids[0], j);
        CHECK_INT(wake, 1 * SEC);
        CHECK_INT(ft_engine_take_expired(e, at(1 * SEC), ids, 8), 1);
        CHECK_INT(ids[0], j);
        CHECK_INT(ft_engine_take_expired(e, at(1 * SEC), ids, 8), 0);
        /* The children's "retry now" waits for the one new JWT. */
        CHECK_INT(poll_at(e, 1 * SEC, ids, 8, &wake), 0);
        CHECK_INT(wake, INT64_MAX);
        ft_engine_status(e, kids[4], at(1 * SEC), &st);
        CHECK(st.waiting_for_parent);
        ft_engine_succeeded(e, j, at(2 * SEC), T0_WALL + 2 * SEC, T0_WALL + 302 * SEC, 0, 0);
        CHECK_INT(poll_at(e, 2 * SEC, ids, 8, &wake), 5);

        /* A parent in its own failure backoff is not asked sooner because of it. */
        for (int i = 0; i < 5; i++)
                ft_engine_succeeded(e, kids[i], at(3 * SEC), T0_WALL + 3 * SEC, T0_WALL + 3 * SEC + HOUR, 0, 0);
        CHECK_INT(poll_at(e, 3 * SEC, ids, 8, &wake), 0);
        CHECK_INT(poll_at(e, wake, ids, 8, &wake), 1);
        CHECK_INT(ids[0], j);
        d.retry = FT_RETRY_SLOW;
        ft_engine_failed(e, j, at(160 * SEC), &d, 0);
        ft_engine_invalidate(e, j, at(160 * SEC));
        CHECK_INT(ft_engine_take_expired(e, at(160 * SEC), ids, 8), 1);
        CHECK_INT(poll_at(e, 160 * SEC, ids, 8, &wake), 0);
        CHECK_INT(wake, 220 * SEC);
        ft_engine_free(e);

        /* Static keys STS refuses are read again. */
        e = engine_new(&defaults);
        j = ft_engine_add(e, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE);
        CHECK_INT(poll_at(e, 0, ids, 8, &wake), 1);
        ft_engine_succeeded(e, j, at(0), T0_WALL, 0, 0, 0);
        CHECK_INT(poll_at(e, 0, ids, 8, &wake), 0);
        CHECK_INT(wake, INT64_MAX);
        ft_engine_invalidate(e, j, at(HOUR));
        CHECK(!ft_engine_servable(e, j, T0_WALL + HOUR));
        CHECK_INT(poll_at(e, HOUR, ids, 8, &wake), 1);
        /* The new keys arrive before the daemon took the old ones: they replace them, and are good. */
        ft_engine_succeeded(e, j, at(HOUR), T0_WALL + HOUR, 0, 0, 0);
        CHECK(ft_engine_servable(e, j, T0_WALL + HOUR));
        CHECK_INT(ft_engine_take_expired(e, at(HOUR), ids, 8), 0);
        ft_engine_free(e);
}

/* A parent token that may not be served is not used for a child either, whatever parent_min_remaining says. */
static void test_usable_needs_servable(void)
{
        struct ft_engine_policy p = defaults;
        struct ft_engine *e;
        int j, ids[4];
        int64_t wake;

        p.min_remaining_ms = 90 * SEC;
        p.parent_min_remaining_ms = 60 * SEC;
        e = engine_new(&p);
        j = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        ft_engine_succeeded(e, j, at(0), T0_WALL, T0_WALL + 300 * SEC, 0, 0);
        CHECK(ft_engine_usable_for_child(e, j, T0_WALL + 210 * SEC));
        CHECK(!ft_engine_usable_for_child(e, j, T0_WALL + 220 * SEC));
        CHECK(!ft_engine_servable(e, j, T0_WALL + 220 * SEC));
        ft_engine_free(e);
}

static void test_take_expired_once(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_diag d = diag_of(FT_RETRY_BACKOFF, 200, "", "STS is unavailable (HTTP 503)");
        int j = ft_engine_add(e, "jwt", FT_NODE_JWT, FT_ENGINE_NONE), ids[4];
        int64_t wake, due;

        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 1);
        ft_engine_succeeded(e, j, at(0), T0_WALL, T0_WALL + 300 * SEC, 0, 0);
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 0);
        due = wake;
        /* The refresh fails with Retry-After 200 s: past the drop instant, so that is the wake time. */
        CHECK_INT(poll_at(e, due, ids, 4, &wake), 1);
        ft_engine_failed(e, j, at(due), &d, 0);
        CHECK_INT(poll_at(e, due, ids, 4, &wake), 0);
        CHECK_INT(wake, 240 * SEC + 1);
        CHECK(ft_engine_servable(e, j, T0_WALL + 240 * SEC));
        CHECK(!ft_engine_servable(e, j, T0_WALL + 240 * SEC + 1));
        CHECK_INT(ft_engine_take_expired(e, at(240 * SEC), ids, 4), 0);
        CHECK_INT(ft_engine_take_expired(e, at(240 * SEC + 1), ids, 4), 1);
        CHECK_INT(ft_engine_take_expired(e, at(240 * SEC + 1), ids, 4), 0);
        CHECK_INT(ft_engine_take_expired(e, at(400 * SEC), ids, 4), 0);
        /* Now the next wake is the retry. */
        CHECK_INT(poll_at(e, 240 * SEC + 1, ids, 4, &wake), 0);
        CHECK_INT(wake, due + 200 * SEC);
        ft_engine_free(e);

        /* More drops than room: the rest come with the next call, each once. */
        e = engine_new(&defaults);
        for (int i = 0; i < 3; i++) {
                char name[32];

                snprintf(name, sizeof(name), "j%d", i);
                ft_engine_add(e, name, FT_NODE_JWT, FT_ENGINE_NONE);
        }
        CHECK_INT(poll_at(e, 0, ids, 4, &wake), 3);
        for (int i = 0; i < 3; i++)
                ft_engine_succeeded(e, i, at(0), T0_WALL, T0_WALL + 300 * SEC, 0, 0);
        CHECK_INT(ft_engine_take_expired(e, at(HOUR), ids, 2), 2);
        CHECK_INT(ids[0], 0);
        CHECK_INT(ids[1], 1);
        CHECK_INT(ft_engine_take_expired(e, at(HOUR), ids, 2), 1);
        CHECK_INT(ids[0], 2);
        CHECK_INT(ft_engine_take_expired(e, at(HOUR), ids, 2), 0);
        ft_engine_free(e);
}

/* --- hours in simulated time --- */

static void steady_graph(struct sim *s, int *ret_c, int *ret_j, int *ret_a)
{
        *ret_c = sim_add(s, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE,
                         (struct upstream){ .lifetime_ms = 0, .latency_ms = 20 });
        *ret_j = sim_add(s, "jwt", FT_NODE_JWT, *ret_c, (struct upstream){ .lifetime_ms = 300 * SEC, .latency_ms = 2 * SEC });
        *ret_a = sim_add(s, "azure", FT_NODE_AZURE, *ret_j,
                         (struct upstream){ .lifetime_ms = 3600 * SEC, .latency_ms = 2 * SEC });
}

static void test_steady_renewals(void)
{
        struct sim s;
        int c, j, a, g;

        sim_init(&s, "steady", &defaults, 2024);
        s.continuous = true;
        steady_graph(&s, &c, &j, &a);
        g = sim_add(&s, "gcp", FT_NODE_GCP, j, (struct upstream){ .lifetime_ms = 3600 * SEC, .latency_ms = 500 });
        sim_run(&s, 24 * HOUR);
        CHECK_INT(s.violations, 0);
        /* Static credentials: fetched once, never refreshed, never dropped. */
        CHECK_INT(s.nodes[c].starts, 1);
        CHECK(ft_engine_servable(s.e, c, s.now.wall_ms + 400 * DAY));
        /* Every refresh within [45 %, 55 %] of the life, and the jitter range used. */
        for (int id = j; id <= g; id++) {
                CHECK(s.nodes[id].min_frac >= 0.45 && s.nodes[id].max_frac <= 0.55);
                CHECK(s.nodes[id].min_frac < 0.46 && s.nodes[id].max_frac > 0.54);
                CHECK_INT(s.nodes[id].late, 0);
                CHECK_INT(s.nodes[id].failures, 0);
        }
        /* 24 h of a 300 s JWT renewed every 135..165 s (plus 2 s latency). */
        CHECK(s.nodes[j].starts >= 24 * 3600 / 167 && s.nodes[j].starts <= 24 * 3600 / 135 + 1);
        CHECK(s.nodes[a].starts >= 24 * 3600 / 1982 && s.nodes[a].starts <= 24 * 3600 / 1620 + 1);
        sim_free(&s);
}

static void test_sts_outage(void)
{
        struct sim s;
        int c, j, a;
        unsigned jwt_before, azure_before, jwt_failures;
        int64_t last_expiry;
        struct ft_node_status st;

        sim_init(&s, "sts-outage", &defaults, 77);
        steady_graph(&s, &c, &j, &a);
        s.nodes[j].up.fail_from[0] = 1500 * SEC;
        s.nodes[j].up.fail_until[0] = 3300 * SEC;
        sim_run(&s, 1500 * SEC);
        jwt_before = s.nodes[j].starts;
        azure_before = s.nodes[a].starts;
        last_expiry = s.nodes[j].expires;
        CHECK(last_expiry > T0_WALL + 1500 * SEC);

        /* The last good JWT is served until min_remaining is left, then not. */
        sim_run(&s, last_expiry - 60 * SEC - s.now.wall_ms);
        CHECK(ft_engine_servable(s.e, j, s.now.wall_ms));
        CHECK_INT(sim_status(&s, j).state, FT_NODE_STALE);
        sim_run(&s, 1);
        CHECK(!ft_engine_servable(s.e, j, s.now.wall_ms));
        CHECK(!s.nodes[j].held);
        st = sim_status(&s, j);
        CHECK_INT(st.state, FT_NODE_FAILING);
        CHECK_INT(st.expires_wall_ms, 0);

        sim_run(&s, 3300 * SEC - sim_t(&s));
        /* Attempts follow the backoff (each gap checked by the simulator); at least one per 60 s cap. */
        jwt_failures = s.nodes[j].starts - jwt_before;
        CHECK(jwt_failures >= 1800 / 62 && jwt_failures <= 1800 / 3);
        /* Azure's refresh fell in the outage: at most one fetch while the old JWT was still usable. */
        CHECK(s.nodes[a].starts - azure_before <= 1);
        st = sim_status(&s, a);
        CHECK(st.waiting_for_parent);
        CHECK_INT(st.state, FT_NODE_STALE);
        CHECK(st.last_error && strstr(st.last_error->msg, "waiting for jwt: the STS endpoint answered HTTP 503"));

        /* Recovery within the backoff cap (plus the fetch itself), and Azure right after. */
        sim_run(&s, 60 * SEC + 2 * SEC);
        CHECK(ft_engine_servable(s.e, j, s.now.wall_ms));
        sim_run(&s, 2 * SEC);
        CHECK(ft_engine_servable(s.e, a, s.now.wall_ms));
        CHECK(s.nodes[a].issued >= T0_WALL + 3300 * SEC);
        CHECK(sim_status(&s, a).last_error == NULL);
        CHECK(sim_status(&s, j).last_error == NULL);
        /* Azure's own token never lapsed: it still had time when the JWT came back. */
        s.continuous = true;
        sim_run(&s, 2 * HOUR);
        CHECK_INT(s.violations, 0);
        sim_free(&s);
}

static void test_clock_tolerance(void)
{
        struct ft_engine *e = engine_new(&defaults);
        struct ft_now now = at(0);

        /* The first look only records the offset. */
        CHECK(!ft_engine_check_clock(e, now));
        now.wall_ms += 2 * SEC;
        CHECK(!ft_engine_check_clock(e, now));
        /* Drift adds up against the last re-plan, not the last look. */
        now.wall_ms += 1;
        CHECK(ft_engine_check_clock(e, now));
        CHECK(!ft_engine_check_clock(e, now));
        now.mono_ms += 2 * SEC + 1;
        CHECK(ft_engine_check_clock(e, now));
        ft_engine_free(e);
}

static void test_clock_step_forward(void)
{
        struct sim s;
        int c, j, a, ids[SIM_MAX];
        size_t n;

        sim_init(&s, "step-forward", &defaults, 11);
        steady_graph(&s, &c, &j, &a);
        sim_run(&s, HOUR);
        sim_jump(&s, 2 * HOUR, 0);
        CHECK(ft_engine_check_clock(s.e, s.now));
        CHECK(!ft_engine_check_clock(s.e, s.now));
        /* Everything that expires has expired: dropped once, and due at once. */
        n = sim_take_expired(&s, ids, SIM_MAX);
        CHECK_INT(n, 2);
        CHECK(n == 2 && ids[0] == j && ids[1] == a);
        CHECK_INT(sim_take_expired(&s, ids, SIM_MAX), 0);
        CHECK(ft_engine_servable(s.e, c, s.now.wall_ms));
        CHECK_INT(sim_status(&s, j).next_fetch_wall_ms, s.now.wall_ms);
        n = ft_engine_poll(s.e, s.now, 0, ids, SIM_MAX, &(int64_t){ 0 });
        CHECK_INT(n, 1);
        CHECK_INT(ids[0], j);
        sim_start(&s, j);
        CHECK(sim_status(&s, a).waiting_for_parent);
        /* The JWT arrives after its latency and Azure follows. */
        sim_run(&s, 4 * SEC + 1);
        CHECK(ft_engine_servable(s.e, j, s.now.wall_ms));
        CHECK(ft_engine_servable(s.e, a, s.now.wall_ms));
        s.continuous = true;
        sim_run(&s, 2 * HOUR);
        CHECK_INT(s.violations, 0);
        sim_free(&s);
}

static void test_clock_step_backward(void)
{
        struct sim s;
        int c, j, a, ids[SIM_MAX];
        int64_t jwt_due_mono, azure_due_mono, wall_before;
        unsigned jwt_starts;

        sim_init(&s, "step-backward", &defaults, 12);
        s.continuous = true;
        steady_graph(&s, &c, &j, &a);
        sim_run(&s, HOUR);
        wall_before = s.now.wall_ms;
        jwt_due_mono = s.now.mono_ms + (sim_status(&s, j).next_fetch_wall_ms - wall_before);
        azure_due_mono = s.now.mono_ms + (sim_status(&s, a).next_fetch_wall_ms - wall_before);
        sim_jump(&s, -HOUR, 0);
        CHECK(ft_engine_check_clock(s.e, s.now));
        /* Nothing is dropped early; the tokens look an hour longer-lived by the wall clock. */
        CHECK_INT(sim_take_expired(&s, ids, SIM_MAX), 0);
        CHECK(ft_engine_servable(s.e, j, s.now.wall_ms));
        CHECK(ft_engine_servable(s.e, a, s.now.wall_ms));
        /* The plans keep their monotonic times (re-expressed in the new wall clock): no renewal is postponed. */
        CHECK_INT(sim_status(&s, j).next_fetch_wall_ms, s.now.wall_ms + (jwt_due_mono - s.now.mono_ms));
        CHECK_INT(sim_status(&s, a).next_fetch_wall_ms, s.now.wall_ms + (azure_due_mono - s.now.mono_ms));
        jwt_starts = s.nodes[j].starts;
        sim_run(&s, jwt_due_mono - s.now.mono_ms - 1);
        CHECK_INT(s.nodes[j].starts, jwt_starts);
        sim_run(&s, 1);
        CHECK_INT(s.nodes[j].starts, jwt_starts + 1);
        sim_run(&s, 3 * HOUR);
        CHECK_INT(s.violations, 0);
        sim_free(&s);
}

static void test_suspend_resume(void)
{
        struct sim s;
        int c, j, a, g, ids[SIM_MAX];
        size_t n;

        sim_init(&s, "suspend", &defaults, 13);
        steady_graph(&s, &c, &j, &a);
        /* A node backing off slowly when the lid closes. */
        g = sim_add(&s, "gcp", FT_NODE_GCP, j,
                    (struct upstream){ .lifetime_ms = HOUR, .latency_ms = 100, .fail_from = { 0 },
                                       .fail_until = { HOUR - 60 * SEC }, .fail_class = FT_RETRY_SLOW,
                                       .retry_after_s = 1500 });
        sim_run(&s, HOUR - 30 * SEC);
        CHECK(sim_status(&s, g).next_fetch_wall_ms > s.now.wall_ms);
        /* Three hours asleep: the monotonic clock stands still. */
        sim_jump(&s, 3 * HOUR, 0);
        CHECK(ft_engine_check_clock(s.e, s.now));
        n = sim_take_expired(&s, ids, SIM_MAX);
        CHECK(n == 2 && ids[0] == j && ids[1] == a);
        /* Everything whose time came during the sleep is due now; children wait for the JWT. */
        n = ft_engine_poll(s.e, s.now, 0, ids, SIM_MAX, &(int64_t){ 0 });
        CHECK_INT(n, 1);
        CHECK(n == 1 && ids[0] == j);
        sim_start(&s, j);
        CHECK(sim_status(&s, a).waiting_for_parent);
        CHECK(sim_status(&s, g).waiting_for_parent);
        sim_run(&s, 5 * SEC);
        CHECK(ft_engine_servable(s.e, j, s.now.wall_ms));
        CHECK(ft_engine_servable(s.e, a, s.now.wall_ms));
        CHECK(ft_engine_servable(s.e, g, s.now.wall_ms));
        s.continuous = true;
        sim_run(&s, 2 * HOUR);
        CHECK_INT(s.violations, 0);
        sim_free(&s);
}

static void test_adopt_on_reload(void)
{
        struct sim s;
        struct ft_engine *next = engine_new(&defaults);
        int c, j, a, ids[SIM_MAX];
        int64_t wake_old, wake_new;
        unsigned starts;

        sim_init(&s, "reload", &defaults, 21);
        s.continuous = true;
        steady_graph(&s, &c, &j, &a);
        sim_run(&s, 90 * MINUTE);
        /* The new configuration has the same three nodes (and changes the Azure share). */
        CHECK_INT(ft_engine_add(next, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE), c);
        CHECK_INT(ft_engine_add(next, "jwt", FT_NODE_JWT, c), j);
        CHECK_INT(ft_engine_add(next, "azure", FT_NODE_AZURE, j), a);
        CHECK_INT(ft_engine_set_refresh(next, a, 40, 0), 0);
        CHECK_INT(ft_engine_adopt(next, c, s.e, c), 0);
        CHECK_INT(ft_engine_adopt(next, j, s.e, j), 0);
        CHECK_INT(ft_engine_adopt(next, a, s.e, a), 0);
        CHECK_INT(ft_engine_adopt(next, a, s.e, j), -EINVAL);
        CHECK_INT(ft_engine_adopt(next, 7, s.e, j), -EINVAL);
        CHECK_INT(ft_engine_poll(s.e, s.now, 0, ids, SIM_MAX, &wake_old), 0);
        CHECK_INT(ft_engine_poll(next, s.now, 0, ids, SIM_MAX, &wake_new), 0);
        CHECK_INT(wake_new, wake_old);
        for (int id = c; id <= a; id++) {
                struct ft_node_status st_old = sim_status(&s, id), st_new;

                ft_engine_status(next, id, s.now, &st_new);
                CHECK(ft_engine_servable(next, id, s.now.wall_ms));
                CHECK_INT(st_new.expires_wall_ms, st_old.expires_wall_ms);
                CHECK_INT(st_new.next_fetch_wall_ms, st_old.next_fetch_wall_ms);
                CHECK_INT(st_new.ok_count, st_old.ok_count);
        }
        ft_engine_free(s.e);
        s.e = next;
        starts = s.nodes[j].starts + s.nodes[a].starts + s.nodes[c].starts;
        sim_run(&s, wake_new - s.now.mono_ms - 1);
        CHECK_INT(s.nodes[j].starts + s.nodes[a].starts + s.nodes[c].starts, starts);
        sim_run(&s, 3 * HOUR);
        CHECK_INT(s.nodes[c].starts, 1);
        CHECK_INT(s.violations, 0);

        /* A clock step between the reload and the new engine's first poll is still seen. */
        next = engine_new(&defaults);
        CHECK_INT(ft_engine_add(next, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE), c);
        CHECK_INT(ft_engine_adopt(next, c, s.e, c), 0);
        CHECK(ft_engine_check_clock(next, (struct ft_now){ s.now.wall_ms + HOUR, s.now.mono_ms }));
        ft_engine_free(next);

        /* Not while a fetch is under way. */
        next = engine_new(&defaults);
        CHECK_INT(ft_engine_add(next, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE), 0);
        CHECK_INT(ft_engine_add(next, "jwt", FT_NODE_JWT, 0), 1);
        CHECK_INT(ft_engine_poll(next, s.now, 0, ids, SIM_MAX, &wake_new), 1);
        CHECK_INT(ft_engine_adopt(next, 0, s.e, c), -EBUSY);
        CHECK_INT(ft_engine_adopt(s.e, c, next, 0), -EBUSY);
        ft_engine_free(next);
        sim_free(&s);
}

/* --- randomized property runs --- */

static uint32_t pick(uint32_t *r, uint32_t lo, uint32_t hi)
{
        return lo + xorshift(r) % (hi - lo + 1);
}

static void random_upstream(uint32_t *r, struct upstream *up, int64_t fail_end)
{
        up->latency_ms = pick(r, 0, 3) == 0 ? 0 : pick(r, 1, 5000);
        for (int w = 0; w < 2; w++) {
                if (pick(r, 0, 2) != 0)
                        continue;
                up->fail_from[w] = (int64_t)pick(r, 0, (uint32_t)(fail_end / SEC)) * SEC;
                up->fail_until[w] = min64(up->fail_from[w] + (int64_t)pick(r, 10, 2400) * SEC, fail_end);
        }
        up->fail_class = (enum ft_retry)pick(r, 0, 2);
        up->retry_after_s = pick(r, 0, 3) == 0 ? pick(r, 1, 300) : 0;
}

/* One random graph, policy, outage script and clock event; returns whether every node was served at the end. */
static bool random_run(uint32_t seed, unsigned *violations, unsigned *fetches)
{
        static const enum ft_node_kind child_kinds[] = { FT_NODE_AZURE, FT_NODE_GCP };
        uint32_t r = seed * 2654435761u + 1;
        int64_t fail_end = 3 * HOUR, event_at;
        struct ft_engine_policy pol = defaults;
        struct sim s;
        struct upstream up;
        int c, jwts;
        bool all_served = true;
        char name[32];

        pol.refresh_percent = (int)pick(&r, 30, 80);
        pol.jitter_percent = (int)pick(&r, 0, 25);
        pol.refresh_margin_ms = (int64_t)pick(&r, 30, 300) * SEC;
        pol.min_remaining_ms = (int64_t)pick(&r, 0, 90) * SEC;
        pol.backoff_initial_ms = (int64_t)pick(&r, 100, 5000);
        pol.backoff_max_ms = pol.backoff_initial_ms * pick(&r, 1, 100);
        pol.creds_refresh_ms = (int64_t)pick(&r, 300, 900) * SEC;
        pol.parent_min_remaining_ms = (int64_t)pick(&r, 60, 120) * SEC;
        sim_init(&s, "random", &pol, seed);

        memset(&up, 0, sizeof(up));
        up.lifetime_ms = pick(&r, 0, 1) ? 0 : (int64_t)pick(&r, 15 * 60, 6 * 3600) * SEC;
        random_upstream(&r, &up, fail_end);
        c = sim_add(&s, "creds", FT_NODE_AWS_CREDS, FT_ENGINE_NONE, up);
        jwts = (int)pick(&r, 1, 2);
        for (int k = 0; k < jwts; k++) {
                int j, kids = (int)pick(&r, 0, 3);

                memset(&up, 0, sizeof(up));
                up.lifetime_ms = (int64_t)pick(&r, 300, 3600) * SEC;
                random_upstream(&r, &up, fail_end);
                snprintf(name, sizeof(name), "jwt%d", k);
                up.rejects_parent = pick(&r, 0, 3) == 0;
                j = sim_add(&s, name, FT_NODE_JWT, c, up);
                if (pick(&r, 0, 3) == 0)
                        CHECK_INT(ft_engine_set_refresh(s.e, j, (int)pick(&r, 40, 90), 80), 0);
                for (int i = 0; i < kids; i++) {
                        memset(&up, 0, sizeof(up));
                        up.lifetime_ms = (int64_t)pick(&r, 600, 86400) * SEC;
                        if (pick(&r, 0, 2) == 0)
                                up.hint_ms = up.lifetime_ms / 100 * pick(&r, 10, 60);
                        random_upstream(&r, &up, fail_end);
                        up.rejects_parent = pick(&r, 0, 3) == 0;
                        snprintf(name, sizeof(name), "child%d.%d", k, i);
                        sim_add(&s, name, child_kinds[pick(&r, 0, 1)], j, up);
                }
        }

        event_at = (int64_t)pick(&r, 600, 9000) * SEC;
        sim_run(&s, event_at);
        switch (pick(&r, 0, 5)) {
        case 0:
                sim_jump(&s, (int64_t)pick(&r, 60, 3 * 3600) * SEC, 0);
                break;
        case 1:
                sim_jump(&s, -(int64_t)pick(&r, 60, 2 * 3600) * SEC, 0);
                break;
        case 2:
                sim_jump(&s, (int64_t)pick(&r, 60, 5 * 3600) * SEC, 0);
                break;
        default:
                break;
        }
        sim_run(&s, max64(fail_end - sim_t(&s), 0));
        /* An hour without failures or clock events: everything must be served again. */
        sim_run(&s, HOUR);
        for (size_t i = 0; i < s.n; i++)
                if (!ft_engine_servable(s.e, (int)i, s.now.wall_ms)) {
                        all_served = false;
                        violation(&s, "node %zu not served an hour after the last failure", i);
                }
        *violations += s.violations;
        for (size_t i = 0; i < s.n; i++)
                *fetches += s.nodes[i].starts;
        sim_free(&s);
        return all_served;
}

static void test_random_properties(void)
{
        unsigned violations = 0, fetches = 0, recovered = 0, runs = 4000;

        for (uint32_t seed = 1; seed <= runs; seed++)
                recovered += random_run(seed, &violations, &fetches);
        CHECK_INT(violations, 0);
        CHECK_INT(recovered, runs);
        /* The runs did exercise something: tens of fetches each on average. */
        CHECK(fetches > runs * 20);
}

int main(void)
{
        test_policy_validation();
        test_nodes();
        test_outcomes_need_a_fetch();
        test_backoff_sequence();
        test_retry_after_honoured();
        test_slow_class();
        test_now_class_once();
        test_refresh_share_and_jitter();
        test_refresh_hint();
        test_max_percent();
        test_aws_creds_window();
        test_aws_creds_fixed_expiry();
        test_one_fetch_for_five_children();
        test_child_demand_starts_parent();
        test_waiting_chain_reason();
        test_short_lived_parent();
        test_unservable_success();
        test_invalidate_parent();
        test_usable_needs_servable();
        test_take_expired_once();
        test_steady_renewals();
        test_sts_outage();
        test_clock_tolerance();
        test_clock_step_forward();
        test_clock_step_backward();
        test_suspend_resume();
        test_adopt_on_reload();
        test_random_properties();
        return test_summary();
}
