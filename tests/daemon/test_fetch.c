/* SPDX-License-Identifier: MIT */
/*
 * test_fetch.c: daemon/fetch.c against a local fake upstream
 * (tests/daemon/fetch_server.py, plain HTTP and HTTPS on 127.0.0.1 with a
 * throwaway CA). Every case builds its own loop and fetcher and ends with
 * fetcher_free(), uv_run() and uv_loop_close() == 0, so a leaked handle fails.
 *
 * Environment: FT_FETCH_SERVER (the script), else
 * $FT_TESTS_DIR/daemon/fetch_server.py, else tests/daemon/fetch_server.py;
 * FT_PYTHON (default /usr/bin/python3, which has python3-cryptography);
 * FT_SHARED_DIR for the captured IMDS request.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "fetch.h"
#include "ft-config.h"
#include "test.h"

extern char **environ;

#define UA "fedtokend/" FT_VERSION

static struct {
        pid_t pid;
        int stdin_fd;
        int http_port, https_port;
        char dir[64];
        char ca[128];
} srv;

/* ---- the fake upstream ---------------------------------------------------- */

static const char *server_script(void)
{
        static char path[4096];
        const char *s = getenv("FT_FETCH_SERVER");
        const char *t = getenv("FT_TESTS_DIR");

        if (s && *s)
                return s;
        if (t && *t) {
                snprintf(path, sizeof(path), "%s/daemon/fetch_server.py", t);
                return path;
        }
        return "tests/daemon/fetch_server.py";
}

static int server_start(void)
{
        posix_spawn_file_actions_t fa;
        int in[2], out[2];
        char line[128] = { 0 };
        size_t len = 0;
        char *argv[4];

        snprintf(srv.dir, sizeof(srv.dir), "/tmp/test_fetch.XXXXXX");
        if (!mkdtemp(srv.dir))
                return -errno;
        snprintf(srv.ca, sizeof(srv.ca), "%s/ca.pem", srv.dir);
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        argv[0] = getenv("FT_PYTHON") && *getenv("FT_PYTHON") ? getenv("FT_PYTHON") : (char *)"/usr/bin/python3";
        argv[1] = (char *)server_script();
        argv[2] = srv.dir;
        argv[3] = NULL;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        if (posix_spawn(&srv.pid, argv[0], &fa, NULL, argv, environ) != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -ENOEXEC;
        }
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        srv.stdin_fd = in[1];
        while (len < sizeof(line) - 1) {
                ssize_t n = read(out[0], line + len, 1);
                if (n <= 0 || line[len] == '\n')
                        break;
                len++;
        }
        close(out[0]);
        if (sscanf(line, "READY %d %d", &srv.http_port, &srv.https_port) != 2) {
                fprintf(stderr, "fetch server did not start (%s): \"%s\"\n", argv[1], line);
                return -EIO;
        }
        return 0;
}

static void server_stop(void)
{
        static const char *const files[] = { "ca.pem", "server.pem", "server.key" };
        char path[192];

        close(srv.stdin_fd);   /* the server exits when its stdin closes */
        (void)waitpid(srv.pid, NULL, 0);
        for (size_t i = 0; i < FT_ELEMENTSOF(files); i++) {
                snprintf(path, sizeof(path), "%s/%s", srv.dir, files[i]);
                (void)unlink(path);
        }
        (void)rmdir(srv.dir);
}

/* ---- harness -------------------------------------------------------------- */

struct env {
        uv_loop_t loop;
        struct fetcher *f;
};

struct result {
        int calls;
        int error;
        char errmsg[1024];
        long status;
        char *body;
        size_t body_len;
        char ctype[256];
        bool has_ctype;
        int64_t retry_after, date;
        /* re-entrancy cases: run from inside `done` */
        void (*hook)(struct result *r);
        struct env *env;
        struct fetch *other;
        struct fetch *self;
        int index;
};

static void on_done(void *userdata, int error, const char *errmsg, const struct ft_response *resp)
{
        struct result *r = userdata;

        r->calls++;
        r->error = error;
        if (errmsg)
                snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg);
        CHECK((error == 0) == (resp != NULL));
        CHECK((error == 0) == (errmsg == NULL));
        if (resp) {
                r->status = resp->status;
                free(r->body);
                r->body = malloc(resp->body_len + 1);
                if (r->body) {
                        memcpy(r->body, resp->body, resp->body_len + 1);
                        r->body_len = resp->body_len;
                }
                CHECK(resp->body[resp->body_len] == '\0');
                r->has_ctype = resp->content_type != NULL;
                snprintf(r->ctype, sizeof(r->ctype), "%s", resp->content_type ? resp->content_type : "");
                r->retry_after = resp->retry_after;
                r->date = resp->date;
        }
        if (r->hook)
                r->hook(r);
}

