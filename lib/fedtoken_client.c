/* SPDX-License-Identifier: MIT */
/*
 * fedtoken_client.c: libfedtoken, the one-call client of fedtokend's socket
 * API (see fedtoken_client.h).
 *
 * Unlike the rest of lib/ this file does I/O: it is the whole of a shared
 * library that other programs load, so it depends on libc alone (not on
 * ft.h or any other module), keeps no global state and exports only the
 * functions of its header. Every call is one connection: connect, send one
 * request with "Connection: close", read one response under a size cap and
 * an overall deadline, close.
 *
 * fedtokend answers with Content-Length (or closes the connection after the
 * body); a chunked answer is refused as a protocol error rather than decoded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fedtoken_client.h"

/* The build hides every symbol (-fvisibility=hidden); the API is marked. */
#define FEDTOKEN_EXPORT __attribute__((visibility("default")))

/* A whole response (head and body); a token or the status JSON is far smaller. */
#define RESPONSE_MAX (1024 * 1024)
/* The status line and headers. */
#define HEAD_MAX (16 * 1024)
#define NAME_MAX_LEN 64
#define TARGET_MAX_LEN 2048
#define ACCEPT_MAX_LEN 256
/* fedtoken_request: long enough for ?wait=30 plus fedtokend's own answer. */
#define REQUEST_TIMEOUT_MS (35 * 1000)
/* fedtoken_get*: fedtokend answers from memory, so beyond any wait this is generous. */
#define GET_MARGIN_MS (5 * 1000)
/* How often to retry connect() while the daemon's listen backlog is full. */
#define BACKLOG_RETRY_MS 10

