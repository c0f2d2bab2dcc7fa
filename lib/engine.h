/* SPDX-License-Identifier: MIT */
/*
 * engine.h: the renewal engine, as pure policy. One engine schedules every
 * token kind fedtokend holds (AWS credentials, AWS-signed JWTs, Entra ID and
 * Google access tokens) as a dependency graph: an access token depends on its
 * JWT, a JWT on the AWS credentials.
 *
 * The engine does no I/O and reads no clock: every call is given `now` (the
 * wall clock, which judges expiry, and the monotonic clock, which schedules)
 * and, where a choice is random, a random number. daemon/ asks it what to
 * fetch (ft_engine_poll), performs the fetches and reports each outcome
 * (ft_engine_succeeded / ft_engine_failed / ft_engine_cancelled). So hours of
 * renewals, outages and clock jumps run in milliseconds in unit tests.
 *
 * The daemon's loop:
 * - Whenever its timer fires: ft_engine_take_expired (wipe what it names),
 *   then ft_engine_poll (start what it names), then arm the timer for the
 *   returned wake time.
 * - After every outcome it reports: ft_engine_poll again (children waiting
 *   for that node may start now) and re-arm the timer.
 * - Serve a token only while ft_engine_servable says so.
 *
 * Refresh plan (on success):
 * - Access tokens and JWTs refresh at `refresh_percent` of the lifetime (per
 *   node override), ±`jitter_percent` of that delay, never later than
 *   `refresh_margin_ms` (or `min_remaining_ms`, if larger) before expiry,
 *   never earlier than half the nominal delay (ft_refresh_time). A node's
 *   `max_percent` is a hard ceiling applied after jitter and margin (token
 *   files are rewritten by 80 %).
 * - An upstream refresh hint (Entra's refresh_in) brings the refresh earlier,
 *   never later, and never earlier than half way to the planned time, so a
 *   hint of "now" cannot make the engine renew in a loop.
 * - AWS credentials refresh `creds_refresh_ms` (or `min_remaining_ms`, if
 *   larger) before expiry, or half way through their remaining life when
 *   that is later (short-lived credentials are not renewed in a loop).
 * - A plan that would lie in the past (an issue time far behind our clock)
 *   is made again counting the lifetime from now.
 * - A token that does not expire (expires 0, e.g. static keys) is never
 *   refreshed.
 * - Plans are wall-clock times, because expiries are wall-clock facts; each
 *   is also kept as the monotonic time it stands for, which is what the
 *   daemon's timer uses.
 * - A success whose token is already unservable (less than
 *   `min_remaining_ms` left, typically a wrong clock or a lifetime shorter
 *   than min_remaining) counts as a success (ok_count) but is treated as a
 *   failure for everything else: the node reports why, and the next attempt
 *   follows the backoff, starting at its floor (`backoff_initial_ms`) and
 *   growing on each repeat, so an upstream that keeps handing out such
 *   tokens is never asked in a loop.
 *
 * Failures:
 * - Exponential backoff with full jitter (ft_backoff_next) using the diag's
 *   retry class and Retry-After; the backoff resets on the next servable
 *   success. The last good token keeps being served while it is servable.
 *
 * Dependencies:
 * - A child is fetched only with a parent token that is usable for a child
 *   (ft_engine_usable_for_child). A due child whose parent is not usable does
 *   not start: it is marked waiting and the parent is made due at once,
 *   unless the parent is in flight or backing off after a failure (then the
 *   child simply waits for the parent's next outcome). A parent fetched
 *   because a child needs it is planned normally afterwards.
 * - When the parent succeeds with a usable token, every waiting child starts
 *   at the next poll. When the parent fails (or succeeds with a token too
 *   short-lived to use), each waiting child records a failure "waiting for
 *   <parent>: <parent's reason>" with the parent's retry class, and keeps
 *   waiting without a backoff schedule of its own: it is retried when the
 *   parent next succeeds. So a failing parent never causes a child fetch.
 * - One fetch per node is in flight at a time, shared by every dependent.
 * - When an upstream rejects the parent's token a child presented (an expired
 *   assertion, expired credentials), the daemon says so
 *   (ft_engine_invalidate): the parent's token is dropped and refetched, and
 *   the child, retrying along its own backoff, waits for the new one.
 *
 * Tokens and drops:
 * - A token is servable while it has at least `min_remaining_ms` left by the
 *   wall clock, never after. From that instant on it is of no use (it may
 *   not be served, and `parent_min_remaining_ms` is meant to be larger), so
 *   it is dropped: ft_engine_take_expired reports it once and the daemon
 *   wipes it then. ("Expired" below means this: expired for serving.)
 * - The wake time returned by ft_engine_poll includes every such drop
 *   instant, so the daemon wipes on time.
 *
 * Clock steps and suspend/resume:
 * - The engine remembers the wall-minus-monotonic offset. When it moves by
 *   more than `clock_tolerance_ms` (the wall clock was stepped, or the host
 *   slept while the monotonic clock stood still), every planned fetch is
 *   re-derived from the wall-clock time it stands for, keeping whichever of
 *   that and its monotonic time comes first. So a refresh (or retry) whose
 *   wall-clock time has passed becomes due at once (forward step, resume),
 *   while a backward step never postpones a renewal: the tokens' real
 *   lifetimes did not grow because the clock went back. Expiry and drops are
 *   judged by the wall clock alone, so a backward step drops nothing early.
 *
 * Bounds: at most FT_ENGINE_MAX_NODES nodes; a parent must exist when its
 * child is added, so the graph has no cycles and every parent has a lower
 * id than its children. Times are milliseconds; absurd expiries from an
 * upstream are clamped so no arithmetic can overflow.
 */
