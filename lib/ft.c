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
