/* SPDX-License-Identifier: MIT */
/*
 * loadgen: a closed-loop HTTP/1.1 load generator for a Unix socket.
 *
 * One process, one thread, one epoll set, non-blocking AF_UNIX sockets.
 *
 *   --keepalive  N persistent connections; each sends its next request as
 *                soon as the previous response is complete.
 *   --new-conn   N requests in flight, each on a fresh connection that is
 *                closed once its response is complete ("Connection: close").
 *
 * A warm-up (not measured) is followed by a fixed measured window. Every
 * response is parsed (status line, Content-Length) and checked; latency is
 * the time from the first byte sent (from socket() with --new-conn) to the
 * last byte of the response read, kept in a log-linear histogram with 64
 * sub-buckets per power of two (under 1.6 % error). The CPU time of the
 * server's processes (--server-pid) is sampled from /proc/PID/stat at both
 * edges of the window, so CPU per request covers the same requests.
 *
 * Output: one "loadgen key=value ..." line, then one line for people.
 * This is a benchmark tool, not a test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 65536
#define MAX_SERVER_PIDS 16
#define RESP_BUF (64 * 1024)
/* Histogram: values below 2^SUB_BITS+1 ns are exact, above they share 2^SUB_BITS buckets per power of two. */
#define SUB_BITS 6
#define SUB_COUNT (1u << SUB_BITS)
#define HIST_BUCKETS (2 * SUB_COUNT + 58 * SUB_COUNT)
/* After a refused connect (backlog full) a slot waits this long before trying again. */
#define RETRY_NS 200000

enum conn_state { C_IDLE, C_CONNECTING, C_SENDING, C_READING };

struct conn {
        int fd;
        enum conn_state state;
        uint64_t started_ns;       /* when the current request began */
        uint64_t retry_at_ns;      /* C_IDLE: not before this */
        size_t sent;
        size_t len;                /* bytes of the response read so far */
        size_t head_len;           /* 0 until the head is complete */
        size_t total_len;          /* head_len + Content-Length */
        int status;
        bool server_closes;        /* the response said Connection: close */
        char *buf;
};

struct counters {
        uint64_t requests;         /* complete responses, any status */
        uint64_t ok;               /* status 200 */
        uint64_t non200;
        uint64_t short_reads;      /* the connection ended before the response did */
        uint64_t bad;              /* unparsable or unsupported response */
        uint64_t connect_errors;
        uint64_t backlog_retries;  /* connect refused with EAGAIN: the listen queue was full */
        uint64_t reconnects;       /* keep-alive connections the server closed */
        uint64_t bytes;            /* response bytes of complete responses */
        uint64_t lat_sum_ns, lat_min_ns, lat_max_ns;
        uint64_t hist[HIST_BUCKETS];
};

struct options {
        const char *socket_path;
        const char *path;
        const char *label;
        unsigned conns;
        bool keepalive;
        double seconds;
        double warmup;
        pid_t server_pids[MAX_SERVER_PIDS];
        size_t n_server_pids;
        const char *dump_response;
        const char *dump_body;
};

