/* SPDX-License-Identifier: MIT */
#include "httpmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int ft_request_new(struct ft_request **ret, const char *method, const char *url)
{
        struct ft_request *r;

        if (!ret || !method || !url)
                return -EINVAL;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->method = strdup(method);
        r->url = strdup(url);
        if (!r->method || !r->url) {
                ft_request_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

/* RFC 9110 field names are tokens: anything else could split or forge a header line. */
static bool is_header_name(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++) {
                char c = *s;
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      strchr("!#$%&'*+-.^_`|~", c)))
                        return false;
        }
        return true;
}

int ft_request_add_header(struct ft_request *r, const char *name, const char *value)
{
        struct ft_header *h;

        if (!r || !name || !value)
                return -EINVAL;
        if (r->n_headers >= FT_MAX_HEADERS)
                return -E2BIG;
        /* CR or LF in a header would split it: refuse rather than send it. */
        if (!is_header_name(name) || strpbrk(value, "\r\n"))
                return -EINVAL;
        h = &r->headers[r->n_headers];
        h->name = strdup(name);
        h->value = strdup(value);
        if (!h->name || !h->value) {
                free(h->name);
                ft_free_secret(h->value);
                h->name = h->value = NULL;
                return -ENOMEM;
        }
        r->n_headers++;
        return 0;
}

int ft_request_set_header(struct ft_request *r, const char *name, const char *value)
{
        char *v;

        if (!r || !name || !value)
                return -EINVAL;
        for (size_t i = 0; i < r->n_headers; i++) {
                if (strcasecmp(r->headers[i].name, name) != 0)
                        continue;
                if (strpbrk(value, "\r\n"))
                        return -EINVAL;
                v = strdup(value);
                if (!v)
                        return -ENOMEM;
                ft_free_secret(r->headers[i].value);
                r->headers[i].value = v;
                return 0;
        }
        return ft_request_add_header(r, name, value);
}

const char *ft_request_header(const struct ft_request *r, const char *name)
{
        for (size_t i = 0; r && i < r->n_headers; i++)
                if (strcasecmp(r->headers[i].name, name) == 0)
                        return r->headers[i].value;
        return NULL;
}

int ft_request_set_body(struct ft_request *r, const void *body, size_t len)
{
        char *b;

        if (!r || (!body && len))
                return -EINVAL;
        b = malloc(len + 1);
        if (!b)
                return -ENOMEM;
        if (len)
                memcpy(b, body, len);
        b[len] = '\0';
        if (r->body) {
                ft_wipe(r->body, r->body_len);
                free(r->body);
        }
        r->body = b;
        r->body_len = len;
        return 0;
}

void ft_request_free(struct ft_request *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_headers; i++) {
                free(r->headers[i].name);
                ft_free_secret(r->headers[i].value);
        }
        if (r->body) {
                ft_wipe(r->body, r->body_len);
                free(r->body);
        }
        free(r->method);
        free(r->url);
        free(r);
}

int ft_request_new_post(struct ft_request **ret, const char *url, const char *content_type, const void *body,
                        size_t body_len)
{
        struct ft_request *req = NULL;
        _cleanup_free_ char *host = NULL;
        struct ft_url u;
        int r;

        if (!ret || !content_type)
                return -EINVAL;
        r = ft_url_split(url, &u);
        if (r < 0)
                return r;
        r = ft_url_host_header(&u, &host);
        if (r < 0)
                return r;
        r = ft_request_new(&req, "POST", url);
        if (r >= 0)
                r = ft_request_add_header(req, "Host", host);
        if (r >= 0)
                r = ft_request_add_header(req, "Content-Type", content_type);
        if (r >= 0)
                r = ft_request_set_body(req, body, body_len);
        if (r < 0) {
                ft_request_free(req);
                return r;
        }
        *ret = req;
        return 0;
}