struct response {
        int status;
        long long content_length;  /* -1: none, read to end of stream */
        bool text_plain;
        size_t head_len;           /* bytes up to and including the blank line */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        if (!err || errlen == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
}

static void wipe(void *p, size_t len)
{
        if (p && len)
                explicit_bzero(p, len);
}

static void free_secret(char *p, size_t len)
{
        wipe(p, len);
        free(p);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the response parser (pure: bytes in, verdict out) ------------------- */

static bool is_tchar(unsigned char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* `value` (of `len` bytes, surrounding blanks already trimmed) as a decimal length. */
static int parse_length(const char *value, size_t len, long long *ret)
{
        long long n = 0;

        if (len == 0 || len > 10)
                return -1;
        for (size_t i = 0; i < len; i++) {
                if (value[i] < '0' || value[i] > '9')
                        return -1;
                n = n * 10 + (value[i] - '0');
        }
        *ret = n;
        return 0;
}

static bool is_text_plain(const char *value, size_t len)
{
        static const char want[] = "text/plain";
        size_t n = sizeof(want) - 1;

        return len >= n && strncasecmp(value, want, n) == 0 &&
               (len == n || value[n] == ';' || value[n] == ' ' || value[n] == '\t');
}

/*
 * The status line and headers of `head` (exactly `len` bytes, ending in the
 * CRLF CRLF). Strict where it matters for framing: one Content-Length, no
 * Transfer-Encoding, no folded lines.
 */
static int parse_head(const char *head, size_t len, struct response *ret, const char **ret_why)
{
        struct response r = { .content_length = -1 };
        const char *p = head, *end = head + len - 2, *eol;
        int status;

        /* "HTTP/1.x SP DDD [SP reason]" */
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ' ||
            p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
            (eol - p > 12 && p[12] != ' ')) {
                *ret_why = "fedtokend's answer does not start with an HTTP/1.x status line";
                return FEDTOKEN_E_PROTOCOL;
        }
        status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        if (status < 200) {
                *ret_why = "fedtokend sent an interim (1xx) answer to a plain GET";
                return FEDTOKEN_E_PROTOCOL;
        }
        r.status = status;

        for (p = eol + 2; p < end; p = eol + 2) {
                const char *colon, *v, *vend;
                size_t name_len;

                eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                colon = eol ? memchr(p, ':', (size_t)(eol - p)) : NULL;
                if (!colon || colon == p) {
                        *ret_why = "fedtokend sent a malformed header line";
                        return FEDTOKEN_E_PROTOCOL;
                }
                name_len = (size_t)(colon - p);
                for (size_t i = 0; i < name_len; i++)
                        if (!is_tchar((unsigned char)p[i])) {
                                *ret_why = "fedtokend sent a malformed header name";
                                return FEDTOKEN_E_PROTOCOL;
                        }
                for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
                        ;
                for (vend = eol; vend > v && (vend[-1] == ' ' || vend[-1] == '\t'); vend--)
                        ;
                if (name_len == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
                        long long n;

                        if (parse_length(v, (size_t)(vend - v), &n) < 0 ||
                            (r.content_length >= 0 && r.content_length != n)) {
                                *ret_why = "fedtokend sent an invalid Content-Length";
                                return FEDTOKEN_E_PROTOCOL;
                        }
                        r.content_length = n;
                } else if (name_len == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
                        *ret_why = "fedtokend sent a Transfer-Encoding this client does not decode";
                        return FEDTOKEN_E_PROTOCOL;
                } else if (name_len == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
                        r.text_plain = is_text_plain(v, (size_t)(vend - v));
                }
        }
        r.head_len = len;
        *ret = r;
        return 0;
}

/*
 * Whether the `len` bytes received so far (`eof`: and no more will come) make
 * a whole response: 1 yes (*resp and *ret_body_len set), 0 read more, or a
 * FEDTOKEN_E_* with *ret_why. *resp carries the parsed head between calls
 * (head_len 0 until then), so the head is parsed once.
 */
static int response_check(const char *buf, size_t len, bool eof, struct response *resp, size_t *ret_body_len,
                          const char **ret_why)
{
        size_t have;

        if (resp->head_len == 0) {
                const char *blank;
                int r;

                /* Refuse a stranger at once rather than wait for it to hang up. */
                if (memcmp(buf, "HTTP/", len < 5 ? len : 5) != 0) {
                        *ret_why = "fedtokend's answer is not HTTP";
                        return FEDTOKEN_E_PROTOCOL;
                }
                blank = memmem(buf, len < HEAD_MAX ? len : HEAD_MAX, "\r\n\r\n", 4);
                if (!blank) {
                        if (len >= HEAD_MAX) {
                                *ret_why = "fedtokend's answer headers are over 16 KiB";
                                return FEDTOKEN_E_PROTOCOL;
                        }
                        if (!eof)
                                return 0;
                        *ret_why = len == 0 ? "fedtokend closed the connection without answering"
                                            : "fedtokend closed the connection in the middle of its answer";
                        return FEDTOKEN_E_PROTOCOL;
                }
                r = parse_head(buf, (size_t)(blank - buf) + 4, resp, ret_why);
                if (r < 0)
                        return r;
                if (resp->content_length > (long long)(RESPONSE_MAX - resp->head_len)) {
                        *ret_why = "fedtokend's answer is over 1 MiB";
                        return FEDTOKEN_E_PROTOCOL;
                }
        }
        have = len - resp->head_len;
        if (resp->content_length >= 0) {
                if (have >= (size_t)resp->content_length) {
                        *ret_body_len = (size_t)resp->content_length;
                        return 1;
                }
                if (!eof)
                        return 0;
                *ret_why = "fedtokend closed the connection in the middle of its answer";
                return FEDTOKEN_E_PROTOCOL;
        }
        if (!eof)
                return 0;
        *ret_body_len = have;
        return 1;
}

/* ---- the error body: {"error": "...", "detail": "..."} ------------------- */

/*
 * Decoded text goes out one whole character at a time: control characters
 * (C0, DEL, C1) become a space or '?', so that an explanation is safe to print
 * on a terminal, and a truncated one never ends inside a UTF-8 sequence.
 */
struct text_out {
        char *p;      /* NULL: decode and discard */
        size_t size;
        size_t len;
        bool full;    /* once a character did not fit, nothing more is added */
};

static void put_codepoint(struct text_out *t, uint32_t cp)
{
        char tmp[4];
        size_t n;

        if (cp < 0x20) {
                tmp[0] = ' ';
                n = 1;
        } else if (cp < 0x7f) {
                tmp[0] = (char)cp;
                n = 1;
        } else if (cp < 0xa0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
                tmp[0] = '?';
                n = 1;
        } else if (cp < 0x800) {
                tmp[0] = (char)(0xc0 | (cp >> 6));
                tmp[1] = (char)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                tmp[0] = (char)(0xe0 | (cp >> 12));
                tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                tmp[2] = (char)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                tmp[0] = (char)(0xf0 | (cp >> 18));
                tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                tmp[3] = (char)(0x80 | (cp & 0x3f));
                n = 4;
        }
        if (!t->p || t->full)
                return;
        if (t->len + n >= t->size) {
                t->full = true;
                return;
        }
        memcpy(t->p + t->len, tmp, n);
        t->len += n;
}

/* One UTF-8 character at s[*pos] (a byte >= 0x80); an invalid one is U+FFFD and one byte long. */
static uint32_t utf8_decode(const char *s, size_t len, size_t *pos)
{
        const unsigned char *u = (const unsigned char *)s + *pos;
        size_t left = len - *pos, n;
        uint32_t cp, min;

        if (u[0] >= 0xc2 && u[0] <= 0xdf) {
                n = 2, cp = u[0] & 0x1f, min = 0x80;
        } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
                n = 3, cp = u[0] & 0x0f, min = 0x800;
        } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
                n = 4, cp = u[0] & 0x07, min = 0x10000;
        } else {
                (*pos)++;
                return 0xfffd;
        }
        if (left < n) {
                (*pos)++;
                return 0xfffd;
        }
        for (size_t k = 1; k < n; k++) {
                if ((u[k] & 0xc0) != 0x80) {
                        (*pos)++;
                        return 0xfffd;
                }
                cp = cp << 6 | (u[k] & 0x3f);
        }
        if (cp < min) {
                (*pos)++;
                return 0xfffd;
        }
        *pos += n;
        return cp;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * The JSON string starting at s[*pos] (the opening quote), decoded into `out`
 * (NULL: just skip it) and truncated to fit `outlen`; *pos moves past the
 * closing quote. \u escapes are taken one by one (a surrogate pair gives two
 * '?'): explanations are text, not data.
 */
static bool json_string(const char *s, size_t len, size_t *pos, char *out, size_t outlen)
{
        struct text_out t = { .p = out, .size = outlen };
        size_t i = *pos + 1;

        if (*pos >= len || s[*pos] != '"' || (out && outlen == 0))
                return false;
        while (i < len && s[i] != '"') {
                unsigned char c = (unsigned char)s[i];
                uint32_t cp;

                if (c >= 0x80) {
                        put_codepoint(&t, utf8_decode(s, len, &i));
                        continue;
                }
                i++;
                if (c != '\\') {
                        put_codepoint(&t, c);
                        continue;
                }
                if (i >= len)
                        return false;
                c = (unsigned char)s[i++];
                switch (c) {
                case 'u':
                        if (len - i < 4)
                                return false;
                        cp = 0;
                        for (int k = 0; k < 4; k++) {
                                int h = hexval(s[i + k]);
                                if (h < 0)
                                        return false;
                                cp = cp << 4 | (uint32_t)h;
                        }
                        i += 4;
                        break;
                case 'b': case 'f': case 'n': case 'r': case 't':
                        cp = ' ';
                        break;
                case '"': case '\\': case '/':
                        cp = c;
                        break;
                default:
                        return false;
                }
                put_codepoint(&t, cp);
        }
        if (i >= len)
                return false;
        if (out)
                out[t.len] = '\0';
        *pos = i + 1;
        return true;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
                i++;
        return i;
}

/* Moves past one JSON value that is not a string (number, literal, object, array). */
static bool json_skip_value(const char *s, size_t len, size_t *pos)
{
        size_t i = *pos, depth = 0;

        while (i < len) {
                char c = s[i];

                if (c == '"') {
                        if (!json_string(s, len, &i, NULL, 0))
                                return false;
                        continue;
                }
                if (c == '{' || c == '[') {
                        depth++;
                } else if (c == '}' || c == ']') {
                        if (depth == 0)
                                break;
                        depth--;
                } else if (c == ',' && depth == 0) {
                        break;
                }
                i++;
        }
        *pos = i;
        return i < len && depth == 0;
}

/*
 * The string value of `key` in the top-level JSON object `s`, decoded into
 * `out`. Not a validating parser: enough to read fedtokend's error body
 * without a JSON library, and bounded by `len` on any input.
 */
static bool json_top_string(const char *s, size_t len, const char *key, char *out, size_t outlen)
{
        size_t i = skip_ws(s, len, 0);

        if (i >= len || s[i] != '{')
                return false;
        i = skip_ws(s, len, i + 1);
        while (i < len && s[i] == '"') {
                char name[32];
                bool match;

                /* A key too long for `name` is cut short, far longer than any `key` sought: no false match. */
                if (!json_string(s, len, &i, name, sizeof(name)))
                        return false;
                match = strcmp(name, key) == 0;
                i = skip_ws(s, len, i);
                if (i >= len || s[i] != ':')
                        return false;
                i = skip_ws(s, len, i + 1);
                if (i < len && s[i] == '"') {
                        if (match)
                                return json_string(s, len, &i, out, outlen);
                        if (!json_string(s, len, &i, NULL, 0))
                                return false;
                } else if (!json_skip_value(s, len, &i)) {
                        return false;
                }
                i = skip_ws(s, len, i);
                if (i >= len || s[i] != ',')
                        return false;
                i = skip_ws(s, len, i + 1);
        }
        return false;
}

/* ---- the connection ------------------------------------------------------ */

/* 0 when `fd` is ready for `events`, FEDTOKEN_E_TIMEOUT when `deadline` passed. */
static int wait_fd(int fd, short events, int64_t deadline)
{
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = events };
                int64_t left = deadline - now_ms();
                int r;