static void result_done(struct result *r)
{
        free(r->body);
        r->body = NULL;
}

static void env_init(struct env *e, const char *ca)
{
        memset(e, 0, sizeof(*e));
        CHECK_INT(uv_loop_init(&e->loop), 0);
        CHECK_INT(fetcher_new(&e->loop, ca, &e->f), 0);
}

/* The teardown every case shares: nothing may stay open on the loop. */
static void env_done(struct env *e)
{
        fetcher_free(e->f);
        CHECK_INT(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
        CHECK_INT(uv_loop_close(&e->loop), 0);
}

/* Runs the loop until *counter reaches target or nothing is left to wait for. */
static void run_until(struct env *e, const int *counter, int target)
{
        while (*counter < target && uv_run(&e->loop, UV_RUN_ONCE))
                ;
}

static struct ft_request *req_new(const char *method, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static struct ft_request *req_new(const char *method, const char *fmt, ...)
{
        struct ft_request *req = NULL;
        char url[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(url, sizeof(url), fmt, ap);
        va_end(ap);
        CHECK_INT(ft_request_new(&req, method, url), 0);
        return req;
}

/* Start one transfer and run the loop until its `done`. */
static void fetch_one(struct env *e, struct ft_request *req, const struct fetch_opts *o, struct result *r)
{
        int rc = fetcher_start(e->f, req, o, on_done, r, NULL);

        CHECK_INT(rc, 0);
        if (rc == 0)
                run_until(e, &r->calls, 1);
        CHECK_INT(r->calls, 1);
}

static const struct fetch_opts http_ok = { .allow_http = true };

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t count_substr(const char *hay, const char *needle)
{
        size_t n = 0;

        for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
                n++;
        return n;
}

/* ---- what goes on the wire ------------------------------------------------ */

static void test_get_exact(void)
{
        struct env e;
        struct result r = { 0 };
        struct ft_request *req;
        char want[512];

        env_init(&e, NULL);
        req = req_new("GET", "http://127.0.0.1:%d/echo?Action=Test&x=1", srv.http_port);
        CHECK_INT(ft_request_add_header(req, "X-Test", "one"), 0);
        CHECK_INT(ft_request_add_header(req, "X-Empty", ""), 0);
        fetch_one(&e, req, &http_ok, &r);
        snprintf(want, sizeof(want),
                 "GET /echo?Action=Test&x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: " UA "\r\n"
                 "Accept: */*\r\nX-Test: one\r\nX-Empty:\r\n\r\n", srv.http_port);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.status, 200);
        CHECK_STR(r.body, want);
        CHECK_STR(r.ctype, "application/octet-stream");
        CHECK_INT(r.retry_after, 0);
        CHECK_INT(r.date, 0);
        result_done(&r);
        env_done(&e);
}

static void test_post_exact(void)
{
        static const char body[] = "Action=GetWebIdentityToken&Version=2011-06-15&Audience.member.1=api%3A%2F%2FAzureADTokenExchange";
        struct env e;
        struct result r = { 0 };
        struct ft_request *req;
        char want[1024];

        env_init(&e, NULL);
        req = req_new("POST", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(ft_request_add_header(req, "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), 0);
        CHECK_INT(ft_request_add_header(req, "X-Amz-Date", "20251201T120000Z"), 0);
        CHECK_INT(ft_request_set_body(req, body, strlen(body)), 0);
        fetch_one(&e, req, &http_ok, &r);
        snprintf(want, sizeof(want),
                 "POST /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: " UA "\r\nAccept: */*\r\n"
                 "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
                 "X-Amz-Date: 20251201T120000Z\r\nContent-Length: %zu\r\n\r\n%s",
                 srv.http_port, strlen(body), body);
        CHECK_INT(r.error, 0);
        CHECK_STR(r.body, want);
        result_done(&r);
        env_done(&e);
}

/*
 * The IMDSv2 token PUT has no body but must carry Content-Length: 0 and no
 * Content-Type, like the SDK's request in the captured vector.
 */
static void test_put_empty_imds(void)
{
        struct env e;
        struct result r = { 0 };
        struct ft_request *req;
        char want[512];
        size_t cap_len = 0;
        char *captured = test_read_shared("vectors/captured/imds-token-put.http", &cap_len);

        CHECK(captured != NULL);
        env_init(&e, NULL);
        req = req_new("PUT", "http://127.0.0.1:%d/echo/latest/api/token", srv.http_port);
        CHECK_INT(ft_request_add_header(req, "x-aws-ec2-metadata-token-ttl-seconds", "21600"), 0);
        fetch_one(&e, req, &http_ok, &r);
        snprintf(want, sizeof(want),
                 "PUT /echo/latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: " UA "\r\n"
                 "Accept: */*\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n",
                 srv.http_port);
        CHECK_INT(r.error, 0);
        CHECK_STR(r.body, want);
        /* Every header line of the SDK's request is there too, except its Host and Connection. */
        for (char *line = captured ? strstr(captured, "\r\n") : NULL; line && line[2] != '\r';) {
                char *end = strstr(line + 2, "\r\n");
                char hdr[256];

                if (!end)
                        break;
                snprintf(hdr, sizeof(hdr), "\r\n%.*s\r\n", (int)(end - line - 2), line + 2);
                if (strncmp(hdr + 2, "Host:", 5) != 0 && strncmp(hdr + 2, "Connection:", 11) != 0)
                        CHECK_CONTAINS(r.body, hdr);
                line = end;
        }
        result_done(&r);
        free(captured);
        env_done(&e);
}

/* curl adds "Expect: 100-continue" above 1 MiB; we never send it. */
static void test_large_post_no_expect(void)
{
        const size_t n = 1536 * 1024;
        struct fetch_opts o = { .allow_http = true, .max_body = 4 << 20 };
        struct env e;
        struct result r = { 0 };
        struct ft_request *req;
        char *body = malloc(n);
        char *sep;

        CHECK(body != NULL);
        if (!body)
                return;
        for (size_t i = 0; i < n; i++)
                body[i] = (char)('a' + i % 26);
        env_init(&e, NULL);
        req = req_new("POST", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(ft_request_set_body(req, body, n), 0);
        fetch_one(&e, req, &o, &r);
        CHECK_INT(r.error, 0);
        sep = r.body ? strstr(r.body, "\r\n\r\n") : NULL;
        CHECK(sep != NULL);
        if (sep) {
                *sep = '\0';
                CHECK(strstr(r.body, "Expect") == NULL);
                /* An untyped body goes without curl's form-urlencoded default. */
                CHECK(strstr(r.body, "Content-Type") == NULL);
                CHECK_CONTAINS(r.body, "\r\nContent-Length: 1572864");
                CHECK_INT(r.body_len - (size_t)(sep + 4 - r.body), n);
                CHECK(memcmp(sep + 4, body, n) == 0);
        }
        result_done(&r);
        free(body);
        env_done(&e);
}

static void test_host_override(void)
{
        struct env e;
        struct result r = { 0 };
        struct ft_request *req;

        env_init(&e, NULL);
        req = req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(ft_request_add_header(req, "Host", "sts.us-east-2.amazonaws.com"), 0);
        CHECK_INT(ft_request_add_header(req, "Accept", "application/json"), 0);
        fetch_one(&e, req, &http_ok, &r);
        CHECK_INT(r.error, 0);
        CHECK_CONTAINS(r.body, "\r\nHost: sts.us-east-2.amazonaws.com\r\n");
        CHECK_INT(count_substr(r.body ? r.body : "", "Host:"), 1);
        CHECK_INT(count_substr(r.body ? r.body : "", "Accept:"), 1);
        CHECK_CONTAINS(r.body, "\r\nAccept: application/json\r\n");
        result_done(&r);
        env_done(&e);
}

/* Requests that would break the request line or smuggle a header never start. */
static int bad_done_calls;
static void bad_done(void *userdata, int error, const char *errmsg, const struct ft_response *resp)
{
        bad_done_calls++;
}

static void test_start_invalid(void)
{
        struct env e;
        struct ft_request *req;

        env_init(&e, NULL);
        req = req_new("G ET", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(fetcher_start(e.f, req, &http_ok, bad_done, NULL, NULL), -EINVAL);
        req = req_new("GET", "http://127.0.0.1:%d/echo?a=1 b", srv.http_port);
        CHECK_INT(fetcher_start(e.f, req, &http_ok, bad_done, NULL, NULL), -EINVAL);
        req = req_new("GET", "http://user@127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(fetcher_start(e.f, req, &http_ok, bad_done, NULL, NULL), -EINVAL);
        /* The struct is public: a value with CR LF set behind the API's back. */
        req = req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(ft_request_add_header(req, "X-A", "b"), 0);
        req->headers[0].value[0] = '\n';
        CHECK_INT(fetcher_start(e.f, req, &http_ok, bad_done, NULL, NULL), -EINVAL);
        req = req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(ft_request_set_body(req, "x", 1), 0);
        CHECK_INT(fetcher_start(e.f, req, &http_ok, bad_done, NULL, NULL), -EINVAL);
        req = req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(fetcher_start(e.f, req, &(struct fetch_opts){ .timeout_ms = -1 }, bad_done, NULL, NULL), -EINVAL);
        req = req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(fetcher_start(e.f, req, &(struct fetch_opts){ .max_body = 65 << 20 }, bad_done, NULL, NULL),
                  -EINVAL);
        req = req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port);
        CHECK_INT(fetcher_start(e.f, req, &http_ok, NULL, NULL, NULL), -EINVAL);
        CHECK_INT(fetcher_active(e.f), 0);
        while (uv_run(&e.loop, UV_RUN_NOWAIT))
                ;
        CHECK_INT(bad_done_calls, 0);
        env_done(&e);
}

/* ---- responses ------------------------------------------------------------ */

static void test_status_headers(void)
{
        struct env e;
        struct result r = { 0 };
        int64_t now = (int64_t)time(NULL);

        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/status/503", srv.http_port), &http_ok, &r);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.status, 503);
        CHECK_STR(r.ctype, "application/json");
        CHECK_INT(r.retry_after, 120);
        CHECK_INT(r.date, 784111777);
        CHECK_STR(r.body, "{\"error\":\"busy\"}");
        CHECK_INT(r.body_len, 16);
        result_done(&r);

        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/status/429", srv.http_port), &http_ok, &r);
        CHECK_INT(r.status, 429);
        CHECK(r.retry_after >= 55 && r.retry_after <= 65);
        CHECK_INT(r.date, 0);
        result_done(&r);

        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/status/404", srv.http_port), &http_ok, &r);
        CHECK_INT(r.status, 404);
        CHECK_STR(r.body, "not found");
        CHECK_INT(r.retry_after, 0);
        CHECK_INT(r.date, 0);
        CHECK((int64_t)time(NULL) - now < 10);
        result_done(&r);
        env_done(&e);
}

/* Headers of an interim 100 response and trailers must not leak into the result. */
static void test_final_response_headers_only(void)
{
        struct env e;
        struct result r = { 0 };

        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/continue", srv.http_port), &http_ok, &r);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.status, 200);
        CHECK_STR(r.ctype, "text/plain");
        CHECK_INT(r.retry_after, 0);
        CHECK_INT(r.date, 0);
        CHECK_STR(r.body, "ok");
        result_done(&r);

        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/trailer", srv.http_port), &http_ok, &r);
        CHECK_INT(r.error, 0);
        CHECK_STR(r.ctype, "text/plain");
        CHECK_STR(r.body, "body");
        result_done(&r);
        env_done(&e);
}

static void test_max_body(void)
{
        struct env e;
        struct result r = { 0 };
        const size_t max = 256 * 1024;

        env_init(&e, NULL);
        /* Exactly the limit (the default) is fine. */
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/big/%zu", srv.http_port, max), &http_ok, &r);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.body_len, max);
        result_done(&r);

        /* One more byte, announced by Content-Length. */
        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/big/%zu", srv.http_port, max + 1), &http_ok, &r);
        CHECK_INT(r.error, -EFBIG);
        CHECK_STR(r.errmsg, "response from 127.0.0.1 larger than 262144 bytes");
        result_done(&r);

        /* One more byte, chunked: only the write callback can see it. */
        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/chunked/%zu", srv.http_port, max + 1), &http_ok, &r);
        CHECK_INT(r.error, -EFBIG);
        CHECK_STR(r.errmsg, "response from 127.0.0.1 larger than 262144 bytes");
        result_done(&r);

        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/chunked/%zu", srv.http_port, max), &http_ok, &r);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.body_len, max);
        result_done(&r);

        /* A caller's own small limit. */
        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/chunked/11", srv.http_port),
                  &(struct fetch_opts){ .allow_http = true, .max_body = 10 }, &r);
        CHECK_INT(r.error, -EFBIG);
        CHECK_CONTAINS(r.errmsg, "larger than 10 bytes");
        result_done(&r);

        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/hugeheaders", srv.http_port), &http_ok, &r);
        CHECK_INT(r.error, -EFBIG);
        CHECK_STR(r.errmsg, "response headers from 127.0.0.1 larger than 65536 bytes");
        result_done(&r);
        env_done(&e);
}

/* ---- transport failures --------------------------------------------------- */

static void test_timeout(void)
{
        struct env e;
        struct result r = { 0 };
        uint64_t t0;

        env_init(&e, NULL);
        t0 = now_ms();
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/hang?secret=do-not-print", srv.http_port),
                  &(struct fetch_opts){ .allow_http = true, .timeout_ms = 300 }, &r);
        CHECK_INT(r.error, -ETIMEDOUT);
        CHECK_STR(r.errmsg, "no answer from 127.0.0.1 within 0.3 s");
        CHECK(now_ms() - t0 >= 290);
        CHECK(now_ms() - t0 < 3000);
        result_done(&r);
        env_done(&e);
}

/*
 * A listener that never accepts, with its backlog already full: the kernel
 * drops further SYNs, so the connect phase hangs.
 */
static void test_connect_timeout(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        struct env e;
        struct result r = { 0 };
        char want[128];
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fill[4];

        CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 0) == 0 &&
              getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
        for (size_t i = 0; i < FT_ELEMENTSOF(fill); i++) {
                fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                (void)connect(fill[i], (struct sockaddr *)&a, sizeof(a));
        }
        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/", ntohs(a.sin_port)),
                  &(struct fetch_opts){ .allow_http = true, .timeout_ms = 5000, .connect_timeout_ms = 300 }, &r);
        snprintf(want, sizeof(want), "could not connect to 127.0.0.1:%d within 0.3 s", ntohs(a.sin_port));
        CHECK_INT(r.error, -ETIMEDOUT);
        CHECK_STR(r.errmsg, want);
        result_done(&r);
        for (size_t i = 0; i < FT_ELEMENTSOF(fill); i++)
                close(fill[i]);
        close(lfd);
        env_done(&e);
}

/* A bound socket that does not listen refuses connections on its port. */
static int refusing_port(int *ret_fd)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0)
                return -1;
        *ret_fd = fd;
        return ntohs(a.sin_port);
}

static void test_refused(void)
{
        struct env e;
        struct result r = { 0 };
        char want[128];
        int fd = -1, port = refusing_port(&fd);

        CHECK(port > 0);
        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/x", port), &http_ok, &r);
        snprintf(want, sizeof(want), "connection refused by 127.0.0.1:%d", port);
        CHECK_INT(r.error, -ECONNREFUSED);
        CHECK_STR(r.errmsg, want);
        result_done(&r);
        close(fd);
        env_done(&e);
}

static void test_resolve(void)
{
        struct env e;
        struct result r = { 0 };

        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://fedtokend-test.invalid/x"),
                  &(struct fetch_opts){ .allow_http = true, .timeout_ms = 5000 }, &r);
        if (r.error == -ETIMEDOUT) {
                /* A resolver that never answers says nothing about our mapping. */
                printf("test_resolve: skipped, DNS did not answer within 5 s\n");
        } else {
                CHECK_INT(r.error, -EHOSTUNREACH);
                CHECK_STR(r.errmsg, "could not resolve host fedtokend-test.invalid");
        }
        result_done(&r);
        env_done(&e);
}

