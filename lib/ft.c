/* SPDX-License-Identifier: MIT */
#include "ft.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

int ft_diag_set(struct ft_diag *d, const char *fmt, ...)
{
        va_list ap;

        if (!d)
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int ft_diag_fail(struct ft_diag *diag, int err, enum ft_retry retry, const char *fmt, ...)
{
        va_list ap;

        if (diag) {
                va_start(ap, fmt);
                vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
                va_end(ap);
                diag->retry = retry;
        }
        return err;
}

void ft_diag_put(struct ft_diag *diag, const char *s, size_t len)
{
        size_t n = len;

        if (!diag)
                return;
        if (n >= sizeof(diag->msg)) {
                n = sizeof(diag->msg) - 1;
                while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                        n--;
        }
        memcpy(diag->msg, s, n);
        diag->msg[n] = '\0';
}

void ft_diag_clear(struct ft_diag *d)
{
        if (d)
                memset(d, 0, sizeof(*d));
}

void ft_wipe(void *p, size_t len)
{
        if (p && len)
                mbedtls_platform_zeroize(p, len);
}

void ft_free_secret(char *s)
{
        if (!s)
                return;
        ft_wipe(s, strlen(s));
        free(s);
}

char *ft_strndup(const char *s, size_t n)
{
        char *r = malloc(n + 1);

        if (!r)
                return NULL;
        memcpy(r, s, n);
        r[n] = '\0';
        return r;
}
