/* SPDX-License-Identifier: MIT */
/* timeutil.h: parse and format the timestamps the upstreams use. Pure. */
#ifndef FT_TIMEUTIL_H
#define FT_TIMEUTIL_H

#include "ft.h"

/*
 * ISO 8601 / RFC 3339: "2025-12-01T12:05:00Z", "…T12:05:00.000Z",
 * "…T12:05:00+02:00", lower-case 't'/'z' accepted. Exactly `len` bytes are
 * read. Fractional seconds are truncated. -EINVAL on anything else.
 */
int ft_time_parse_iso8601(const char *s, size_t len, int64_t *ret_epoch);
/* RFC 7231 HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT") for Date/Retry-After. */
int ft_time_parse_http_date(const char *s, size_t len, int64_t *ret_epoch);
/* "2025-12-01T12:05:00Z"; out holds 21 bytes. */
void ft_time_format_rfc3339(int64_t t, char out[21]);
/* "20251201T120500Z"; out holds 17 bytes. */
void ft_time_format_amz(int64_t t, char out[17]);
/* Retry-After as delta-seconds or HTTP-date, relative to `now`; 0 if unparsable. */
int64_t ft_time_retry_after(const char *value, int64_t now);

#endif
