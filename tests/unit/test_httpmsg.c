/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "httpmsg.h"
#include "test.h"

/* A piece of a split URL as a string (static buffer: one use per CHECK). */
static const char *piece(const char *p, size_t n)
{
        static char buf[4][256];
        static unsigned next;
        char *b = buf[next++ % 4];

        snprintf(b, sizeof(buf[0]), "%.*s", (int)n, p);
        return b;
}

static void check_split(const char *url, const char *scheme, const char *host, int port, const char *path,
                        const char *query)
{
        struct ft_url u;

        memset(&u, 0, sizeof(u));
        CHECK_INT(ft_url_split(url, &u), 0);
        if (!u.host)
                return;
        CHECK_STR(piece(u.scheme, u.scheme_len), scheme);
        CHECK_STR(piece(u.host, u.host_len), host);
        CHECK_INT(u.port, port);
        CHECK_STR(piece(u.path, u.path_len), path);
        CHECK_STR(piece(u.query, u.query_len), query);
}

static void test_url_split(void)
{
        check_split("https://sts.us-east-2.amazonaws.com/", "https", "sts.us-east-2.amazonaws.com", 0, "/", "");
        check_split("http://127.0.0.1:8080/a/b?x=1&y=2#frag", "http", "127.0.0.1", 8080, "/a/b", "x=1&y=2");
        check_split("http://169.254.170.2/v2/credentials/abc", "http", "169.254.170.2", 0,
                    "/v2/credentials/abc", "");
        /* IPv6 literals lose their brackets. */
        check_split("http://[fd00:ec2::254]/latest/api/token", "http", "fd00:ec2::254", 0, "/latest/api/token", "");
        check_split("https://[::1]:8443", "https", "::1", 8443, "/", "");
        /* A missing path is "/", also before a query or fragment. */
        check_split("https://login.example", "https", "login.example", 0, "/", "");
        check_split("https://h?x=1", "https", "h", 0, "/", "x=1");
        check_split("https://h#f?x", "https", "h", 0, "/", "");
        check_split("https://h/?", "https", "h", 0, "/", "");
        check_split("https://h:1", "https", "h", 1, "/", "");
        check_split("https://h:65535/", "https", "h", 65535, "/", "");
        check_split("https://h/p@q", "https", "h", 0, "/p@q", "");
        check_split("https://h/?u=http://x:1@y", "https", "h", 0, "/", "u=http://x:1@y");
        check_split("git+ssh.x-y://h/", "git+ssh.x-y", "h", 0, "/", "");
}

static void test_url_split_rejects(void)
{
        static const char *const bad[] = {
                "",
                "sts.amazonaws.com/",
                "://h/",
                "https//h/",
                "https:///path",
                "https://?x",
                "https://user@h/",               /* userinfo */
                "https://user:pw@h:443/",
                "https://h:/",                   /* empty port */
                "https://h:0/",
                "https://h:65536/",
                "https://h:99999999999999999999/",
                "https://h:8a/",
                "https://h:-1/",
                "https://h: 80/",
                "https://:80/",
                "http://[]/",
                "http://[::1/",
                "http://[::1]x/",
                "http://[::1]:/",
                "http://::1/",
                "1http://h/",                    /* a scheme starts with a letter */
                "ht tp://h/",
                "/a?u=http://h/",
        };
        struct ft_url u = { .port = 4242 };

        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                int r = ft_url_split(bad[i], &u);
                if (r != -EINVAL)
                        fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
                CHECK_INT(r, -EINVAL);
        }
        /* ret is written only on success. */
        CHECK_INT(u.port, 4242);
        CHECK_INT(ft_url_split(NULL, &u), -EINVAL);
        CHECK_INT(ft_url_split("https://h/", NULL), -EINVAL);
}