/* Plain http without allow_http is refused before any connection is made. */
static void test_http_not_allowed(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        struct env e;
        struct result r = { 0 };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 8) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/latest/meta-data/", ntohs(a.sin_port)), NULL, &r);
        CHECK_INT(r.error, -EPROTONOSUPPORT);
        CHECK_STR(r.errmsg, "plain http to 127.0.0.1 is not allowed: use https");
        CHECK_INT(accept(fd, NULL, NULL), -1);
        CHECK_INT(errno, EAGAIN);
        result_done(&r);
        close(fd);
        env_done(&e);
}

static void test_truncated(void)
{
        struct env e;
        struct result r = { 0 };
        char want[128];

        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/truncate", srv.http_port), &http_ok, &r);
        snprintf(want, sizeof(want), "connection to 127.0.0.1:%d closed before the response was complete",
                 srv.http_port);
        CHECK_INT(r.error, -ECONNRESET);
        CHECK_STR(r.errmsg, want);
        result_done(&r);

        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/garbage", srv.http_port), &http_ok, &r);
        snprintf(want, sizeof(want), "127.0.0.1:%d sent a reply that is not HTTP/1.x", srv.http_port);
        CHECK_INT(r.error, -EPROTO);
        CHECK_STR(r.errmsg, want);
        result_done(&r);
        env_done(&e);
}

