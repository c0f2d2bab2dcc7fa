/* SPDX-License-Identifier: MIT */
/*
 * httpreq.c: the request parser of fedtokend's socket API (RFC 9112).
 *
 * The head is read line by line, left to right, and each line is judged as
 * soon as its terminator arrives. Every refusal is decided by the bytes up
 * to some position, never by what follows, so a prefix of a request is
 * either "need more" or already refused with the status the whole request
 * would get. Nothing past FT_HTTP_MAX_HEADER_BYTES is ever looked at.
 */
#include "httpreq.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "text.h"

/* One line of the head: its content without CR LF (or LF), and where the next line starts. */
struct line {
        const char *p;
        size_t n;
        size_t next;
};

/* Where text/plain or application/json appeared in Accept, and with which weight. */
struct accept_entry {
        bool listed;
        unsigned order;         /* index among all media ranges of all Accept lines */
        unsigned q;             /* weight in thousandths, 0..1000 */
};

/* What the header lines said so far. */
struct head {
        unsigned n_fields;
        bool host_seen;
        bool content_length_seen;
        bool conn_close;
        bool conn_keep_alive;
        unsigned n_media_ranges;
        struct accept_entry text;
        struct accept_entry json;
};

static int reject(int *status, int code)
{
        *status = code;
        return -EBADMSG;
}

