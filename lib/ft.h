/* SPDX-License-Identifier: MIT */
/*
 * ft.h: what every lib/ module shares: export marker, cleanup helpers and the
 * diagnosis record that carries a plain-language failure to the operator.
 *
 * lib/ is sans-I/O: it builds requests, parses responses and decides policy.
 * It never opens a socket, reads a clock it was not given or keeps global
 * state. Functions return 0 (or a count) on success and a negative errno on
 * failure; out-parameters are named ret_* and written only on success.
 */
#ifndef FT_H
#define FT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define FT_EXPORT __attribute__((visibility("default")))

#define FT_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Take ownership of a pointer held by a cleanup variable. */
#define FT_TAKE_PTR(p)                      \
        ({                                  \
                __typeof__(p) _ptr_ = (p);  \
                (p) = NULL;                 \
                _ptr_;                      \
        })

static inline void ft_freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ __attribute__((cleanup(ft_freep)))

/*
 * A failure explained for a person. `msg` says what went wrong and what to do,
 * in plain words, and never contains a token, assertion or secret key.
 * `code` is the upstream's own error code (e.g. "AccessDenied", "AADSTS70021")
 * when there is one, for logs and metrics.
 */
enum ft_retry {
        FT_RETRY_BACKOFF = 0,  /* transient: retry with exponential backoff */
        FT_RETRY_SLOW,         /* permanent until someone fixes something: retry slowly */
        FT_RETRY_NOW,          /* retry at once, e.g. with a fresh token or shorter duration */
};

struct ft_diag {
        char msg[1024];
        char code[96];
        enum ft_retry retry;
        int64_t retry_after;   /* seconds, from the upstream's Retry-After; 0 if none */
        long http_status;      /* 0 when not an HTTP answer */
};

/* printf into diag->msg (truncating safely); returns -EINVAL for convenience. */
int ft_diag_set(struct ft_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ft_diag_clear(struct ft_diag *d);

/*
 * printf into diag->msg and set diag->retry when diag is not NULL, then
 * return `err`, so a check can end in `return ft_diag_fail(...)`.
 */
int ft_diag_fail(struct ft_diag *diag, int err, enum ft_retry retry, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/*
 * Copy a finished sentence of `len` bytes (e.g. one built in an ft_strbuf)
 * into diag->msg. A sentence too long is cut before the character the
 * buffer would end inside, so the message stays valid UTF-8.
 */
void ft_diag_put(struct ft_diag *diag, const char *s, size_t len);

/* Overwrite memory that held a secret; the compiler may not elide it. */
void ft_wipe(void *p, size_t len);
/* Wipe a NUL-terminated string, then free it. Accepts NULL. */
void ft_free_secret(char *s);

/* A NUL-terminated copy of n bytes; NULL on allocation failure. */
char *ft_strndup(const char *s, size_t n);

#endif
