/* SPDX-License-Identifier: MIT */
/*
 * fetch.h: HTTP(S) transfers on the libuv loop through the libcurl multi
 * interface. One struct fetcher owns the CURLM*, its timer and the
 * per-socket polls, and reaps finished transfers after every socket action
 * (STYLE.md section 2). Every easy handle comes from one factory that locks
 * it down: HTTPS only (plain HTTP only when the caller says the AWS SDKs
 * allow it for that host), TLS 1.2+ with verification always on, HTTP/1.1,
 * connect and total timeouts, a body size cap, no redirects, no
 * decompression, connection reuse through the multi handle.
 */
#ifndef FT_FETCH_H
#define FT_FETCH_H

#include <uv.h>

#include "httpmsg.h"

struct fetcher;
struct fetch;

/* NULL means all defaults (https only). */
struct fetch_opts {
        bool allow_http;        /* plain http allowed (IMDS, container endpoint, loopback) */
        long timeout_ms;        /* whole transfer; 0 = 10 s */
        long connect_timeout_ms;/* TCP and TLS handshake; 0 = min(timeout, 5 s) */
        size_t max_body;        /* 0 = 256 KiB; at most 64 MiB */
};

/*
 * Called once per transfer that was not cancelled, from the loop (never from
 * inside fetcher_start). On success `error` is 0 and `resp` holds the status,
 * headers of interest (of the final response only) and body, for any status,
 * 4xx/5xx included. On a transport failure `error` is a negative errno,
 * `resp` is NULL and `errmsg` is one plain sentence naming the host (never
 * the path, query or a header value):
 *   -ECONNREFUSED    "connection refused by HOST:PORT"
 *   -EHOSTUNREACH    "could not resolve host HOST" (or "no route to HOST:PORT")
 *   -ETIMEDOUT       "no answer from HOST within N s",
 *                    "could not connect to HOST:PORT within N s"
 *   -EPERM           "TLS certificate of HOST not trusted: <curl's reason>"
 *   -ENOENT          "could not load the CA file PATH to verify HOST: ..."
 *   -EFBIG           "response from HOST larger than N bytes" (or its headers)
 *   -ECONNRESET      "connection to HOST:PORT closed before the response was complete"
 *   -EPROTO          "HOST:PORT sent a reply that is not HTTP/1.x", TLS handshake failures
 *   -EPROTONOSUPPORT "plain http to HOST is not allowed: use https"
 *   -ENOMEM, -EIO    anything else
 * `resp` and `errmsg` live only during the call; the body may be a token and
 * is wiped afterwards. `done` may call fetcher_start, fetch_cancel on other
 * transfers and fetcher_free; fetch_cancel on its own transfer is a no-op.
 */
typedef void (*fetch_done_fn)(void *userdata, int error, const char *errmsg, const struct ft_response *resp);

/*
 * curl_global_init with an allocator that wipes every block libcurl frees:
 * its receive buffer holds each response (tokens) and its header lists the
 * session token, and "zero secrets in memory you free" covers them too.
 * The first call in the process sets the allocator; every call counts, and
 * pairs with one curl_global_cleanup(). OpenSSL (libcurl's TLS backend)
 * gets a wiping allocator too, for its record buffers and keys, if this
 * runs before anything in the process has used OpenSSL.
 */
int fetch_global_init(void);

/*
 * `ca_file` NULL: the system trust store; otherwise that PEM file replaces
 * it. Proxies come from the environment as curl reads them, except for
 * loopback and link-local hosts, which are always reached directly.
 */
int fetcher_new(uv_loop_t *loop, const char *ca_file, struct fetcher **ret);

/*
 * Start a transfer. Takes ownership of `req` in every case (it is wiped and
 * freed when the transfer ends or fails to start). Fails with -EINVAL for a
 * request that could not go on the wire as given (method not an upper-case
 * token, control characters in the URL, CR/LF in a header, userinfo in the
 * URL, a body on GET or HEAD) or bad options, -ESHUTDOWN after fetcher_free, -ENOMEM or -EIO; on
 * failure `done` is never called. The request's headers are sent as given
 * and replace curl's own (Host, Accept, User-Agent); curl adds no Expect and,
 * for a body without a Content-Type header, no Content-Type. A body is sent
 * for POST/PUT/PATCH (Content-Length: 0 when empty) or whenever body_len > 0.
 * `ret` (may be NULL) receives a handle valid until `done` returns,
 * fetch_cancel is called or the fetcher is freed.
 */
int fetcher_start(struct fetcher *f, struct ft_request *req, const struct fetch_opts *opts,
                  fetch_done_fn done, void *userdata, struct fetch **ret);

/* Abort a transfer; its `done` is not called. */
void fetch_cancel(struct fetch *x);

/* Number of transfers in flight. */
unsigned fetcher_active(const struct fetcher *f);

/*
 * Abort every transfer (their `done` is not called), clean up the multi
 * handle and close the loop handles. The fetcher frees itself once the loop
 * has run the close callbacks, so the caller runs the loop afterwards (as it
 * must anyway before uv_loop_close). Until then fetcher_start fails with
 * -ESHUTDOWN. Allowed inside a `done` callback. Accepts NULL.
 */
void fetcher_free(struct fetcher *f);

#endif
