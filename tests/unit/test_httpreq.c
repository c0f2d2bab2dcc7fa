/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "httpreq.h"
#include "test.h"

#define CURL_HEAD "Host: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"

/* Parse an exact-size heap copy, so ASan sees any read past len. */
static int parse(const char *s, size_t len, struct ft_http_req *req, int *status)
{
        char *copy = malloc(len ? len : 1);
        int r;

        if (!copy)
                abort();
        memcpy(copy, s, len);
        r = ft_http_parse(copy, len, req, status);
        free(copy);
        return r;
}

struct valid_case {
        const char *text;
        enum ft_http_method method;
        const char *path;
        const char *query;
        bool keep_alive;
        bool accept_text;
        int minor_version;
};

static const struct valid_case valid_cases[] = {
        /* What curl --unix-socket sends. */
        { "GET /v1/token/storage HTTP/1.1\r\n" CURL_HEAD, FT_HTTP_GET, "/v1/token/storage", "", true, false, 1 },
        { "HEAD /v1/status HTTP/1.1\r\n" CURL_HEAD, FT_HTTP_HEAD, "/v1/status", "", true, false, 1 },
        { "GET /v1/jwt/ci?format=raw&wait=5 HTTP/1.1\r\n" CURL_HEAD, FT_HTTP_GET, "/v1/jwt/ci", "format=raw&wait=5",
          true, false, 1 },
        { "GET /? HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET /a?b?c/d:@%41 HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/a", "b?c/d:@%41", true, false, 1 },
        /* Percent-decoding of the path, the query stays raw. */
        { "GET /v1/token/my%2Dname%7e%41 HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/v1/token/my-name~A", "", true,
          false, 1 },
        { "GET /a%20b/%2e%2e%2e/.x/x. HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/a b/.../.x/x.", "", true, false, 1 },
        { "GET /v1/token/ HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/v1/token/", "", true, false, 1 },
        { "GET /!$&'()*+,;=:@-._~ HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/!$&'()*+,;=:@-._~", "", true, false,
          1 },
        /* Bare LF line ends, also mixed with CR LF. */
        { "GET /v1/status HTTP/1.1\nHost: x\n\n", FT_HTTP_GET, "/v1/status", "", true, false, 1 },
        { "GET /v1/status HTTP/1.1\r\nHost: x\n\r\n", FT_HTTP_GET, "/v1/status", "", true, false, 1 },
        /* Empty lines before the request line are skipped and consumed. */
        { "\r\n\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        /* HTTP/1.0: no Host needed, keep-alive only when asked. */
        { "GET / HTTP/1.0\r\n\r\n", FT_HTTP_GET, "/", "", false, false, 0 },
        { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 0 },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", FT_HTTP_GET, "/", "", false, false,
          0 },
        { "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", FT_HTTP_GET, "/", "", false, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nConnection: ,upgrade ,  CLOSE\t,\r\n\r\n", FT_HTTP_GET, "/", "", false, false,
          1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nConnection: closed, keep-alive\r\n\r\n", FT_HTTP_GET, "/", "", true, false,
          1 },
        /* A later 1.x minor is served as 1.1. */
        { "GET / HTTP/1.9\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        /* Absolute-form: only path and query count. */
        { "GET http://localhost/v1/status HTTP/1.1\r\nHost: other\r\n\r\n", FT_HTTP_GET, "/v1/status", "", true,
          false, 1 },
        { "GET HTTP://localhost:80?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/", "x=1", true, false, 1 },
        { "GET http://[::1]:8080 HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        /* Other methods are parsed fully; the router answers 405. */
        { "POST /v1/token/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", FT_HTTP_OTHER, "/v1/token/x", "", true,
          false, 1 },
        { "get / HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_OTHER, "/", "", true, false, 1 },
        { "GETS / HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_OTHER, "/", "", true, false, 1 },
        { "DELETE /v1/token/x HTTP/1.1\r\nHost: x\r\n\r\n", FT_HTTP_OTHER, "/v1/token/x", "", true, false, 1 },
        /* Host forms: empty, IP literal, percent-encoded socket path (requests-unixsocket). */
        { "GET / HTTP/1.1\r\nHost:\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nhost: %2Frun%2Ffedtokend%2Ffedtokend.sock\r\n\r\n", FT_HTTP_GET, "/", "", true, false,
          1 },
        { "GET / HTTP/1.1\r\nHost: localhost:\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        /* A zero body is no body. */
        { "GET / HTTP/1.1\r\nHost: x\r\ncontent-length: 000\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        /* Values: OWS trimmed, tabs and obs-text allowed, unknown fields ignored. */
        { "GET / HTTP/1.1\r\nHost: \t x \t\r\nX-Note: caf\xc3\xa9\tau lait\r\nX-Empty:\r\n\r\n", FT_HTTP_GET, "/", "",
          true, false, 1 },
        /* Accept. */
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n", FT_HTTP_GET, "/", "", true, true, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: TEXT/Plain;charset=utf-8\r\n\r\n", FT_HTTP_GET, "/", "", true, true,
          1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/*\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json, text/plain\r\n\r\n", FT_HTTP_GET, "/", "", true,
          false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain, application/json\r\n\r\n", FT_HTTP_GET, "/", "", true,
          true, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json;q=0.5, text/plain\r\n\r\n", FT_HTTP_GET, "/", "",
          true, true, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.5, application/json\r\n\r\n", FT_HTTP_GET, "/", "",
          true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json ; q=0.9 , text/plain ; Q=0.900\r\n\r\n", FT_HTTP_GET,
          "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.001\r\n\r\n", FT_HTTP_GET, "/", "", true, true, 1 },
        /* A malformed weight drops that range. */
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json;q=2, text/plain\r\n\r\n", FT_HTTP_GET, "/", "", true,
          true, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.5000\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=2\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=1x\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.a\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=1.001\r\n\r\n", FT_HTTP_GET, "/", "", true, false,
          1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=1.000;level=1\r\n\r\n", FT_HTTP_GET, "/", "", true,
          true, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.\r\n\r\n", FT_HTTP_GET, "/", "", true, false, 1 },
        /* A comma inside a quoted parameter does not start a new range. */
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: a/b;x=\",text/plain,\"\r\n\r\n", FT_HTTP_GET, "/", "", true, false,
          1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: a/b;x=\"\\\",\", text/plain\r\n\r\n", FT_HTTP_GET, "/", "", true,
          true, 1 },
        /* Accept over two lines is one list; the first mention counts. */
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: image/png\r\nAccept: text/plain, text/plain;q=0\r\n\r\n", FT_HTTP_GET,
          "/", "", true, true, 1 },
        { "GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nAccept: text/plain\r\n\r\n", FT_HTTP_GET, "/", "",
          true, false, 1 },
};

static void test_valid(void)
{
        for (size_t i = 0; i < FT_ELEMENTSOF(valid_cases); i++) {
                const struct valid_case *c = &valid_cases[i];
                struct ft_http_req req;
                int status = -1;
                size_t len = strlen(c->text);

                memset(&req, 0xaa, sizeof(req));
                CHECK_INT(parse(c->text, len, &req, &status), (int)len);
                if (status != -1) {
                        fprintf(stderr, "valid case %zu: status %d\n", i, status);
                        CHECK_INT(status, -1);
                        continue;
                }
                CHECK_INT(req.method, c->method);
                CHECK_STR(req.path, c->path);
                CHECK_STR(req.query, c->query);
                CHECK_INT(req.keep_alive, c->keep_alive);
                CHECK_INT(req.accept_text, c->accept_text);
                CHECK_INT(req.minor_version, c->minor_version);
        }
}

struct invalid_case {
        const char *text;
        size_t len;
        int status;
};

/* sizeof, not strlen: some cases hold a NUL. */
#define BAD(text, status) { text, sizeof(text) - 1, status }

static const struct invalid_case invalid_cases[] = {
        /* Request line structure. */
        BAD("GET /\r\n\r\n", 400),
        BAD("GET\r\n\r\n", 400),
        BAD("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400),
        BAD(" GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
        BAD("\rGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        /* Versions: garbage is 400, another major version 505. */
        BAD("GET / http/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/x.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET  HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        BAD("GET / HTTP/0.9\r\n\r\n", 505),
        BAD("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        /* Targets. */
        BAD("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("CONNECT localhost:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET https://localhost/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET http:///v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET http://:80/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET http://user@localhost/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET http:/localhost/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/x#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/a\"b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /?a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /?a=% HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /?a=<b> HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        /* Paths that could mean something else once decoded. */
        BAD("GET /v1/token/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/a%2fb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/a%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/a%0a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/a%7F HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/a%2 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/a%g0 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/% HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/../v1/token/x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/.. HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/%2e%2E HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/token/.%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1/./status HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /. HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /.. HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /..?x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET //v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /v1//status HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET http://localhost//x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        /* Field lines. */
        BAD("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\n\tHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", 400),
        /* Host: required on 1.1, once, well-formed. */
        BAD("GET / HTTP/1.1\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nX-Host: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.0\r\nHost: x\r\nhost: y\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: [a/b]\r\n\r\n", 400),
        /* Bodies. */
        BAD("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 413),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n", 413),
        BAD("GET / HTTP/1.0\r\ntransfer-encoding: identity\r\nContent-Length: 0\r\n\r\n", 413),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -0\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x0\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400),
        /* The first problem in byte order decides. */
        BAD("GET / HTTP/1.1\r\nContent-Length: 5\r\nHost: x\r\nHost: x\r\n\r\n", 413),
        BAD("GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\nContent-Length: 5\r\n\r\n", 400),
        /* NUL anywhere. */
        BAD("\0GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\0\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\n\0\r\n", 400),
};

static void test_invalid(void)
{
        for (size_t i = 0; i < FT_ELEMENTSOF(invalid_cases); i++) {
                const struct invalid_case *c = &invalid_cases[i];
                struct ft_http_req req;
                int status = -1, r;

                r = parse(c->text, c->len, &req, &status);
                if (r != -EBADMSG || status != c->status)
                        fprintf(stderr, "invalid case %zu: \"%s\"\n", i, c->text);
                CHECK_INT(r, -EBADMSG);
                CHECK_INT(status, c->status);
        }
}

/*
 * Every split point: a valid request is "need more" until its last byte,
 * then exactly its length, also with the next request's bytes behind it.
 * An invalid one is "need more" or refused with its final status at every
 * prefix, never accepted.
 */
static void test_incremental(void)
{
        for (size_t i = 0; i < FT_ELEMENTSOF(valid_cases); i++) {
                const char *text = valid_cases[i].text;
                size_t len = strlen(text);
                unsigned early = 0;
                char *more;
                struct ft_http_req req;
                int status = -1;

                for (size_t k = 0; k < len; k++)
                        early += parse(text, k, &req, &status) != 0;
                CHECK_INT(early, 0);
                CHECK_INT(parse(text, len, &req, &status), (int)len);
                more = malloc(len + 8);
                if (!more)
                        abort();
                memcpy(more, text, len);
                memcpy(more + len, "GARBAGE\r", 8);
                CHECK_INT(parse(more, len + 8, &req, &status), (int)len);
                free(more);
                CHECK_INT(status, -1);
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(invalid_cases); i++) {
                const struct invalid_case *c = &invalid_cases[i];
                unsigned wrong = 0;

                for (size_t k = 0; k <= c->len; k++) {
                        struct ft_http_req req;
                        int status = -1, r = parse(c->text, k, &req, &status);

                        if (!(r == 0 && status == -1) && !(r == -EBADMSG && status == c->status))
                                wrong++;
                }
                if (wrong)
                        fprintf(stderr, "invalid case %zu has prefixes with other results\n", i);
                CHECK_INT(wrong, 0);
        }
}

/* Parse requests one at a time from one buffer, as the server does after a read. */
static void check_pipeline(const char *stream, const char *const *paths, size_t n_paths)
{
        size_t len = strlen(stream), off = 0;
        size_t i;

        for (i = 0; i < n_paths; i++) {
                struct ft_http_req req;
                int status = -1, r = parse(stream + off, len - off, &req, &status);

                CHECK(r > 0);
                if (r <= 0)
                        return;
                CHECK_STR(req.path, paths[i]);
                off += (size_t)r;
        }
        CHECK_INT(off, len);
}

static void test_pipelining(void)
{
        static const char two[] = "GET /v1/token/a HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "GET /v1/jwt/b?format=raw HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n";
        static const char three[] = "GET /v1/token/a HTTP/1.1\r\nHost: x\r\n\r\n"
                                    "\r\n" /* a stray CRLF between requests is skipped */
                                    "HEAD /v1/status HTTP/1.1\nHost: x\n\n"
                                    "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        static const char *const two_paths[] = { "/v1/token/a", "/v1/jwt/b" };
        static const char *const three_paths[] = { "/v1/token/a", "/v1/status", "/healthz" };
        struct ft_http_req req;
        size_t first = strlen("GET /v1/token/a HTTP/1.1\r\nHost: x\r\n\r\n");
        int status = -1;

        check_pipeline(two, two_paths, 2);
        check_pipeline(three, three_paths, 3);

        /* The second request's own fields, not the first one's. */
        CHECK_INT(parse(two + first, strlen(two) - first, &req, &status), (int)(strlen(two) - first));
        CHECK_STR(req.query, "format=raw");
        CHECK(req.accept_text);
        CHECK_INT(parse(two, strlen(two), &req, &status), (int)first);
        CHECK_STR(req.query, "");
        CHECK(!req.accept_text);

        /* A complete request followed by the start of the next one: the first is served. */
        CHECK_INT(parse(two, first + 10, &req, &status), (int)first);
        CHECK_INT(parse(two + first, 10, &req, &status), 0);

        /* A good request, then a bad one: the first still parses; the second is refused on its own. */
        {
                static const char mixed[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /../ HTTP/1.1\r\nHost: x\r\n\r\n";
                size_t a = strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");

                CHECK_INT(parse(mixed, strlen(mixed), &req, &status), (int)a);
                CHECK_INT(parse(mixed + a, strlen(mixed) - a, &req, &status), -EBADMSG);
                CHECK_INT(status, 400);
        }
}

/* A heap string of n copies of c (NUL-terminated). */
static char *repeat(char c, size_t n)
{
        char *s = malloc(n + 1);

        if (!s)
                abort();
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static char *concat3(const char *a, const char *b, const char *c)
{
        size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
        char *s = malloc(la + lb + lc + 1);

        if (!s)
                abort();
        memcpy(s, a, la);
        memcpy(s + la, b, lb);
        memcpy(s + la + lb, c, lc + 1);
        return s;
}

/* The result of parsing s; on success the return value is checked to be strlen(s). */
static int parse_status(const char *s)
{
        struct ft_http_req req;
        int status = -1, r = parse(s, strlen(s), &req, &status);

        if (r > 0)
                return (size_t)r == strlen(s) ? 200 : -1;
        return r == 0 ? 0 : status;
}

static void test_limit_request_line(void)
{
        /* A long method keeps the path short: the line limit alone is tested. */
        const size_t rest = strlen(" / HTTP/1.1");
        char *method = repeat('M', FT_HTTP_MAX_REQUEST_LINE - rest);
        char *line = concat3(method, " / HTTP/1.1", "\r\nHost: x\r\n\r\n");
        char *over, *m2;
        size_t line_len = FT_HTTP_MAX_REQUEST_LINE;

        CHECK_INT(strlen(line), line_len + strlen("\r\nHost: x\r\n\r\n"));
        CHECK_INT(parse_status(line), 200);
        free(line);
        /* With a bare LF, too: the limit is on the content, not the terminator. */
        line = concat3(method, " / HTTP/1.1", "\nHost: x\n\n");
        CHECK_INT(parse_status(line), 200);
        free(line);

        m2 = repeat('M', FT_HTTP_MAX_REQUEST_LINE - rest + 1);
        over = concat3(m2, " / HTTP/1.1", "\r\nHost: x\r\n\r\n");
        CHECK_INT(parse_status(over), 414);
        /* Known as soon as the first byte too many arrives, and not before. */
        {
                struct ft_http_req req;
                int status = -1;

                CHECK_INT(parse(over, FT_HTTP_MAX_REQUEST_LINE, &req, &status), 0);
                CHECK_INT(parse(over, FT_HTTP_MAX_REQUEST_LINE + 1, &req, &status), -EBADMSG);
                CHECK_INT(status, 414);
                /* Exactly at the limit, a CR still waits for its LF. */
                status = -1;
                line = concat3(method, " / HTTP/1.1", "\r");
                CHECK_INT(parse(line, strlen(line), &req, &status), 0);
                CHECK_INT(status, -1);
                free(line);
        }
        free(over);
        free(m2);
        free(method);
}

static void test_limit_path_query(void)
{
        char *seg = repeat('a', FT_HTTP_MAX_PATH - 2), *req_text;
        char encoded[3 * FT_HTTP_MAX_PATH + 1];

        /* Decoded path of FT_HTTP_MAX_PATH-1 bytes fits; one more is 414. */
        req_text = concat3("GET /", seg, " HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_INT(parse_status(req_text), 200);
        free(req_text);
        req_text = concat3("GET /a", seg, " HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_INT(parse_status(req_text), 414);
        free(req_text);

        /* The decoded length counts: 254 × "%41" is 762 bytes raw but fits. */
        encoded[0] = '\0';
        for (size_t i = 0; i < FT_HTTP_MAX_PATH - 2; i++)
                strcat(encoded, "%41");
        req_text = concat3("GET /", encoded, " HTTP/1.1\r\nHost: x\r\n\r\n");
        {
                struct ft_http_req req;
                int status = -1;

                CHECK_INT(parse(req_text, strlen(req_text), &req, &status), (int)strlen(req_text));
                CHECK_INT(strlen(req.path), FT_HTTP_MAX_PATH - 1);
                CHECK(strspn(req.path + 1, "A") == FT_HTTP_MAX_PATH - 2);
        }
        free(req_text);
        strcat(encoded, "%41");
        req_text = concat3("GET /", encoded, " HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_INT(parse_status(req_text), 414);
        free(req_text);
        /* Syntax errors come before sizes. */
        req_text = concat3("GET /a", seg, "%zz HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_INT(parse_status(req_text), 400);
        free(req_text);
        free(seg);

        /* The raw query: FT_HTTP_MAX_PATH-1 fits, one more is 414. */
        seg = repeat('q', FT_HTTP_MAX_PATH - 1);
        req_text = concat3("GET /?", seg, " HTTP/1.1\r\nHost: x\r\n\r\n");
        {
                struct ft_http_req req;
                int status = -1;

                CHECK_INT(parse(req_text, strlen(req_text), &req, &status), (int)strlen(req_text));
                CHECK_STR(req.query, seg);
        }
        free(req_text);
        req_text = concat3("GET /?q", seg, " HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_INT(parse_status(req_text), 414);
        free(req_text);
        free(seg);
}

static void test_limit_header_count(void)
{
        char fields[64 * 16] = "";
        char *req_text;

        /* Host plus 31 more: FT_HTTP_MAX_HEADERS field lines in all. */
        for (int i = 1; i < FT_HTTP_MAX_HEADERS; i++)
                snprintf(fields + strlen(fields), sizeof(fields) - strlen(fields), "X-%d: v\r\n", i);
        req_text = concat3("GET / HTTP/1.1\r\nHost: x\r\n", fields, "\r\n");
        CHECK_INT(parse_status(req_text), 200);
        free(req_text);
        req_text = concat3("GET / HTTP/1.1\r\nHost: x\r\n", fields, "X-Last: v\r\n\r\n");
        CHECK_INT(parse_status(req_text), 431);
        free(req_text);
        /* 32 lines without Host: the missing Host is the problem; a 33rd line is 431 whatever it holds. */
        req_text = concat3("GET / HTTP/1.1\r\nX-0: v\r\n", fields, "\r\n");
        CHECK_INT(parse_status(req_text), 400);
        free(req_text);
        req_text = concat3("GET / HTTP/1.1\r\nX-0: v\r\n", fields, "Host x\r\n\r\n");
        CHECK_INT(parse_status(req_text), 431);
        free(req_text);
}

/* A request whose head is exactly `total` bytes, padded in one field value. */
static char *head_of_size(size_t total, const char *prefix)
{
        const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ", *end = "\r\n\r\n";
        size_t fixed = strlen(prefix) + strlen(start) + strlen(end);
        char *pad = repeat('p', total - fixed), *a = concat3(prefix, start, pad), *s = concat3(a, end, "");

        free(pad);
        free(a);
        return s;
}

static void test_limit_head_bytes(void)
{
        struct ft_http_req req;
        int status = -1;
        char *s = head_of_size(FT_HTTP_MAX_HEADER_BYTES, "");
        size_t len = strlen(s);

        CHECK_INT(len, FT_HTTP_MAX_HEADER_BYTES);
        CHECK_INT(parse(s, len, &req, &status), FT_HTTP_MAX_HEADER_BYTES);
        /* One byte short of the end is "need more": the buffer is not full yet. */
        CHECK_INT(parse(s, len - 1, &req, &status), 0);
        free(s);

        s = head_of_size(FT_HTTP_MAX_HEADER_BYTES + 1, "");
        len = strlen(s);
        CHECK_INT(parse(s, len, &req, &status), -EBADMSG);
        CHECK_INT(status, 431);
        /* A full buffer without the end of the head is refused, never "need more". */
        status = -1;
        CHECK_INT(parse(s, FT_HTTP_MAX_HEADER_BYTES, &req, &status), -EBADMSG);
        CHECK_INT(status, 431);
        status = -1;
        CHECK_INT(parse(s, FT_HTTP_MAX_HEADER_BYTES - 1, &req, &status), 0);
        CHECK_INT(status, -1);
        free(s);

        /* Empty lines before the request line count towards the limit. */
        s = head_of_size(FT_HTTP_MAX_HEADER_BYTES, "\r\n\r\n\n");
        CHECK_INT(parse_status(s), 200);
        free(s);
        s = head_of_size(FT_HTTP_MAX_HEADER_BYTES + 1, "\r\n\r\n\n");
        CHECK_INT(parse_status(s), 431);
        free(s);
        s = repeat('\n', FT_HTTP_MAX_HEADER_BYTES);
        CHECK_INT(parse_status(s), 431);
        s[FT_HTTP_MAX_HEADER_BYTES - 1] = '\0';
        CHECK_INT(parse_status(s), 0);
        free(s);

        /* A full buffer that holds a complete request and more: the request is served. */
        s = head_of_size(100, "");
        {
                char *big = repeat('G', FT_HTTP_MAX_HEADER_BYTES + 100);

                memcpy(big, s, 100);
                CHECK_INT(parse(big, FT_HTTP_MAX_HEADER_BYTES + 100, &req, &status), 100);
                free(big);
        }
        free(s);
}

static void test_query_get(void)
{
        char out[16];

        CHECK_INT(ft_http_query_get("format=raw&wait=5", "format", out, sizeof(out)), 0);
        CHECK_STR(out, "raw");
        CHECK_INT(ft_http_query_get("format=raw&wait=5", "wait", out, sizeof(out)), 0);
        CHECK_STR(out, "5");
        CHECK_INT(ft_http_query_get("format=raw&wait=5", "form", out, sizeof(out)), -ENOENT);
        CHECK_INT(ft_http_query_get("format=raw&wait=5", "formats", out, sizeof(out)), -ENOENT);
        CHECK_INT(ft_http_query_get("format=raw&wait=5", "Format", out, sizeof(out)), -ENOENT);
        CHECK_INT(ft_http_query_get("format=raw&wait=5", "raw", out, sizeof(out)), -ENOENT);
        CHECK_INT(ft_http_query_get("", "wait", out, sizeof(out)), -ENOENT);
        CHECK_INT(ft_http_query_get("&&=x&", "wait", out, sizeof(out)), -ENOENT);
        /* The first occurrence wins; empty elements are skipped. */
        CHECK_INT(ft_http_query_get("&wait=1&wait=2", "wait", out, sizeof(out)), 0);
        CHECK_STR(out, "1");
        /* A key without '=' has the empty value; an empty value is a value. */
        CHECK_INT(ft_http_query_get("a=1&raw&b=2", "raw", out, sizeof(out)), 0);
        CHECK_STR(out, "");
        CHECK_INT(ft_http_query_get("wait=", "wait", out, sizeof(out)), 0);
        CHECK_STR(out, "");
        /* Only the first '=' splits. */
        CHECK_INT(ft_http_query_get("a=b=c", "a", out, sizeof(out)), 0);
        CHECK_STR(out, "b=c");
        /* Percent-decoding of keys and values; '+' stays a plus sign. */
        CHECK_INT(ft_http_query_get("%66ormat=r%61w", "format", out, sizeof(out)), 0);
        CHECK_STR(out, "raw");
        CHECK_INT(ft_http_query_get("x=a+b%20c%2B%26%3d", "x", out, sizeof(out)), 0);
        CHECK_STR(out, "a+b c+&=");
        CHECK_INT(ft_http_query_get("a%3Db=1", "a=b", out, sizeof(out)), 0);
        CHECK_STR(out, "1");
        CHECK_INT(ft_http_query_get("a%26b=1", "a", out, sizeof(out)), -ENOENT);
        /* Malformed: bad %XX anywhere, control characters in the value. */
        CHECK_INT(ft_http_query_get("wait=5&x=%zz", "wait", out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("wait=5%", "wait", out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("wait=5%4", "wait", out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("wait=5%00", "wait", out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("wait=%0a", "wait", out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("wait=%7f", "wait", out, sizeof(out)), -EINVAL);
        /* Control characters elsewhere do not matter. */
        CHECK_INT(ft_http_query_get("x=%00&wait=5", "wait", out, sizeof(out)), 0);
        CHECK_STR(out, "5");
        /* Size: outlen-1 characters fit (decoded), one more does not and out is untouched. */
        CHECK_INT(ft_http_query_get("v=%41%41%41", "v", out, 4), 0);
        CHECK_STR(out, "AAA");
        strcpy(out, "keep");
        CHECK_INT(ft_http_query_get("v=AAAA", "v", out, 4), -EINVAL);
        CHECK_STR(out, "keep");
        CHECK_INT(ft_http_query_get("v=", "v", out, 1), 0);
        CHECK_STR(out, "");
        /* Arguments. */
        CHECK_INT(ft_http_query_get(NULL, "v", out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("v=1", NULL, out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("v=1", "", out, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("v=1", "v", NULL, sizeof(out)), -EINVAL);
        CHECK_INT(ft_http_query_get("v=1", "v", out, 0), -EINVAL);
}

/* The query the parser keeps is the one query_get reads. */
static void test_query_roundtrip(void)
{
        static const char text[] = "GET /v1/jwt/ci?wait=30&format=raw HTTP/1.1\r\nHost: x\r\n\r\n";
        struct ft_http_req req;
        char out[16];
        int status = -1;

        CHECK_INT(parse(text, strlen(text), &req, &status), (int)strlen(text));
        CHECK_INT(ft_http_query_get(req.query, "format", out, sizeof(out)), 0);
        CHECK_STR(out, "raw");
        CHECK_INT(ft_http_query_get(req.query, "wait", out, sizeof(out)), 0);
        CHECK_STR(out, "30");
}

/* Some refusals need no line end: a client waiting for an answer gets it at once. */
static void test_early_refusal(void)
{
        static const struct invalid_case early[] = {
                BAD("GET / HTTP/1.1\rX", 400),
                BAD("GET / HTTP/1.1\r\nHost: x\rX", 400),
                BAD("\x16\x03\x01\x02\x00\x01", 400), /* a TLS ClientHello */
                BAD("GET /v1/token/x HTTP/1.1\r\nHost: x\r\nX-A: \0", 400),
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(early); i++) {
                struct ft_http_req req;
                int status = -1;

                CHECK_INT(parse(early[i].text, early[i].len, &req, &status), -EBADMSG);
                CHECK_INT(status, early[i].status);
        }
}

static void test_arguments(void)
{
        static const char text[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        struct ft_http_req req;
        int status = -1;

        CHECK_INT(ft_http_parse(NULL, 1, &req, &status), -EINVAL);
        CHECK_INT(ft_http_parse(text, strlen(text), NULL, &status), -EINVAL);
        CHECK_INT(ft_http_parse(text, strlen(text), &req, NULL), -EINVAL);
        CHECK_INT(status, -1);
        CHECK_INT(ft_http_parse(NULL, 0, &req, &status), 0);
        CHECK_INT(ft_http_parse(text, 0, &req, &status), 0);
        /* Out-parameters: *ret untouched on refusal, *ret_status untouched on success. */
        memset(&req, 0x5a, sizeof(req));
        CHECK_INT(parse("GET /.. HTTP/1.1\r\nHost: x\r\n\r\n", 29, &req, &status), -EBADMSG);
        CHECK_INT(status, 400);
        CHECK_INT((unsigned char)req.path[0], 0x5a);
        status = -1;
        CHECK_INT(parse(text, strlen(text), &req, &status), (int)strlen(text));
        CHECK_INT(status, -1);
}

int main(void)
{
        test_valid();
        test_invalid();
        test_incremental();
        test_pipelining();
        test_limit_request_line();
        test_limit_path_query();
        test_limit_header_count();
        test_limit_head_bytes();
        test_query_get();
        test_query_roundtrip();
        test_early_refusal();
        test_arguments();
        return test_summary();
}