/*
 * The response arrives complete and a reset right behind it: libuv reports
 * POLLERR as an error, and curl must still get to read what is there.
 */
static void test_reset_after_response(void)
{
        struct env e;
        struct result r = { 0 };

        env_init(&e, NULL);
        for (int i = 0; i < 5; i++) {
                memset(&r, 0, sizeof(r));
                fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/rst", srv.http_port), &http_ok, &r);
                CHECK_INT(r.error, 0);
                CHECK_STR(r.body, "complete");
                result_done(&r);
        }
        env_done(&e);
}

/* ---- TLS ------------------------------------------------------------------ */

static void test_https(void)
{
        struct env e;
        struct result r = { 0 };
        char want[512];

        env_init(&e, srv.ca);
        fetch_one(&e, req_new("GET", "https://127.0.0.1:%d/echo", srv.https_port), NULL, &r);
        snprintf(want, sizeof(want),
                 "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: " UA "\r\nAccept: */*\r\n\r\n",
                 srv.https_port);
        CHECK_INT(r.error, 0);
        CHECK_STR(r.body, want);
        result_done(&r);

        /* The certificate names 127.0.0.1 only. */
        memset(&r, 0, sizeof(r));
        fetch_one(&e, req_new("GET", "https://localhost:%d/echo", srv.https_port), NULL, &r);
        CHECK_INT(r.error, -EPERM);
        CHECK_CONTAINS(r.errmsg, "TLS certificate of localhost not trusted: ");
        CHECK_CONTAINS(r.errmsg, "localhost");
        result_done(&r);
        env_done(&e);
}