struct run {
        const struct options *opt;
        int epfd;
        struct conn *conns;
        char request[2048];
        size_t request_len;
        bool measuring;
        bool draining;             /* the window is over: finish what is in flight, start nothing */
        struct counters c;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- histogram --- */

static size_t hist_index(uint64_t v)
{
        unsigned msb, shift;

        if (v < 2 * SUB_COUNT)
                return (size_t)v;
        msb = 63u - (unsigned)__builtin_clzll(v);
        shift = msb - SUB_BITS;
        /* msb >= SUB_BITS + 1; each power of two above gets SUB_COUNT buckets. */
        size_t i = 2 * SUB_COUNT + (size_t)(msb - SUB_BITS - 1) * SUB_COUNT + (size_t)((v >> shift) - SUB_COUNT);
        return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* The middle of the values that share bucket i. */
static double hist_value(size_t i)
{
        size_t k;
        unsigned shift;
        uint64_t lo;

        if (i < 2 * SUB_COUNT)
                return (double)i;
        k = i - 2 * SUB_COUNT;
        shift = (unsigned)(k / SUB_COUNT) + 1;
        lo = (uint64_t)(SUB_COUNT + k % SUB_COUNT) << shift;
        return (double)lo + (double)((uint64_t)1 << shift) / 2.0;
}

static double hist_quantile_ns(const struct counters *c, double q)
{
        uint64_t total = 0, want, seen = 0;

        for (size_t i = 0; i < HIST_BUCKETS; i++)
                total += c->hist[i];
        if (!total)
                return 0;
        want = (uint64_t)(q * (double)total + 0.999999);
        if (want < 1)
                want = 1;
        for (size_t i = 0; i < HIST_BUCKETS; i++) {
                seen += c->hist[i];
                if (seen >= want)
                        return hist_value(i);
        }
        return (double)c->lat_max_ns;
}

static void record(struct counters *c, uint64_t lat_ns)
{
        c->hist[hist_index(lat_ns)]++;
        c->lat_sum_ns += lat_ns;
        if (!c->lat_min_ns || lat_ns < c->lat_min_ns)
                c->lat_min_ns = lat_ns;
        if (lat_ns > c->lat_max_ns)
                c->lat_max_ns = lat_ns;
}

/* --- CPU time of other processes --- */

/* utime + stime of a process (all its threads) in clock ticks, or -1. */
static long long proc_cpu_ticks(pid_t pid)
{
        char path[64], buf[4096], *p;
        unsigned long long utime, stime;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: fields are counted after the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -1;
        /* After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15). */
        if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
                return -1;
        return (long long)(utime + stime);
}

static long long servers_cpu_ticks(const struct options *o)
{
        long long sum = 0;

        if (!o->n_server_pids)
                return -1;
        for (size_t i = 0; i < o->n_server_pids; i++) {
                long long t = proc_cpu_ticks(o->server_pids[i]);
                if (t < 0)
                        return -1;
                sum += t;
        }
        return sum;
}

/* Busy ticks of the whole machine (every CPU) from /proc/stat, or -1. */
static long long machine_busy_ticks(void)
{
        unsigned long long v[8] = { 0 };
        char buf[512];
        ssize_t n;
        int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        /* cpu user nice system idle iowait irq softirq steal: busy is all but idle and iowait. */
        if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) != 8)
                return -1;
        return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

static uint64_t self_cpu_us(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
               (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

/* --- response parsing --- */

/* The value of header `name` in the head [p, end), or NULL. */
static const char *find_header(const char *p, const char *end, const char *name, size_t *ret_len)
{
        size_t nlen = strlen(name);

        while (p < end) {
                const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                        eol = end;
                if ((size_t)(eol - p) > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
                        const char *v = p + nlen + 1;
                        while (v < eol && (*v == ' ' || *v == '\t'))
                                v++;
                        *ret_len = (size_t)(eol - v);
                        return v;
                }
                p = eol + 2;
        }
        return NULL;
}

/* Parse the head once it is complete: 1 parsed (or not yet complete: 0), -1 unusable response. */
static int parse_head(struct conn *c)
{
        const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        const char *v, *line_end;
        size_t vlen;
        unsigned long long clen = 0;

        if (!end)
                return c->len >= RESP_BUF ? -1 : 0;
        c->head_len = (size_t)(end - c->buf) + 4;
        if (c->head_len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0 || c->buf[8] != ' ')
                return -1;
        if (c->buf[9] < '1' || c->buf[9] > '5' || c->buf[10] < '0' || c->buf[10] > '9' || c->buf[11] < '0' ||
            c->buf[11] > '9')
                return -1;
        c->status = (c->buf[9] - '0') * 100 + (c->buf[10] - '0') * 10 + (c->buf[11] - '0');
        line_end = memmem(c->buf, c->head_len, "\r\n", 2);
        v = find_header(line_end + 2, end, "Content-Length", &vlen);
        if (!v || !vlen)
                return -1;  /* chunked or close-delimited bodies are not expected from any server here */
        for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || clen > RESP_BUF)
                        return -1;
                clen = clen * 10 + (unsigned)(v[i] - '0');
        }
        if (clen > RESP_BUF - c->head_len)
                return -1;
        c->total_len = c->head_len + (size_t)clen;
        v = find_header(line_end + 2, end, "Connection", &vlen);
        c->server_closes = v && vlen >= 5 && !strncasecmp(v, "close", 5);
        return 1;
}

/* --- connections --- */

static void conn_reset(struct conn *c)
{
        if (c->fd >= 0) {
                close(c->fd);  /* also removes it from the epoll set */
                c->fd = -1;
        }
        c->state = C_IDLE;
        c->sent = 0;
        c->len = 0;
        c->head_len = 0;
        c->total_len = 0;
        c->status = 0;
        c->server_closes = false;
}

static int set_events(struct run *r, struct conn *c, uint32_t events, int op)
{
        struct epoll_event ev = { .events = events, .data.ptr = c };

        return epoll_ctl(r->epfd, op, c->fd, &ev);
}

static void conn_failed(struct run *r, struct conn *c, uint64_t *counter)
{
        if (r->measuring)
                (*counter)++;
        conn_reset(c);
        c->retry_at_ns = 0;
}

/* Write what is left of the request; once it is all out, wait for the response. */
static void conn_write(struct run *r, struct conn *c)
{
        while (c->sent < r->request_len) {
                ssize_t n = send(c->fd, r->request + c->sent, r->request_len - c->sent, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        if (c->state != C_SENDING) {
                                c->state = C_SENDING;
                                (void)set_events(r, c, EPOLLOUT, EPOLL_CTL_MOD);
                        }
                        return;
                }
                if (n <= 0) {
                        conn_failed(r, c, &r->c.short_reads);
                        return;
                }
                c->sent += (size_t)n;
        }
        if (c->state != C_READING) {
                bool was_sending = c->state == C_SENDING;
                c->state = C_READING;
                if (was_sending)
                        (void)set_events(r, c, EPOLLIN, EPOLL_CTL_MOD);
        }
}

/* Open a connection (slot idle) and send a request on it. */
static void conn_open(struct run *r, struct conn *c, uint64_t now)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        c->started_ns = now;
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
                conn_failed(r, c, &r->c.connect_errors);
                c->retry_at_ns = now + RETRY_NS;
                return;
        }
        memcpy(sa.sun_path, r->opt->socket_path, strlen(r->opt->socket_path) + 1);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                /* AF_UNIX connects at once or fails; EAGAIN means the listen queue is full. */
                uint64_t *counter = errno == EAGAIN ? &r->c.backlog_retries : &r->c.connect_errors;
                conn_failed(r, c, counter);
                c->retry_at_ns = now + RETRY_NS;
                return;
        }
        c->state = C_CONNECTING;
        if (set_events(r, c, EPOLLIN, EPOLL_CTL_ADD) < 0) {
                conn_failed(r, c, &r->c.connect_errors);
                c->retry_at_ns = now + RETRY_NS;
                return;
        }
        c->sent = 0;
        conn_write(r, c);
}

