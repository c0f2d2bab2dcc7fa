/* SPDX-License-Identifier: MIT */
/*
 * fetch.c: the only place where libcurl meets libuv.
 *
 * Shape (STYLE.md section 2, after systemd's CurlGlue): one struct fetcher
 * owns the CURLM*, one uv_timer_t and a list of per-socket contexts, each
 * embedding a uv_poll_t and reached from curl through curl_multi_assign().
 * Every uv handle counts in f->n_handles; the struct is freed by the close
 * callback that brings the count to zero after fetcher_free().
 *
 * Completions are drained inline after every curl_multi_socket_action(), in
 * the timer and poll callbacks, never inside a curl callback. That needs no
 * extra handle, cannot lose a CURLMSG_DONE after a timeout (the pitfall of
 * curl's multi-uv.c) and still keeps user code out of curl's call stack, so
 * `done` may start, cancel or free anything. A transfer never completes
 * inside fetcher_start(): adding a handle only arms the timer.
 */
#include "fetch.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "ft-config.h"
#include "timeutil.h"

#define FETCH_DEFAULT_TIMEOUT_MS 10000L
#define FETCH_MAX_CONNECT_TIMEOUT_MS 5000L
#define FETCH_DEFAULT_MAX_BODY ((size_t)256 * 1024)
/* Nothing we fetch comes near it; it keeps the buffer arithmetic far from overflow. */
#define FETCH_MAX_BODY_LIMIT ((size_t)64 * 1024 * 1024)
/* All header lines of one transfer (interim responses included). */
#define FETCH_MAX_HEADER_BYTES ((size_t)64 * 1024)
#define FETCH_MAX_CONTENT_TYPE 256
#define FETCH_MAX_HEADER_FIELD 64

/*
 * Hosts never reached through a proxy from the environment (https_proxy and
 * friends): loopback, the link-local ranges and the IPv6 addresses of EC2
 * IMDS and the EKS Pod Identity agent. These endpoints exist only on this
 * host's link; a proxy cannot reach them, and must not be handed the
 * credentials they return. curl >= 7.86 reads the CIDR forms.
 */
#define FETCH_NOPROXY_BUILTIN "localhost,127.0.0.0/8,::1,169.254.0.0/16,fe80::/10,fd00:ec2::254,fd00:ec2::23"

struct fetch_sock {
        uv_poll_t poll;             /* poll.data points back here */
        struct fetcher *f;
        curl_socket_t fd;
        int watching;               /* CURL_POLL_IN/OUT bits being watched */
        struct fetch_sock *prev, *next;
};

struct fetcher {
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t timer;           /* timer.data points back here */
        char *ca_file;
        char *noproxy;
        struct fetch *transfers;    /* in flight, not yet completed or cancelled */
        unsigned n_active;
        struct fetch_sock *socks;   /* open poll contexts (not yet closing) */
        unsigned n_handles;         /* uv handles whose close callback is pending or due */
        bool closing;               /* fetcher_free() ran: quiet, free on last close */
        bool broken;                /* the multi handle failed: no new transfers */
};

struct fetch {
        struct fetcher *f;
        struct fetch *prev, *next;
        CURL *easy;
        struct curl_slist *headers; /* header lines may hold tokens: wiped before free */
        struct ft_request *req;     /* owned; the body is sent from here */
        fetch_done_fn done;
        void *userdata;

        char *host;                 /* for messages; never the path or query */
        int port;
        bool plain_http;            /* the URL scheme is http */
        bool allow_http;
        long timeout_ms, connect_timeout_ms;
        size_t max_body;
        bool completing;            /* inside its own `done`: cancel is a no-op */

        char *body;                 /* received body; may hold a token: wiped */
        size_t body_len, body_cap;
        bool body_too_big, headers_too_big, out_of_memory;

        size_t header_bytes;
        bool header_end_seen;       /* the empty line of the current response */
        char *content_type;
        char retry_after[FETCH_MAX_HEADER_FIELD];
        char date[FETCH_MAX_HEADER_FIELD];

        char errbuf[CURL_ERROR_SIZE];
};

static void fetcher_drain(struct fetcher *f);

/* ---- lists ---------------------------------------------------------------- */

static void transfer_link(struct fetcher *f, struct fetch *x)
{
        x->prev = NULL;
        x->next = f->transfers;
        if (f->transfers)
                f->transfers->prev = x;
        f->transfers = x;
        f->n_active++;
}