/* The octet of "%XY" given X and Y, or -1 when either is no hex digit. */
static int pct_octet(char x, char y)
{
        int hi = ft_text_hex_value((unsigned char)x), lo = ft_text_hex_value((unsigned char)y);

        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/*
 * RFC 3986 classes of the request target, and the bytes that end a line:
 * one table lookup per byte, as every byte of every request passes here.
 * Each byte has exactly one entry. Token characters (method, header names)
 * are ft_text_is_tchar's, the one definition the SigV4 code uses too.
 */
enum {
        C_UNRESERVED = 1 << 0, /* RFC 3986 unreserved */
        C_SUB_DELIM = 1 << 1,  /* RFC 3986 sub-delims */
        C_PCHAR = 1 << 2,      /* RFC 3986 pchar less pct-encoded (callers decode '%' themselves) */
        C_LINE = 1 << 3,       /* LF, CR and NUL: end a line, or refuse it */
};
#define C_UNRESERVED_PCHAR (C_UNRESERVED | C_PCHAR)
#define C_SUB_DELIM_PCHAR (C_SUB_DELIM | C_PCHAR)
static const uint8_t char_class[256] = {
        ['0' ... '9'] = C_UNRESERVED_PCHAR, ['A' ... 'Z'] = C_UNRESERVED_PCHAR, ['a' ... 'z'] = C_UNRESERVED_PCHAR,
        ['-'] = C_UNRESERVED_PCHAR, ['.'] = C_UNRESERVED_PCHAR, ['_'] = C_UNRESERVED_PCHAR,
        ['~'] = C_UNRESERVED_PCHAR,
        ['!'] = C_SUB_DELIM_PCHAR, ['$'] = C_SUB_DELIM_PCHAR, ['&'] = C_SUB_DELIM_PCHAR, ['\''] = C_SUB_DELIM_PCHAR,
        ['('] = C_SUB_DELIM_PCHAR, [')'] = C_SUB_DELIM_PCHAR, ['*'] = C_SUB_DELIM_PCHAR, ['+'] = C_SUB_DELIM_PCHAR,
        [','] = C_SUB_DELIM_PCHAR, [';'] = C_SUB_DELIM_PCHAR, ['='] = C_SUB_DELIM_PCHAR,
        [':'] = C_PCHAR, ['@'] = C_PCHAR,
        ['\0'] = C_LINE, ['\n'] = C_LINE, ['\r'] = C_LINE,
};

static inline bool has_class(int c, unsigned cls)
{
        return (char_class[(unsigned char)c] & cls) != 0;
}

static inline bool is_unreserved(int c)
{
        return has_class(c, C_UNRESERVED);
}

static inline bool is_sub_delim(int c)
{
        return has_class(c, C_SUB_DELIM);
}

static inline bool is_pchar(int c)
{
        return has_class(c, C_PCHAR);
}

static bool is_ows(int c)
{
        return c == ' ' || c == '\t';
}

static bool name_is(const char *p, size_t n, const char *name)
{
        return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/*
 * Find the end of the line that starts at buf[start], looking at nothing
 * past buf[len - 1]. A line ends at LF, with or without a CR before it (RFC 9112
 * §2.2 lets a recipient accept a bare LF; we do so for every line alike). A
 * CR anywhere else could hide a line end from another parser and is refused,
 * as is NUL. A line whose content passes max_len bytes is refused with
 * too_long as soon as the first byte too many arrives.
 * Returns 0 and fills *ret, -EAGAIN when the line is not complete yet, or
 * -EBADMSG with *status.
 */
static int find_line(const char *buf, size_t len, size_t start, size_t max_len, int too_long, struct line *ret,
                     int *status)
{
        /* Ordinary bytes within the length limit decide nothing: skip them at one lookup each. */
        size_t plain_end = len - start > max_len ? start + max_len : len, i = start;

        while (i < plain_end && !has_class(buf[i], C_LINE))
                i++;
        for (; i < len; i++) {
                char c = buf[i];

                if (c == '\n') {
                        size_t end = i > start && buf[i - 1] == '\r' ? i - 1 : i;

                        ret->p = buf + start;
                        ret->n = end - start;
                        ret->next = i + 1;
                        return 0;
                }
                if (c == '\0')
                        return reject(status, 400);
                if (c == '\r') {
                        if (i + 1 == len)
                                return -EAGAIN;
                        if (buf[i + 1] != '\n')
                                return reject(status, 400);
                        continue;
                }
                if (i - start >= max_len)
                        return reject(status, too_long);
        }
        return -EAGAIN;
}

/*
 * "HTTP/1.0" and "HTTP/1.1". A later 1.x is answered as 1.1 (RFC 9110 §2.5);
 * another major version, such as the HTTP/2 preface "PRI * HTTP/2.0", gets
 * 505 so the client knows to fall back; anything else is no HTTP at all.
 */
static int parse_version(const char *v, size_t n, int *ret_minor, int *status)
{
        if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !ft_text_is_digit(v[5]) || v[6] != '.' || !ft_text_is_digit(v[7]))
                return reject(status, 400);
        if (v[5] != '1')
                return reject(status, 505);
        *ret_minor = v[7] == '0' ? 0 : 1;
        return 0;
}

/*
 * RFC 3986 host [":" port]: a reg-name (unreserved, sub-delims, %XX) or a
 * bracketed IP literal. Clients of a Unix socket send anything from
 * "localhost" to a percent-encoded socket path; we check the form only.
 */
static bool is_valid_host(const char *s, size_t n)
{
        size_t i = 0;

        if (n > 0 && s[0] == '[') {
                for (i = 1; i < n && s[i] != ']'; i++)
                        if (!is_unreserved((unsigned char)s[i]) && !is_sub_delim((unsigned char)s[i]) && s[i] != ':')
                                return false;
                if (i == n || i == 1)
                        return false;
                i++;
        } else {
                for (; i < n && s[i] != ':'; i++) {
                        if (s[i] == '%') {
                                if (n - i < 3 || pct_octet(s[i + 1], s[i + 2]) < 0)
                                        return false;
                                i += 2;
                        } else if (!is_unreserved((unsigned char)s[i]) && !is_sub_delim((unsigned char)s[i])) {
                                return false;
                        }
                }
        }
        if (i == n)
                return true;
        if (s[i] != ':')
                return false;
        for (i++; i < n; i++)
                if (!ft_text_is_digit(s[i]))
                        return false;
        return true;
}

static bool is_dot_segment(size_t seg_len, size_t seg_dots)
{
        return seg_len == seg_dots && (seg_len == 1 || seg_len == 2);
}

/*
 * Decode an absolute path (s[0] == '/') into out, as far as it fits, and
 * give its decoded length. The router compares the result with plain
 * strings and the daemon logs it, so anything that could make two spellings
 * of one path differ in meaning is refused: an encoded '/', "." and ".."
 * segments (also encoded), empty segments ("//", but a trailing '/' is kept
 * for the router to judge), and bytes that are no printable ASCII once
 * decoded (NUL and other controls, DEL, non-ASCII).
 */
static int decode_path(const char *s, size_t n, char *out, size_t outsize, size_t *ret_len, int *status)
{
        size_t o = 0, seg_len = 0, seg_dots = 0;

        for (size_t i = 0; i < n; i++) {
                int c = (unsigned char)s[i];

                if (c == '/') {
                        if (i > 0 && (seg_len == 0 || is_dot_segment(seg_len, seg_dots)))
                                return reject(status, 400);
                        seg_len = seg_dots = 0;
                } else {
                        if (c == '%') {
                                if (n - i < 3 || (c = pct_octet(s[i + 1], s[i + 2])) < 0)
                                        return reject(status, 400);
                                i += 2;
                                if (c == '/' || c < 0x20 || c >= 0x7f)
                                        return reject(status, 400);
                        } else if (!is_pchar(c)) {
                                return reject(status, 400);
                        }
                        seg_len++;
                        seg_dots += c == '.';
                }
                if (o + 1 < outsize)
                        out[o] = (char)c;
                o++;
        }
        if (is_dot_segment(seg_len, seg_dots))
                return reject(status, 400);
        out[o < outsize ? o : outsize - 1] = '\0';
        *ret_len = o;
        return 0;
}

/* RFC 3986 query: pchar, '/', '?' and well-formed %XX, kept raw for ft_http_query_get. */
static int check_query(const char *s, size_t n, int *status)
{
        for (size_t i = 0; i < n; i++) {
                int c = (unsigned char)s[i];

                if (c == '%') {
                        if (n - i < 3 || pct_octet(s[i + 1], s[i + 2]) < 0)
                                return reject(status, 400);
                        i += 2;
                } else if (!is_pchar(c) && c != '/' && c != '?') {
                        return reject(status, 400);
                }
        }
        return 0;
}

/*
 * origin-form "/path?query", or absolute-form "http://authority/path?query"
 * of which only the path and query count (RFC 9112 §3.2.2: the authority
 * replaces Host, and we serve one host). Syntax errors (400) are found
 * before sizes (414).
 */
static int parse_target(const char *t, size_t n, struct ft_http_req *req, int *status)
{
        const char *end = t + n, *path = t, *qmark;
        size_t path_len, path_decoded_len, query_len;
        int r;

        if (n == 0)
                return reject(status, 400);
        if (t[0] != '/') {
                const char *auth, *auth_end;

                if (n < 7 || strncasecmp(t, "http://", 7) != 0)
                        return reject(status, 400);
                auth = t + 7;
                for (auth_end = auth; auth_end < end && *auth_end != '/' && *auth_end != '?'; auth_end++)
                        ;
                /* An http URI needs a host; userinfo ('@') fails the host check too. */
                if (auth_end == auth || *auth == ':' || !is_valid_host(auth, (size_t)(auth_end - auth)))
                        return reject(status, 400);
                path = auth_end;
        }
        qmark = memchr(path, '?', (size_t)(end - path));
        path_len = (size_t)((qmark ? qmark : end) - path);
        if (path_len == 0) {
                /* Only absolute-form gets here: "http://localhost" means "/". */
                r = decode_path("/", 1, req->path, sizeof(req->path), &path_decoded_len, status);
        } else {
                r = decode_path(path, path_len, req->path, sizeof(req->path), &path_decoded_len, status);
        }
        if (r < 0)
                return r;
        query_len = qmark ? (size_t)(end - qmark - 1) : 0;
        if (qmark) {
                r = check_query(qmark + 1, query_len, status);
                if (r < 0)
                        return r;
        }
        if (path_decoded_len >= sizeof(req->path) || query_len >= sizeof(req->query))
                return reject(status, 414);
        memcpy(req->query, qmark ? qmark + 1 : "", query_len);
        req->query[query_len] = '\0';
        return 0;
}

/*
 * method SP request-target SP HTTP-version, with exactly one SP each
 * (RFC 9112 §3; we do not take the lenient whitespace parsing it allows).
 * The version is judged first: its answer tells the client which protocol
 * to speak, whatever the rest of the line holds.
 */
static int parse_request_line(const struct line *l, struct ft_http_req *req, int *status)
{
        const char *end = l->p + l->n, *sp1 = memchr(l->p, ' ', l->n), *sp2;
        size_t method_len;
        int r;

        if (!sp1)
                return reject(status, 400);
        for (sp2 = end - 1; *sp2 != ' '; sp2--)
                ;
        if (sp2 == sp1)
                return reject(status, 400);
        r = parse_version(sp2 + 1, (size_t)(end - sp2 - 1), &req->minor_version, status);
        if (r < 0)
                return r;
        method_len = (size_t)(sp1 - l->p);
        if (method_len == 0)
                return reject(status, 400);
        for (size_t i = 0; i < method_len; i++)
                if (!ft_text_is_tchar((unsigned char)l->p[i]))
                        return reject(status, 400);
        /* Methods are case-sensitive (RFC 9110 §9.1): "get" is some other method. */
        if (method_len == 3 && memcmp(l->p, "GET", 3) == 0)
                req->method = FT_HTTP_GET;
        else if (method_len == 4 && memcmp(l->p, "HEAD", 4) == 0)
                req->method = FT_HTTP_HEAD;
        else
                req->method = FT_HTTP_OTHER;
        return parse_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), req, status);
}