                if (left <= 0)
                        return FEDTOKEN_E_TIMEOUT;
                r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
                if (r > 0)
                        return 0;
                if (r < 0 && errno != EINTR && errno != EAGAIN)
                        return FEDTOKEN_E_CONNECT;
        }
}

static int connect_socket(const char *path, int64_t deadline, char *err, size_t errlen)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(path);
        socklen_t sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        char ebuf[128];
        int fd, e;

        if (n == 0 || n >= sizeof(sa.sun_path)) {
                set_err(err, errlen, "the socket path is %s (%zu bytes; at most %zu)", n ? "too long" : "empty", n,
                        sizeof(sa.sun_path) - 1);
                return FEDTOKEN_E_INVALID;
        }
        memcpy(sa.sun_path, path, n);

        /* Non-blocking, so that connect, send and recv all honour the one deadline. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                e = errno;
                set_err(err, errlen, "cannot create a socket for %s: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
                return e == ENOMEM || e == ENOBUFS ? FEDTOKEN_E_NOMEM : FEDTOKEN_E_CONNECT;
        }
        for (;;) {
                if (connect(fd, (struct sockaddr *)&sa, sa_len) == 0)
                        return fd;
                e = errno;
                if (e == EINTR)
                        continue;
                if (e == EAGAIN) {
                        /*
                         * A Unix socket says EAGAIN when the listen backlog is
                         * full; poll() cannot tell when it drains, so retry.
                         */
                        if (now_ms() >= deadline) {
                                e = ETIMEDOUT;
                                break;
                        }
                        poll(NULL, 0, BACKLOG_RETRY_MS);
                        continue;
                }
                if (e == EINPROGRESS || e == EALREADY) {
                        socklen_t sl = sizeof(e);

                        if (wait_fd(fd, POLLOUT, deadline) < 0) {
                                e = ETIMEDOUT;
                                break;
                        }
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
                                e = errno;
                        if (e == 0)
                                return fd;
                }
                break;
        }
        close(fd);
        if (e == ETIMEDOUT) {
                set_err(err, errlen, "fedtokend at %s did not accept the connection in time", path);
                return FEDTOKEN_E_TIMEOUT;
        }
        set_err(err, errlen, "cannot connect to %s: %s%s", path, strerror_r(e, ebuf, sizeof(ebuf)),
                e == ENOENT || e == ECONNREFUSED ? " (is fedtokend running?)" : "");
        /* The socket's mode decides who may ask: that is a permission, not a reachability, problem. */
        return e == EACCES || e == EPERM ? FEDTOKEN_E_FORBIDDEN : FEDTOKEN_E_CONNECT;
}