static void transfer_unlink(struct fetcher *f, struct fetch *x)
{
        if (x->prev)
                x->prev->next = x->next;
        else
                f->transfers = x->next;
        if (x->next)
                x->next->prev = x->prev;
        x->prev = x->next = NULL;
        f->n_active--;
}

static void sock_unlink(struct fetcher *f, struct fetch_sock *s)
{
        if (s->prev)
                s->prev->next = s->next;
        else
                f->socks = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->prev = s->next = NULL;
}

/* ---- lifetime of the fetcher and its handles ------------------------------ */

static void fetcher_destroy(struct fetcher *f)
{
        free(f->ca_file);
        free(f->noproxy);
        free(f);
        /* Pairs with fetch_global_init() in fetcher_new(); curl counts them. */
        curl_global_cleanup();
}

/* Every uv handle of the fetcher ends here; the last one frees the fetcher. */
static void fetcher_handle_closed(struct fetcher *f)
{
        f->n_handles--;
        if (f->n_handles == 0 && f->closing)
                fetcher_destroy(f);
}

static void on_timer_closed(uv_handle_t *h)
{
        fetcher_handle_closed(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
        struct fetch_sock *s = h->data;
        struct fetcher *f = s->f;

        free(s);
        fetcher_handle_closed(f);
}

/* Stop watching and close; the memory goes in on_sock_closed(). */
static void sock_close(struct fetch_sock *s)
{
        sock_unlink(s->f, s);
        (void)uv_poll_stop(&s->poll);   /* cannot fail on an initialised handle */
        uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ---- transfers ------------------------------------------------------------ */

static void slist_free_wiped(struct curl_slist *l)
{
        for (struct curl_slist *n = l; n; n = n->next)
                ft_wipe(n->data, strlen(n->data));
        curl_slist_free_all(l);
}

/* Frees a transfer that is no longer in the multi handle. */
static void fetch_free(struct fetch *x)
{
        if (!x)
                return;
        curl_easy_cleanup(x->easy);
        slist_free_wiped(x->headers);
        ft_request_free(x->req);
        if (x->body) {
                ft_wipe(x->body, x->body_cap);
                free(x->body);
        }
        free(x->content_type);
        free(x->host);
        free(x);
}

/* "host:port", IPv6 in brackets, for messages. */
static void format_host_port(const struct fetch *x, char *out, size_t n)
{
        if (strchr(x->host, ':'))
                snprintf(out, n, "[%s]:%d", x->host, x->port);
        else
                snprintf(out, n, "%s:%d", x->host, x->port);
}

/* "10", "0.3", "2.25": a timeout in seconds without trailing zeros. */
static void format_seconds(long ms, char *out, size_t n)
{
        if (ms % 1000 == 0) {
                snprintf(out, n, "%ld", ms / 1000);
                return;
        }
        snprintf(out, n, "%ld.%03ld", ms / 1000, ms % 1000);
        for (size_t len = strlen(out); len > 0 && out[len - 1] == '0'; len--)
                out[len - 1] = '\0';
}

static int map_connect_failure(struct fetch *x, const char *hp, char *msg, size_t n)
{
        long os_errno = 0;

        if (curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno) != CURLE_OK)
                os_errno = 0;
        switch (os_errno) {
        case ENETUNREACH:
        case EHOSTUNREACH:
                snprintf(msg, n, "no route to %s", hp);
                return -(int)os_errno;
        default:
                snprintf(msg, n, "connection refused by %s", hp);
                return -ECONNREFUSED;
        }
}

static int map_timeout(struct fetch *x, const char *hp, char *msg, size_t n)
{
        curl_off_t connect_us = 0;
        char secs[32];

        if (curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect_us) != CURLE_OK)
                connect_us = 0;
        if (connect_us == 0 && x->connect_timeout_ms < x->timeout_ms) {
                format_seconds(x->connect_timeout_ms, secs, sizeof(secs));
                snprintf(msg, n, "could not connect to %s within %s s", hp, secs);
        } else {
                format_seconds(x->timeout_ms, secs, sizeof(secs));
                snprintf(msg, n, "no answer from %s within %s s", x->host, secs);
        }
        return -ETIMEDOUT;
}

static int map_write_error(struct fetch *x, char *msg, size_t n)
{
        if (x->body_too_big) {
                snprintf(msg, n, "response from %s larger than %zu bytes", x->host, x->max_body);
                return -EFBIG;
        }
        if (x->headers_too_big) {
                snprintf(msg, n, "response headers from %s larger than %zu bytes", x->host,
                         FETCH_MAX_HEADER_BYTES);
                return -EFBIG;
        }
        snprintf(msg, n, "out of memory while receiving the response from %s", x->host);
        return -ENOMEM;
}