/*
 * The next element of a list (RFC 9110 §5.6.1) separated by sep, OWS
 * trimmed, possibly empty. A sep inside a quoted string does not split.
 * *cursor starts at the value and is NULL after the last element.
 */
static bool next_element(const char **cursor, const char *end, char sep, const char **ret_p, size_t *ret_n)
{
        const char *p = *cursor, *q;
        bool quoted = false;

        if (!p)
                return false;
        for (q = p; q < end && (quoted || *q != sep); q++) {
                if (quoted && *q == '\\' && q + 1 < end)
                        q++;
                else if (*q == '"')
                        quoted = !quoted;
        }
        *cursor = q < end ? q + 1 : NULL;
        while (p < q && is_ows(*p))
                p++;
        while (q > p && is_ows(q[-1]))
                q--;
        *ret_p = p;
        *ret_n = (size_t)(q - p);
        return true;
}

/* RFC 9110 §12.4.2 qvalue, "0" to "1.000", in thousandths. */
static bool parse_qvalue(const char *s, size_t n, unsigned *ret)
{
        unsigned v, scale = 100;

        if (n == 0 || n > 5 || (s[0] != '0' && s[0] != '1'))
                return false;
        v = (unsigned)(s[0] - '0') * 1000;
        if (n > 1 && s[1] != '.')
                return false;
        for (size_t i = 2; i < n; i++, scale /= 10) {
                if (!ft_text_is_digit(s[i]))
                        return false;
                v += (unsigned)(s[i] - '0') * scale;
        }
        if (v > 1000)
                return false;
        *ret = v;
        return true;
}