/* Begin the next request: on the same connection (keep-alive) or on a new one. */
static void conn_start(struct run *r, struct conn *c, uint64_t now)
{
        if (r->draining)
                return;
        if (c->fd < 0) {
                conn_open(r, c, now);
                return;
        }
        c->started_ns = now;
        c->sent = 0;
        c->len = 0;
        c->head_len = 0;
        c->total_len = 0;
        c->status = 0;
        conn_write(r, c);
}

static void conn_complete(struct run *r, struct conn *c, uint64_t now)
{
        if (r->draining) {
                conn_reset(c);
                return;
        }
        if (r->measuring) {
                r->c.requests++;
                r->c.bytes += c->total_len;
                if (c->status == 200)
                        r->c.ok++;
                else
                        r->c.non200++;
                record(&r->c, now - c->started_ns);
        }
        if (c->len > c->total_len) {
                /* Bytes nobody asked for: the stream is out of step, start over on a new connection. */
                if (r->measuring)
                        r->c.bad++;
                conn_reset(c);
        } else if (!r->opt->keepalive) {
                conn_reset(c);
        } else if (c->server_closes) {
                if (r->measuring)
                        r->c.reconnects++;
                conn_reset(c);
        }
        conn_start(r, c, now);
}

static void conn_readable(struct run *r, struct conn *c)
{
        for (;;) {
                ssize_t n = recv(c->fd, c->buf + c->len, RESP_BUF - c->len, 0);
                uint64_t now;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        /* EOF or reset before the response was complete. */
                        conn_failed(r, c, &r->c.short_reads);
                        conn_start(r, c, now_ns());
                        return;
                }
                c->len += (size_t)n;
                if (!c->head_len) {
                        int p = parse_head(c);
                        if (p < 0) {
                                conn_failed(r, c, &r->c.bad);
                                conn_start(r, c, now_ns());
                                return;
                        }
                        if (p == 0)
                                continue;
                }
                if (c->len < c->total_len)
                        continue;
                now = now_ns();
                conn_complete(r, c, now);
                /* One response per event: with level-triggered epoll anything left wakes us again. */
                return;
        }
}

