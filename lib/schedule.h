/* SPDX-License-Identifier: MIT */
/*
 * schedule.h: the renewal policy, as pure arithmetic on times the caller
 * gives (milliseconds since the epoch for expiries, which are wall-clock
 * facts; the caller turns the resulting delay into a monotonic timer).
 *
 * - Refresh ahead at `percent` of the lifetime, with ±`jitter_percent` of
 *   that delay so that a fleet started together does not renew together,
 *   never later than `margin` before expiry, and never earlier than half the
 *   nominal delay (so a short-lived token is not renewed in a tight loop).
 * - On failure, exponential backoff with full jitter between `initial` and
 *   the exponential cap (bounded by `max`), stretched to honour Retry-After;
 *   failures a person must fix are retried slowly.
 * - A token is servable while it has at least `min_remaining` left.
 */
#ifndef FT_SCHEDULE_H
#define FT_SCHEDULE_H

#include "ft.h"

struct ft_refresh_policy {
        int percent;              /* 10..90 */
        int jitter_percent;       /* 0..25 */
        int64_t margin_ms;        /* refresh no later than this before expiry */
};

/*
 * Absolute time (ms) at which to refresh a token valid from `issued_ms` to
 * `expires_ms`. `rnd` is a uniform random 32-bit number. The result is within
 * [issued, expires]; when the token is already past its refresh point the
 * caller simply refreshes at once.
 */
int64_t ft_refresh_time(const struct ft_refresh_policy *p, int64_t issued_ms, int64_t expires_ms,
                        uint32_t rnd);

struct ft_backoff {
        int64_t initial_ms;       /* first delay (floor of every delay) */
        int64_t max_ms;           /* cap of the exponential part */
        unsigned failures;        /* consecutive failures so far */
};

/*
 * Record one more failure and return the delay before the next attempt:
 * FT_RETRY_BACKOFF: uniform in [initial, min(max, initial * 2^(failures-1))];
 * FT_RETRY_SLOW: uniform in [max, 2 * max] (a person has to fix something);
 * FT_RETRY_NOW: 0 for the first failure of a run, then as BACKOFF, so a
 * "retry at once" answer can never turn into a loop.
 * The delay is at least `retry_after_ms`, capped at one day.
 */
int64_t ft_backoff_next(struct ft_backoff *b, enum ft_retry cls, int64_t retry_after_ms, uint32_t rnd);
void ft_backoff_reset(struct ft_backoff *b);

/* True while a token expiring at `expires_ms` may still be handed out at `now_ms`. */
bool ft_token_servable(int64_t now_ms, int64_t expires_ms, int64_t min_remaining_ms);

#endif
