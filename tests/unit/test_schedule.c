/* SPDX-License-Identifier: MIT */
#include "schedule.h"
#include "test.h"

/* A small deterministic generator so the bounds are exercised with many draws. */
static uint32_t xorshift(uint32_t *s)
{
        uint32_t x = *s;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *s = x;
}

static void test_refresh_half_life_with_jitter(void)
{
        struct ft_refresh_policy p = { .percent = 50, .jitter_percent = 10, .margin_ms = 120000 };
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        uint32_t seed = 12345;

        for (int i = 0; i < 10000; i++) {
                int64_t t = ft_refresh_time(&p, 0, 3600000, xorshift(&seed));
                lo = t < lo ? t : lo;
                hi = t > hi ? t : hi;
        }
        /* 1800 s ± 10 %: every draw within [1620, 1980] s and the range actually used. */
        CHECK(lo >= 1620000);
        CHECK(hi <= 1980000);
        CHECK(lo < 1650000);
        CHECK(hi > 1950000);
        CHECK_INT(ft_refresh_time(&p, 0, 3600000, 0), 1620000);
        CHECK_INT(ft_refresh_time(&p, 0, 3600000, UINT32_MAX), 1980000);
}

static void test_refresh_margin_caps_late_refresh(void)
{
        struct ft_refresh_policy p = { .percent = 90, .jitter_percent = 10, .margin_ms = 600000 };

        /* 90 % of 3600 s would be 3240 s, later than 600 s before expiry. */
        CHECK_INT(ft_refresh_time(&p, 0, 3600000, UINT32_MAX), 3000000);
}

static void test_refresh_short_token_no_tight_loop(void)
{
        struct ft_refresh_policy p = { .percent = 50, .jitter_percent = 10, .margin_ms = 120000 };

        /* A 60 s token with a 120 s margin: renew at a quarter of its life, not at once. */
        CHECK_INT(ft_refresh_time(&p, 1000000, 1060000, 0), 1015000);
        /* A token that is already expired is refreshed from its issue time. */
        CHECK_INT(ft_refresh_time(&p, 5000, 5000, 7), 5000);
}

static void test_backoff_grows_and_caps(void)
{
        struct ft_backoff b = { .initial_ms = 1000, .max_ms = 60000 };
        int64_t caps[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000 };

        for (size_t i = 0; i < FT_ELEMENTSOF(caps); i++) {
                struct ft_backoff copy = b;
                CHECK_INT(ft_backoff_next(&copy, FT_RETRY_BACKOFF, 0, UINT32_MAX), caps[i]);
                copy = b;
                CHECK_INT(ft_backoff_next(&copy, FT_RETRY_BACKOFF, 0, 0), 1000);
                ft_backoff_next(&b, FT_RETRY_BACKOFF, 0, 0);
        }
        CHECK_INT(b.failures, FT_ELEMENTSOF(caps));
        ft_backoff_reset(&b);
        CHECK_INT(ft_backoff_next(&b, FT_RETRY_BACKOFF, 0, UINT32_MAX), 1000);
}

static void test_backoff_jitter_bounds(void)
{
        uint32_t seed = 99;

        for (int i = 0; i < 1000; i++) {
                struct ft_backoff b = { .initial_ms = 1000, .max_ms = 60000 };
                for (int k = 0; k < 12; k++) {
                        int64_t d = ft_backoff_next(&b, FT_RETRY_BACKOFF, 0, xorshift(&seed));
                        CHECK(d >= 1000 && d <= 60000);
                }
        }
}

static void test_backoff_retry_after_and_classes(void)
{
        struct ft_backoff b = { .initial_ms = 1000, .max_ms = 60000 };

        CHECK_INT(ft_backoff_next(&b, FT_RETRY_BACKOFF, 30000, 0), 30000);
        ft_backoff_reset(&b);
        /* Retry-After is honoured but a hostile value cannot stall us for more than a day. */
        CHECK_INT(ft_backoff_next(&b, FT_RETRY_BACKOFF, (int64_t)1 << 50, 0), 86400000);
        ft_backoff_reset(&b);
        CHECK_INT(ft_backoff_next(&b, FT_RETRY_NOW, 0, UINT32_MAX), 0);
        /* A second "retry now" in the same run is a backoff, never a loop. */
        CHECK_INT(ft_backoff_next(&b, FT_RETRY_NOW, 0, UINT32_MAX), 1000);
        CHECK_INT(ft_backoff_next(&b, FT_RETRY_NOW, 0, UINT32_MAX), 2000);
        ft_backoff_reset(&b);
        CHECK_INT(ft_backoff_next(&b, FT_RETRY_SLOW, 0, 0), 60000);
        CHECK_INT(ft_backoff_next(&b, FT_RETRY_SLOW, 0, UINT32_MAX), 120000);
}

static void test_servable(void)
{
        CHECK(ft_token_servable(0, 60000, 60000));
        CHECK(!ft_token_servable(1, 60000, 60000));
        CHECK(!ft_token_servable(70000, 60000, 0));
}

int main(void)
{
        test_refresh_half_life_with_jitter();
        test_refresh_margin_caps_late_refresh();
        test_refresh_short_token_no_tight_loop();
        test_backoff_grows_and_caps();
        test_backoff_jitter_bounds();
        test_backoff_retry_after_and_classes();
        test_servable();
        return test_summary();
}