/*
 * A transport failure as a negative errno and one plain sentence naming the
 * host (never the path, query or a header value). curl's error buffer is only
 * quoted for TLS failures, where it says what was wrong with the certificate.
 */
static int map_error(struct fetch *x, CURLcode code, char *msg, size_t n)
{
        const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
        char hp[320];

        format_host_port(x, hp, sizeof(hp));
        switch (code) {
        case CURLE_UNSUPPORTED_PROTOCOL:
                if (x->plain_http && !x->allow_http) {
                        snprintf(msg, n, "plain http to %s is not allowed: use https", x->host);
                        return -EPROTONOSUPPORT;
                }
                /* An allowed scheme: curl refused the answer (e.g. HTTP/0.9). */
                snprintf(msg, n, "%s sent a reply that is not HTTP/1.x", hp);
                return -EPROTO;
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_BAD_CONTENT_ENCODING:
                snprintf(msg, n, "%s sent a reply that is not HTTP/1.x", hp);
                return -EPROTO;
        case CURLE_COULDNT_RESOLVE_HOST:
                snprintf(msg, n, "could not resolve host %s", x->host);
                return -EHOSTUNREACH;
        case CURLE_COULDNT_RESOLVE_PROXY:
                snprintf(msg, n, "could not resolve the proxy for %s", x->host);
                return -EHOSTUNREACH;
        case CURLE_COULDNT_CONNECT:
                return map_connect_failure(x, hp, msg, n);
        case CURLE_OPERATION_TIMEDOUT:
                return map_timeout(x, hp, msg, n);
        case CURLE_PEER_FAILED_VERIFICATION:
                /* Covers an untrusted chain and a name mismatch alike. */
                snprintf(msg, n, "TLS certificate of %s not trusted: %s", x->host, detail);
                return -EPERM;
        case CURLE_SSL_CACERT_BADFILE:
                snprintf(msg, n, "could not load the CA file %s to verify %s",
                         x->f->ca_file ? x->f->ca_file : "(system default)", x->host);
                return -ENOENT;
        case CURLE_SSL_CONNECT_ERROR:
                snprintf(msg, n, "TLS handshake with %s failed: %s", hp, detail);
                return -EPROTO;
        case CURLE_FILESIZE_EXCEEDED:
                snprintf(msg, n, "response from %s larger than %zu bytes", x->host, x->max_body);
                return -EFBIG;
        case CURLE_WRITE_ERROR:
                return map_write_error(x, msg, n);
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                snprintf(msg, n, "connection to %s closed before the response was complete", hp);
                return -ECONNRESET;
        case CURLE_OUT_OF_MEMORY:
                snprintf(msg, n, "out of memory while talking to %s", x->host);
                return -ENOMEM;
        default:
                snprintf(msg, n, "transfer from %s failed: %s", hp, curl_easy_strerror(code));
                return -EIO;
        }
}

static void fetch_deliver(struct fetch *x, CURLcode code)
{
        struct ft_response resp = { 0 };
        char msg[1024];
        int r;

        if (code != CURLE_OK) {
                r = map_error(x, code, msg, sizeof(msg));
                x->done(x->userdata, r, msg, NULL);
                return;
        }
        if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp.status) != CURLE_OK || resp.status == 0) {
                snprintf(msg, sizeof(msg), "%s sent no HTTP status", x->host);
                x->done(x->userdata, -EPROTO, msg, NULL);
                return;
        }
        resp.content_type = x->content_type;
        if (x->retry_after[0])
                resp.retry_after = ft_time_retry_after(x->retry_after, (int64_t)time(NULL));
        if (x->date[0] && ft_time_parse_http_date(x->date, strlen(x->date), &resp.date) < 0)
                resp.date = 0;
        resp.body = x->body ? x->body : "";
        resp.body_len = x->body_len;
        x->done(x->userdata, 0, NULL, &resp);
}

/*
 * A transfer finished: take it out of the multi handle and our list first,
 * so `done` sees a consistent fetcher (it may start, cancel or free), then
 * deliver, then free. The CURLMsg that led here is dead after the removal.
 */
static void fetch_complete(struct fetch *x, CURLcode code)
{
        struct fetcher *f = x->f;

        transfer_unlink(f, x);
        /* Cannot fail for a handle that is in this multi; nothing to undo if it did. */
        (void)curl_multi_remove_handle(f->multi, x->easy);
        x->completing = true;
        fetch_deliver(x, code);
        fetch_free(x);
}

