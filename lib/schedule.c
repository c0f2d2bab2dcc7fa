/* SPDX-License-Identifier: MIT */
#include "schedule.h"

#define DAY_MS (86400 * (int64_t)1000)

/* Uniform in [lo, hi] from a 32-bit random number; lo <= hi. */
static int64_t uniform(int64_t lo, int64_t hi, uint32_t rnd)
{
        uint64_t span;

        if (hi <= lo)
                return lo;
        span = (uint64_t)(hi - lo);
        return lo + (int64_t)((span * rnd) / UINT32_MAX);
}

int64_t ft_refresh_time(const struct ft_refresh_policy *p, int64_t issued_ms, int64_t expires_ms,
                        uint32_t rnd)
{
        int64_t lifetime, nominal, jitter, t, latest;

        if (expires_ms <= issued_ms)
                return issued_ms;
        lifetime = expires_ms - issued_ms;
        nominal = lifetime / 100 * p->percent + lifetime % 100 * p->percent / 100;
        jitter = nominal / 100 * p->jitter_percent;
        t = issued_ms + uniform(nominal - jitter, nominal + jitter, rnd);
        latest = expires_ms - p->margin_ms;
        if (t > latest)
                t = latest;
        /* A margin longer than the token's life must not make us renew in a loop. */
        if (t < issued_ms + nominal / 2)
                t = issued_ms + nominal / 2;
        return t;
}

int64_t ft_backoff_next(struct ft_backoff *b, enum ft_retry cls, int64_t retry_after_ms, uint32_t rnd)
{
        int64_t cap, delay;
        unsigned n;

        n = b->failures++;
        switch (cls) {
        case FT_RETRY_NOW:
                if (n == 0) {
                        delay = 0;
                        break;
                }
                n--;
                __attribute__((fallthrough));
        case FT_RETRY_BACKOFF:
                cap = b->initial_ms;
                while (n-- > 0 && cap < b->max_ms)
                        cap *= 2;
                if (cap > b->max_ms)
                        cap = b->max_ms;
                delay = uniform(b->initial_ms < cap ? b->initial_ms : cap, cap, rnd);
                break;
        case FT_RETRY_SLOW:
        default:
                delay = uniform(b->max_ms, 2 * b->max_ms, rnd);
                break;
        }
        if (delay < retry_after_ms)
                delay = retry_after_ms;
        if (delay > DAY_MS)
                delay = DAY_MS;
        return delay;
}

void ft_backoff_reset(struct ft_backoff *b)
{
        b->failures = 0;
}

bool ft_token_servable(int64_t now_ms, int64_t expires_ms, int64_t min_remaining_ms)
{
        return expires_ms - now_ms >= min_remaining_ms;
}