static void test_https_system_store(void)
{
        struct env e;
        struct result r = { 0 };

        env_init(&e, NULL);
        /* Loading the whole system store is slow under valgrind: generous timeouts. */
        fetch_one(&e, req_new("GET", "https://127.0.0.1:%d/echo?X-Amz-Security-Token=secret", srv.https_port),
                  &(struct fetch_opts){ .timeout_ms = 60000, .connect_timeout_ms = 60000 }, &r);
        CHECK_INT(r.error, -EPERM);
        CHECK_CONTAINS(r.errmsg, "TLS certificate of 127.0.0.1 not trusted: ");
        CHECK(strstr(r.errmsg, "secret") == NULL);
        CHECK(strstr(r.errmsg, "/echo") == NULL);
        result_done(&r);
        env_done(&e);
}

static void test_bad_ca_file(void)
{
        struct env e;
        struct result r = { 0 };

        env_init(&e, "/nonexistent/fedtokend-ca.pem");
        fetch_one(&e, req_new("GET", "https://127.0.0.1:%d/echo", srv.https_port), NULL, &r);
        CHECK_INT(r.error, -ENOENT);
        CHECK_CONTAINS(r.errmsg, "could not load the CA file /nonexistent/fedtokend-ca.pem");
        result_done(&r);
        env_done(&e);
}

