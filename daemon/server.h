/* SPDX-License-Identifier: MIT */
/*
 * server.h: the Unix-socket HTTP/1.1 API that local clients read tokens
 * from. GET only, keep-alive, pipelining-safe, peer credentials checked on
 * accept (SO_PEERCRED) against per-token allow lists. Token responses are
 * rendered once per renewal (and at most once a second for expires_in), so
 * serving a request is a lookup and a write of pre-rendered bytes.
 *
 *   GET /v1/token/NAME   [azure.NAME] / [gcp.NAME] access token (JSON, or raw)
 *   GET /v1/jwt/NAME     [jwt.NAME] AWS-signed JWT (JSON, or raw)
 *       ?format=raw or Accept: text/plain → the bare token; ?wait=N (≤ 30 s)
 *   GET /v1/status       every token's state (never a secret)
 *   GET /healthz         200 when every token is servable, else 503 and why
 *   GET /metrics         Prometheus text
 */
#ifndef FT_SERVER_H
#define FT_SERVER_H

#include <uv.h>

#include "config.h"
#include "tokens.h"

struct server;

/* Resolves the allow lists (user and group names) now; -EINVAL with a diagnosis for unknown names. */
int server_new(uv_loop_t *loop, const struct ft_config *cfg, struct tokens *t, struct server **ret,
               struct ft_diag *diag);

/*
 * Listen on `fd` when socket activation passed one (>= 0), else bind the
 * configured path: a stale socket left by a dead daemon is removed, a live
 * one (another instance answering) or any other kind of file is refused.
 * The socket gets socket_mode and socket_group.
 */
int server_listen(struct server *s, int fd, struct ft_diag *diag);

/*
 * Reload: the new configuration and token set take over; connections stay
 * open and requests waiting for a token keep waiting for it. On failure
 * (an allow list names an unknown user) nothing changes.
 */
int server_reload(struct server *s, const struct ft_config *cfg, struct tokens *t, struct ft_diag *diag);

/* A token changed (renewed, failed, dropped): re-render it and answer requests waiting for it. */
void server_token_changed(struct server *s, int id);

unsigned server_connections(const struct server *s);

/* Closes the listener and every connection; frees itself after the close callbacks. Removes a socket it bound. */
void server_free(struct server *s);

#endif
