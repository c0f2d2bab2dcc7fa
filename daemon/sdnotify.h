/* SPDX-License-Identifier: MIT */
/*
 * sdnotify.h: the systemd service protocol: READY=1, STATUS=, WATCHDOG=1
 * from a loop timer (so a stuck loop stops the pings and systemd restarts
 * us), RELOADING=1 and STOPPING=1, and the socket passed by socket
 * activation. Everything is a no-op when not running under systemd.
 */
#ifndef FT_SDNOTIFY_H
#define FT_SDNOTIFY_H

#include <uv.h>

#include "ft.h"

struct sdnotify;

int sdnotify_new(uv_loop_t *loop, struct sdnotify **ret);
/* Start the watchdog pings when WATCHDOG_USEC asks for them (every half of it). */
int sdnotify_watchdog_start(struct sdnotify *n);
void sdnotify_ready(struct sdnotify *n);
void sdnotify_reloading(struct sdnotify *n);
void sdnotify_stopping(struct sdnotify *n);
/* A one-line status; sent only when it changed. */
void sdnotify_status(struct sdnotify *n, const char *status);
/* The listening socket from socket activation, or -1. */
int sdnotify_listen_fd(void);
/* Closes the timer; frees itself after the close callback. Accepts NULL. */
void sdnotify_free(struct sdnotify *n);

#endif