/* ---- the multi handle ----------------------------------------------------- */

static void test_connection_reuse(void)
{
        struct env e;
        struct result a = { 0 }, b = { 0 };

        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/conn", srv.http_port), &http_ok, &a);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/conn", srv.http_port), &http_ok, &b);
        CHECK_INT(a.error, 0);
        CHECK_INT(b.error, 0);
        CHECK_STR(a.body, b.body);
        result_done(&a);
        result_done(&b);
        env_done(&e);
}

static void test_concurrent(void)
{
        enum { N = 20 };
        struct env e;
        struct result r[N];
        int total = 0;
        uint64_t t0;

        memset(r, 0, sizeof(r));
        env_init(&e, srv.ca);
        t0 = now_ms();
        for (int i = 0; i < N; i++) {
                struct ft_request *req = i % 2
                        ? req_new("GET", "http://127.0.0.1:%d/delay/1000?i=%d", srv.http_port, i)
                        : req_new("GET", "https://127.0.0.1:%d/delay/1000?i=%d", srv.https_port, i);
                CHECK_INT(fetcher_start(e.f, req, &http_ok, on_done, &r[i], NULL), 0);
        }
        CHECK_INT(fetcher_active(e.f), N);
        for (;;) {
                total = 0;
                for (int i = 0; i < N; i++)
                        total += r[i].calls;
                if (total == N || !uv_run(&e.loop, UV_RUN_ONCE))
                        break;
        }
        /* One after another they would take 20 s; TLS under valgrind needs slack. */
        CHECK(now_ms() - t0 < 10000);
        CHECK_INT(fetcher_active(e.f), 0);
        for (int i = 0; i < N; i++) {
                char want[64];

                snprintf(want, sizeof(want), "/delay/1000?i=%d HTTP/1.1", i);
                CHECK_INT(r[i].calls, 1);
                CHECK_INT(r[i].error, 0);
                CHECK_CONTAINS(r[i].body, want);
                result_done(&r[i]);
        }
        env_done(&e);
}

