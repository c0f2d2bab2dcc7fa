/* SPDX-License-Identifier: MIT */
/*
 * floor: the least an HTTP server on a Unix socket can do, as a yardstick.
 *
 * One thread, one epoll set. Every request (bytes up to CRLFCRLF, nothing
 * else parsed) is answered with the same in-memory response, read once from
 * a file at start (bench/run.sh captures fedtokend's own response, so the
 * bytes on the wire are identical). Connections are kept alive until the
 * client closes them. Nothing is checked, logged or counted: no real server
 * can be faster on this machine with this kernel, which is the point.
 *
 *   floor --socket PATH --response FILE
 *
 * A benchmark tool, not a test; SIGTERM or SIGINT ends it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REQ_BUF 8192
#define MAX_EVENTS 256

struct client {
        int fd;
        size_t len;                /* bytes of unanswered request data in buf */
        size_t owed;               /* complete requests not answered yet */
        size_t sent;               /* bytes of the current response written */
        bool want_out;
        char buf[REQ_BUF];
};

static char *response;
static size_t response_len;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
        stopping = sig;
}

static int load_response(const char *path)
{
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (1 << 20))
                return -1;
        response = malloc((size_t)st.st_size);
        if (!response)
                return -1;
        n = read(fd, response, (size_t)st.st_size);
        close(fd);
        if (n != st.st_size)
                return -1;
        response_len = (size_t)n;
        return 0;
}

static void client_close(struct client *c)
{
        close(c->fd);
        free(c);
}

static void want_out(int epfd, struct client *c, bool on)
{
        struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

        if (c->want_out != on && epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
                c->want_out = on;
}

/* Write the responses owed; false when the connection is gone. */
static bool client_flush(int epfd, struct client *c)
{
        while (c->owed > 0) {
                ssize_t n = send(c->fd, response + c->sent, response_len - c->sent, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        want_out(epfd, c, true);
                        return true;
                }
                if (n < 0)
                        return false;
                c->sent += (size_t)n;
                if (c->sent == response_len) {
                        c->sent = 0;
                        c->owed--;
                }
        }
        want_out(epfd, c, false);
        return true;
}

/* Count the complete request heads in buf and keep the incomplete rest. */
static bool client_read(struct client *c)
{
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        size_t start = 0;
        char *end;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true;
        if (n <= 0)
                return false;
        c->len += (size_t)n;
        while ((end = memmem(c->buf + start, c->len - start, "\r\n\r\n", 4)) != NULL) {
                c->owed++;
                start = (size_t)(end - c->buf) + 4;
        }
        if (start > 0) {
                memmove(c->buf, c->buf + start, c->len - start);
                c->len -= start;
        }
        /* A head that does not fit is not something the benchmark sends. */
        return c->len < sizeof(c->buf);
}

static int listen_on(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -1;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        (void)unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0)
                return -1;
        return fd;
}

static void accept_all(int epfd, int lfd)
{
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                struct client *c;
                struct epoll_event ev;

                if (fd < 0)
                        return;
                c = calloc(1, sizeof(*c));
                if (!c) {
                        close(fd);
                        continue;
                }
                c->fd = fd;
                ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                        client_close(c);
        }
}

int main(int argc, char **argv)
{
        struct epoll_event events[MAX_EVENTS];
        struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
        const char *sock = NULL, *file = NULL;
        struct sigaction sa = { .sa_handler = on_signal };
        int epfd, lfd;

        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--socket"))
                        sock = argv[i + 1];
                else if (!strcmp(argv[i], "--response"))
                        file = argv[i + 1];
        }
        if (!sock || !file || argc != 5) {
                fprintf(stderr, "usage: floor --socket PATH --response FILE\n");
                return 2;
        }
        if (load_response(file) < 0) {
                fprintf(stderr, "floor: cannot read %s\n", file);
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        lfd = listen_on(sock);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (lfd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
                fprintf(stderr, "floor: cannot listen on %s: %s\n", sock, strerror(errno));
                return 1;
        }
        while (!stopping) {
                int n = epoll_wait(epfd, events, MAX_EVENTS, -1);

                for (int i = 0; i < n; i++) {
                        struct client *c = events[i].data.ptr;
                        bool alive = true;

                        if (!c) {
                                accept_all(epfd, lfd);
                                continue;
                        }
                        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                                alive = client_read(c);
                        if (alive)
                                alive = client_flush(epfd, c);
                        if (!alive)
                                client_close(c);
                }
        }
        (void)unlink(sock);
        return 0;
}