/*
 * One media range of Accept. Only text/plain and application/json are
 * noted, the first time each appears; wildcards are ignored, and so is a
 * range whose weight is malformed (Accept is a preference, not worth a 400).
 */
static void note_media_range(const char *p, size_t n, struct head *h)
{
        const char *cursor = p, *elem, *end = p + n;
        struct accept_entry *entry = NULL;
        unsigned order = h->n_media_ranges++, q = 1000;
        size_t elem_len;

        (void)next_element(&cursor, end, ';', &elem, &elem_len);
        if (name_is(elem, elem_len, "text/plain"))
                entry = &h->text;
        else if (name_is(elem, elem_len, "application/json"))
                entry = &h->json;
        if (!entry || entry->listed)
                return;
        while (next_element(&cursor, end, ';', &elem, &elem_len)) {
                if (elem_len >= 2 && (elem[0] == 'q' || elem[0] == 'Q') && elem[1] == '=' &&
                    !parse_qvalue(elem + 2, elem_len - 2, &q))
                        return;
        }
        *entry = (struct accept_entry){ .listed = true, .order = order, .q = q };
}

static void note_accept(const char *v, size_t n, struct head *h)
{
        const char *cursor = v, *elem;
        size_t elem_len;

        while (next_element(&cursor, v + n, ',', &elem, &elem_len))
                if (elem_len > 0)
                        note_media_range(elem, elem_len, h);
}

