/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c: ft_config_parse on any bytes, with a fixed environment.
 * When the input parses, its dump must parse again without the environment
 * (the dump holds every effective value) and describe the same
 * configuration: the same dump text apart from the "; from VARIABLE"
 * comments, and equal tokens by ft_config_jwt_equal. A difference is a real
 * bug, so it aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fake_getenv(const char *name, void *userdata)
{
        static const char *const vars[][2] = {
                { "AWS_DEFAULT_REGION", "eu-central-1" },
                { "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6" },
                { "AWS_ENDPOINT_URL", "https://localhost:4566/" },
                { "AWS_ROLE_SESSION_NAME", "fuzz" },
                { "AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/" },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(vars); i++)
                if (strcmp(vars[i][0], name) == 0)
                        return vars[i][1];
        return NULL;
}

/*
 * The start of a trailing "  ; from VARIABLE" in the n bytes at line, or
 * NULL. A value never ends like that: one with " ;" in it is quoted.
 */
static const char *env_comment(const char *line, size_t n)
{
        const char *last = NULL;

        for (const char *p = line; (p = memmem(p, n - (size_t)(p - line), "  ; from ", 9)); p++)
                last = p;
        if (!last || last + 9 == line + n ||
            strspn(last + 9, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n - (size_t)(last + 9 - line))
                return NULL;
        return last;
}

/* Drops every "  ; from VARIABLE" comment in place. */
static void strip_env_comments(char *dump)
{
        char *w = dump;

        for (const char *p = dump; *p;) {
                size_t n = strcspn(p, "\n");
                const char *mark = env_comment(p, n);
                size_t keep = mark ? (size_t)(mark - p) : n;

                memmove(w, p, keep);
                w += keep;
                p += n;
                if (*p == '\n')
                        *w++ = *p++;
        }
        *w = '\0';
}

static void round_trip(const struct ft_config *c)
{
        struct ft_config *again = NULL;
        struct ft_diag diag = { 0 };
        char *first = NULL, *second = NULL;

        if (ft_config_dump(c, &first) < 0)
                return;
        if (ft_config_parse(first, strlen(first), "dump", NULL, NULL, &again, &diag) < 0) {
                fprintf(stderr, "the dump does not parse: %s\n%s", diag.msg, first);
                abort();
        }
        if (ft_config_dump(again, &second) < 0)
                abort();
        strip_env_comments(first);
        if (strcmp(first, second) != 0) {
                fprintf(stderr, "the dump changed:\n%s\n----\n%s", first, second);
                abort();
        }
        if (again->n_jwts != c->n_jwts || again->n_azures != c->n_azures || again->n_gcps != c->n_gcps)
                abort();
        for (size_t i = 0; i < c->n_jwts; i++)
                if (!ft_config_jwt_equal(c->jwts[i], again->jwts[i]))
                        abort();
        free(first);
        free(second);
        ft_config_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ft_config *c = NULL;
        struct ft_diag diag = { 0 };

        if (ft_config_parse((const char *)data, size, "fuzz.conf", fake_getenv, NULL, &c, &diag) < 0) {
                /* A failure always explains itself. */
                if (diag.msg[0] == '\0' || !memchr(diag.msg, '\0', sizeof(diag.msg)))
                        abort();
                return 0;
        }
        round_trip(c);
        ft_config_free(c);
        return 0;
}