/* Every in-flight transfer fails at once: the multi handle is unusable. */
static void fetcher_fail_all(struct fetcher *f, CURLMcode mc)
{
        char msg[256];

        f->broken = true;
        snprintf(msg, sizeof(msg), "the HTTP engine failed: %s", curl_multi_strerror(mc));
        while (f->transfers && !f->closing) {
                struct fetch *x = f->transfers;

                transfer_unlink(f, x);
                (void)curl_multi_remove_handle(f->multi, x->easy);
                x->completing = true;
                x->done(x->userdata, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, msg, NULL);
                fetch_free(x);
        }
}

/*
 * Reap every finished transfer. `done` may call fetch_cancel() on another
 * transfer (curl_multi_remove_handle() drops its queued message too),
 * fetcher_start() (a new transfer cannot be done yet) or fetcher_free()
 * (which sets closing: stop before touching the freed multi handle).
 */
static void fetcher_drain(struct fetcher *f)
{
        CURLMsg *m;
        int left;

        while (!f->closing && (m = curl_multi_info_read(f->multi, &left))) {
                CURL *easy = m->easy_handle;
                CURLcode code = m->data.result;
                char *priv = NULL;
                struct fetch *x;

                if (m->msg != CURLMSG_DONE)
                        continue;
                if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
                        continue;
                x = (void *)priv;
                if (x->easy != easy)
                        continue;
                fetch_complete(x, code);
        }
}

static void fetcher_action(struct fetcher *f, curl_socket_t fd, int ev_bitmask)
{
        int running;
        CURLMcode mc;

        if (f->closing)
                return;
        mc = curl_multi_socket_action(f->multi, fd, ev_bitmask, &running);
        fetcher_drain(f);
        if (mc != CURLM_OK)
                fetcher_fail_all(f, mc);
}

/* ---- curl -> libuv -------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
        fetcher_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int poll_events(int curl_what)
{
        return (curl_what & CURL_POLL_IN ? UV_READABLE : 0) | (curl_what & CURL_POLL_OUT ? UV_WRITABLE : 0);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
        struct fetch_sock *s = p->data;
        struct fetcher *f = s->f;
        int flags = 0;

        if (status < 0) {
                /*
                 * libuv reports POLLERR as an error status. Tell curl, and
                 * also let it read or write in the directions it asked for:
                 * with CURL_CSELECT_ERR alone it fails the transfer outright,
                 * throwing away a complete response that arrived just before
                 * a reset.
                 */
                flags = CURL_CSELECT_ERR;
                if (s->watching & CURL_POLL_IN)
                        flags |= CURL_CSELECT_IN;
                if (s->watching & CURL_POLL_OUT)
                        flags |= CURL_CSELECT_OUT;
        } else {
                if (events & UV_READABLE)
                        flags |= CURL_CSELECT_IN;
                if (events & UV_WRITABLE)
                        flags |= CURL_CSELECT_OUT;
        }
        fetcher_action(f, s->fd, flags);
        /*
         * `s` may be closing now, but its memory lives until its close
         * callback, which runs later. libuv stopped the handle on the error;
         * if curl still wants the socket it will not say so again (nothing
         * changed for it), so watch again rather than stall until the
         * timeout: the next error report lets curl read the error itself.
         */
        if (status < 0 && !f->closing && !uv_is_closing((uv_handle_t *)&s->poll) &&
            !uv_is_active((uv_handle_t *)&s->poll) && s->watching &&
            uv_poll_start(&s->poll, poll_events(s->watching), on_poll) < 0)
                fetcher_fail_all(f, CURLM_INTERNAL_ERROR);
}

static struct fetch_sock *sock_open(struct fetcher *f, curl_socket_t fd)
{
        struct fetch_sock *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        /* On failure the handle was never registered with the loop: plain free. */
        if (uv_poll_init_socket(f->loop, &s->poll, fd) < 0) {
                free(s);
                return NULL;
        }
        s->poll.data = s;
        s->f = f;
        s->fd = fd;
        s->next = f->socks;
        if (f->socks)
                f->socks->prev = s;
        f->socks = s;
        f->n_handles++;
        if (curl_multi_assign(f->multi, fd, s) != CURLM_OK) {
                sock_close(s);
                return NULL;
        }
        return s;
}

