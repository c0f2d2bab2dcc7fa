/* SPDX-License-Identifier: MIT */
/*
 * httpreq.h: a small strict parser for the HTTP/1.1 requests local clients
 * send to fedtokend's Unix socket. Sans-I/O: it looks at the bytes received
 * so far and says "need more", "here is one request (N bytes)" or "reject
 * with status S". Hard limits keep a hostile client from costing memory.
 *
 * Only what the socket API needs is kept: method, path (percent-decoded,
 * checked), the raw query, keep-alive, and whether the client asked for
 * text/plain. Requests with a body are refused (the API is GET only).
 */
#ifndef FT_HTTPREQ_H
#define FT_HTTPREQ_H

#include "ft.h"

#define FT_HTTP_MAX_REQUEST_LINE 2048     /* longer: 414 */
#define FT_HTTP_MAX_HEADER_BYTES 8192     /* whole head incl. request line; more: 431 */
#define FT_HTTP_MAX_HEADERS 32            /* more: 431 */
#define FT_HTTP_MAX_PATH 256

enum ft_http_method { FT_HTTP_GET = 0, FT_HTTP_HEAD, FT_HTTP_OTHER };

struct ft_http_req {
        enum ft_http_method method;
        char path[FT_HTTP_MAX_PATH];      /* decoded, NUL-terminated, starts with '/' */
        char query[FT_HTTP_MAX_PATH];     /* raw, without '?', NUL-terminated */
        bool keep_alive;                  /* HTTP/1.1 default, or Connection: keep-alive on 1.0 */
        bool accept_text;                 /* Accept prefers text/plain: see below */
        int minor_version;                /* 0 or 1 */
};

/*
 * accept_text: Accept lists text/plain with a weight above 0, and
 * application/json either not at all, or with a lower weight, or with the
 * same weight but after text/plain. Only these two exact media types count
 * (parameters other than q ignored, first mention of each wins);
 * wildcards do not, so the default answer is JSON. "text/plain" → true,
 * "application/json, text/plain" → false, "text/plain, application/json"
 * → true, "application/json;q=0.5, text/plain" → true, "text/plain;q=0"
 * → false.
 */

/*
 * Parse one request from the start of buf[0..len).
 * Returns the number of bytes the request took (> 0) and fills *ret: the
 * next pipelined request starts at buf[n]. Returns 0 when more bytes are
 * needed and none of the limits is exceeded yet: never for len >=
 * FT_HTTP_MAX_HEADER_BYTES, so a buffer of that size cannot stall.
 * Returns -EBADMSG when the request must be refused: *ret_status holds the
 * HTTP status to answer (400, 413, 414, 431, 505) before closing. -EINVAL
 * for NULL arguments. *ret is written only on success, *ret_status only
 * with -EBADMSG.
 *
 * Lines end with CR LF or a bare LF (RFC 9112 §2.2), a bare CR or a NUL
 * anywhere is a 400. Empty lines before the request line are skipped and
 * count towards the returned length and the head limit. The request line
 * is "METHOD SP target SP HTTP/1.x" with single spaces: a version other
 * than 1.x is 505 (1.2 and later minors are taken as 1.1, RFC 9110 §2.5).
 * The target is origin-form, or absolute-form "http://host/..." of which
 * the path is kept; the decoded path must have no "//", "." or ".."
 * segment, no %2F and only printable ASCII (else 400) and fit `path`, as
 * the raw query must fit `query` (else 414). Headers are "name: value" with
 * a token name; folding is a 400. HTTP/1.1 needs exactly one valid Host.
 * Content-Length other than 0 and any Transfer-Encoding are 413; a second
 * or malformed Content-Length is 400. A prefix of a request is either "need
 * more" or refused with the status the whole request would get.
 */
int ft_http_parse(const char *buf, size_t len, struct ft_http_req *ret, int *ret_status);

/*
 * The value of `key` in a raw query ("format=raw&wait=5"), percent-decoded
 * into out (NUL-terminated). Elements are separated by '&'; the key is
 * percent-decoded too and compared exactly (case-sensitive, whole key); the
 * first match wins; "key" without '=' has the empty value. '+' is a plus
 * sign, not a space (RFC 3986, not HTML forms). 0 when found, -ENOENT when
 * absent, -EINVAL when the query has a malformed %XX anywhere, the value
 * decodes to a control character, or it is longer than outlen-1 (out is
 * then left untouched).
 */
int ft_http_query_get(const char *query, const char *key, char *out, size_t outlen);

#endif
