/* SPDX-License-Identifier: MIT */
/*
 * test.h: the unit tests' assertion macros. Each failed check prints both
 * operands and the place; the program ends with "N passed, N failed" and
 * exits non-zero when anything failed.
 */
#ifndef FT_TEST_H
#define FT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned test_passed, test_failed;

#define CHECK(cond)                                                                     \
        do {                                                                            \
                if (cond) {                                                             \
                        test_passed++;                                                  \
                } else {                                                                \
                        test_failed++;                                                  \
                        fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
                }                                                                       \
        } while (0)

#define CHECK_INT(a, b)                                                                 \
        do {                                                                            \
                long long _a = (long long)(a), _b = (long long)(b);                     \
                if (_a == _b) {                                                         \
                        test_passed++;                                                  \
                } else {                                                                \
                        test_failed++;                                                  \
                        fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",       \
                                __FILE__, __LINE__, #a, #b, _a, _b);                    \
                }                                                                       \
        } while (0)

#define CHECK_STR(a, b)                                                                 \
        do {                                                                            \
                const char *_a = (a), *_b = (b);                                        \
                if (_a && _b && strcmp(_a, _b) == 0) {                                  \
                        test_passed++;                                                  \
                } else {                                                                \
                        test_failed++;                                                  \
                        fprintf(stderr, "%s:%d: %s == %s failed:\n  got:  \"%s\"\n  want: \"%s\"\n", \
                                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
                }                                                                       \
        } while (0)

/* Substring check, for diagnoses: the sentence must name the thing. */
#define CHECK_CONTAINS(hay, needle)                                                     \
        do {                                                                            \
                const char *_h = (hay), *_n = (needle);                                 \
                if (_h && _n && strstr(_h, _n)) {                                       \
                        test_passed++;                                                  \
                } else {                                                                \
                        test_failed++;                                                  \
                        fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n",      \
                                __FILE__, __LINE__, _h ? _h : "(null)", _n ? _n : "(null)"); \
                }                                                                       \
        } while (0)

static inline int test_summary(void)
{
        printf("%u passed, %u failed\n", test_passed, test_failed);
        return test_failed ? 1 : 0;
}

/* Read a whole file (tests only); NUL-terminated; NULL on failure. */
static inline char *test_read_file(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t len = 0, cap = 0, n;

        if (!f)
                return NULL;
        for (;;) {
                if (len + 4096 + 1 > cap) {
                        char *nb;
                        cap = cap ? cap * 2 : 8192;
                        nb = realloc(buf, cap);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = nb;
                }
                n = fread(buf + len, 1, 4096, f);
                len += n;
                if (n < 4096)
                        break;
        }
        fclose(f);
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return buf;
}

/* $FT_SHARED_DIR/<rel>, or ../shared/<rel>; static buffer. */
static inline const char *test_shared_path(const char *rel)
{
        static char path[4096];
        const char *dir = getenv("FT_SHARED_DIR");

        snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "../shared", rel);
        return path;
}

static inline char *test_read_shared(const char *rel, size_t *ret_len)
{
        return test_read_file(test_shared_path(rel), ret_len);
}

#endif
