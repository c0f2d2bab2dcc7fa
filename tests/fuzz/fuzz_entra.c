/* SPDX-License-Identifier: MIT */
/*
 * fuzz_entra.c: the Entra ID success parser and the error explanation on the
 * same bytes (with a fixed context and decoded assertion, with a sparse one
 * and without), and the request builder with the input (up to its first
 * NUL) in place of each configured value in turn.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "entra.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1764590400)

static char alg[] = "RS256", kid[] = "EXAMPLE-KEY-ID",
            iss[] = "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws",
            sub[] = "arn:aws:iam::111122223333:role/example-workload-role", aud[] = "api://AzureADTokenExchange",
            aud2[] = "sts.amazonaws.com";

static const struct ft_jwt assertion = {
        .alg = alg, .kid = kid, .iss = iss, .sub = sub, .aud = { aud, aud2 }, .n_aud = 2,
        .iat = NOW, .nbf = NOW, .exp = NOW + 3600,
};

static const struct ft_entra_context full_ctx = {
        .tenant_id = "11111111-2222-3333-4444-555555555555",
        .client_id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        .scope = "https://management.azure.com/.default",
        .authority = "https://login.microsoftonline.com",
        .assertion = &assertion,
        .now = NOW + 4000,
        .recently_created = true,
};

static const struct ft_entra_context sparse_ctx = { .now = NOW };

/* A diagnosis must always be a terminated string; touching every byte lets ASan see it. */
static void check_diag(const struct ft_diag *d)
{
        if (strnlen(d->msg, sizeof(d->msg)) == sizeof(d->msg) || strnlen(d->code, sizeof(d->code)) == sizeof(d->code))
                __builtin_trap();
}

static void check_token(const struct ft_access_token *t)
{
        if (!t->access_token || !*t->access_token || strlen(t->access_token) != t->access_token_len)
                __builtin_trap();
        for (const char *p = t->access_token; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                        __builtin_trap();
        if (!t->token_type || strcmp(t->token_type, "Bearer") != 0 || t->expires_at <= NOW)
                __builtin_trap();
        if (t->refresh_at != 0 && (t->refresh_at <= NOW || t->refresh_at >= t->expires_at))
                __builtin_trap();
}

/* A built request carries exactly the five fields: every value's '&' and '=' were encoded. */
static void check_request(const struct ft_request *r)
{
        size_t amps = 0, eqs = 0;

        for (size_t i = 0; i < r->body_len; i++) {
                amps += r->body[i] == '&';
                eqs += r->body[i] == '=';
        }
        if (amps != 4 || eqs != 5 || strncmp(r->body, "client_id=", 10) != 0 || strpbrk(r->url, " \r\n?#"))
                __builtin_trap();
}

static void build_with(const struct ft_entra_params *p)
{
        struct ft_request *r = NULL;
        struct ft_diag diag = { 0 };

        if (ft_entra_build(p, &r, &diag) == 0) {
                check_request(r);
                ft_request_free(r);
        }
        check_diag(&diag);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const long statuses[] = { 400, 401, 429, 503 };
        const char *body = (const char *)data;
        struct ft_access_token *t = NULL;
        struct ft_diag diag = { 0 };
        struct ft_entra_params p;
        char *text;

        if (ft_entra_parse(body, size, NOW, &t, &diag) == 0) {
                check_token(t);
                ft_access_token_free(t);
        }
        check_diag(&diag);

        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
                ft_entra_explain_error(statuses[i], body, size, i % 2 ? &sparse_ctx : &full_ctx, &diag);
                check_diag(&diag);
        }
        ft_entra_explain_error(302, body, size, NULL, &diag);
        check_diag(&diag);

        text = ft_strndup(body, size);
        if (!text)
                return 0;
        p = (struct ft_entra_params){
                .authority = text, .tenant_id = full_ctx.tenant_id, .client_id = full_ctx.client_id,
                .scope = full_ctx.scope, .assertion = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        };
        build_with(&p);
        p.authority = NULL;
        p.tenant_id = text;
        build_with(&p);
        p.tenant_id = full_ctx.tenant_id;
        p.client_id = text;
        build_with(&p);
        p.client_id = full_ctx.client_id;
        p.scope = text;
        build_with(&p);
        p.scope = full_ctx.scope;
        p.assertion = text;
        build_with(&p);
        ft_free_secret(text);
        return 0;
}