static void check_host_header(const char *url, const char *want)
{
        struct ft_url u;
        char *h = NULL;

        CHECK_INT(ft_url_split(url, &u), 0);
        CHECK_INT(ft_url_host_header(&u, &h), 0);
        CHECK_STR(h, want);
        free(h);
}

static void test_url_host_header(void)
{
        check_host_header("https://sts.us-east-2.amazonaws.com/", "sts.us-east-2.amazonaws.com");
        check_host_header("http://127.0.0.1:8080/x", "127.0.0.1:8080");
        check_host_header("http://[fd00:ec2::254]/latest", "[fd00:ec2::254]");
        check_host_header("https://[::1]:8443?x", "[::1]:8443");
        CHECK_INT(ft_url_host_header(NULL, NULL), -EINVAL);
}

static void test_urlencode_every_byte(void)
{
        for (int c = 0; c < 256; c++) {
                struct ft_strbuf b = { 0 };
                char in = (char)c, want[4];
                char *got;
                bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                  c == '-' || c == '_' || c == '.' || c == '~';

                if (unreserved)
                        snprintf(want, sizeof(want), "%c", c);
                else
                        snprintf(want, sizeof(want), "%%%02X", c);
                ft_strbuf_urlencode(&b, &in, 1);
                got = ft_strbuf_steal(&b);
                if (!got || strcmp(got, want) != 0)
                        fprintf(stderr, "  byte 0x%02x\n", c);
                CHECK_STR(got, want);
                free(got);
        }
        {
                struct ft_strbuf b = { 0 };
                char *got;

                /* Counted bytes: an embedded NUL is encoded, not a terminator. */
                ft_strbuf_urlencode(&b, "a b\0/+=&\xe1\x88\xb4~", 12);
                got = ft_strbuf_steal(&b);
                CHECK_STR(got, "a%20b%00%2F%2B%3D%26%E1%88%B4~");
                free(got);
        }
}

static void test_headers(void)
{
        struct ft_request *r = NULL;
        char name[16];

        CHECK_INT(ft_request_new(&r, "POST", "https://h/"), 0);
        CHECK_INT(ft_request_add_header(r, "Content-Type", "text/plain"), 0);
        CHECK_INT(ft_request_add_header(r, "X-Empty", ""), 0);
        CHECK_STR(ft_request_header(r, "content-type"), "text/plain");
        CHECK_STR(ft_request_header(r, "CONTENT-TYPE"), "text/plain");
        CHECK_STR(ft_request_header(r, "x-empty"), "");
        CHECK(ft_request_header(r, "Content") == NULL);
        CHECK(ft_request_header(NULL, "Content-Type") == NULL);

        /* CR or LF anywhere would let a value start a header of its own. */
        CHECK_INT(ft_request_add_header(r, "X-A", "v\r\nX-Evil: 1"), -EINVAL);
        CHECK_INT(ft_request_add_header(r, "X-A", "v\n"), -EINVAL);
        CHECK_INT(ft_request_add_header(r, "X-A", "\rv"), -EINVAL);
        CHECK_INT(ft_request_add_header(r, "X-A\r\nX-Evil", "v"), -EINVAL);
        CHECK_INT(ft_request_add_header(r, "X-A:", "v"), -EINVAL);
        CHECK_INT(ft_request_add_header(r, "X A", "v"), -EINVAL);
        CHECK_INT(ft_request_add_header(r, "", "v"), -EINVAL);
        CHECK_INT(ft_request_add_header(r, "X-A", NULL), -EINVAL);
        CHECK_INT(ft_request_set_header(r, "Content-Type", "a\nb"), -EINVAL);
        CHECK_INT(ft_request_set_header(r, "X-New", "a\rb"), -EINVAL);
        CHECK_INT(r->n_headers, 2);
        CHECK_STR(ft_request_header(r, "Content-Type"), "text/plain");

        /* set_header replaces the first match in place, whatever its case. */
        CHECK_INT(ft_request_add_header(r, "X-Dup", "1"), 0);
        CHECK_INT(ft_request_add_header(r, "X-Dup", "2"), 0);
        CHECK_INT(ft_request_set_header(r, "content-TYPE", "application/json"), 0);
        CHECK_INT(ft_request_set_header(r, "x-dup", "one"), 0);
        CHECK_INT(r->n_headers, 4);
        CHECK_STR(r->headers[0].name, "Content-Type");
        CHECK_STR(r->headers[0].value, "application/json");
        CHECK_STR(r->headers[2].value, "one");
        CHECK_STR(r->headers[3].value, "2");
        CHECK_INT(ft_request_set_header(r, "X-Added", "v"), 0);
        CHECK_INT(r->n_headers, 5);

        /* Fill to FT_MAX_HEADERS; one more is -E2BIG, replacing still works. */
        for (size_t i = r->n_headers; i < FT_MAX_HEADERS; i++) {
                snprintf(name, sizeof(name), "X-H%zu", i);
                CHECK_INT(ft_request_add_header(r, name, "v"), 0);
        }
        CHECK_INT(r->n_headers, FT_MAX_HEADERS);
        CHECK_INT(ft_request_add_header(r, "X-One-Too-Many", "v"), -E2BIG);
        CHECK_INT(ft_request_set_header(r, "X-One-Too-Many", "v"), -E2BIG);
        CHECK_INT(ft_request_set_header(r, "X-Added", "w"), 0);
        CHECK_STR(ft_request_header(r, "x-added"), "w");
        CHECK_INT(r->n_headers, FT_MAX_HEADERS);
        ft_request_free(r);
        ft_request_free(NULL);
}

