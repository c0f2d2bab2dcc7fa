/* SPDX-License-Identifier: MIT */
/*
 * test_client.c: libfedtoken (lib/fedtoken_client.c) and the fedtoken CLI
 * against a fake fedtokend: a forked child that serves canned HTTP answers on
 * Unix sockets in a temporary folder, one connection at a time.
 *
 * The fake checks that every request is byte for byte the one the client
 * must send, and answers 400 otherwise, so every successful case also tests
 * the request. SIGPIPE keeps its default action in this process: a client
 * that wrote to a closed socket without MSG_NOSIGNAL would kill the test.
 *
 * Environment: FEDTOKEN_CLI, the fedtoken program to run for the CLI cases
 * (skipped, with a note, when it is not set).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fedtoken_client.h"
#include "test.h"

extern char **environ;

#define TOKEN "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln-_AbC~+/="
#define TOKEN_WAITED "waited-for-token.0123456789"
#define TOKEN_NOCL "token-read-to-end-of-stream"
#define JWT "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V4YW1wbGUifQ.sig"
#define DETAIL_404 "no token [azure.missing] or [gcp.missing] is configured"
#define DETAIL_403 "uid 1000 may not read token 'secret' (allowed: group fedtoken-secret)"
/* Escapes, a non-ASCII escape and a lone surrogate, as the daemon might send them. */
#define BODY_503 \
        "{\"error\":\"unavailable\",\"detail\":\"Entra ID said \\\"AADSTS70021\\\":\\nno match; caf\\u00e9 \\ud83d ok\"}"
#define DETAIL_503 "Entra ID said \"AADSTS70021\": no match; caf\xc3\xa9 ? ok"
#define DETAIL_SLAM "too many clients; retry in a moment"
#define SECRET_IN_BODY "secret-value-123"
#define STATUS_ERROR "Google STS: \\u001b[31mThe audience in ID Token [api://AzureADTokenExchange] does not match"

enum mode {
        BODY,       /* status, headers, Content-Length and body */
        RAW,        /* `body` is the whole answer, then close */
        RAW_HANG,   /* `body`, then keep the connection open without a word more */
        SLOW,       /* as BODY, one byte at a time */
        HANG,       /* read the request, never answer */
        CLOSE,      /* read the request, close without answering */
        BIG_CL,     /* Content-Length: 2 MiB and as much body as the client takes */
        BIG_EOF,    /* 2 MiB without Content-Length, then close */
        HEAD_FLOOD, /* a status line and 20 KiB of headers, never the blank line */
        STATUS,     /* /v1/status, built from the server's start time */
        ECHO,       /* 200 text/plain, the body is the request as received */
};

struct route {
        const char *target;
        const char *accept;  /* what the client must send; NULL: anything */
        enum mode mode;
        const char *status;
        const char *headers;
        const char *body;
};

#define CT_TEXT "Content-Type: text/plain\r\n"
#define CT_JSON "Content-Type: application/json\r\n"
#define TOK(name) "/v1/token/" name "?format=raw"

