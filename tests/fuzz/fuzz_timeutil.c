/* SPDX-License-Identifier: MIT */
/*
 * fuzz_timeutil.c: the ISO 8601 and HTTP-date parsers on an exact-size copy
 * (no terminator to lean on), Retry-After on a NUL-terminated copy, and the
 * round trip of every accepted ISO time through the formatter.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The range four year digits can show; outside it the formatter clamps. */
#define ROUND_TRIP_MIN INT64_C(-62167219200)
#define ROUND_TRIP_MAX INT64_C(253402300799)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *exact, *text, out[21], amz[17];
        int64_t t, back, delay;

        if (size > 4096)
                return 0;
        exact = malloc(size ? size : 1);
        text = malloc(size + 1);
        if (!exact || !text) {
                free(exact);
                free(text);
                return 0;
        }
        memcpy(exact, data, size);
        memcpy(text, data, size);
        text[size] = '\0';

        if (ft_time_parse_iso8601(exact, size, &t) == 0) {
                ft_time_format_rfc3339(t, out);
                ft_time_format_amz(t, amz);
                if (strlen(out) != 20 || strlen(amz) != 16)
                        abort();
                if (t >= ROUND_TRIP_MIN && t <= ROUND_TRIP_MAX &&
                    (ft_time_parse_iso8601(out, 20, &back) != 0 || back != t))
                        abort();
        }
        /* A leap second on 9999-12-31 folds into year 10000, which the formatter clamps. */
        if (ft_time_parse_http_date(exact, size, &t) == 0 && t >= ROUND_TRIP_MIN && t <= ROUND_TRIP_MAX) {
                ft_time_format_rfc3339(t, out);
                if (ft_time_parse_iso8601(out, 20, &back) != 0 || back != t)
                        abort();
        }
        delay = ft_time_retry_after(text, 1764590400);
        if (delay < 0 || delay > 86400)
                abort();
        /* Any clock the caller may pass, including the extremes. */
        delay = ft_time_retry_after(text, INT64_MIN);
        if (delay < 0 || delay > 86400)
                abort();
        delay = ft_time_retry_after(text, INT64_MAX);
        if (delay < 0 || delay > 86400)
                abort();

        free(exact);
        free(text);
        return 0;
}