static void test_request_new_and_body(void)
{
        struct ft_request *r = (struct ft_request *)"untouched";

        CHECK_INT(ft_request_new(&r, NULL, "https://h/"), -EINVAL);
        CHECK_INT(ft_request_new(&r, "GET", NULL), -EINVAL);
        CHECK_INT(ft_request_new(NULL, "GET", "https://h/"), -EINVAL);
        CHECK_STR((const char *)r, "untouched");
        r = NULL;
        CHECK_INT(ft_request_new(&r, "PUT", "http://169.254.169.254/latest/api/token"), 0);
        CHECK_STR(r->method, "PUT");
        CHECK_STR(r->url, "http://169.254.169.254/latest/api/token");
        CHECK(r->body == NULL);

        CHECK_INT(ft_request_set_body(r, "a\0b", 3), 0);
        CHECK_INT(r->body_len, 3);
        CHECK(memcmp(r->body, "a\0b", 4) == 0);
        CHECK_INT(ft_request_set_body(r, "replaced", 8), 0);
        CHECK_STR(r->body, "replaced");
        CHECK_INT(ft_request_set_body(r, NULL, 0), 0);
        CHECK_STR(r->body, "");
        CHECK_INT(r->body_len, 0);
        CHECK_INT(ft_request_set_body(r, NULL, 1), -EINVAL);
        CHECK_INT(ft_request_set_body(NULL, "x", 1), -EINVAL);
        ft_request_free(r);
}