int ft_url_split(const char *url, struct ft_url *ret)
{
        struct ft_url u = { 0 };
        const char *p, *auth, *auth_end, *host_end;

        if (!url || !ret)
                return -EINVAL;
        p = strstr(url, "://");
        if (!p || p == url)
                return -EINVAL;
        /* RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), so "/a?u=http://b" is no URL. */
        for (const char *q = url; q < p; q++) {
                bool alpha = (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z');
                if (!alpha && (q == url || !((*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '.')))
                        return -EINVAL;
        }
        u.scheme = url;
        u.scheme_len = (size_t)(p - url);
        auth = p + 3;
        auth_end = auth + strcspn(auth, "/?#");
        if (auth_end == auth)
                return -EINVAL;
        /* userinfo has no place in the URLs we call: refuse it. */
        if (memchr(auth, '@', (size_t)(auth_end - auth)))
                return -EINVAL;
        if (*auth == '[') {
                const char *rb = memchr(auth, ']', (size_t)(auth_end - auth));
                if (!rb || rb == auth + 1)
                        return -EINVAL;
                u.host = auth + 1;
                u.host_len = (size_t)(rb - auth - 1);
                host_end = rb + 1;
        } else {
                host_end = memchr(auth, ':', (size_t)(auth_end - auth));
                if (!host_end)
                        host_end = auth_end;
                u.host = auth;
                u.host_len = (size_t)(host_end - auth);
                if (u.host_len == 0)
                        return -EINVAL;
        }
        if (host_end < auth_end) {
                long port = 0;
                if (*host_end != ':' || host_end + 1 == auth_end)
                        return -EINVAL;
                for (const char *q = host_end + 1; q < auth_end; q++) {
                        if (*q < '0' || *q > '9')
                                return -EINVAL;
                        port = port * 10 + (*q - '0');
                        if (port > 65535)
                                return -EINVAL;
                }
                if (port == 0)
                        return -EINVAL;
                u.port = (int)port;
        }
        if (*auth_end == '/') {
                u.path = auth_end;
                u.path_len = strcspn(auth_end, "?#");
        } else {
                u.path = "/";
                u.path_len = 1;
        }
        p = auth_end + (*auth_end == '/' ? u.path_len : 0);
        if (*p == '?') {
                u.query = p + 1;
                u.query_len = strcspn(p + 1, "#");
        } else {
                u.query = "";
                u.query_len = 0;
        }
        *ret = u;
        return 0;
}

int ft_url_host_header(const struct ft_url *u, char **ret)
{
        struct ft_strbuf b = { 0 };
        bool v6;

        if (!u || !ret)
                return -EINVAL;
        v6 = memchr(u->host, ':', u->host_len) != NULL;
        if (v6)
                ft_strbuf_puts(&b, "[");
        ft_strbuf_append(&b, u->host, u->host_len);
        if (v6)
                ft_strbuf_puts(&b, "]");
        if (u->port)
                ft_strbuf_printf(&b, ":%d", u->port);
        *ret = ft_strbuf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

static bool strbuf_reserve(struct ft_strbuf *b, size_t extra)
{
        size_t max = b->max ? b->max : (size_t)1 << 20;
        size_t want, cap;
        char *p;

        if (b->oom)
                return false;
        if (extra > max || b->len + extra + 1 > max) {
                b->oom = true;
                return false;
        }
        want = b->len + extra + 1;
        if (want <= b->cap)
                return true;
        cap = b->cap ? b->cap : 64;
        while (cap < want)
                cap *= 2;
        if (cap > max)
                cap = max;
        /* Grow by copy, not realloc, so an old buffer that held a secret is wiped. */
        p = malloc(cap);
        if (!p) {
                b->oom = true;
                return false;
        }
        if (b->p) {
                memcpy(p, b->p, b->len + 1);
                ft_wipe(b->p, b->cap);
                free(b->p);
        } else {
                /* A buffer stolen before anything was appended must still be a string. */
                p[0] = '\0';
        }
        b->p = p;
        b->cap = cap;
        return true;
}

void ft_strbuf_append(struct ft_strbuf *b, const char *s, size_t n)
{
        if (!strbuf_reserve(b, n))
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

void ft_strbuf_puts(struct ft_strbuf *b, const char *s)
{
        ft_strbuf_append(b, s, strlen(s));
}

void ft_strbuf_printf(struct ft_strbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !strbuf_reserve(b, (size_t)n)) {
                b->oom = true;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

void ft_strbuf_urlencode(struct ft_strbuf *b, const char *s, size_t n)
{
        static const char hex[] = "0123456789ABCDEF";

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~') {
                        ft_strbuf_append(b, (const char *)&c, 1);
                } else {
                        char e[3] = { '%', hex[c >> 4], hex[c & 15] };
                        ft_strbuf_append(b, e, 3);
                }
        }
}

char *ft_strbuf_steal(struct ft_strbuf *b)
{
        char *p;

        if (b->oom) {
                ft_strbuf_done(b);
                return NULL;
        }
        if (!b->p && !strbuf_reserve(b, 0))
                return NULL;
        p = b->p;
        b->p = NULL;
        b->len = b->cap = 0;
        return p;
}

void ft_strbuf_done(struct ft_strbuf *b)
{
        if (b->p) {
                ft_wipe(b->p, b->cap);
                free(b->p);
        }
        b->p = NULL;
        b->len = b->cap = 0;
        b->oom = false;
}
