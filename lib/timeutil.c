/* SPDX-License-Identifier: MIT */
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's algorithm. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *ry, unsigned *rm, unsigned *rd)
{
        int64_t era, y;
        unsigned doe, yoe, doy, mp, d, m;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = (unsigned)(z - era * 146097);
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        y = (int64_t)yoe + era * 400;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        d = doy - (153 * mp + 2) / 5 + 1;
        m = mp < 10 ? mp + 3 : mp - 9;
        *ry = (int)(y + (m <= 2));
        *rm = m;
        *rd = d;
}

static bool is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
        static const unsigned dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Read exactly n digits at s[*i]. */
static int digits(const char *s, size_t len, size_t *i, unsigned n, unsigned *ret)
{
        unsigned v = 0;

        if (*i + n > len)
                return -EINVAL;
        for (unsigned k = 0; k < n; k++) {
                char c = s[*i + k];
                if (c < '0' || c > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(c - '0');
        }
        *i += n;
        *ret = v;
        return 0;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
        if (*i >= len || s[*i] != c)
                return -EINVAL;
        (*i)++;
        return 0;
}

int ft_time_parse_iso8601(const char *s, size_t len, int64_t *ret_epoch)
{
        unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
        size_t i = 0;
        int64_t t, offset = 0;

        if (!s || !ret_epoch)
                return -EINVAL;
        if (digits(s, len, &i, 4, &y) < 0 || expect(s, len, &i, '-') < 0 ||
            digits(s, len, &i, 2, &mo) < 0 || expect(s, len, &i, '-') < 0 ||
            digits(s, len, &i, 2, &d) < 0)
                return -EINVAL;
        if (i >= len || (s[i] != 'T' && s[i] != 't'))
                return -EINVAL;
        i++;
        if (digits(s, len, &i, 2, &h) < 0 || expect(s, len, &i, ':') < 0 ||
            digits(s, len, &i, 2, &mi) < 0 || expect(s, len, &i, ':') < 0 ||
            digits(s, len, &i, 2, &sec) < 0)
                return -EINVAL;
        if (i < len && s[i] == '.') {
                size_t start = ++i;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                        i++;
                if (i == start || i - start > 9)
                        return -EINVAL;
        }
        if (i >= len)
                return -EINVAL;
        if (s[i] == 'Z' || s[i] == 'z') {
                i++;
        } else if (s[i] == '+' || s[i] == '-') {
                int sign = s[i] == '-' ? -1 : 1;
                i++;
                if (digits(s, len, &i, 2, &oh) < 0 || expect(s, len, &i, ':') < 0 ||
                    digits(s, len, &i, 2, &om) < 0 || oh > 23 || om > 59)
                        return -EINVAL;
                offset = sign * (int64_t)(oh * 3600 + om * 60);
        } else {
                return -EINVAL;
        }
        if (i != len)
                return -EINVAL;
        /* Leap second 60 is folded into the next second, as POSIX time does. */
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
                return -EINVAL;
        t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
        *ret_epoch = t - offset;
        return 0;
}

int ft_time_parse_http_date(const char *s, size_t len, int64_t *ret_epoch)
{
        static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        unsigned d = 0, y = 0, h = 0, mi = 0, sec = 0, mo = 0;
        size_t i = 0;

        /* IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"): what every server we talk to sends. */
        if (!s || !ret_epoch || len != 29)
                return -EINVAL;
        if (s[3] != ',' || s[4] != ' ')
                return -EINVAL;
        i = 5;
        if (digits(s, len, &i, 2, &d) < 0 || expect(s, len, &i, ' ') < 0)
                return -EINVAL;
        for (unsigned k = 0; k < 12; k++)
                if (memcmp(s + i, months[k], 3) == 0)
                        mo = k + 1;
        if (!mo)
                return -EINVAL;
        i += 3;
        if (expect(s, len, &i, ' ') < 0 || digits(s, len, &i, 4, &y) < 0 || expect(s, len, &i, ' ') < 0 ||
            digits(s, len, &i, 2, &h) < 0 || expect(s, len, &i, ':') < 0 ||
            digits(s, len, &i, 2, &mi) < 0 || expect(s, len, &i, ':') < 0 ||
            digits(s, len, &i, 2, &sec) < 0 || memcmp(s + i, " GMT", 4) != 0)
                return -EINVAL;
        if (d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
                return -EINVAL;
        *ret_epoch = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
        return 0;
}

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what four year digits can show. */
#define TIME_FORMAT_MIN INT64_C(-62167219200)
#define TIME_FORMAT_MAX INT64_C(253402300799)

static void put_digits(char *out, unsigned v, unsigned n)
{
        while (n-- > 0) {
                out[n] = (char)('0' + v % 10);
                v /= 10;
        }
}

void ft_time_format_rfc3339(int64_t t, char out[21])
{
        int64_t days, rem;
        unsigned m, d;
        int y;

        /* Clamp first, so the day arithmetic cannot overflow on any input. */
        if (t < TIME_FORMAT_MIN)
                t = TIME_FORMAT_MIN;
        if (t > TIME_FORMAT_MAX)
                t = TIME_FORMAT_MAX;
        days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
        rem = t - days * 86400;
        civil_from_days(days, &y, &m, &d);
        memcpy(out, "0000-00-00T00:00:00Z", 21);
        put_digits(out, (unsigned)y, 4);
        put_digits(out + 5, m, 2);
        put_digits(out + 8, d, 2);
        put_digits(out + 11, (unsigned)(rem / 3600), 2);
        put_digits(out + 14, (unsigned)(rem / 60 % 60), 2);
        put_digits(out + 17, (unsigned)(rem % 60), 2);
}

void ft_time_format_amz(int64_t t, char out[17])
{
        /* Positions of YYYY MM DD T HH MM SS Z in "2025-12-01T12:05:00Z". */
        static const uint8_t from[16] = { 0, 1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 14, 15, 17, 18, 19 };
        char r[21];

        ft_time_format_rfc3339(t, r);
        for (size_t i = 0; i < sizeof(from); i++)
                out[i] = r[from[i]];
        out[16] = '\0';
}

int64_t ft_time_retry_after(const char *value, int64_t now)
{
        int64_t t, secs = 0;
        size_t len;

        if (!value)
                return 0;
        while (*value == ' ' || *value == '\t')
                value++;
        len = strlen(value);
        while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
                len--;
        if (len == 0)
                return 0;
        if (value[0] >= '0' && value[0] <= '9') {
                for (size_t i = 0; i < len; i++) {
                        if (value[i] < '0' || value[i] > '9')
                                return 0;
                        /* Stop summing past the cap, but read on: "99999x" is as unparsable as "9x". */
                        if (secs <= 86400)
                                secs = secs * 10 + (value[i] - '0');
                }
                /* A day is more than any upstream should ask for; cap it. */
                return secs > 86400 ? 86400 : secs;
        }
        if (ft_time_parse_http_date(value, len, &t) < 0 || t <= now)
                return 0;
        /* t is a four-digit year, so t - 86400 cannot overflow; t - now could for any `now`. */
        return now < t - 86400 ? 86400 : t - now;
}