#ifndef FT_ENGINE_H
#define FT_ENGINE_H

#include "ft.h"

#define FT_ENGINE_MAX_NODES 256
#define FT_ENGINE_NONE (-1)

enum ft_node_kind { FT_NODE_AWS_CREDS = 0, FT_NODE_JWT, FT_NODE_AZURE, FT_NODE_GCP };

enum ft_node_state {
        FT_NODE_PENDING = 0,   /* nothing servable and no failure: a fetch is due or under way */
        FT_NODE_FRESH,         /* has a servable token and the last fetch succeeded */
        FT_NODE_STALE,         /* last fetch failed; still serving the previous token */
        FT_NODE_FAILING,       /* last fetch failed and nothing is servable */
};

/* Every duration is in milliseconds and at most 365 days. */
struct ft_engine_policy {
        int refresh_percent;             /* 50 (10..90) */
        int jitter_percent;              /* 10 (0..25) */
        int64_t refresh_margin_ms;       /* 120 s */
        int64_t min_remaining_ms;        /* 60 s */
        int64_t backoff_initial_ms;      /* 1 s (at least 1 ms) */
        int64_t backoff_max_ms;          /* 60 s (at least backoff_initial_ms) */
        int64_t creds_refresh_ms;        /* 900 s */
        int64_t parent_min_remaining_ms; /* 120 s: a JWT handed to Entra must outlive the exchange */
        int64_t clock_tolerance_ms;      /* 2 s: offset drift that counts as a clock step */
};

struct ft_now {
        int64_t wall_ms;   /* CLOCK_REALTIME */
        int64_t mono_ms;   /* CLOCK_MONOTONIC */
};

struct ft_engine;

/* -EINVAL for a policy outside the ranges above, -ENOMEM. */
int ft_engine_new(const struct ft_engine_policy *p, struct ft_engine **ret);
/* Accepts NULL. The engine holds no secrets: tokens stay with the daemon. */
void ft_engine_free(struct ft_engine *e);

/*
 * Add a node (name is copied; parent FT_ENGINE_NONE or an existing id).
 * Returns the new id (>= 0) or a negative errno: -EINVAL (empty or overlong
 * name, unknown kind or parent), -EEXIST (name taken), -ENOSPC (full),
 * -ENOMEM. A new node is due at once.
 */
int ft_engine_add(struct ft_engine *e, const char *name, enum ft_node_kind kind, int parent);
/*
 * Per-node refresh share (10..90) and hard ceiling (0 = none, else 10..95 %
 * of the lifetime). Takes effect from the node's next success. -EINVAL.
 */
int ft_engine_set_refresh(struct ft_engine *e, int id, int percent, int max_percent);
/*
 * How long `id`'s token must still be valid for a child to be fetched with
 * it (0: the policy's parent_min_remaining_ms). AWS credentials need more
 * than a JWT does: they must outlive the shortest token STS will sign for.
 */
int ft_engine_set_child_margin(struct ft_engine *e, int id, int64_t ms);
size_t ft_engine_count(const struct ft_engine *e);
/* The id of the node called `name`, or -ENOENT. */
int ft_engine_find(const struct ft_engine *e, const char *name);

/*
 * What to fetch now. Writes up to `max` node ids whose fetch must start (they
 * are marked in flight; parents come before their children) and returns how
 * many. *ret_wake_mono receives the monotonic time at which poll must be
 * called again (INT64_MAX when nothing is scheduled): the next planned fetch
 * or the next drop instant (see ft_engine_take_expired); `now` when `max`
 * was too small for everything due, or a drop is waiting to be taken.
 * Waiting and in-flight nodes add no wake time: an outcome, reported by the
 * daemon, moves them on. Also
 * re-checks the clocks (see ft_engine_check_clock). `rnd` is not used today:
 * every plan was already jittered when it was made.
 */