/* Connection options are tokens, case-insensitive; others than these two do not concern us. */
static void note_connection(const char *v, size_t n, struct head *h)
{
        const char *cursor = v, *elem;
        size_t elem_len;

        while (next_element(&cursor, v + n, ',', &elem, &elem_len)) {
                if (name_is(elem, elem_len, "close"))
                        h->conn_close = true;
                else if (name_is(elem, elem_len, "keep-alive"))
                        h->conn_keep_alive = true;
        }
}

/*
 * The API takes no bodies. A zero Content-Length is harmless; any other
 * (even one too large for any integer) means a body we will not read, so
 * 413. Two Content-Length lines, or a value that is not 1*DIGIT (also the
 * "42, 42" list RFC 9110 §8.6 lets us refuse), make the framing ambiguous.
 */
static int check_content_length(const char *v, size_t n, struct head *h, int *status)
{
        bool nonzero = false;

        if (h->content_length_seen || n == 0)
                return reject(status, 400);
        h->content_length_seen = true;
        for (size_t i = 0; i < n; i++) {
                if (!ft_text_is_digit(v[i]))
                        return reject(status, 400);
                nonzero |= v[i] != '0';
        }
        return nonzero ? reject(status, 413) : 0;
}

/* name ":" OWS value OWS (RFC 9112 §5). */
static int parse_field_line(const struct line *l, struct head *h, int *status)
{
        const char *p = l->p, *end = l->p + l->n, *colon, *v, *v_end;
        size_t name_len, v_len;

        if (h->n_fields == FT_HTTP_MAX_HEADERS)
                return reject(status, 431);
        h->n_fields++;
        /*
         * A line starting with whitespace is obsolete line folding, or, right
         * after the request line, a field some parsers would skip: refused
         * either way (RFC 9112 §5.2 and §2.2).
         */
        if (is_ows(*p))
                return reject(status, 400);
        colon = memchr(p, ':', l->n);
        if (!colon || colon == p)
                return reject(status, 400);
        /* This also refuses whitespace before the colon (RFC 9112 §5.1: MUST 400). */
        for (const char *q = p; q < colon; q++)
                if (!ft_text_is_tchar((unsigned char)*q))
                        return reject(status, 400);
        for (v = colon + 1; v < end && is_ows(*v); v++)
                ;
        for (v_end = end; v_end > v && is_ows(v_end[-1]); v_end--)
                ;
        for (const char *q = v; q < v_end; q++) {
                unsigned char c = (unsigned char)*q;
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return reject(status, 400);
        }
        name_len = (size_t)(colon - p);
        v_len = (size_t)(v_end - v);

        if (name_is(p, name_len, "Host")) {
                /* RFC 9112 §3.2: a second Host or an invalid one is a 400. */
                if (h->host_seen || !is_valid_host(v, v_len))
                        return reject(status, 400);
                h->host_seen = true;
        } else if (name_is(p, name_len, "Content-Length")) {
                return check_content_length(v, v_len, h, status);
        } else if (name_is(p, name_len, "Transfer-Encoding")) {
                /* Any transfer coding means a body: refused like one, whatever it says. */
                return reject(status, 413);
        } else if (name_is(p, name_len, "Connection")) {
                note_connection(v, v_len, h);
        } else if (name_is(p, name_len, "Accept")) {
                note_accept(v, v_len, h);
        }
        return 0;
}

/* text/plain wins with a higher weight, or an equal one when listed before application/json. */
static bool prefers_text(const struct head *h)
{
        if (!h->text.listed || h->text.q == 0)
                return false;
        if (!h->json.listed || h->text.q > h->json.q)
                return true;
        return h->text.q == h->json.q && h->text.order < h->json.order;
}