/*
 * CURLMOPT_SOCKETFUNCTION. The context lives in curl's socketp, never in a
 * table keyed by fd: curl may REMOVE an fd and hand the same number back
 * later. Returning -1 makes curl fail every transfer of the multi handle.
 */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        struct fetcher *f = userp;
        struct fetch_sock *s = socketp;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        sock_close(s);
                        /*
                         * curl forgets the socket itself right after this
                         * call; the assignment fails harmlessly inside
                         * curl_multi_cleanup(), which already invalidated
                         * the multi handle.
                         */
                        (void)curl_multi_assign(f->multi, fd, NULL);
                }
                return 0;
        }
        /* Shutting down: no new watchers, whatever curl still asks for. */
        if (f->closing)
                return 0;
        if (!s) {
                s = sock_open(f, fd);
                if (!s)
                        return -1;
        }
        s->watching = what & CURL_POLL_INOUT;
        if (uv_poll_start(&s->poll, poll_events(what), on_poll) < 0)
                return -1;
        return 0;
}

/*
 * CURLMOPT_TIMERFUNCTION: one non-repeating timer, each call replacing the
 * previous; -1 deletes it. A 0 ms timer is fine: libuv runs it from the
 * loop, never from inside this callback.
 */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        struct fetcher *f = userp;

        if (timeout_ms < 0 || f->closing) {
                (void)uv_timer_stop(&f->timer);   /* cannot fail */
                return 0;
        }
        if (uv_timer_start(&f->timer, on_timer, (uint64_t)timeout_ms, 0) < 0)
                return -1;
        return 0;
}

/* ---- the easy-handle factory ---------------------------------------------- */

/*
 * CURLOPT_WRITEFUNCTION: append to a buffer that never grows past max_body
 * (curl's dynbuf "toobig" idea). Returning less than offered makes curl stop
 * with CURLE_WRITE_ERROR; the flags say why. Growing copies and wipes the old
 * buffer, since the body may be a token.
 */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
        struct fetch *x = userp;
        size_t n = size * nmemb;   /* size is always 1 */

        if (n > x->max_body - x->body_len) {
                x->body_too_big = true;
                return 0;
        }
        if (x->body_len + n + 1 > x->body_cap) {
                size_t cap = x->body_cap ? x->body_cap : 4096;
                char *p;

                while (cap < x->body_len + n + 1)
                        cap *= 2;
                if (cap > x->max_body + 1)
                        cap = x->max_body + 1;
                p = malloc(cap);
                if (!p) {
                        x->out_of_memory = true;
                        return 0;
                }
                if (x->body) {
                        memcpy(p, x->body, x->body_len);
                        ft_wipe(x->body, x->body_cap);
                        free(x->body);
                }
                x->body = p;
                x->body_cap = cap;
        }
        memcpy(x->body + x->body_len, data, n);
        x->body_len += n;
        x->body[x->body_len] = '\0';
        return n;
}

static void header_reset(struct fetch *x)
{
        free(x->content_type);
        x->content_type = NULL;
        x->retry_after[0] = '\0';
        x->date[0] = '\0';
        x->header_end_seen = false;
}

/* Copies a value into a fixed field; a value that does not fit is dropped. */
static void header_store(char *field, size_t size, const char *v, size_t len)
{
        if (len >= size) {
                field[0] = '\0';
                return;
        }
        memcpy(field, v, len);
        field[len] = '\0';
}

