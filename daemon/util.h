/* SPDX-License-Identifier: MIT */
/* util.h: small daemon helpers: clocks, randomness, capped file reads. */
#ifndef FT_UTIL_H
#define FT_UTIL_H

#include "ft.h"

/* Wall clock (judges expiry), milliseconds since the epoch. */
int64_t now_wall_ms(void);
/* Monotonic clock (schedules), milliseconds. */
int64_t now_mono_ms(void);
/* A uniform random 32-bit number for jitter (getrandom; never blocks after boot). */
uint32_t random_u32(void);

/*
 * Read a whole file of at most `max` bytes, NUL-terminated, refusing
 * symlinks to nothing in particular but anything not a regular file. The
 * buffer is malloc'd; callers holding a secret wipe it (ft_wipe) before free.
 * On failure diag says which file and why.
 */
int read_file_capped(const char *path, size_t max, char **ret, size_t *ret_len, struct ft_diag *diag);

/* secure_getenv as an ft_getenv_fn. */
const char *env_lookup(const char *name, void *userdata);

#endif