/* --- the loop --- */

static void start_idle(struct run *r, uint64_t now, bool *ret_waiting)
{
        bool waiting = false;

        for (unsigned i = 0; i < r->opt->conns; i++) {
                struct conn *c = &r->conns[i];
                if (c->state != C_IDLE)
                        continue;
                if (c->retry_at_ns > now) {
                        waiting = true;
                        continue;
                }
                conn_start(r, c, now);
                if (c->state == C_IDLE)
                        waiting = true;
        }
        *ret_waiting = waiting;
}

static bool in_flight(const struct run *r)
{
        for (unsigned i = 0; i < r->opt->conns; i++)
                if (r->conns[i].state == C_SENDING || (r->conns[i].state == C_READING && r->conns[i].fd >= 0))
                        return true;
        return false;
}

/*
 * Read the responses still in flight before closing: a server should survive
 * a client that goes away mid-response, but the benchmark is not the place
 * to test that, and it must end the same way for every server.
 */
static void drain(struct run *r)
{
        struct epoll_event events[512];
        uint64_t give_up = now_ns() + 5000000000u;

        r->draining = true;
        while (in_flight(r) && now_ns() < give_up) {
                int n = epoll_wait(r->epfd, events, (int)(sizeof(events) / sizeof(events[0])), 100);
                for (int i = 0; i < n; i++) {
                        struct conn *c = events[i].data.ptr;
                        if (c->fd < 0)
                                continue;
                        if (c->state == C_SENDING && (events[i].events & EPOLLOUT))
                                conn_write(r, c);
                        else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                                conn_readable(r, c);
                }
        }
}

struct usage {
        long long server_ticks;    /* -1: unknown */
        long long machine_ticks;   /* busy ticks of every CPU, -1: unknown */
        uint64_t self_us;
        double window_s;
};

