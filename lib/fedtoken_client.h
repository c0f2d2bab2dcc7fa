/* SPDX-License-Identifier: MIT */
/*
 * fedtoken_client.h: read a token from fedtokend in one call.
 *
 *     char *token = NULL;
 *     if (fedtoken_get(NULL, "storage", &token, NULL, 0) == 0) {
 *             use(token);
 *             fedtoken_free(token);
 *     }
 *
 * Blocking, no threads, no global state, no dependency beyond libc; safe to
 * call from several threads at once. It speaks HTTP/1.1 over fedtokend's Unix
 * socket: `socket_path` NULL means $FEDTOKEN_SOCKET (ignored in setuid
 * programs), else /run/fedtokend/fedtokend.sock. Every call opens its own
 * connection, never raises SIGPIPE, retries on EINTR and ends within its
 * timeout. A response larger than 1 MiB is refused.
 *
 * `err` (may be NULL, `errlen` its size) receives, on failure only, one line
 * saying what went wrong: fedtokend's own explanation (the "detail" of its
 * JSON error) or why it could not be asked. It never holds a token.
 *
 * Link with `pkg-config --libs fedtoken`.
 */
#ifndef FEDTOKEN_CLIENT_H
#define FEDTOKEN_CLIENT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FEDTOKEN_DEFAULT_SOCKET "/run/fedtokend/fedtokend.sock"

/* Results (negative). */
#define FEDTOKEN_OK 0
#define FEDTOKEN_E_CONNECT (-1)      /* cannot reach the socket (missing, refused) */
#define FEDTOKEN_E_NOT_FOUND (-2)    /* no such token (404) */
#define FEDTOKEN_E_FORBIDDEN (-3)    /* this user may not read it (403), or may not open the socket */
#define FEDTOKEN_E_UNAVAILABLE (-4)  /* no valid token right now (503): retry later */
#define FEDTOKEN_E_PROTOCOL (-5)     /* unexpected answer: not HTTP, truncated, over 1 MiB, other status */
#define FEDTOKEN_E_INVALID (-6)      /* bad argument: name, socket path too long, wait out of range */
#define FEDTOKEN_E_NOMEM (-7)
#define FEDTOKEN_E_TIMEOUT (-8)      /* fedtokend accepted but did not answer in time */

/* The most a `wait_s` may be: fedtokend caps ?wait= at 30 s. */
#define FEDTOKEN_WAIT_MAX 30

/*
 * The access token of [azure.NAME] or [gcp.NAME] (the bare token, no
 * newline) into *ret (free with fedtoken_free, which wipes it). NAME is
 * [A-Za-z0-9_-]{1,64}. Gives up after 5 s.
 */
int fedtoken_get(const char *socket_path, const char *name, char **ret, char *err, size_t errlen);
/* The AWS-signed JWT of [jwt.NAME]. */
int fedtoken_get_jwt(const char *socket_path, const char *name, char **ret, char *err, size_t errlen);
/*
 * As above, but when fedtokend has no token yet (it is starting, or the
 * first fetch is under way) it waits up to `wait_s` seconds
 * (0..FEDTOKEN_WAIT_MAX) for one before answering 503. Gives up after
 * wait_s + 5 s.
 */
int fedtoken_get_wait(const char *socket_path, const char *name, int wait_s, char **ret, char *err,
                      size_t errlen);
int fedtoken_get_jwt_wait(const char *socket_path, const char *name, int wait_s, char **ret, char *err,
                          size_t errlen);

/*
 * Any GET of the socket API (e.g. "/v1/status", "/v1/token/x?wait=10"):
 * returns 0 when fedtokend answered at all, with the HTTP status in
 * *ret_status and the body in *ret_body (NUL-terminated, free with
 * fedtoken_free) and its length in *ret_len; each out-parameter may be NULL.
 * `accept` NULL means application/json. Gives up after 35 s, enough for
 * ?wait=30.
 */
int fedtoken_request(const char *socket_path, const char *path, const char *accept, int *ret_status,
                     char **ret_body, size_t *ret_len);
/* The same with a chosen overall timeout (milliseconds, > 0) and `err`. */
int fedtoken_request_timeout(const char *socket_path, const char *path, const char *accept, int timeout_ms,
                             int *ret_status, char **ret_body, size_t *ret_len, char *err, size_t errlen);

/* Wipes (up to the terminating NUL) and frees a string from this library. Accepts NULL. */
void fedtoken_free(char *s);
/* A short English description of a FEDTOKEN_E_* value. */
const char *fedtoken_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