/*
 * Sends `req` whole. A daemon that refuses a client (too many connections,
 * peer not allowed) may answer and close before reading the request, so a
 * reset here is not an error by itself: *ret_broken tells the caller to read
 * whatever answer is waiting.
 */
static int send_request(int fd, const char *req, size_t len, int64_t deadline, bool *ret_broken)
{
        *ret_broken = false;
        while (len > 0) {
                ssize_t w = send(fd, req, len, MSG_NOSIGNAL);

                if (w >= 0) {
                        req += w;
                        len -= (size_t)w;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (errno == EPIPE || errno == ECONNRESET) {
                        *ret_broken = true;
                        return 0;
                }
                return FEDTOKEN_E_CONNECT;
        }
        return 0;
}

/* Grows `*buf` (holding `len` bytes) to `cap` bytes; the old copy is wiped, it may hold a token. */
static int grow(char **buf, size_t len, size_t cap)
{
        char *nb = malloc(cap);

        if (!nb)
                return FEDTOKEN_E_NOMEM;
        if (*buf) {
                memcpy(nb, *buf, len);
                free_secret(*buf, len);
        }
        *buf = nb;
        return 0;
}

/*
 * Reads one response. On success *ret_buf holds `*ret_len` bytes, of which the
 * body is the last *ret_body_len; the caller wipes and frees the buffer.
 */
static int read_response(int fd, int64_t deadline, struct response *ret_resp, char **ret_buf, size_t *ret_len,
                         size_t *ret_body_len, const char **ret_why)
{
        struct response resp = { 0 };
        char *buf = NULL;
        size_t len = 0, cap = 0, body_len = 0;
        bool eof = false;
        int r;

        for (;;) {
                ssize_t n;

                r = response_check(buf ? buf : "", len, eof, &resp, &body_len, ret_why);
                if (r != 0)
                        break;
                if (len == RESPONSE_MAX) {
                        *ret_why = "fedtokend's answer is over 1 MiB";
                        r = FEDTOKEN_E_PROTOCOL;
                        break;
                }
                if (len == cap) {
                        size_t ncap = cap ? cap * 2 : 4096;
                        if (ncap > RESPONSE_MAX)
                                ncap = RESPONSE_MAX;
                        r = grow(&buf, len, ncap);
                        if (r < 0) {
                                *ret_why = "out of memory";
                                break;
                        }
                        cap = ncap;
                }
                r = wait_fd(fd, POLLIN, deadline);
                if (r < 0) {
                        *ret_why = r == FEDTOKEN_E_TIMEOUT ? "fedtokend did not answer in time"
                                                           : "waiting for fedtokend's answer failed";
                        break;
                }
                n = recv(fd, buf + len, cap - len, 0);
                if (n > 0)
                        len += (size_t)n;
                else if (n == 0)
                        eof = true;
                else if (errno == ECONNRESET)
                        eof = true;  /* keep what arrived; the checker decides whether it is whole */
                else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                        *ret_why = "reading fedtokend's answer failed";
                        r = FEDTOKEN_E_PROTOCOL;
                        break;
                }
        }
        if (r < 0) {
                free_secret(buf, len);
                return r;
        }
        *ret_resp = resp;
        *ret_buf = buf;
        *ret_len = len;
        *ret_body_len = body_len;
        return 0;
}