static bool header_is(const char *line, size_t name_len, const char *name)
{
        return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/*
 * CURLOPT_HEADERFUNCTION: one complete header line per call (status line and
 * the final empty line included, CRLF kept). Only the final response counts:
 * a status line (after 100 Continue, or a proxy's CONNECT answer) starts
 * afresh, and trailers after the empty line are ignored.
 */
static size_t on_header(char *line, size_t size, size_t nitems, void *userp)
{
        struct fetch *x = userp;
        size_t n = size * nitems, len = n, name_len;
        const char *colon, *v;

        if (n > FETCH_MAX_HEADER_BYTES - x->header_bytes) {
                x->headers_too_big = true;
                return 0;
        }
        x->header_bytes += n;
        if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                header_reset(x);
                return n;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
        if (len == 0) {
                x->header_end_seen = true;
                return n;
        }
        colon = memchr(line, ':', len);
        if (x->header_end_seen || !colon)
                return n;
        name_len = (size_t)(colon - line);
        v = colon + 1;
        while (v < line + len && (*v == ' ' || *v == '\t'))
                v++;
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
                len--;
        len = v < line + len ? (size_t)(line + len - v) : 0;

        if (header_is(line, name_len, "Content-Type") && len < FETCH_MAX_CONTENT_TYPE) {
                free(x->content_type);
                x->content_type = ft_strndup(v, len);
                if (!x->content_type) {
                        x->out_of_memory = true;
                        return 0;
                }
        } else if (header_is(line, name_len, "Retry-After")) {
                header_store(x->retry_after, sizeof(x->retry_after), v, len);
        } else if (header_is(line, name_len, "Date")) {
                header_store(x->date, sizeof(x->date), v, len);
        }
        return n;
}

static bool request_has_header(const struct ft_request *req, const char *name)
{
        return ft_request_header(req, name) != NULL;
}

static int headers_append(struct curl_slist **list, const char *line)
{
        struct curl_slist *n = curl_slist_append(*list, line);

        if (!n)
                return -ENOMEM;
        *list = n;
        return 0;
}

/*
 * "Name: value" for each request header, then the suppressions: an empty
 * "Expect:" stops curl's automatic 100-continue on large bodies, and an empty
 * "Content-Type:" stops its form-urlencoded default on bodies the caller did
 * not type (the IMDS token PUT carries none). A header the caller set always
 * replaces curl's own (Host, Accept, User-Agent, Content-Length). curl's
 * "Name;" form sends a header with an empty value.
 */
static int fetch_build_headers(struct fetch *x, bool has_body)
{
        const struct ft_request *req = x->req;
        int r = 0;

        for (size_t i = 0; i < req->n_headers && r == 0; i++) {
                const struct ft_header *h = &req->headers[i];
                size_t nlen = strlen(h->name), vlen = strlen(h->value);
                char *line = malloc(nlen + vlen + 3);

                if (!line)
                        return -ENOMEM;
                if (vlen)
                        snprintf(line, nlen + vlen + 3, "%s: %s", h->name, h->value);
                else
                        snprintf(line, nlen + vlen + 3, "%s;", h->name);
                r = headers_append(&x->headers, line);
                ft_wipe(line, nlen + vlen + 2);
                free(line);
        }
        if (r == 0 && !request_has_header(req, "Expect"))
                r = headers_append(&x->headers, "Expect:");
        if (r == 0 && has_body && !request_has_header(req, "Content-Type"))
                r = headers_append(&x->headers, "Content-Type:");
        return r;
}

/* Protocol policy, TLS and limits: the same for every transfer. */
static int fetch_setup_policy(struct fetch *x)
{
        CURL *e = x->easy;
        const char *protocols = x->allow_http ? "http,https" : "https";
        struct fetcher *f = x->f;

        if (curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, protocols) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOPROXY, f->noproxy) != CURLE_OK ||
            /*
             * HTTP/1.1 only: a handful of small requests an hour gain
             * nothing from multiplexing, and the bytes on the wire stay the
             * ones lib/ built and signed (header names, Host) and the ones
             * the SDK captures show.
             */
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK ||
            /* No decompression: a small compressed body must not become a large one. */
            curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->connect_timeout_ms) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 60L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 30L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, "fedtokend/" FT_VERSION) != CURLE_OK)
                return -EIO;
        /*
         * A configured CA file replaces the system store entirely, so the
         * default CA directory is switched off with it.
         */
        if (f->ca_file && (curl_easy_setopt(e, CURLOPT_CAINFO, f->ca_file) != CURLE_OK ||
                           curl_easy_setopt(e, CURLOPT_CAPATH, NULL) != CURLE_OK))
                return -EIO;
        return 0;
}

static int fetch_setup_request(struct fetch *x)
{
        CURL *e = x->easy;
        struct ft_request *req = x->req;
        bool is_get = strcmp(req->method, "GET") == 0;
        bool is_head = strcmp(req->method, "HEAD") == 0;
        bool has_body = req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
                        strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;
        int r;

        if (curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK)
                return -EIO;
        /* curl would turn a GET with a body into a POST: refuse rather than guess. */
        if ((is_get || is_head) && req->body_len > 0)
                return -EINVAL;
        if (is_head && curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK)
                return -EIO;
        /*
         * The body is sent from the request itself (no CURLOPT_COPYPOSTFIELDS:
         * curl would free its copy without wiping it). With a size, even 0,
         * curl sends Content-Length, which a bodiless PUT such as the IMDS
         * token request needs.
         */
        if (has_body && (curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) != CURLE_OK ||
                         curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "") != CURLE_OK))
                return -EIO;
        if (!is_get && !is_head && strcmp(req->method, "POST") != 0 &&
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method) != CURLE_OK)
                return -EIO;
        r = fetch_build_headers(x, has_body);
        if (r < 0)
                return r;
        if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK)
                return -EIO;
        return 0;
}

