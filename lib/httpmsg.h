/* SPDX-License-Identifier: MIT */
/*
 * httpmsg.h: an HTTP request to send and a response received, as plain data.
 *
 * lib/ builds a struct ft_request (method, URL, headers, body) and parses the
 * bytes of a struct ft_response; daemon/ moves the bytes. Header values and
 * the body may hold secrets (session tokens, assertions), so both are wiped
 * when the request is freed.
 */
#ifndef FT_HTTPMSG_H
#define FT_HTTPMSG_H

#include "ft.h"

#define FT_MAX_HEADERS 32

struct ft_header {
        char *name;   /* as it goes on the wire, e.g. "X-Amz-Date" */
        char *value;
};

struct ft_request {
        char *method;                 /* "GET", "PUT", "POST" */
        char *url;                    /* absolute: scheme://host[:port]/path[?query] */
        struct ft_header headers[FT_MAX_HEADERS];
        size_t n_headers;
        char *body;                   /* NUL-terminated for convenience; body_len bytes */
        size_t body_len;
};

struct ft_response {
        long status;                  /* HTTP status code */
        const char *content_type;     /* may be NULL */
        int64_t retry_after;          /* seconds from Retry-After, 0 if absent */
        int64_t date;                 /* epoch seconds from Date, 0 if absent */
        const char *body;             /* body_len bytes, NUL-terminated */
        size_t body_len;
};

int ft_request_new(struct ft_request **ret, const char *method, const char *url);
/* Adds a header (copies name and value). -E2BIG past FT_MAX_HEADERS. */
int ft_request_add_header(struct ft_request *r, const char *name, const char *value);
/* Replaces the value of the first header named `name` (case-insensitive) or adds it. */
int ft_request_set_header(struct ft_request *r, const char *name, const char *value);
/* The value of the first header named `name` (case-insensitive), or NULL. */
const char *ft_request_header(const struct ft_request *r, const char *name);
int ft_request_set_body(struct ft_request *r, const void *body, size_t len);
/* Wipes every header value and the body, then frees. Accepts NULL. */
void ft_request_free(struct ft_request *r);
/*
 * A POST to `url` with a Host header made from it, Content-Type and the
 * body_len bytes of `body`: the shape every token request shares. Callers
 * add any further headers to the result.
 */
int ft_request_new_post(struct ft_request **ret, const char *url, const char *content_type, const void *body,
                        size_t body_len);

/*
 * URL pieces, borrowed from the URL string. Only what lib/ needs: scheme,
 * host (without brackets for IPv6), port (0 if none), path (starts with '/',
 * "/" if empty), query (without '?', may be empty).
 */
struct ft_url {
        const char *scheme; size_t scheme_len;
        const char *host;   size_t host_len;
        int port;
        const char *path;   size_t path_len;
        const char *query;  size_t query_len;
};
int ft_url_split(const char *url, struct ft_url *ret);
/* "host" or "host:port" as the Host header carries it (IPv6 in brackets). */
int ft_url_host_header(const struct ft_url *u, char **ret);

/*
 * Append `s` (n bytes) to *buf percent-encoded as RFC 3986 unreserved
 * (A-Z a-z 0-9 - _ . ~ kept, everything else %XX upper case), as the AWS
 * query protocol and OAuth form bodies need.
 */
struct ft_strbuf {
        char *p;
        size_t len, cap;
        size_t max;      /* hard limit; 0 means 1 MiB */
        bool oom;        /* sticky: an append failed */
};
void ft_strbuf_append(struct ft_strbuf *b, const char *s, size_t n);
void ft_strbuf_puts(struct ft_strbuf *b, const char *s);
void ft_strbuf_printf(struct ft_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ft_strbuf_urlencode(struct ft_strbuf *b, const char *s, size_t n);
/* Returns the NUL-terminated string and hands ownership to the caller; NULL if oom. */
char *ft_strbuf_steal(struct ft_strbuf *b);
/* Wipes and frees the contents. */
void ft_strbuf_done(struct ft_strbuf *b);

#endif
