/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "test.h"
#include "timeutil.h"

/* Parse from an exact-size heap copy, so ASan sees any read past `len`. */
static int parse_iso(const char *s, int64_t *ret)
{
        size_t n = strlen(s);
        char *copy = malloc(n ? n : 1);
        int r;

        if (!copy)
                abort();
        memcpy(copy, s, n);
        r = ft_time_parse_iso8601(copy, n, ret);
        free(copy);
        return r;
}

static int parse_http(const char *s, int64_t *ret)
{
        size_t n = strlen(s);
        char *copy = malloc(n ? n : 1);
        int r;

        if (!copy)
                abort();
        memcpy(copy, s, n);
        r = ft_time_parse_http_date(copy, n, ret);
        free(copy);
        return r;
}

static void check_iso(const char *s, int64_t want)
{
        int64_t t = -42;

        CHECK_INT(parse_iso(s, &t), 0);
        CHECK_INT(t, want);
}

static void check_iso_rejects(const char *s)
{
        int64_t t = -42;
        int r = parse_iso(s, &t);

        if (r != -EINVAL)
                fprintf(stderr, "  accepted \"%s\"\n", s);
        CHECK_INT(r, -EINVAL);
        CHECK_INT(t, -42);
}

static void test_iso8601(void)
{
        int64_t t;

        check_iso("2025-12-01T12:05:00Z", 1764590700);
        check_iso("2025-12-01T12:05:00.000Z", 1764590700);
        check_iso("2025-12-01T12:05:00.999999999Z", 1764590700);
        check_iso("2025-12-01t12:05:00z", 1764590700);
        /* Offsets: local time minus the offset is UTC. */
        check_iso("2025-12-01T14:05:00+02:00", 1764590700);
        check_iso("2025-12-01T06:35:00-05:30", 1764590700);
        check_iso("2025-12-01T12:05:00.5+00:00", 1764590700);
        check_iso("2025-12-02T11:04:00+23:59", 1764587100);
        check_iso("2025-11-30T12:06:00-23:59", 1764590700);
        check_iso("1970-01-01T00:00:00Z", 0);
        check_iso("1969-12-31T23:59:59Z", -1);
        check_iso("1970-01-01T00:00:00+01:00", -3600);
        check_iso("2000-02-29T00:00:00Z", 951782400);
        check_iso("2024-02-29T00:00:00Z", 1709164800);
        check_iso("2100-02-28T23:59:59Z", 4107542399);
        check_iso("1900-03-01T00:00:00Z", -2203891200);
        check_iso("0000-01-01T00:00:00Z", INT64_C(-62167219200));
        check_iso("9999-12-31T23:59:59Z", INT64_C(253402300799));
        /* A leap second is folded into the next second, as POSIX time does. */
        check_iso("2016-12-31T23:59:60Z", 1483228800);

        /* Exactly len bytes are read: a longer buffer is fine when len stops at the Z. */
        CHECK_INT(ft_time_parse_iso8601("2025-12-01T12:05:00Zjunk", 20, &t), 0);
        CHECK_INT(t, 1764590700);
        CHECK_INT(ft_time_parse_iso8601("2025-12-01T12:05:00Z", 19, &t), -EINVAL);
        CHECK_INT(ft_time_parse_iso8601(NULL, 0, &t), -EINVAL);
        CHECK_INT(ft_time_parse_iso8601("2025-12-01T12:05:00Z", 20, NULL), -EINVAL);
}