struct cancel_ctx {
        struct fetch *x;
        uv_timer_t timer;
};

static void on_cancel_timer(uv_timer_t *t)
{
        struct cancel_ctx *c = t->data;

        fetch_cancel(c->x);
        c->x = NULL;
        uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void)
{
        struct env e;
        struct result a = { 0 }, b = { 0 }, c = { 0 };
        struct fetch *xa = NULL;
        struct cancel_ctx cc = { 0 };

        env_init(&e, NULL);
        /* Cancelled before the loop ever ran. */
        CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/hang", srv.http_port), &http_ok,
                                on_done, &a, &xa), 0);
        CHECK_INT(fetcher_active(e.f), 1);
        fetch_cancel(xa);
        CHECK_INT(fetcher_active(e.f), 0);
        /* Cancelled mid-flight, while the server holds the request. */
        CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/hang", srv.http_port), &http_ok,
                                on_done, &c, &cc.x), 0);
        CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/delay/400", srv.http_port), &http_ok,
                                on_done, &b, NULL), 0);
        CHECK_INT(uv_timer_init(&e.loop, &cc.timer), 0);
        cc.timer.data = &cc;
        CHECK_INT(uv_timer_start(&cc.timer, on_cancel_timer, 150, 0), 0);
        run_until(&e, &b.calls, 1);
        CHECK(cc.x == NULL);
        CHECK_INT(b.calls, 1);
        CHECK_INT(b.error, 0);
        CHECK_INT(fetcher_active(e.f), 0);
        while (uv_run(&e.loop, UV_RUN_NOWAIT))
                ;
        CHECK_INT(a.calls, 0);
        CHECK_INT(c.calls, 0);
        result_done(&b);
        env_done(&e);
}

struct free_ctx {
        struct env *e;
        uv_timer_t timer;
};

static void on_free_timer(uv_timer_t *t)
{
        struct free_ctx *c = t->data;

        fetcher_free(c->e->f);
        c->e->f = NULL;
        uv_close((uv_handle_t *)t, NULL);
}

/* fetcher_free with transfers in flight: no callbacks, nothing left open. */
static void test_free_in_flight(void)
{
        enum { N = 5 };
        struct env e;
        struct result r[N];
        struct free_ctx fc = { .e = &e };
        uint64_t t0;

        memset(r, 0, sizeof(r));
        env_init(&e, srv.ca);
        for (int i = 0; i < N; i++) {
                struct ft_request *req = i < 3
                        ? req_new("GET", "http://127.0.0.1:%d/hang", srv.http_port)
                        : req_new("GET", "https://127.0.0.1:%d/delay/2000", srv.https_port);
                CHECK_INT(fetcher_start(e.f, req, &http_ok, on_done, &r[i], NULL), 0);
        }
        CHECK_INT(uv_timer_init(&e.loop, &fc.timer), 0);
        fc.timer.data = &fc;
        CHECK_INT(uv_timer_start(&fc.timer, on_free_timer, 200, 0), 0);
        t0 = now_ms();
        CHECK_INT(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
        CHECK(now_ms() - t0 < 1500);
        CHECK(e.f == NULL);
        for (int i = 0; i < N; i++)
                CHECK_INT(r[i].calls, 0);
        CHECK_INT(uv_loop_close(&e.loop), 0);
}

/* `done` starts the next transfer: a chain of three. */
static void hook_chain(struct result *r)
{
        struct ft_request *req;

        if (r->index >= 2)
                return;
        r->index++;
        req = req_new("GET", "http://127.0.0.1:%d/echo?step=%d", srv.http_port, r->index);
        CHECK_INT(fetcher_start(r->env->f, req, &http_ok, on_done, r, NULL), 0);
}

static void test_reentrant_start(void)
{
        struct env e;
        struct result r = { .hook = hook_chain, .env = &e };

        env_init(&e, NULL);
        CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/echo?step=0", srv.http_port), &http_ok,
                                on_done, &r, NULL), 0);
        run_until(&e, &r.calls, 3);
        CHECK_INT(r.calls, 3);
        CHECK_CONTAINS(r.body, "GET /echo?step=2 ");
        CHECK_INT(fetcher_active(e.f), 0);
        result_done(&r);
        env_done(&e);
}

/* `done` cancels the other transfer, whose answer may already be queued. */
static void hook_cancel_other(struct result *r)
{
        fetch_cancel(r->other);
}

/*
 * Two answers arriving together, and two transfers timing out at the same
 * moment: one timer action then queues both CURLMSG_DONE before the first
 * `done` cancels the second.
 */