static const struct route routes[] = {
        { TOK("storage"), "text/plain", BODY, "200 OK", CT_TEXT, TOKEN },
        { TOK("storage") "&wait=5", "text/plain", BODY, "200 OK", CT_TEXT, TOKEN_WAITED },
        { "/v1/jwt/idp?format=raw", "text/plain", BODY, "200 OK", "Content-Type: text/plain; charset=utf-8\r\n", JWT },
        { TOK("missing"), "text/plain", BODY, "404 Not Found", CT_JSON,
          "{\"error\":\"not_found\",\"detail\":\"" DETAIL_404 "\"}" },
        { TOK("secret"), "text/plain", BODY, "403 Forbidden", CT_JSON,
          "{\"error\":\"forbidden\",\"detail\":\"" DETAIL_403 "\"}" },
        { TOK("pending"), "text/plain", BODY, "503 Service Unavailable", CT_JSON "Retry-After: 5\r\n", BODY_503 },
        { TOK("decoy"), "text/plain", BODY, "404 Not Found", CT_JSON,
          "{ \"meta\" : {\"detail\":\"decoy\",\"n\":[1,{\"detail\":\"x\"}],\"s\":\"}\"},"
          " \"hint\":\"\\\"detail\\\": \\\"also decoy\\\"\", \"n\": -1.5e3, \"t\": true,\n"
          "\"detail\" : \"real one\" }" },
        { TOK("codeonly"), "text/plain", BODY, "404 Not Found", CT_JSON, "{\"error\":\"not_found\"}" },
        { TOK("server-error"), "text/plain", BODY, "500 Internal Server Error", CT_TEXT, "boom" },
        { TOK("noclen"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" TOKEN_NOCL },
        { TOK("slow"), "text/plain", SLOW, "200 OK", CT_TEXT, TOKEN },
        { TOK("hang"), "text/plain", HANG, NULL, NULL, NULL },
        { TOK("big"), "text/plain", BIG_CL, NULL, NULL, NULL },
        { TOK("bigeof"), "text/plain", BIG_EOF, NULL, NULL, NULL },
        { TOK("garbage"), "text/plain", RAW_HANG, NULL, NULL, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" },
        { TOK("badstatus"), "text/plain", RAW, NULL, NULL, "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n" },
        { TOK("longstatus"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 2000 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc" },
        { TOK("http2"), "text/plain", RAW, NULL, NULL,
          "HTTP/2 200\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc" },
        { TOK("interim"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc" },
        { TOK("truncated"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nshort" },
        { TOK("json"), "text/plain", BODY, "200 OK", CT_JSON, "{\"name\":\"json\",\"access_token\":\"abc\"}" },
        { TOK("newline"), "text/plain", BODY, "200 OK", CT_TEXT, SECRET_IN_BODY "\n" },
        { TOK("empty"), "text/plain", BODY, "200 OK", CT_TEXT, "" },
        { TOK("chunked"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n" },
        { TOK("twolengths"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" },
        { TOK("signedlength"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: +3\r\n\r\nabc" },
        { TOK("folded"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n folded: x\r\nContent-Length: 3\r\n\r\nabc" },
        /* Lenient where framing is not at stake: 1.0, no reason, header case, blanks, bytes after the body. */
        { TOK("http10"), "text/plain", RAW, NULL, NULL,
          "HTTP/1.0 200\r\ncontent-type: TEXT/PLAIN\r\ncontent-length:  3 \r\n\r\nabcEXTRA" },
        { TOK("noanswer"), "text/plain", CLOSE, NULL, NULL, NULL },
        { TOK("hugehead"), "text/plain", HEAD_FLOOD, NULL, NULL, NULL },
        { "/v1/status", "application/json", STATUS, NULL, NULL, NULL },
        { "/echo", NULL, ECHO, NULL, NULL, NULL },
};

static struct {
        char dir[64];
        char sock[128];  /* the fake fedtokend */
        char slam[128];  /* answers 503 and closes at once, before reading the request */
        pid_t pid;
        time_t base;     /* the status document's clock */
        const char *cli;
} srv;

/* ---- the fake fedtokend ------------------------------------------------------ */

static void status_json(char *out, size_t outlen)
{
        char exp_fresh[32], exp_failing[32], refresh_fresh[32], refresh_failing[32], since[32];
        struct tm tm;
        time_t t;

#define RFC3339(buf, when) (t = (when), gmtime_r(&t, &tm), strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
        RFC3339(exp_fresh, srv.base + 3540);
        RFC3339(refresh_fresh, srv.base + 1830);
        RFC3339(exp_failing, srv.base - 20);
        RFC3339(refresh_failing, srv.base + 330);
        RFC3339(since, srv.base - 600);
#undef RFC3339
        snprintf(out, outlen,
                 "{\"tokens\":["
                 "{\"name\":\"azure\",\"kind\":\"azure\",\"state\":\"fresh\",\"expires_at\":\"%s\",\"expires_in\":3540,"
                 "\"next_refresh_at\":\"%s\",\"last_error\":null,\"error_code\":null,\"failing_since\":null,"
                 "\"fingerprint\":\"sha256:5be1e0d3a0c2\"},"
                 "{\"name\":\"gcp-prod\",\"kind\":\"gcp\",\"state\":\"failing\",\"expires_at\":\"%s\","
                 "\"expires_in\":-20,"
                 "\"next_refresh_at\":\"%s\",\"last_error\":\"" STATUS_ERROR "\",\"error_code\":\"invalid_grant\","
                 "\"failing_since\":\"%s\",\"fingerprint\":\"sha256:0a1b2c3d4e5f\"},"
                 "{\"name\":\"idp\",\"kind\":\"jwt\",\"state\":\"pending\",\"expires_at\":null,\"expires_in\":null,"
                 "\"next_refresh_at\":null,\"last_error\":null,\"error_code\":null,\"failing_since\":null,"
                 "\"fingerprint\":null}"
                 "],\"credentials\":\"imds\",\"version\":\"0.1.0\"}",
                 exp_fresh, refresh_fresh, exp_failing, refresh_failing, since);
}

static bool send_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return false;
                p += w;
                len -= (size_t)w;
        }
        return true;
}

static void send_body(int fd, const char *status, const char *headers, const char *body, size_t len, bool slow)
{
        char head[512];
        int n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         status, headers ? headers : "", len);

        if (!slow) {
                if (send_all(fd, head, (size_t)n))
                        send_all(fd, body, len);
                return;
        }
        for (int i = 0; i < n; i++) {
                send_all(fd, head + i, 1);
                usleep(2000);
        }
        for (size_t i = 0; i < len; i++) {
                send_all(fd, body + i, 1);
                usleep(2000);
        }
}

static void send_stream(int fd, const char *head)
{
        static char chunk[64 * 1024];

        memset(chunk, 'a', sizeof(chunk));
        if (!send_all(fd, head, strlen(head)))
                return;
        for (int i = 0; i < 32; i++)
                if (!send_all(fd, chunk, sizeof(chunk)))
                        return;
}

/* Reads one request head; its length, or 0. */
static size_t read_request(int fd, char *buf, size_t size)
{
        size_t len = 0;

        while (len + 1 < size) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (poll(&p, 1, 5000) <= 0)
                        return 0;
                n = recv(fd, buf + len, size - 1 - len, 0);
                if (n <= 0)
                        return 0;
                len += (size_t)n;
                buf[len] = '\0';
                if (strstr(buf, "\r\n\r\n"))
                        return len;
        }
        return 0;
}

/* Serves one connection; true when it must be kept open (never answered). */
static bool serve(int fd)
{
        static const char bad[] = "{\"error\":\"bad_request\",\"detail\":\"the request was not the expected bytes\"}";
        static const char none[] = "{\"error\":\"not_found\",\"detail\":\"no such token\"}";
        char req[8192], target[4096], want[8192 + 256];
        const struct route *rt = NULL;
        const char *accept;
        size_t len = read_request(fd, req, sizeof(req));
        const char *sp;

        if (len < 4 || memcmp(req, "GET ", 4) != 0 || !(sp = strchr(req + 4, ' ')) ||
            (size_t)(sp - req - 4) >= sizeof(target))
                return false;
        memcpy(target, req + 4, (size_t)(sp - req - 4));
        target[sp - req - 4] = '\0';
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
                if (strcmp(routes[i].target, target) == 0)
                        rt = &routes[i];
        accept = rt ? rt->accept : strncmp(target, "/v1/status", 10) == 0 ? "application/json" : "text/plain";
        if (accept) {
                snprintf(want, sizeof(want),
                         "GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: %s\r\nConnection: close\r\n\r\n", target,
                         accept);
                if (strcmp(req, want) != 0) {
                        send_body(fd, "400 Bad Request", CT_JSON, bad, strlen(bad), false);
                        return false;
                }
        }
        if (!rt) {
                send_body(fd, "404 Not Found", CT_JSON, none, strlen(none), false);
                return false;
        }
        switch (rt->mode) {
        case BODY:
        case SLOW:
                send_body(fd, rt->status, rt->headers, rt->body, strlen(rt->body), rt->mode == SLOW);
                return false;
        case RAW:
        case RAW_HANG:
                send_all(fd, rt->body, strlen(rt->body));
                return rt->mode == RAW_HANG;
        case HANG:
                return true;
        case CLOSE:
                return false;
        case BIG_CL:
                send_stream(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2097152\r\n\r\n");
                return false;
        case BIG_EOF:
                send_stream(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
                return false;
        case HEAD_FLOOD: {
                char line[1024];

                memset(line, 'p', sizeof(line));
                memcpy(line, "X-Pad: ", 7);
                memcpy(line + sizeof(line) - 2, "\r\n", 2);
                send_all(fd, "HTTP/1.1 200 OK\r\n", 17);
                for (int i = 0; i < 20; i++)
                        send_all(fd, line, sizeof(line));
                return true;
        }
        case STATUS: {
                char body[4096];

                status_json(body, sizeof(body));
                send_body(fd, "200 OK", CT_JSON, body, strlen(body), false);
                return false;
        }
        case ECHO:
                send_body(fd, "200 OK", CT_TEXT, req, len, false);
                return false;
        }
        return false;
}

static int listen_on(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
                return -1;
        return fd;
}

static __attribute__((noreturn)) void server_main(int lfd, int slam_fd)
{
        static const char slam_head[] = "HTTP/1.1 503 Service Unavailable\r\n" CT_JSON "\r\n";
        static const char slam[] = "{\"error\":\"unavailable\",\"detail\":\"" DETAIL_SLAM "\"}";
        int kept[32], nkept = 0, nslam = 0;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGPIPE, SIG_IGN);
        for (int i = 0; i < 32; i++)
                kept[i] = -1;
        for (;;) {
                struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = slam_fd, .events = POLLIN } };
                int fd, way;

                /* Never outlive a test that forgot us. */
                if (poll(p, 2, 120 * 1000) <= 0)
                        _exit(0);
                if (p[1].revents) {
                        fd = accept4(slam_fd, NULL, NULL, SOCK_CLOEXEC);
                        /*
                         * Three ways, in turn: with Content-Length at once (racing the
                         * request), framed by the end of the stream at once, and framed
                         * by the end of the stream once the request is waiting unread:
                         * closing then makes the client's last recv() fail with
                         * ECONNRESET instead of returning 0.
                         */
                        way = nslam++ % 3;
                        if (fd >= 0 && way == 0) {
                                send_body(fd, "503 Service Unavailable", CT_JSON, slam, sizeof(slam) - 1, false);
                        } else if (fd >= 0) {
                                if (way == 2) {
                                        struct pollfd w = { .fd = fd, .events = POLLIN };
                                        poll(&w, 1, 2000);
                                }
                                send_all(fd, slam_head, sizeof(slam_head) - 1);
                                send_all(fd, slam, sizeof(slam) - 1);
                        }
                        if (fd >= 0)
                                close(fd);
                }
                if (!p[0].revents)
                        continue;
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                if (serve(fd)) {
                        if (kept[nkept % 32] >= 0)
                                close(kept[nkept % 32]);
                        kept[nkept++ % 32] = fd;
                } else {
                        close(fd);
                }
        }
}

static int server_start(void)
{
        int lfd, slam_fd;

        snprintf(srv.dir, sizeof(srv.dir), "/tmp/test_client.XXXXXX");
        if (!mkdtemp(srv.dir))
                return -errno;
        snprintf(srv.sock, sizeof(srv.sock), "%s/fedtokend.sock", srv.dir);
        snprintf(srv.slam, sizeof(srv.slam), "%s/slam.sock", srv.dir);
        srv.base = time(NULL);
        lfd = listen_on(srv.sock);
        slam_fd = listen_on(srv.slam);
        if (lfd < 0 || slam_fd < 0)
                return -errno;
        srv.pid = fork();
        if (srv.pid < 0)
                return -errno;
        if (srv.pid == 0)
                server_main(lfd, slam_fd);
        close(lfd);
        close(slam_fd);
        return 0;
}

static void server_stop(void)
{
        char path[192];

        if (srv.pid > 0) {
                kill(srv.pid, SIGKILL);
                waitpid(srv.pid, NULL, 0);
        }
        unlink(srv.sock);
        unlink(srv.slam);
        snprintf(path, sizeof(path), "%s/out", srv.dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/err", srv.dir);
        unlink(path);
        rmdir(srv.dir);
}

/* ---- helpers ------------------------------------------------------------------- */

static int64_t ms_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fedtoken_get of `name` on the fake; the result, the token in *ret (or NULL) and err. */
static int get(const char *name, char **ret, char *err, size_t errlen)
{
        *ret = NULL;
        if (err && errlen)
                err[0] = '\0';
        return fedtoken_get(srv.sock, name, ret, err, errlen);
}

/* ---- library cases --------------------------------------------------------------- */

static void test_tokens(void)
{
        char err[256];
        char *tok;

        CHECK_INT(get("storage", &tok, err, sizeof(err)), FEDTOKEN_OK);
        CHECK_STR(tok, TOKEN);
        CHECK_STR(err, "");  /* untouched on success */
        fedtoken_free(tok);

        tok = NULL;
        CHECK_INT(fedtoken_get_wait(srv.sock, "storage", 5, &tok, err, sizeof(err)), FEDTOKEN_OK);
        CHECK_STR(tok, TOKEN_WAITED);
        fedtoken_free(tok);

        tok = NULL;
        CHECK_INT(fedtoken_get_jwt(srv.sock, "idp", &tok, err, sizeof(err)), FEDTOKEN_OK);
        CHECK_STR(tok, JWT);
        fedtoken_free(tok);

        /* Read to the end of the stream when there is no Content-Length. */
        CHECK_INT(get("noclen", &tok, err, sizeof(err)), FEDTOKEN_OK);
        CHECK_STR(tok, TOKEN_NOCL);
        fedtoken_free(tok);

        /* One byte per recv(): partial reads reassemble. */
        CHECK_INT(get("slow", &tok, err, sizeof(err)), FEDTOKEN_OK);
        CHECK_STR(tok, TOKEN);
        fedtoken_free(tok);

        CHECK_INT(get("http10", &tok, err, sizeof(err)), FEDTOKEN_OK);
        CHECK_STR(tok, "abc");
        fedtoken_free(tok);

        /* $FEDTOKEN_SOCKET stands in for a NULL socket path. */
        setenv("FEDTOKEN_SOCKET", srv.sock, 1);
        tok = NULL;
        CHECK_INT(fedtoken_get(NULL, "storage", &tok, NULL, 0), FEDTOKEN_OK);
        CHECK_STR(tok, TOKEN);
        fedtoken_free(tok);
        unsetenv("FEDTOKEN_SOCKET");

        fedtoken_free(NULL);
}

static void test_errors(void)
{
        char err[256], small[8], tiny[1] = { 'x' }, cut[44];
        char *tok;

        CHECK_INT(get("missing", &tok, err, sizeof(err)), FEDTOKEN_E_NOT_FOUND);
        CHECK(tok == NULL);
        CHECK_STR(err, DETAIL_404);
        CHECK_INT(get("secret", &tok, err, sizeof(err)), FEDTOKEN_E_FORBIDDEN);
        CHECK_STR(err, DETAIL_403);
        CHECK_INT(get("pending", &tok, err, sizeof(err)), FEDTOKEN_E_UNAVAILABLE);
        CHECK_STR(err, DETAIL_503);
        CHECK_INT(fedtoken_get_jwt(srv.sock, "pending", &tok, err, sizeof(err)), FEDTOKEN_E_NOT_FOUND);

        /* The top-level "detail", not one nested or quoted inside another value. */
        CHECK_INT(get("decoy", &tok, err, sizeof(err)), FEDTOKEN_E_NOT_FOUND);
        CHECK_STR(err, "real one");
        CHECK_INT(get("codeonly", &tok, err, sizeof(err)), FEDTOKEN_E_NOT_FOUND);
        CHECK_STR(err, "fedtokend answered HTTP 404 (not_found)");
        CHECK_INT(get("server-error", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_STR(err, "fedtokend answered HTTP 500");

        /* err is cut to fit, never past its size, and never inside a UTF-8 character. */
        CHECK_INT(get("missing", &tok, small, sizeof(small)), FEDTOKEN_E_NOT_FOUND);
        CHECK_STR(small, "no toke");
        CHECK_INT(fedtoken_get(srv.sock, "missing", &tok, tiny, sizeof(tiny)), FEDTOKEN_E_NOT_FOUND);
        CHECK_INT(tiny[0], '\0');
        CHECK_INT(get("pending", &tok, cut, sizeof(cut)), FEDTOKEN_E_UNAVAILABLE);
        CHECK_STR(cut, "Entra ID said \"AADSTS70021\": no match; caf");
        CHECK_INT(fedtoken_get(srv.sock, "missing", &tok, NULL, 0), FEDTOKEN_E_NOT_FOUND);

        /* A daemon that answers and hangs up before reading the request (both orders of the race). */
        for (int i = 0; i < 21; i++) {
                tok = NULL;
                CHECK_INT(fedtoken_get(srv.slam, "storage", &tok, err, sizeof(err)), FEDTOKEN_E_UNAVAILABLE);
                CHECK_STR(err, DETAIL_SLAM);
        }
}

static void test_protocol(void)
{
        static const char *const bad[] = {
                "badstatus", "longstatus", "http2", "interim", "truncated", "json", "empty", "chunked",
                "twolengths", "signedlength", "folded", "noanswer",
        };
        char err[256];
        char *tok;
        int64_t t0;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK_INT(get(bad[i], &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
                CHECK(tok == NULL);
                CHECK(err[0] != '\0');
        }
        CHECK_INT(get("noanswer", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "without answering");
        CHECK_INT(get("truncated", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "middle of its answer");
        CHECK_INT(get("chunked", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "Transfer-Encoding");

        /* A 200 that is not a bare token is refused, and its content is not repeated. */
        CHECK_INT(get("newline", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK(tok == NULL);
        CHECK(strstr(err, SECRET_IN_BODY) == NULL);
        CHECK_CONTAINS(err, "not a bare token");
        CHECK_INT(get("json", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "not text/plain");

        /* Over 1 MiB: announced (refused at the head) or streamed (refused at the cap). */
        CHECK_INT(get("big", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "over 1 MiB");
        CHECK_INT(get("bigeof", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "over 1 MiB");

        /* Strangers are refused as soon as they show it, not when the timeout runs out. */
        t0 = ms_now();
        CHECK_INT(get("garbage", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "not HTTP");
        CHECK_INT(get("hugehead", &tok, err, sizeof(err)), FEDTOKEN_E_PROTOCOL);
        CHECK_CONTAINS(err, "16 KiB");
        CHECK(ms_now() - t0 < 2000);
}

static void test_timeout(void)
{
        char err[256];
        char *body = NULL, *tok = NULL;
        int status = 0;
        int64_t t0, dt;

        t0 = ms_now();
        CHECK_INT(fedtoken_request_timeout(srv.sock, TOK("hang"), "text/plain", 300, &status, &body, NULL, err,
                                           sizeof(err)),
                  FEDTOKEN_E_TIMEOUT);
        dt = ms_now() - t0;
        CHECK(dt >= 290 && dt < 3000);
        CHECK(body == NULL);
        CHECK_CONTAINS(err, "did not answer in time");

        /* fedtoken_get gives up after 5 s on its own. */
        t0 = ms_now();
        CHECK_INT(get("hang", &tok, err, sizeof(err)), FEDTOKEN_E_TIMEOUT);
        dt = ms_now() - t0;
        CHECK(dt >= 4900 && dt < 8000);
}

static void test_request(void)
{
        char err[256], want[4096];
        char *body = NULL;
        size_t len = 0;
        int status = 0;

        CHECK_INT(fedtoken_request(srv.sock, "/v1/status", NULL, &status, &body, &len), FEDTOKEN_OK);
        CHECK_INT(status, 200);
        status_json(want, sizeof(want));
        CHECK_STR(body, want);
        CHECK_INT(len, strlen(want));
        fedtoken_free(body);

        /* Exactly what goes on the wire. */
        body = NULL;
        CHECK_INT(fedtoken_request(srv.sock, "/echo", "text/plain", &status, &body, &len), FEDTOKEN_OK);
        CHECK_STR(body, "GET /echo HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\nConnection: close\r\n\r\n");
        fedtoken_free(body);

        /* Any status is an answer here; the caller reads it. Out-parameters are optional. */
        CHECK_INT(fedtoken_request(srv.sock, TOK("missing"), "text/plain", &status, NULL, NULL), FEDTOKEN_OK);
        CHECK_INT(status, 404);
        CHECK_INT(fedtoken_request(srv.sock, "/v1/status", NULL, NULL, NULL, NULL), FEDTOKEN_OK);
        /* A 1xx is not the answer, and this client does not wait for another. */
        CHECK_INT(fedtoken_request(srv.sock, TOK("interim"), "text/plain", &status, &body, &len), FEDTOKEN_E_PROTOCOL);

        /* Nothing that could split the request line or a header. */
        CHECK_INT(fedtoken_request(srv.sock, "v1/status", NULL, &status, &body, &len), FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_request(srv.sock, "/v1/status HTTP/1.0\r\nX: y", NULL, &status, &body, &len),
                  FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_request(srv.sock, "/a b", NULL, &status, &body, &len), FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_request(srv.sock, "", NULL, &status, &body, &len), FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_request(srv.sock, NULL, NULL, &status, &body, &len), FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_request(srv.sock, "/v1/status", "text/plain\r\nX-Evil: 1", &status, &body, &len),
                  FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_request_timeout(srv.sock, "/v1/status", NULL, 0, &status, &body, &len, err, sizeof(err)),
                  FEDTOKEN_E_INVALID);
}

static void test_arguments(void)
{
        static const char *const bad_names[] = {
                "", "a/b", "../etc", "a b", "x?format=json", "caf\xc3\xa9", "a.b", "tab\t", "nl\n",
                "12345678901234567890123456789012345678901234567890123456789012345",  /* 65 */
        };
        char err[256], path[160];
        char *tok = NULL;

        for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
                CHECK_INT(get(bad_names[i], &tok, err, sizeof(err)), FEDTOKEN_E_INVALID);
                CHECK_CONTAINS(err, "token name");
        }
        CHECK_INT(get(NULL, &tok, err, sizeof(err)), FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_get(srv.sock, "storage", NULL, err, sizeof(err)), FEDTOKEN_E_INVALID);
        /* 64 characters is a valid name: the fake says it does not exist. */
        CHECK_INT(get("1234567890123456789012345678901234567890123456789012345678901234", &tok, err, sizeof(err)),
                  FEDTOKEN_E_NOT_FOUND);
        CHECK_INT(get("Az_-09", &tok, err, sizeof(err)), FEDTOKEN_E_NOT_FOUND);
        CHECK_INT(fedtoken_get_wait(srv.sock, "storage", -1, &tok, err, sizeof(err)), FEDTOKEN_E_INVALID);
        CHECK_INT(fedtoken_get_wait(srv.sock, "storage", FEDTOKEN_WAIT_MAX + 1, &tok, err, sizeof(err)),
                  FEDTOKEN_E_INVALID);
        CHECK(tok == NULL);

        /* Socket paths: missing, empty, longer than sun_path (107 bytes fit, 108 do not). */
        snprintf(path, sizeof(path), "%s/absent.sock", srv.dir);
        CHECK_INT(fedtoken_get(path, "storage", &tok, err, sizeof(err)), FEDTOKEN_E_CONNECT);
        CHECK_CONTAINS(err, path);
        CHECK_CONTAINS(err, "No such file or directory");
        setenv("FEDTOKEN_SOCKET", path, 1);
        CHECK_INT(fedtoken_get(NULL, "storage", &tok, err, sizeof(err)), FEDTOKEN_E_CONNECT);
        CHECK_CONTAINS(err, path);
        unsetenv("FEDTOKEN_SOCKET");
        /* A plain file where the socket should be. */
        snprintf(path, sizeof(path), "%s/out", srv.dir);
        fclose(fopen(path, "w"));
        CHECK_INT(fedtoken_get(path, "storage", &tok, err, sizeof(err)), FEDTOKEN_E_CONNECT);
        CHECK_CONTAINS(err, "Connection refused");

        CHECK_INT(fedtoken_get("", "storage", &tok, err, sizeof(err)), FEDTOKEN_E_INVALID);
        memset(path, 'x', sizeof(path));
        path[0] = '/';
        path[108] = '\0';
        CHECK_INT(fedtoken_get(path, "storage", &tok, err, sizeof(err)), FEDTOKEN_E_INVALID);
        CHECK_CONTAINS(err, "too long");
        path[107] = '\0';
        CHECK_INT(fedtoken_get(path, "storage", &tok, err, sizeof(err)), FEDTOKEN_E_CONNECT);
        CHECK(tok == NULL);
}

static void test_strerror(void)
{
        for (int a = FEDTOKEN_E_TIMEOUT; a <= FEDTOKEN_OK; a++) {
                CHECK(strcmp(fedtoken_strerror(a), "unknown error") != 0);
                for (int b = a + 1; b <= FEDTOKEN_OK; b++)
                        CHECK(strcmp(fedtoken_strerror(a), fedtoken_strerror(b)) != 0);
        }
        CHECK_STR(fedtoken_strerror(-100), "unknown error");
        CHECK_STR(fedtoken_strerror(1), "unknown error");
}

/* ---- the CLI ---------------------------------------------------------------------- */

struct run {
        int code;
        char *out;
        char *err;
};

static void run_done(struct run *r)
{
        free(r->out);
        free(r->err);
        memset(r, 0, sizeof(*r));
}

/* Runs fedtoken with `args` (NULL-terminated), stdout and stderr to files (not a terminal). */
static void run_cli(struct run *r, const char *socket_env, const char *const *args)
{
        char out[192], errp[192];
        char *argv[16];
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int st = 0, n = 0;

        memset(r, 0, sizeof(*r));
        r->code = -1;
        snprintf(out, sizeof(out), "%s/out", srv.dir);
        snprintf(errp, sizeof(errp), "%s/err", srv.dir);
        argv[n++] = (char *)srv.cli;
        for (; *args && n < 15; args++)
                argv[n++] = (char *)*args;
        argv[n] = NULL;
        if (socket_env)
                setenv("FEDTOKEN_SOCKET", socket_env, 1);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (posix_spawn(&pid, srv.cli, &fa, NULL, argv, environ) == 0 && waitpid(pid, &st, 0) == pid &&
            WIFEXITED(st))
                r->code = WEXITSTATUS(st);
        posix_spawn_file_actions_destroy(&fa);
        unsetenv("FEDTOKEN_SOCKET");
        r->out = test_read_file(out, NULL);
        r->err = test_read_file(errp, NULL);
}

#define RUN(r, env, ...) run_cli((r), (env), (const char *const[]){ __VA_ARGS__, NULL })

static void test_cli(void)
{
        char missing[160], body[4096], want[4200];
        struct run r;

        if (!srv.cli) {
                fprintf(stderr, "test_client: FEDTOKEN_CLI is not set, skipping the fedtoken CLI cases\n");
                return;
        }
        snprintf(missing, sizeof(missing), "%s/absent.sock", srv.dir);

        /* Bare bytes when stdout is not a terminal. */
        RUN(&r, NULL, "-s", srv.sock, "token", "storage");
        CHECK_INT(r.code, 0);
        CHECK_STR(r.out, TOKEN);
        CHECK_STR(r.err, "");
        run_done(&r);
        RUN(&r, srv.sock, "token", "storage", "--wait", "5");
        CHECK_INT(r.code, 0);
        CHECK_STR(r.out, TOKEN_WAITED);
        run_done(&r);
        RUN(&r, NULL, "--socket", srv.sock, "jwt", "idp");
        CHECK_INT(r.code, 0);
        CHECK_STR(r.out, JWT);
        run_done(&r);

        RUN(&r, NULL, "-s", srv.sock, "token", "pending");
        CHECK_INT(r.code, 1);
        CHECK_STR(r.out, "");
        CHECK_STR(r.err, "fedtoken: " DETAIL_503 "\n");
        run_done(&r);
        RUN(&r, NULL, "-s", missing, "token", "storage");
        CHECK_INT(r.code, 3);
        CHECK_CONTAINS(r.err, "fedtoken: cannot connect to ");
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "missing");
        CHECK_INT(r.code, 4);
        CHECK_STR(r.err, "fedtoken: " DETAIL_404 "\n");
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "secret");
        CHECK_INT(r.code, 5);
        CHECK_STR(r.err, "fedtoken: " DETAIL_403 "\n");
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "garbage");
        CHECK_INT(r.code, 6);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "newline");
        CHECK_INT(r.code, 6);
        CHECK_STR(r.out, "");
        CHECK(r.err && !strstr(r.err, SECRET_IN_BODY));
        run_done(&r);

        /* Usage errors. */
        RUN(&r, NULL, "-s", srv.sock, "token", "a/b");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "a", "b");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "storage", "--wait", "31");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "storage", "--wait", "5x");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "frobnicate");
        CHECK_INT(r.code, 2);
        CHECK_CONTAINS(r.err, "unknown command 'frobnicate'");
        run_done(&r);
        RUN(&r, NULL, "--bogus");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "status", "extra");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "-s", srv.sock, "token", "storage", "--json");
        CHECK_INT(r.code, 2);
        run_done(&r);
        RUN(&r, NULL, "--help");
        CHECK_INT(r.code, 0);
        CHECK_CONTAINS(r.out, "Exit status:");
        CHECK_CONTAINS(r.out, "5  permission denied");
        run_done(&r);

        /* The table: aligned columns, spans from expires_in and next_refresh_at, errors cut and defanged. */
        RUN(&r, NULL, "-s", srv.sock, "status");
        CHECK_INT(r.code, 0);
        CHECK_STR(r.out,
                  "fedtokend 0.1.0, AWS credentials: imds\n"
                  "\n"
                  "NAME      KIND   STATE    EXPIRES IN  NEXT REFRESH  LAST ERROR\n"
                  "azure     azure  fresh    59m         in 30m        -\n"
                  "gcp-prod  gcp    failing  expired     in 5m         "
                  "Google STS: ?[31mThe audience in ID Token [api://AzureADT...\n"
                  "idp       jwt    pending  -           -             -\n");
        run_done(&r);

        RUN(&r, NULL, "-s", srv.sock, "status", "--json");
        CHECK_INT(r.code, 0);
        status_json(body, sizeof(body));
        snprintf(want, sizeof(want), "%s\n", body);
        CHECK_STR(r.out, want);
        run_done(&r);
        RUN(&r, NULL, "-s", missing, "status");
        CHECK_INT(r.code, 3);
        run_done(&r);
}

int main(void)
{
        int r;

        unsetenv("FEDTOKEN_SOCKET");
        srv.cli = getenv("FEDTOKEN_CLI") && *getenv("FEDTOKEN_CLI") ? getenv("FEDTOKEN_CLI") : NULL;
        r = server_start();
        if (r < 0) {
                fprintf(stderr, "test_client: cannot start the fake fedtokend: %s\n", strerror(-r));
                return 1;
        }
        test_tokens();
        test_errors();
        test_protocol();
        test_request();
        test_arguments();
        test_strerror();
        test_cli();
        test_timeout();
        server_stop();
        return test_summary();
}
