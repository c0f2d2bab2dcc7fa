/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sts_xml.c: every STS response parser on the same bytes: the
 * GetWebIdentityToken and AssumeRoleWithWebIdentity success parsers and the
 * error explanation (which runs the error-envelope parser), for both
 * operations and with and without a context.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "awscreds.h"
#include "sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct ft_sts_context gwit_ctx = {
        .operation = "GetWebIdentityToken",
        .region = "us-east-2",
        .endpoint = "https://sts.us-east-2.amazonaws.com/",
        .account_id = "111122223333",
        .principal_arn = "arn:aws:iam::111122223333:role/example-workload-role",
        .credential_source = "imds",
        .duration = 3600,
        .creds_expiration = 1764592200,
        .now = 1764590400,
};

static const struct ft_sts_context arwwi_ctx = {
        .operation = "AssumeRoleWithWebIdentity",
        .principal_arn = "arn:aws:iam::111122223333:role/example-irsa-role",
        .now = 1764590400,
};

/* A diagnosis must always be a terminated string; touching every byte lets ASan see it. */
static void check_diag(const struct ft_diag *d)
{
        if (strnlen(d->msg, sizeof(d->msg)) == sizeof(d->msg) || strnlen(d->code, sizeof(d->code)) == sizeof(d->code))
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data;
        struct ft_aws_creds *creds = NULL;
        struct ft_diag diag = { 0 };
        char *token = NULL;
        int64_t expiration = 0;

        if (ft_sts_parse_gwit(body, size, &token, &expiration, &diag) == 0) {
                if (!token || !*token)
                        __builtin_trap();
                ft_free_secret(token);
        }
        check_diag(&diag);

        ft_diag_clear(&diag);
        if (ft_sts_parse_arwwi(body, size, &creds, &diag) == 0) {
                if (!creds || !creds->access_key_id || !creds->secret_access_key || !creds->session_token)
                        __builtin_trap();
                ft_aws_creds_free(creds);
        }
        check_diag(&diag);

        ft_sts_explain_error(403, body, size, &gwit_ctx, &diag);
        check_diag(&diag);
        ft_sts_explain_error(400, body, size, &arwwi_ctx, &diag);
        check_diag(&diag);
        ft_sts_explain_error(503, body, size, NULL, &diag);
        check_diag(&diag);
        return 0;
}