static int run_load(struct run *r, struct usage *u)
{
        const struct options *o = r->opt;
        struct epoll_event events[512];
        uint64_t t0 = now_ns();
        uint64_t measure_at = t0 + (uint64_t)(o->warmup * 1e9);
        uint64_t stop_at = measure_at + (uint64_t)(o->seconds * 1e9);
        uint64_t measured_from = 0, self_from = 0;
        long long cpu_from = -1, cpu_to = -1, busy_from = -1, busy_to;
        bool waiting = true;  /* a slot whose first connect failed is retried */

        for (unsigned i = 0; i < o->conns; i++)
                conn_start(r, &r->conns[i], now_ns());
        for (;;) {
                uint64_t now = now_ns();
                int timeout_ms, n;

                if (!r->measuring && now >= measure_at) {
                        cpu_from = servers_cpu_ticks(o);
                        busy_from = machine_busy_ticks();
                        self_from = self_cpu_us();
                        measured_from = now_ns();
                        r->measuring = true;
                }
                if (now >= stop_at)
                        break;
                if (waiting)
                        start_idle(r, now, &waiting);
                timeout_ms = (int)(((r->measuring ? stop_at : measure_at) - now) / 1000000u) + 1;
                if (waiting)
                        timeout_ms = 1;
                n = epoll_wait(r->epfd, events, (int)(sizeof(events) / sizeof(events[0])), timeout_ms);
                if (n < 0 && errno != EINTR) {
                        perror("loadgen: epoll_wait");
                        return -1;
                }
                for (int i = 0; i < n; i++) {
                        struct conn *c = events[i].data.ptr;
                        if (c->fd < 0)
                                continue;
                        if (c->state == C_SENDING && (events[i].events & EPOLLOUT))
                                conn_write(r, c);
                        else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                                conn_readable(r, c);
                        if (c->state == C_IDLE)
                                waiting = true;
                }
        }
        cpu_to = servers_cpu_ticks(o);
        busy_to = machine_busy_ticks();
        u->self_us = self_cpu_us() - self_from;
        u->window_s = (double)(now_ns() - measured_from) / 1e9;
        u->server_ticks = cpu_from >= 0 && cpu_to >= 0 ? cpu_to - cpu_from : -1;
        u->machine_ticks = busy_from >= 0 && busy_to >= 0 ? busy_to - busy_from : -1;
        r->measuring = false;
        drain(r);
        return 0;
}

static void report(const struct run *r, const struct usage *u)
{
        double window_s = u->window_s;
        uint64_t self_us = u->self_us;
        const struct options *o = r->opt;
        const struct counters *c = &r->c;
        double rps = c->requests / window_s;
        double p50 = hist_quantile_ns(c, 0.50) / 1000.0, p90 = hist_quantile_ns(c, 0.90) / 1000.0;
        double p99 = hist_quantile_ns(c, 0.99) / 1000.0, p999 = hist_quantile_ns(c, 0.999) / 1000.0;
        double mean = c->requests ? (double)c->lat_sum_ns / (double)c->requests / 1000.0 : 0;
        uint64_t errors = c->non200 + c->short_reads + c->bad + c->connect_errors;
        long tick = sysconf(_SC_CLK_TCK);
        double srv_us = u->server_ticks >= 0 ? (double)u->server_ticks * 1e6 / (double)tick : -1;
        /* What the rest of the machine used meanwhile: other people's work disturbs the numbers. */
        double other_pct = u->machine_ticks >= 0 && srv_us >= 0 ?
                           ((double)u->machine_ticks * 1e6 / (double)tick - srv_us - (double)self_us) /
                           (window_s * 1e6) * 100.0 : -1;

        if (u->machine_ticks >= 0 && srv_us >= 0 && other_pct < 0)
                other_pct = 0;  /* tick rounding: nobody else ran */
        double srv_per_req = srv_us >= 0 && c->requests ? srv_us / (double)c->requests : -1;
        double srv_pct = srv_us >= 0 ? srv_us / (window_s * 1e6) * 100.0 : -1;
        double cli_per_req = c->requests ? (double)self_us / (double)c->requests : 0;
        double cli_pct = (double)self_us / (window_s * 1e6) * 100.0;
        const char *mode = o->keepalive ? "keepalive" : "new-conn";

        printf("loadgen label=%s mode=%s conns=%u seconds=%.3f requests=%" PRIu64 " rps=%.1f"
               " p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f"
               " errors=%" PRIu64 " non200=%" PRIu64 " short=%" PRIu64 " bad=%" PRIu64 " connect_errors=%" PRIu64
               " backlog_retries=%" PRIu64 " reconnects=%" PRIu64 " resp_bytes=%.0f"
               " server_cpu_us_per_req=%.3f server_cpu_pct=%.1f client_cpu_us_per_req=%.3f client_cpu_pct=%.1f"
               " other_cpu_pct=%.1f\n",
               o->label, mode, o->conns, window_s, c->requests, rps, p50, p90, p99, p999, c->lat_max_ns / 1000.0,
               mean, errors, c->non200, c->short_reads, c->bad, c->connect_errors, c->backlog_retries,
               c->reconnects, c->requests ? (double)c->bytes / (double)c->requests : 0.0, srv_per_req, srv_pct,
               cli_per_req, cli_pct, other_pct);
        printf("%s %s/%u: %.0f req/s, latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; %" PRIu64
               " errors",
               o->label, mode, o->conns, rps, p50, p99, p999, c->lat_max_ns / 1000.0, errors);
        if (srv_per_req >= 0)
                printf("; server CPU %.2f us/req (%.0f%% of a core)", srv_per_req, srv_pct);
        printf("; loadgen CPU %.2f us/req (%.0f%%)", cli_per_req, cli_pct);
        if (other_pct >= 0)
                printf("; other processes %.0f%% of a core", other_pct);
        printf("\n");
        fflush(stdout);
}