static void test_strbuf(void)
{
        struct ft_strbuf b = { .max = 10 };
        char *s;

        /* An untouched buffer still yields a string. */
        s = ft_strbuf_steal(&b);
        CHECK_STR(s, "");
        free(s);

        b = (struct ft_strbuf){ .max = 10 };
        ft_strbuf_puts(&b, "12345");
        ft_strbuf_printf(&b, "%d%s", 67, "89");
        CHECK_INT(b.len, 9);
        CHECK(!b.oom);
        /* The NUL needs the tenth byte: one more character is past the cap. */
        ft_strbuf_append(&b, "0", 1);
        CHECK(b.oom);
        /* Sticky: a later small append does not resurrect the buffer. */
        ft_strbuf_done(&b);
        b = (struct ft_strbuf){ .max = 10 };
        ft_strbuf_puts(&b, "123456789X");
        CHECK(b.oom);
        ft_strbuf_puts(&b, "");
        ft_strbuf_urlencode(&b, "a", 1);
        CHECK(b.oom);
        CHECK(ft_strbuf_steal(&b) == NULL);
        CHECK(b.p == NULL);

        b = (struct ft_strbuf){ .max = 10 };
        ft_strbuf_printf(&b, "%s", "0123456789");
        CHECK(b.oom);
        CHECK(ft_strbuf_steal(&b) == NULL);

        /* Encoding triples a byte: 3 spaces fit in 10 bytes, 4 do not, and then nothing is returned. */
        b = (struct ft_strbuf){ .max = 10 };
        ft_strbuf_urlencode(&b, "   ", 3);
        CHECK(!b.oom);
        ft_strbuf_done(&b);
        b = (struct ft_strbuf){ .max = 10 };
        ft_strbuf_urlencode(&b, "    ", 4);
        CHECK(b.oom);
        CHECK(ft_strbuf_steal(&b) == NULL);

        /* The default cap is 1 MiB, NUL included. */
        {
                size_t n = (size_t)1 << 20;
                char *big = malloc(n);

                CHECK(big != NULL);
                if (big) {
                        memset(big, 'a', n);
                        b = (struct ft_strbuf){ 0 };
                        ft_strbuf_append(&b, big, n - 1);
                        CHECK(!b.oom);
                        CHECK_INT(b.len, n - 1);
                        ft_strbuf_append(&b, "a", 1);
                        CHECK(b.oom);
                        ft_strbuf_done(&b);
                        b = (struct ft_strbuf){ 0 };
                        ft_strbuf_append(&b, big, n);
                        CHECK(b.oom);
                        ft_strbuf_done(&b);
                        free(big);
                }
        }

        /* Growth keeps the contents (the old buffer is copied, then wiped). */
        b = (struct ft_strbuf){ 0 };
        for (int i = 0; i < 100; i++)
                ft_strbuf_printf(&b, "%02d", i);
        s = ft_strbuf_steal(&b);
        CHECK(s && strlen(s) == 200 && strncmp(s, "000102", 6) == 0 && strcmp(s + 194, "979899") == 0);
        free(s);
}

/* The shared POST builder: method, URL, Host from the URL (port kept), Content-Type, exact body bytes. */
static void test_request_new_post(void)
{
        static const char body[] = "a=1&b=%20\0tail";
        struct ft_request *r = NULL;

        CHECK_INT(ft_request_new_post(&r, "https://sts.us-east-2.amazonaws.com:8443/x?y=1",
                                      "application/x-www-form-urlencoded", body, sizeof(body) - 1), 0);
        if (r) {
                CHECK_STR(r->method, "POST");
                CHECK_STR(r->url, "https://sts.us-east-2.amazonaws.com:8443/x?y=1");
                CHECK_STR(ft_request_header(r, "Host"), "sts.us-east-2.amazonaws.com:8443");
                CHECK_STR(ft_request_header(r, "Content-Type"), "application/x-www-form-urlencoded");
                CHECK_INT(r->body_len, sizeof(body) - 1);
                CHECK(memcmp(r->body, body, sizeof(body) - 1) == 0);
                CHECK_INT(r->n_headers, 2);
        }
        ft_request_free(r);
        r = NULL;
        CHECK(ft_request_new_post(&r, "not a url", "text/plain", "x", 1) < 0);
        CHECK(r == NULL);
        CHECK(ft_request_new_post(&r, "https://h/", "text/plain\r\nX-Evil: 1", "x", 1) < 0);
        CHECK(r == NULL);
}

int main(void)
{
        test_url_split();
        test_url_split_rejects();
        test_url_host_header();
        test_urlencode_every_byte();
        test_headers();
        test_request_new_and_body();
        test_request_new_post();
        test_strbuf();
        return test_summary();
}