static const char *socket_path_or_default(const char *socket_path)
{
        const char *env;

        if (socket_path)
                return socket_path;
        env = secure_getenv("FEDTOKEN_SOCKET");
        return env && *env ? env : FEDTOKEN_DEFAULT_SOCKET;
}

/* Printable ASCII without spaces: the request line and Accept header cannot be split. */
static bool is_header_safe(const char *s, size_t max, bool allow_space)
{
        unsigned char lowest = allow_space ? 0x20 : 0x21;
        size_t n;

        for (n = 0; s[n]; n++)
                if (n >= max || (unsigned char)s[n] < lowest || (unsigned char)s[n] >= 0x7f)
                        return false;
        return n > 0;
}

/*
 * One GET: on success, the status, the body as a NUL-terminated copy of
 * exactly *ret_len bytes (the receive buffer is wiped), and whether it is
 * text/plain.
 */
static int call(const char *socket_path, const char *target, const char *accept, int timeout_ms,
                int *ret_status, char **ret_body, size_t *ret_len, bool *ret_text_plain, char *err, size_t errlen)
{
        char req[TARGET_MAX_LEN + ACCEPT_MAX_LEN + 128];
        const char *path = socket_path_or_default(socket_path);
        int64_t deadline = now_ms() + timeout_ms;
        struct response resp;
        const char *why = NULL;
        char *buf = NULL, *body;
        size_t len = 0, body_len = 0;
        bool broken;
        int fd, r, n;

        if (target[0] != '/' || !is_header_safe(target, TARGET_MAX_LEN, false)) {
                set_err(err, errlen, "the request path must start with '/' and hold no spaces or control characters");
                return FEDTOKEN_E_INVALID;
        }
        if (!is_header_safe(accept, ACCEPT_MAX_LEN, true)) {
                set_err(err, errlen, "the Accept value holds control characters or is too long");
                return FEDTOKEN_E_INVALID;
        }
        n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: %s\r\nConnection: close\r\n\r\n",
                     target, accept);
        if (n < 0 || (size_t)n >= sizeof(req))
                return FEDTOKEN_E_INVALID;

        fd = connect_socket(path, deadline, err, errlen);
        if (fd < 0)
                return fd;
        r = send_request(fd, req, (size_t)n, deadline, &broken);
        if (r < 0) {
                close(fd);
                if (r == FEDTOKEN_E_TIMEOUT)
                        set_err(err, errlen, "fedtokend at %s did not take the request in time", path);
                else
                        set_err(err, errlen, "sending the request to fedtokend at %s failed", path);
                return r;
        }
        r = read_response(fd, deadline, &resp, &buf, &len, &body_len, &why);
        close(fd);
        if (r < 0) {
                if (broken && r == FEDTOKEN_E_PROTOCOL)
                        why = "fedtokend closed the connection before reading the request";
                set_err(err, errlen, "%s (socket %s)", why, path);
                return r;
        }

        body = malloc(body_len + 1);
        if (!body) {
                free_secret(buf, len);
                set_err(err, errlen, "out of memory");
                return FEDTOKEN_E_NOMEM;
        }
        memcpy(body, buf + resp.head_len, body_len);
        body[body_len] = '\0';
        free_secret(buf, len);

        *ret_status = resp.status;
        *ret_body = body;
        *ret_len = body_len;
        *ret_text_plain = resp.text_plain;
        return 0;
}

