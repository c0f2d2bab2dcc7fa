/* SPDX-License-Identifier: MIT */
/*
 * fuzz_creds_json.c: every parser of the credential providers on the same
 * bytes: the IMDS/container credentials JSON, the IMDS token and role
 * listing, a shared credentials file, a config file's region and the
 * container URL rule.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "awscreds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *creds = NULL;
        char *s = NULL, *copy;

        if (ft_aws_creds_parse_json(text, size, &creds, &diag) == 0)
                ft_aws_creds_free(creds);
        if (ft_imds_parse_role(text, size, &s, &diag) == 0)
                free(s);
        if (ft_imds_parse_token(text, size, &s, &diag) == 0)
                free(s);
        creds = NULL;
        if (ft_aws_creds_from_profile(text, size, "fuzz", "default", &creds, &diag) == 0)
                ft_aws_creds_free(creds);
        if (ft_aws_config_region(text, size, "default", &s) == 0)
                free(s);

        /* The URL functions take C strings: the input up to its first NUL. */
        copy = ft_strndup(text, size);
        if (!copy)
                return 0;
        if (ft_container_url(copy[0] == '/' ? copy : NULL, copy, &s, &diag) == 0)
                free(s);
        (void)ft_aws_http_allowed(copy);
        free(copy);
        return 0;
}