static void test_reentrant_cancel(void)
{
        static const char *const paths[] = { "echo", "hang" };

        for (size_t i = 0; i < FT_ELEMENTSOF(paths); i++) {
                struct fetch_opts o = { .allow_http = true, .timeout_ms = 300 };
                struct env e;
                struct result a = { .hook = hook_cancel_other, .env = &e };
                struct result b = { .hook = hook_cancel_other, .env = &e };
                struct fetch *xa = NULL, *xb = NULL;

                env_init(&e, NULL);
                CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/%s?a", srv.http_port, paths[i]), &o,
                                        on_done, &a, &xa), 0);
                CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/%s?b", srv.http_port, paths[i]), &o,
                                        on_done, &b, &xb), 0);
                a.other = xb;
                b.other = xa;
                while (a.calls + b.calls == 0 && uv_run(&e.loop, UV_RUN_ONCE))
                        ;
                while (uv_run(&e.loop, UV_RUN_NOWAIT))
                        ;
                CHECK_INT(a.calls + b.calls, 1);
                CHECK_INT(a.error + b.error, i == 0 ? 0 : -ETIMEDOUT);
                CHECK_INT(fetcher_active(e.f), 0);
                result_done(&a);
                result_done(&b);
                env_done(&e);
        }
}

/* `done` frees the whole fetcher with other transfers in flight. */
static void hook_free(struct result *r)
{
        struct ft_request *req = req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port);

        fetcher_free(r->env->f);
        /* Still valid until the loop runs the close callbacks: it refuses new work. */
        CHECK_INT(fetcher_start(r->env->f, req, &http_ok, on_done, r, NULL), -ESHUTDOWN);
        r->env->f = NULL;
}

static void test_reentrant_free(void)
{
        struct env e;
        struct result a = { .hook = hook_free, .env = &e };
        struct result h[2];

        memset(h, 0, sizeof(h));
        env_init(&e, NULL);
        for (int i = 0; i < 2; i++)
                CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/hang", srv.http_port), &http_ok,
                                        on_done, &h[i], NULL), 0);
        CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/delay/100", srv.http_port), &http_ok,
                                on_done, &a, NULL), 0);
        CHECK_INT(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
        CHECK_INT(a.calls, 1);
        CHECK_INT(h[0].calls + h[1].calls, 0);
        CHECK(e.f == NULL);
        CHECK_INT(uv_loop_close(&e.loop), 0);
        result_done(&a);
}

/* Cancelling a transfer from inside its own `done` is a harmless no-op. */
static void hook_cancel_self(struct result *r)
{
        fetch_cancel(r->self);
}

static void test_cancel_self(void)
{
        struct env e;
        struct result r = { .hook = hook_cancel_self, .env = &e };

        env_init(&e, NULL);
        CHECK_INT(fetcher_start(e.f, req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port), &http_ok,
                                on_done, &r, &r.self), 0);
        run_until(&e, &r.calls, 1);
        CHECK_INT(r.calls, 1);
        CHECK_INT(r.error, 0);
        CHECK_INT(fetcher_active(e.f), 0);
        result_done(&r);
        env_done(&e);
}

/* Loopback and link-local endpoints (IMDS) never go through a proxy. */
static void test_proxy_bypass(void)
{
        struct env e;
        struct result r = { 0 };

        CHECK_INT(setenv("http_proxy", "http://127.0.0.1:9", 1), 0);
        env_init(&e, NULL);
        fetch_one(&e, req_new("GET", "http://127.0.0.1:%d/echo", srv.http_port), &http_ok, &r);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.status, 200);
        result_done(&r);
        env_done(&e);
        CHECK_INT(unsetenv("http_proxy"), 0);
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN);
        alarm(120);   /* a hang is a failure, not a stuck CI job */
        if (server_start() < 0) {
                fprintf(stderr, "cannot start the fake upstream\n");
                return 1;
        }
        test_get_exact();
        test_post_exact();
        test_put_empty_imds();
        test_large_post_no_expect();
        test_host_override();
        test_start_invalid();
        test_status_headers();
        test_final_response_headers_only();
        test_max_body();
        test_timeout();
        test_connect_timeout();
        test_refused();
        test_resolve();
        test_http_not_allowed();
        test_truncated();
        test_reset_after_response();
        test_https();
        test_https_system_store();
        test_bad_ca_file();
        test_connection_reuse();
        test_concurrent();
        test_cancel();
        test_free_in_flight();
        test_reentrant_start();
        test_reentrant_cancel();
        test_reentrant_free();
        test_cancel_self();
        test_proxy_bypass();
        server_stop();
        return test_summary();
}