/* A method is an upper-case token; anything else would break the request line. */
static bool method_valid(const char *m)
{
        size_t n = strlen(m);

        if (n == 0 || n > 16)
                return false;
        for (size_t i = 0; i < n; i++)
                if (m[i] < 'A' || m[i] > 'Z')
                        return false;
        return true;
}

/*
 * The request comes from lib/, but its fields are public: refuse anything
 * that would let a value escape into another header or the request line.
 */
static int request_validate(const struct ft_request *req)
{
        if (!req->method || !req->url || !method_valid(req->method) || req->n_headers > FT_MAX_HEADERS)
                return -EINVAL;
        for (const char *p = req->url; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f)
                        return -EINVAL;
        for (size_t i = 0; i < req->n_headers; i++) {
                const struct ft_header *h = &req->headers[i];

                if (!h->name || !h->value || !h->name[0] || strpbrk(h->name, "\r\n: \t;") ||
                    strpbrk(h->value, "\r\n"))
                        return -EINVAL;
        }
        return 0;
}

static int fetch_apply_opts(struct fetch *x, const struct fetch_opts *opts)
{
        static const struct fetch_opts defaults = { 0 };

        if (!opts)
                opts = &defaults;
        if (opts->timeout_ms < 0 || opts->connect_timeout_ms < 0 || opts->max_body > FETCH_MAX_BODY_LIMIT)
                return -EINVAL;
        x->allow_http = opts->allow_http;
        x->timeout_ms = opts->timeout_ms ? opts->timeout_ms : FETCH_DEFAULT_TIMEOUT_MS;
        x->connect_timeout_ms = opts->connect_timeout_ms;
        if (x->connect_timeout_ms == 0)
                x->connect_timeout_ms = FETCH_MAX_CONNECT_TIMEOUT_MS;
        if (x->connect_timeout_ms > x->timeout_ms)
                x->connect_timeout_ms = x->timeout_ms;
        x->max_body = opts->max_body ? opts->max_body : FETCH_DEFAULT_MAX_BODY;
        return 0;
}

static int fetch_parse_url(struct fetch *x)
{
        struct ft_url u;

        if (ft_url_split(x->req->url, &u) < 0)
                return -EINVAL;
        x->host = ft_strndup(u.host, u.host_len);
        if (!x->host)
                return -ENOMEM;
        x->plain_http = u.scheme_len == 4 && strncasecmp(u.scheme, "http", 4) == 0;
        x->port = u.port ? u.port : x->plain_http ? 80 : 443;
        return 0;
}

/* Builds a transfer ready to be added; owns `req` from the first line. */
static int fetch_new(struct fetcher *f, struct ft_request *req, const struct fetch_opts *opts,
                     fetch_done_fn done, void *userdata, struct fetch **ret)
{
        struct fetch *x = calloc(1, sizeof(*x));
        int r;

        if (!x) {
                ft_request_free(req);
                return -ENOMEM;
        }
        x->f = f;
        x->req = req;
        x->done = done;
        x->userdata = userdata;
        r = request_validate(req);
        if (r == 0)
                r = fetch_apply_opts(x, opts);
        if (r == 0)
                r = fetch_parse_url(x);
        if (r == 0) {
                x->easy = curl_easy_init();
                r = x->easy ? 0 : -ENOMEM;
        }
        if (r == 0)
                r = fetch_setup_policy(x);
        if (r == 0)
                r = fetch_setup_request(x);
        if (r < 0) {
                fetch_free(x);
                return r;
        }
        *ret = x;
        return 0;
}

/* ---- public API ----------------------------------------------------------- */

/*
 * The proxy bypass list: ours plus the operator's no_proxy, since setting
 * CURLOPT_NOPROXY makes curl ignore the environment variable. curl honours a
 * lone "*" only as the whole list.
 */
static char *noproxy_list(void)
{
        const char *env = secure_getenv("no_proxy");
        char *s;

        if (!env || !*env)
                env = secure_getenv("NO_PROXY");
        if (!env || !*env)
                return strdup(FETCH_NOPROXY_BUILTIN);
        if (strcmp(env, "*") == 0)
                return strdup(env);
        if (asprintf(&s, "%s,%s", FETCH_NOPROXY_BUILTIN, env) < 0)
                return NULL;
        return s;
}

/* ---- libcurl's allocator: every freed block wiped ------------------------ */

static void wiping_free(void *p)
{
        if (!p)
                return;
        ft_wipe(p, malloc_usable_size(p));
        free(p);
}