int ft_http_parse(const char *buf, size_t len, struct ft_http_req *ret, int *ret_status)
{
        /* Nothing past the head limit is looked at: a head that needs more is too large. */
        size_t view = len < FT_HTTP_MAX_HEADER_BYTES ? len : FT_HTTP_MAX_HEADER_BYTES;
        struct ft_http_req req = { 0 };
        struct head h = { 0 };
        struct line l;
        size_t pos = 0;
        int r, status = 0;

        if ((!buf && len > 0) || !ret || !ret_status)
                return -EINVAL;

        /* Empty lines before the request line are skipped (RFC 9112 §2.2), within the head limit. */
        do {
                r = find_line(buf, view, pos, FT_HTTP_MAX_REQUEST_LINE, 414, &l, &status);
                if (r < 0)
                        goto stop;
                pos = l.next;
        } while (l.n == 0);
        r = parse_request_line(&l, &req, &status);
        if (r < 0)
                goto stop;

        for (;;) {
                r = find_line(buf, view, pos, SIZE_MAX, 431, &l, &status);
                if (r < 0)
                        goto stop;
                pos = l.next;
                if (l.n == 0)
                        break;
                r = parse_field_line(&l, &h, &status);
                if (r < 0)
                        goto stop;
        }

        if (req.minor_version == 1 && !h.host_seen) {
                *ret_status = 400;
                return -EBADMSG;
        }
        req.keep_alive = !h.conn_close && (req.minor_version == 1 || h.conn_keep_alive);
        req.accept_text = prefers_text(&h);
        *ret = req;
        return (int)pos;

stop:
        if (r == -EAGAIN) {
                /* The server's buffer may hold no more than this: waiting would never end. */
                if (len < FT_HTTP_MAX_HEADER_BYTES)
                        return 0;
                status = 431;
        }
        *ret_status = status;
        return -EBADMSG;
}

/* Every '%' of a NUL-terminated string starts a %XX. */
static bool pct_well_formed(const char *s)
{
        for (; *s; s++)
                if (*s == '%') {
                        if (ft_text_hex_value((unsigned char)s[1]) < 0 || ft_text_hex_value((unsigned char)s[2]) < 0)
                                return false;
                        s += 2;
                }
        return true;
}

/* The next decoded octet of s[*i..n) (well-formed, checked before). */
static int next_octet(const char *s, size_t *i)
{
        int c = (unsigned char)s[*i];

        if (c == '%') {
                c = pct_octet(s[*i + 1], s[*i + 2]);
                *i += 2;
        }
        (*i)++;
        return c;
}

static bool key_matches(const char *s, size_t n, const char *key)
{
        size_t i = 0, k = 0;

        while (i < n)
                if (key[k] == '\0' || next_octet(s, &i) != (unsigned char)key[k++])
                        return false;
        return key[k] == '\0';
}

int ft_http_query_get(const char *query, const char *key, char *out, size_t outlen)
{
        const char *value = NULL;
        size_t value_len = 0, decoded_len = 0, n;

        if (!query || !key || !*key || !out || outlen == 0)
                return -EINVAL;
        /* Most requests carry no query at all: answer before scanning anything. */
        if (!*query)
                return -ENOENT;
        if (!pct_well_formed(query))
                return -EINVAL;
        for (const char *p = query;; p += n + 1) {
                const char *eq;

                n = strcspn(p, "&");
                eq = memchr(p, '=', n);
                if (n > 0 && key_matches(p, eq ? (size_t)(eq - p) : n, key)) {
                        value = eq ? eq + 1 : p + n;
                        value_len = eq ? n - (size_t)(eq - p) - 1 : 0;
                        break;
                }
                if (p[n] == '\0')
                        break;
        }
        if (!value)
                return -ENOENT;
        /* Measure and check first, so out is untouched on failure. */
        for (size_t i = 0; i < value_len; decoded_len++) {
                int c = next_octet(value, &i);
                if (c < 0x20 || c == 0x7f)
                        return -EINVAL;
        }
        if (decoded_len >= outlen)
                return -EINVAL;
        for (size_t i = 0, o = 0; i < value_len; o++)
                out[o] = (char)next_octet(value, &i);
        out[decoded_len] = '\0';
        return 0;
}