size_t ft_engine_poll(struct ft_engine *e, struct ft_now now, uint32_t rnd, int *ret_ids, size_t max,
                      int64_t *ret_wake_mono);

/*
 * A fetch succeeded: the node now holds a token valid from `issued_wall_ms`
 * to `expires_wall_ms` (expires 0: does not expire, e.g. static AWS keys).
 * `refresh_hint_wall_ms` (0 = none) asks for an earlier refresh (refresh_in).
 * An issue time that is missing (<= 0) or after the expiry counts as `now`.
 * The daemon stores the new token in place of the old one in every case; if
 * it is not servable, the next ft_engine_take_expired names it for wiping.
 * Outcomes for a node that is not in flight are ignored (a late report after
 * ft_engine_cancelled).
 */
void ft_engine_succeeded(struct ft_engine *e, int id, struct ft_now now, int64_t issued_wall_ms,
                         int64_t expires_wall_ms, int64_t refresh_hint_wall_ms, uint32_t rnd);
/*
 * A fetch failed; `diag` (copied; NULL: an unexplained transient failure)
 * says why and how to retry. The previous token, if any, is kept and served
 * while servable. Ignored for a node that is not in flight.
 */
void ft_engine_failed(struct ft_engine *e, int id, struct ft_now now, const struct ft_diag *diag, uint32_t rnd);
/*
 * A fetch was abandoned without an outcome (shutdown, reload): no longer in
 * flight, due again at once. The backoff is unchanged.
 */
void ft_engine_cancelled(struct ft_engine *e, int id, struct ft_now now);

/*
 * An upstream rejected the token `id` holds as no longer good (STS answered
 * ExpiredToken for the credentials, Entra that the assertion has expired):
 * from now on it is neither served nor used for a child, and the next
 * ft_engine_take_expired names it for wiping. The node is refetched at once,
 * unless its fetch is under way or its own failure backoff decides when. A
 * no-op when it holds nothing. Called once per failed child fetch, it causes
 * at most one parent fetch per child failure, so the children's backoff
 * bounds it.
 */
void ft_engine_invalidate(struct ft_engine *e, int id, struct ft_now now);

/* True when `id` holds a token with at least min_remaining left (or one that never expires). */
bool ft_engine_servable(const struct ft_engine *e, int id, int64_t now_wall_ms);
/*
 * True when `id` may be used to fetch a child: it is servable and has at
 * least parent_min_remaining left (or never expires).
 */
bool ft_engine_usable_for_child(const struct ft_engine *e, int id, int64_t now_wall_ms);

/*
 * Tokens that stopped being servable (less than min_remaining left, already
 * past their expiry, or invalidated) since the last call: their ids are written (up
 * to max; the rest are reported by the next call) and they are marked as
 * holding nothing. Each drop is reported exactly once. The daemon wipes
 * them, and is not told again; a node left without a token is always due
 * or in flight.
 */
size_t ft_engine_take_expired(struct ft_engine *e, struct ft_now now, int *ret_ids, size_t max);

/*
 * Compare the wall-minus-monotonic offset with the one last seen (the first
 * call only records it). When it moved by more than clock_tolerance_ms (a
 * clock step, a suspend/resume), re-plan every scheduled fetch as described
 * above, remember the new offset and return true, so the daemon can log it.
 */
bool ft_engine_check_clock(struct ft_engine *e, struct ft_now now);

/* `name` and `last_error` point into the engine (valid until it is freed; the error changes with outcomes). */
struct ft_node_status {
        const char *name;
        enum ft_node_kind kind;
        int parent;
        enum ft_node_state state;
        bool in_flight;
        bool waiting_for_parent;
        int64_t issued_wall_ms, expires_wall_ms;   /* 0 when no token */
        int64_t next_fetch_wall_ms;                 /* 0 when not scheduled (in flight, waiting, never refreshed) */
        int64_t failing_since_wall_ms;              /* 0 when not failing */
        const struct ft_diag *last_error;           /* NULL when the last fetch succeeded */
        unsigned ok_count, fail_count;
};
/* Fills *ret; leaves it untouched for an unknown id. */
void ft_engine_status(const struct ft_engine *e, int id, struct ft_now now, struct ft_node_status *ret);

/*
 * Reload: the new engine's node `new_id` keeps the token timing, plan,
 * backoff, error state and counters of the old engine's `old_id` (same
 * definition), so an unchanged token is neither refetched nor lost. The
 * per-node refresh settings stay those of the new engine. Not for in-flight
 * nodes (-EBUSY: cancel or let the fetch finish first); -EINVAL for unknown
 * ids or a different kind. Both engines must be driven by the same clocks.
 */
int ft_engine_adopt(struct ft_engine *dst, int new_id, const struct ft_engine *src, int old_id);

#endif