static void test_iso8601_rejects(void)
{
        static const char *const bad[] = {
                "",
                "2025-12-01",
                "2025-12-01T12:05Z",
                "2025-12-01T12:05:00",           /* no zone */
                "2025-12-01 12:05:00Z",
                "2025-12-01T12:05:00Z ",         /* trailing garbage */
                "2025-12-01T12:05:00ZZ",
                "2025-12-01T12:05:00Zx",
                " 2025-12-01T12:05:00Z",
                "2025-12-01T12:05:00.Z",         /* a dot needs digits */
                "2025-12-01T12:05:00.1234567890Z",
                "2025-12-01T12:05:00,5Z",
                "2025-02-30T00:00:00Z",          /* invalid dates */
                "2025-02-29T00:00:00Z",
                "2100-02-29T00:00:00Z",
                "2025-04-31T00:00:00Z",
                "2025-13-01T00:00:00Z",
                "2025-00-01T00:00:00Z",
                "2025-12-00T00:00:00Z",
                "2025-12-32T00:00:00Z",
                "2025-12-01T24:00:00Z",
                "2025-12-01T12:60:00Z",
                "2025-12-01T12:05:61Z",
                "2025-12-01T12:05:00+24:00",     /* offsets */
                "2025-12-01T12:05:00+02:60",
                "2025-12-01T12:05:00+0200",
                "2025-12-01T12:05:00+02",
                "2025-12-01T12:05:00+02:00Z",
                "+2025-12-01T12:05:00Z",
                "25-12-01T12:05:00Z",
                "2025-1-01T12:05:00Z",
                "2025-12-01T1:05:00Z",
                "2025-12-01T12:05:0Z",
                "2025/12/01T12:05:00Z",
                "2025-12-01T12-05-00Z",
                "2025-12-01T12:05:00\xef\xbc\xba",
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++)
                check_iso_rejects(bad[i]);
        {
                /* A NUL inside the counted bytes is garbage too. */
                int64_t t = -42;
                CHECK_INT(ft_time_parse_iso8601("2025-12-01T12:05:00Z\0", 21, &t), -EINVAL);
                CHECK_INT(t, -42);
        }
}

