/* SPDX-License-Identifier: MIT */
#include "sdnotify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

struct sdnotify {
        uv_timer_t watchdog;
        bool timer_open;
        char status[512];
};

int sdnotify_new(uv_loop_t *loop, struct sdnotify **ret)
{
        struct sdnotify *n = calloc(1, sizeof(*n));
        int r;

        if (!n)
                return -ENOMEM;
        r = uv_timer_init(loop, &n->watchdog);
        if (r < 0) {
                free(n);
                return r;
        }
        n->watchdog.data = n;
        n->timer_open = true;
        *ret = n;
        return 0;
}

static void on_watchdog(uv_timer_t *t)
{
        /* This runs on the event loop: if the loop is stuck, systemd hears nothing and restarts us. */
        (void)sd_notify(0, "WATCHDOG=1");
}

int sdnotify_watchdog_start(struct sdnotify *n)
{
        uint64_t usec = 0;
        int r;

        r = sd_watchdog_enabled(0, &usec);
        if (r <= 0 || usec == 0)
                return 0;
        log_info("watchdog: pinging systemd every %.1f s", usec / 2e6);
        on_watchdog(&n->watchdog);
        return uv_timer_start(&n->watchdog, on_watchdog, usec / 2000 ? usec / 2000 : 1, usec / 2000 ? usec / 2000 : 1);
}

void sdnotify_ready(struct sdnotify *n)
{
        (void)sd_notify(0, "READY=1");
}

void sdnotify_reloading(struct sdnotify *n)
{
        struct timespec ts;
        char msg[96];

        /* MONOTONIC_USEC lets systemd tell this reload from an older one (systemd.service(5)). */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
        (void)sd_notify(0, msg);
}

void sdnotify_stopping(struct sdnotify *n)
{
        (void)sd_notify(0, "STOPPING=1");
}

void sdnotify_status(struct sdnotify *n, const char *status)
{
        char msg[sizeof(n->status) + 8];

        if (!n || strcmp(n->status, status) == 0)
                return;
        snprintf(n->status, sizeof(n->status), "%s", status);
        snprintf(msg, sizeof(msg), "STATUS=%s", n->status);
        (void)sd_notify(0, msg);
}

int sdnotify_listen_fd(void)
{
        int n = sd_listen_fds(1);

        if (n <= 0)
                return -1;
        if (n > 1) {
                log_warning("socket activation passed %d sockets; using the first", n);
        }
        if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
                log_error("socket activation passed something other than a listening Unix stream socket");
                return -1;
        }
        return SD_LISTEN_FDS_START;
}

static void on_closed(uv_handle_t *h)
{
        free(h->data);
}

void sdnotify_free(struct sdnotify *n)
{
        if (!n)
                return;
        uv_timer_stop(&n->watchdog);
        uv_close((uv_handle_t *)&n->watchdog, on_closed);
}