/* --- one request with blocking I/O, to capture a response --- */

static int dump_once(const struct options *o, const char *request, size_t request_len)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct conn c = { .fd = -1 };
        int fd, p = 0;
        FILE *f;

        c.buf = malloc(RESP_BUF);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (!c.buf || fd < 0)
                return 1;
        memcpy(sa.sun_path, o->socket_path, strlen(o->socket_path) + 1);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            send(fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len) {
                fprintf(stderr, "loadgen: %s: %s\n", o->socket_path, strerror(errno));
                return 1;
        }
        while (p == 0 || c.len < c.total_len) {
                ssize_t n = recv(fd, c.buf + c.len, RESP_BUF - c.len, 0);
                if (n <= 0) {
                        fprintf(stderr, "loadgen: the response ended early\n");
                        return 1;
                }
                c.len += (size_t)n;
                if (p == 0)
                        p = parse_head(&c);
                if (p < 0) {
                        fprintf(stderr, "loadgen: unusable response\n");
                        return 1;
                }
        }
        close(fd);
        if (c.status != 200) {
                fprintf(stderr, "loadgen: status %d\n", c.status);
                return 1;
        }
        if (o->dump_response) {
                f = fopen(o->dump_response, "wb");
                if (!f || fwrite(c.buf, 1, c.total_len, f) != c.total_len || fclose(f) != 0)
                        return 1;
        }
        if (o->dump_body) {
                f = fopen(o->dump_body, "wb");
                if (!f || fwrite(c.buf + c.head_len, 1, c.total_len - c.head_len, f) != c.total_len - c.head_len ||
                    fclose(f) != 0)
                        return 1;
        }
        free(c.buf);
        return 0;
}