static void test_http_date(void)
{
        static const char *const bad[] = {
                "",
                "Sun, 06 Nov 1994 08:49:37 UTC",
                "Sun, 06 Nov 1994 08:49:37 GMT ",
                "Sun, 06 Nov 1994 08:49:37 gmt",
                "Sunday, 06-Nov-94 08:49:37 GMT",  /* RFC 850: obsolete, not sent by our upstreams */
                "Sun Nov  6 08:49:37 1994",        /* asctime */
                "Sun, 6 Nov 1994 08:49:37 GMT",
                "Sun, 06 nov 1994 08:49:37 GMT",
                "Sun, 06 Foo 1994 08:49:37 GMT",
                "Sun, 31 Feb 1994 08:49:37 GMT",
                "Sun, 00 Nov 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 24:49:37 GMT",
                "Sun, 06 Nov 1994 08:60:37 GMT",
                "Sun, 06 Nov 1994 08:49:61 GMT",
                "Sun, 06 Nov 94 08:49:37 GMT",
                "Sun 06 Nov 1994 08:49:37 GMT ",
                "Sun,  06 Nov 1994 08:49:37 GMT",
        };
        int64_t t = 0;

        CHECK_INT(parse_http("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
        CHECK_INT(t, 784111777);
        CHECK_INT(parse_http("Mon, 01 Dec 2025 12:05:00 GMT", &t), 0);
        CHECK_INT(t, 1764590700);
        CHECK_INT(parse_http("Thu, 29 Feb 2024 00:00:00 GMT", &t), 0);
        CHECK_INT(t, 1709164800);
        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                int64_t u = -42;
                int r = parse_http(bad[i], &u);
                if (r != -EINVAL)
                        fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
                CHECK_INT(r, -EINVAL);
                CHECK_INT(u, -42);
        }
        CHECK_INT(ft_time_parse_http_date(NULL, 29, &t), -EINVAL);
}

static void test_format(void)
{
        char r[21], a[17];

        ft_time_format_rfc3339(0, r);
        CHECK_STR(r, "1970-01-01T00:00:00Z");
        ft_time_format_rfc3339(-1, r);
        CHECK_STR(r, "1969-12-31T23:59:59Z");
        ft_time_format_rfc3339(951782400, r);
        CHECK_STR(r, "2000-02-29T00:00:00Z");
        ft_time_format_rfc3339(4107542399, r);
        CHECK_STR(r, "2100-02-28T23:59:59Z");
        ft_time_format_rfc3339(4107542400, r);
        CHECK_STR(r, "2100-03-01T00:00:00Z");
        ft_time_format_amz(1764590400, a);
        CHECK_STR(a, "20251201T120000Z");
        ft_time_format_amz(1440938160, a);
        CHECK_STR(a, "20150830T123600Z");

        /* Out of four-digit years: clamped, never overflowing or garbled. */
        ft_time_format_rfc3339(INT64_MIN, r);
        CHECK_STR(r, "0000-01-01T00:00:00Z");
        ft_time_format_rfc3339(INT64_MAX, r);
        CHECK_STR(r, "9999-12-31T23:59:59Z");
        ft_time_format_rfc3339(INT64_C(253402300800), r);
        CHECK_STR(r, "9999-12-31T23:59:59Z");
        ft_time_format_amz(INT64_MIN, a);
        CHECK_STR(a, "00000101T000000Z");
        ft_time_format_amz(INT64_MAX, a);
        CHECK_STR(a, "99991231T235959Z");
}

/* format → parse is the identity over the whole four-digit range, leap years included. */
static void test_format_round_trip(void)
{
        const int64_t lo = INT64_C(-62167219200), hi = INT64_C(253402300799);
        unsigned n = 0, bad = 0;

        for (int64_t t = lo; t <= hi; t += INT64_C(86400) * 97 + 3607) {
                char r[21], a[17], stripped[17];
                int64_t back = 0;
                size_t k = 0;

                ft_time_format_rfc3339(t, r);
                ft_time_format_amz(t, a);
                for (const char *p = r; *p; p++)
                        if (*p != '-' && *p != ':')
                                stripped[k++] = *p;
                stripped[k] = '\0';
                if (ft_time_parse_iso8601(r, strlen(r), &back) != 0 || back != t || strcmp(a, stripped) != 0) {
                        if (bad++ < 5)
                                fprintf(stderr, "  %" PRId64 ": %s %s -> %" PRId64 "\n", t, r, a, back);
                }
                n++;
        }
        CHECK(n > 30000);
        CHECK_INT(bad, 0);
        /* Every day of a leap and a common year, at the last second of the day. */
        for (int64_t day = 0; day < 366 + 365; day++) {
                int64_t t = 946684800 + day * 86400 + 86399, back = 0; /* from 2000-01-01 */
                char r[21];

                ft_time_format_rfc3339(t, r);
                CHECK_INT(ft_time_parse_iso8601(r, 20, &back), 0);
                CHECK_INT(back, t);
        }
}

static void test_retry_after(void)
{
        const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

        CHECK_INT(ft_time_retry_after("120", now), 120);
        CHECK_INT(ft_time_retry_after("  120\t", now), 120);
        CHECK_INT(ft_time_retry_after("0", now), 0);
        CHECK_INT(ft_time_retry_after("86400", now), 86400);
        CHECK_INT(ft_time_retry_after("86401", now), 86400);
        CHECK_INT(ft_time_retry_after("99999999999999999999999999", now), 86400);
        CHECK_INT(ft_time_retry_after("12a", now), 0);
        CHECK_INT(ft_time_retry_after("86401x", now), 0);
        CHECK_INT(ft_time_retry_after("99999999999999999999999999 s", now), 0);
        CHECK_INT(ft_time_retry_after("1 2", now), 0);
        CHECK_INT(ft_time_retry_after("-5", now), 0);
        CHECK_INT(ft_time_retry_after("+5", now), 0);
        CHECK_INT(ft_time_retry_after("1.5", now), 0);
        CHECK_INT(ft_time_retry_after("", now), 0);
        CHECK_INT(ft_time_retry_after("   ", now), 0);
        CHECK_INT(ft_time_retry_after(NULL, now), 0);
        CHECK_INT(ft_time_retry_after("soon", now), 0);
        /* HTTP-date: the time left until then, 0 when past, capped at a day. */
        CHECK_INT(ft_time_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now), 120);
        CHECK_INT(ft_time_retry_after(" Sun, 06 Nov 1994 08:51:37 GMT ", now), 120);
        CHECK_INT(ft_time_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
        CHECK_INT(ft_time_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);
        CHECK_INT(ft_time_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), 86400);
        CHECK_INT(ft_time_retry_after("Sun, 06 Nov 1994 08:51:37 UTC", now), 0);
        /* Any clock value, even absurd ones, without overflow. */
        CHECK_INT(ft_time_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", INT64_MIN), 86400);
        CHECK_INT(ft_time_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", INT64_MAX), 0);
}

int main(void)
{
        test_iso8601();
        test_iso8601_rejects();
        test_http_date();
        test_format();
        test_format_round_trip();
        test_retry_after();
        return test_summary();
}