/* ---- the API ------------------------------------------------------------- */

static bool name_valid(const char *name)
{
        size_t n;

        if (!name)
                return false;
        for (n = 0; name[n]; n++) {
                char c = name[n];
                if (n >= NAME_MAX_LEN ||
                    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-'))
                        return false;
        }
        return n > 0;
}

/* A token is one run of printable, non-space ASCII: anything else is not what was asked for. */
static bool token_valid(const char *s, size_t len)
{
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                        return false;
        return true;
}

static int status_error(int status)
{
        switch (status) {
        case 403:
                return FEDTOKEN_E_FORBIDDEN;
        case 404:
                return FEDTOKEN_E_NOT_FOUND;
        case 503:
                return FEDTOKEN_E_UNAVAILABLE;
        default:
                return FEDTOKEN_E_PROTOCOL;
        }
}

/*
 * The explanation of a non-200 answer: its "detail", else the status and the
 * "error" code. The body is an error document, never a token, and only its
 * decoded "detail"/"error" strings are copied.
 */
static void set_status_err(char *err, size_t errlen, int status, const char *body, size_t len)
{
        char code[64];

        if (!err || errlen == 0)
                return;
        if (json_top_string(body, len, "detail", err, errlen) && err[0])
                return;
        if (json_top_string(body, len, "error", code, sizeof(code)) && code[0])
                set_err(err, errlen, "fedtokend answered HTTP %d (%s)", status, code);
        else
                set_err(err, errlen, "fedtokend answered HTTP %d", status);
}

static int get(const char *socket_path, const char *kind, const char *name, int wait_s, char **ret, char *err,
               size_t errlen)
{
        char target[128];
        char *body = NULL;
        size_t len = 0;
        int status = 0, r;
        bool text_plain = false;

        if (!ret) {
                set_err(err, errlen, "no place to return the token");
                return FEDTOKEN_E_INVALID;
        }
        if (!name_valid(name)) {
                set_err(err, errlen, "a token name is 1 to %d letters, digits, '_' or '-'", NAME_MAX_LEN);
                return FEDTOKEN_E_INVALID;
        }
        if (wait_s < 0 || wait_s > FEDTOKEN_WAIT_MAX) {
                set_err(err, errlen, "the wait is 0 to %d seconds, not %d", FEDTOKEN_WAIT_MAX, wait_s);
                return FEDTOKEN_E_INVALID;
        }
        if (wait_s > 0)
                snprintf(target, sizeof(target), "/v1/%s/%s?format=raw&wait=%d", kind, name, wait_s);
        else
                snprintf(target, sizeof(target), "/v1/%s/%s?format=raw", kind, name);

        r = call(socket_path, target, "text/plain", wait_s * 1000 + GET_MARGIN_MS, &status, &body, &len,
                 &text_plain, err, errlen);
        if (r < 0)
                return r;
        if (status == 200) {
                if (text_plain && token_valid(body, len)) {
                        *ret = body;
                        return 0;
                }
                free_secret(body, len);
                set_err(err, errlen, "fedtokend's answer for %s '%s' is not a bare token (%s)", kind, name,
                        text_plain ? "empty, or holds spaces or control characters" : "not text/plain");
                return FEDTOKEN_E_PROTOCOL;
        }
        set_status_err(err, errlen, status, body, len);
        free_secret(body, len);
        return status_error(status);
}

FEDTOKEN_EXPORT int fedtoken_get(const char *socket_path, const char *name, char **ret, char *err, size_t errlen)
{
        return get(socket_path, "token", name, 0, ret, err, errlen);
}

FEDTOKEN_EXPORT int fedtoken_get_jwt(const char *socket_path, const char *name, char **ret, char *err, size_t errlen)
{
        return get(socket_path, "jwt", name, 0, ret, err, errlen);
}

FEDTOKEN_EXPORT int fedtoken_get_wait(const char *socket_path, const char *name, int wait_s, char **ret, char *err,
                                      size_t errlen)
{
        return get(socket_path, "token", name, wait_s, ret, err, errlen);
}

FEDTOKEN_EXPORT int fedtoken_get_jwt_wait(const char *socket_path, const char *name, int wait_s, char **ret,
                                          char *err, size_t errlen)
{
        return get(socket_path, "jwt", name, wait_s, ret, err, errlen);
}

FEDTOKEN_EXPORT int fedtoken_request_timeout(const char *socket_path, const char *path, const char *accept,
                                             int timeout_ms, int *ret_status, char **ret_body, size_t *ret_len,
                                             char *err, size_t errlen)
{
        char *body = NULL;
        size_t len = 0;
        int status = 0, r;
        bool text_plain;

        if (!path || timeout_ms <= 0) {
                set_err(err, errlen, "%s", !path ? "no request path" : "the timeout must be positive");
                return FEDTOKEN_E_INVALID;
        }
        r = call(socket_path, path, accept ? accept : "application/json", timeout_ms, &status, &body, &len,
                 &text_plain, err, errlen);
        if (r < 0)
                return r;
        if (ret_status)
                *ret_status = status;
        if (ret_len)
                *ret_len = len;
        if (ret_body)
                *ret_body = body;
        else
                free_secret(body, len);
        return 0;
}

FEDTOKEN_EXPORT int fedtoken_request(const char *socket_path, const char *path, const char *accept,
                                     int *ret_status, char **ret_body, size_t *ret_len)
{
        return fedtoken_request_timeout(socket_path, path, accept, REQUEST_TIMEOUT_MS, ret_status, ret_body,
                                        ret_len, NULL, 0);
}

FEDTOKEN_EXPORT void fedtoken_free(char *s)
{
        if (!s)
                return;
        wipe(s, strlen(s));
        free(s);
}

FEDTOKEN_EXPORT const char *fedtoken_strerror(int err)
{
        switch (err) {
        case FEDTOKEN_OK:
                return "success";
        case FEDTOKEN_E_CONNECT:
                return "cannot connect to fedtokend's socket";
        case FEDTOKEN_E_NOT_FOUND:
                return "no such token";
        case FEDTOKEN_E_FORBIDDEN:
                return "permission denied";
        case FEDTOKEN_E_UNAVAILABLE:
                return "no valid token right now";
        case FEDTOKEN_E_PROTOCOL:
                return "unexpected answer from fedtokend";
        case FEDTOKEN_E_INVALID:
                return "invalid argument";
        case FEDTOKEN_E_NOMEM:
                return "out of memory";
        case FEDTOKEN_E_TIMEOUT:
                return "fedtokend did not answer in time";
        default:
                return "unknown error";
        }
}
