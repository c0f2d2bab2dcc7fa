/* SPDX-License-Identifier: MIT */
/*
 * fuzz_httpreq.c: the socket API's request parser, fed the input as one
 * connection's pipelined byte stream, the way the server calls it.
 *
 * At each request boundary it parses what is left, checks the promises of
 * httpreq.h (the count never passes the bytes given, progress is made, the
 * status is one of the documented ones, a full head buffer never waits, the
 * fields hold what their comments say) and replays prefixes of the rest:
 * a prefix must say "need more" until the request is complete, then give
 * the same count, or be refused with the same status. Each parsed query is
 * handed to ft_http_query_get. Any broken promise aborts.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse an exact-size heap copy of a prefix, so ASan catches a read past it. */
static int parse_copy(const char *buf, size_t len, struct ft_http_req *req, int *status)
{
        char *copy = malloc(len ? len : 1);
        int r;

        if (!copy)
                abort();
        memcpy(copy, buf, len);
        r = ft_http_parse(copy, len, req, status);
        free(copy);
        return r;
}

static bool is_documented_status(int status)
{
        return status == 400 || status == 413 || status == 414 || status == 431 || status == 505;
}

/* The decoded path is printable ASCII, starts with '/', has no "//", "." or ".." segment. */
static void check_path(const char *path)
{
        size_t n = strlen(path);

        if (n == 0 || n >= FT_HTTP_MAX_PATH || path[0] != '/')
                abort();
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)path[i];
                if (c < 0x20 || c >= 0x7f)
                        abort();
                if (c != '/')
                        continue;
                if (path[i + 1] == '/')
                        abort();
                if (path[i + 1] == '.' && (path[i + 2] == '/' || path[i + 2] == '\0'))
                        abort();
                if (path[i + 1] == '.' && path[i + 2] == '.' && (path[i + 3] == '/' || path[i + 3] == '\0'))
                        abort();
        }
}

/* Every answer of query_get is a documented one; a value found fits and has no control character. */
static void check_query_get(const char *query, const char *key)
{
        char out[32];
        int r;

        memset(out, 'X', sizeof(out));
        r = ft_http_query_get(query, key, out, sizeof(out));
        if (r == 0) {
                size_t n = strnlen(out, sizeof(out));
                if (n == sizeof(out))
                        abort();
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                                abort();
        } else if (r != -ENOENT && r != -EINVAL) {
                abort();
        } else if (out[0] != 'X') {
                abort();
        }
}

static void check_request(const struct ft_http_req *req)
{
        char key[16];
        size_t key_len;

        if (req->method != FT_HTTP_GET && req->method != FT_HTTP_HEAD && req->method != FT_HTTP_OTHER)
                abort();
        if (req->minor_version != 0 && req->minor_version != 1)
                abort();
        check_path(req->path);
        if (strnlen(req->query, sizeof(req->query)) == sizeof(req->query))
                abort();
        check_query_get(req->query, "format");
        check_query_get(req->query, "wait");
        /* And the key of the query's first element, whatever it is. */
        key_len = strcspn(req->query, "=&");
        if (key_len > 0 && key_len < sizeof(key)) {
                memcpy(key, req->query, key_len);
                key[key_len] = '\0';
                check_query_get(req->query, key);
        }
}

static bool same_request(const struct ft_http_req *a, const struct ft_http_req *b)
{
        return a->method == b->method && strcmp(a->path, b->path) == 0 && strcmp(a->query, b->query) == 0 &&
               a->keep_alive == b->keep_alive && a->accept_text == b->accept_text &&
               a->minor_version == b->minor_version;
}

/* What parsing the first k of len bytes must give, knowing what all len bytes gave (r, status, req). */
static void check_prefix(const char *buf, size_t k, int r, int status, const struct ft_http_req *req)
{
        struct ft_http_req pre;
        int pre_status = 0, pr = parse_copy(buf, k, &pre, &pre_status);

        if (pr > 0 && (size_t)pr > k)
                abort();
        if (r > 0) {
                if (k < (size_t)r ? pr != 0 : pr != r)
                        abort();
                if (pr > 0 && !same_request(&pre, req))
                        abort();
        } else if (r == 0) {
                if (pr != 0)
                        abort();
        } else if (pr != 0 && (pr != -EBADMSG || pre_status != status)) {
                abort();
        }
}

/* Every prefix is too slow for long inputs: all short ones, a sample of the rest, and the edges. */
static void check_prefixes(const char *buf, size_t len, int r, int status, const struct ft_http_req *req)
{
        size_t stride = len / 64 + 1;
        const size_t edges[] = { r > 0 ? (size_t)r - 1 : 0, r > 0 ? (size_t)r + 1 : 0,
                                 FT_HTTP_MAX_REQUEST_LINE, FT_HTTP_MAX_REQUEST_LINE + 1,
                                 FT_HTTP_MAX_REQUEST_LINE + 2, FT_HTTP_MAX_HEADER_BYTES - 1,
                                 FT_HTTP_MAX_HEADER_BYTES, FT_HTTP_MAX_HEADER_BYTES + 1 };

        for (size_t k = 0; k < len; k += k < 256 ? 1 : stride)
                check_prefix(buf, k, r, status, req);
        for (size_t i = 0; i < FT_ELEMENTSOF(edges); i++)
                if (edges[i] < len)
                        check_prefix(buf, edges[i], r, status, req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *buf = (const char *)data;
        size_t off = 0;

        if (size > 64 * 1024)
                return 0;
        while (off < size) {
                struct ft_http_req req;
                size_t left = size - off;
                int status = 0, r = ft_http_parse(buf + off, left, &req, &status);

                if (r > 0 && ((size_t)r > left || r > FT_HTTP_MAX_HEADER_BYTES))
                        abort();
                if (r == 0 && left >= FT_HTTP_MAX_HEADER_BYTES)
                        abort();
                if (r < 0 && (r != -EBADMSG || !is_documented_status(status)))
                        abort();
                check_prefixes(buf + off, left, r, status, &req);
                if (r <= 0)
                        break;
                check_request(&req);
                off += (size_t)r;
        }
        return 0;
}