/* realloc may move the block and free the old one unwiped: move it ourselves. */
static void *wiping_realloc(void *p, size_t n)
{
        size_t have;
        void *q;

        if (!p)
                return malloc(n);
        if (n == 0) {
                wiping_free(p);
                return NULL;
        }
        have = malloc_usable_size(p);
        if (n <= have)
                return p;
        q = malloc(n);
        if (!q)
                return NULL;
        memcpy(q, p, have < n ? have : n);
        wiping_free(p);
        return q;
}

/*
 * OpenSSL, libcurl's TLS backend, gets the same: its record buffers hold
 * each decrypted response until they are freed with the connection.
 */
static void *ossl_malloc(size_t n, const char *file, int line)
{
        (void)file;
        (void)line;
        return malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
        (void)file;
        (void)line;
        return wiping_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
        (void)file;
        (void)line;
        wiping_free(p);
}

int fetch_global_init(void)
{
        /* Takes effect only before OpenSSL's first allocation (main calls this early); later calls are no-ops. */
        (void)CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
        if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup, calloc) != CURLE_OK)
                return -EIO;
        return 0;
}

int fetcher_new(uv_loop_t *loop, const char *ca_file, struct fetcher **ret)
{
        struct fetcher *f;

        if (!loop || !ret)
                return -EINVAL;
        /*
         * Reference-counted by curl; the daemon is still single-threaded
         * when it builds its fetcher. fetcher_destroy() drops the reference.
         */
        if (fetch_global_init() < 0)
                return -EIO;
        f = calloc(1, sizeof(*f));
        if (!f) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        f->loop = loop;
        f->noproxy = noproxy_list();
        f->ca_file = ca_file ? strdup(ca_file) : NULL;
        f->multi = curl_multi_init();
        if (!f->noproxy || (ca_file && !f->ca_file) || !f->multi ||
            curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK ||
            /*
             * A handful of upstreams (IMDS, STS, Entra, Google): keeping a few
             * connections for reuse is enough, and bounds the memory cached
             * TLS connections hold.
             */
            curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, 6L) != CURLM_OK ||
            uv_timer_init(loop, &f->timer) < 0) {
                /* No uv handle exists yet: everything is freed right here. */
                (void)curl_multi_cleanup(f->multi);
                fetcher_destroy(f);
                return -ENOMEM;
        }
        f->timer.data = f;
        f->n_handles = 1;
        *ret = f;
        return 0;
}

int fetcher_start(struct fetcher *f, struct ft_request *req, const struct fetch_opts *opts,
                  fetch_done_fn done, void *userdata, struct fetch **ret)
{
        struct fetch *x;
        CURLMcode mc;
        int r;

        if (!f || !req || !done) {
                ft_request_free(req);
                return -EINVAL;
        }
        if (f->closing || f->broken) {
                ft_request_free(req);
                return f->closing ? -ESHUTDOWN : -EIO;
        }
        r = fetch_new(f, req, opts, done, userdata, &x);
        if (r < 0)
                return r;
        /*
         * Adding only arms the timer (curl's kick-start is a 0 ms timeout),
         * so `done` never runs before this function returns.
         */
        transfer_link(f, x);
        mc = curl_multi_add_handle(f->multi, x->easy);
        if (mc != CURLM_OK) {
                transfer_unlink(f, x);
                fetch_free(x);
                return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        }
        if (ret)
                *ret = x;
        return 0;
}

void fetch_cancel(struct fetch *x)
{
        if (!x || x->completing)
                return;
        transfer_unlink(x->f, x);
        /* May call on_curl_socket(REMOVE) and on_curl_timer(); both are fine here. */
        (void)curl_multi_remove_handle(x->f->multi, x->easy);
        fetch_free(x);
}

unsigned fetcher_active(const struct fetcher *f)
{
        return f ? f->n_active : 0;
}

/*
 * Order matters: transfers out first (no `done`), then curl_multi_cleanup()
 * while every socket context is still intact (it may REMOVE sockets of cached
 * connections), then whatever polls are left, then the timer. The last close
 * callback frees the fetcher. Safe from inside a `done` callback: the drain
 * loop checks `closing` before it touches the multi handle again.
 */
void fetcher_free(struct fetcher *f)
{
        if (!f || f->closing)
                return;
        f->closing = true;
        while (f->transfers) {
                struct fetch *x = f->transfers;

                transfer_unlink(f, x);
                (void)curl_multi_remove_handle(f->multi, x->easy);
                fetch_free(x);
        }
        (void)curl_multi_cleanup(f->multi);   /* fails only for a bad handle */
        f->multi = NULL;
        while (f->socks)
                sock_close(f->socks);
        (void)uv_timer_stop(&f->timer);
        uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}