static void usage(FILE *out)
{
        fprintf(out,
                "usage: loadgen --socket PATH [--path /v1/jwt/NAME] [--conns N] [--keepalive | --new-conn]\n"
                "               [--seconds S] [--warmup S] [--server-pid PID]... [--label TEXT]\n"
                "       loadgen --socket PATH --path P [--dump-response FILE] [--dump-body FILE]\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "path", required_argument, NULL, 'p' },
                { "conns", required_argument, NULL, 'c' },
                { "keepalive", no_argument, NULL, 'k' },
                { "new-conn", no_argument, NULL, 'n' },
                { "seconds", required_argument, NULL, 't' },
                { "warmup", required_argument, NULL, 'w' },
                { "server-pid", required_argument, NULL, 'P' },
                { "label", required_argument, NULL, 'l' },
                { "dump-response", required_argument, NULL, 'R' },
                { "dump-body", required_argument, NULL, 'B' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        int ch;

        *o = (struct options){ .path = "/", .label = "server", .conns = 1, .keepalive = true, .seconds = 10,
                               .warmup = 2 };
        while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                char *end;
                switch (ch) {
                case 's': o->socket_path = optarg; break;
                case 'p': o->path = optarg; break;
                case 'c':
                        o->conns = (unsigned)strtoul(optarg, &end, 10);
                        if (*end || o->conns < 1 || o->conns > MAX_CONNS) {
                                fprintf(stderr, "loadgen: --conns is 1 to %d\n", MAX_CONNS);
                                return -1;
                        }
                        break;
                case 'k': o->keepalive = true; break;
                case 'n': o->keepalive = false; break;
                case 't':
                        o->seconds = strtod(optarg, &end);
                        if (*end || !(o->seconds > 0 && o->seconds <= 86400)) {
                                fprintf(stderr, "loadgen: --seconds is more than 0\n");
                                return -1;
                        }
                        break;
                case 'w':
                        o->warmup = strtod(optarg, &end);
                        if (*end || !(o->warmup >= 0 && o->warmup <= 3600)) {
                                fprintf(stderr, "loadgen: --warmup is 0 or more\n");
                                return -1;
                        }
                        break;
                case 'P':
                        if (o->n_server_pids == MAX_SERVER_PIDS) {
                                fprintf(stderr, "loadgen: at most %d --server-pid\n", MAX_SERVER_PIDS);
                                return -1;
                        }
                        o->server_pids[o->n_server_pids++] = (pid_t)strtol(optarg, &end, 10);
                        if (*end || o->server_pids[o->n_server_pids - 1] <= 0) {
                                fprintf(stderr, "loadgen: bad --server-pid %s\n", optarg);
                                return -1;
                        }
                        break;
                case 'l': o->label = optarg; break;
                case 'R': o->dump_response = optarg; break;
                case 'B': o->dump_body = optarg; break;
                case 'h': usage(stdout); exit(0);
                default: return -1;
                }
        }
        if (optind != argc || !o->socket_path) {
                usage(stderr);
                return -1;
        }
        if (strlen(o->socket_path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
                fprintf(stderr, "loadgen: socket path too long\n");
                return -1;
        }
        if (strlen(o->path) > 1024 || o->path[0] != '/' || strpbrk(o->path, " \r\n")) {
                fprintf(stderr, "loadgen: --path is an absolute request target without spaces\n");
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        static struct run r;
        struct options o;
        struct usage u;
        int n;

        if (parse_args(argc, argv, &o) < 0)
                return 2;
        signal(SIGPIPE, SIG_IGN);
        r.opt = &o;
        n = snprintf(r.request, sizeof(r.request), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", o.path,
                     o.keepalive ? "" : "Connection: close\r\n");
        r.request_len = (size_t)n;
        if (o.dump_response || o.dump_body)
                return dump_once(&o, r.request, r.request_len);

        r.epfd = epoll_create1(EPOLL_CLOEXEC);
        r.conns = calloc(o.conns, sizeof(*r.conns));
        if (r.epfd < 0 || !r.conns) {
                perror("loadgen");
                return 1;
        }
        for (unsigned i = 0; i < o.conns; i++) {
                r.conns[i].fd = -1;
                r.conns[i].buf = malloc(RESP_BUF);
                if (!r.conns[i].buf) {
                        perror("loadgen");
                        return 1;
                }
                /* Touch the buffers now, so page faults do not land in the measured window. */
                memset(r.conns[i].buf, 0, RESP_BUF);
        }
        if (run_load(&r, &u) < 0)
                return 1;
        report(&r, &u);
        for (unsigned i = 0; i < o.conns; i++) {
                if (r.conns[i].fd >= 0)
                        close(r.conns[i].fd);
                free(r.conns[i].buf);
        }
        free(r.conns);
        close(r.epfd);
        return 0;
}
