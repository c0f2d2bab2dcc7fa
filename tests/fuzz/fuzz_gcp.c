/* SPDX-License-Identifier: MIT */
/*
 * fuzz_gcp.c: every Google response parser on the same bytes: the STS and
 * generateAccessToken success parsers and the error explanation for both
 * steps, with and without a context. Checks that a parsed token is usable
 * and that a diagnosis is a terminated, printable string that quotes nothing
 * shaped like a token.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AUD "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool/providers/aws-outbound"
#define NOW 1764590400

static const struct ft_jwt rs256_jwt = {
        .alg = (char *)"RS256",
        .iss = (char *)"https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws",
        .sub = (char *)"arn:aws:iam::111122223333:role/example-workload-role",
        .aud = { (char *)"api://AzureADTokenExchange" },
        .n_aud = 1,
        .iat = NOW,
        .exp = NOW + 300,
};

/* An ES384 token that had expired when it was sent: the other branches of the STS explanation. */
static const struct ft_jwt es384_jwt = {
        .alg = (char *)"ES384",
        .iss = (char *)"https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws",
        .sub = (char *)"arn:aws:iam::111122223333:role/example-workload-role",
        .aud = { (char *)"a", (char *)"b", (char *)"c", (char *)"d", (char *)"e" },
        .n_aud = 5,
        .iat = NOW - 400,
        .exp = NOW - 100,
};

static const struct ft_gcp_context contexts[] = {
        { .step = "sts", .audience = AUD, .subject = &rs256_jwt, .now = NOW, .scope = FT_GCP_DEFAULT_SCOPE },
        { .step = "sts", .audience = AUD, .subject = &es384_jwt, .now = NOW,
          .service_account = "example-sa@example-project.iam.gserviceaccount.com" },
        { .step = "iam", .audience = AUD, .subject = &rs256_jwt, .now = NOW,
          .service_account = "example-sa@example-project.iam.gserviceaccount.com", .lifetime = 7200,
          .scope = FT_GCP_DEFAULT_SCOPE },
        { .step = "iam", .audience = "//iam.googleapis.com/locations/global/workforcePools/p/providers/x" },
};

static bool printable(const char *s, size_t cap)
{
        size_t n = strnlen(s, cap);

        if (n == cap)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
                        return false;
        return true;
}

/* The redaction's own rule: 32+ base64url/dot characters mixing upper, lower and digits. */
static bool has_token_run(const char *s)
{
        size_t run = 0;
        bool upper = false, lower = false, digit = false;

        for (;; s++) {
                unsigned char c = (unsigned char)*s;
                bool token = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                             c == '-' || c == '_' || c == '.';
                if (!token) {
                        if (run >= 32 && upper && lower && digit)
                                return true;
                        if (!c)
                                return false;
                        run = 0;
                        upper = lower = digit = false;
                        continue;
                }
                run++;
                upper = upper || (c >= 'A' && c <= 'Z');
                lower = lower || (c >= 'a' && c <= 'z');
                digit = digit || (c >= '0' && c <= '9');
        }
}

static void check_diag(const struct ft_diag *d)
{
        if (!printable(d->msg, sizeof(d->msg)) || !printable(d->code, sizeof(d->code)))
                __builtin_trap();
}

static void check_token(const struct ft_access_token *t)
{
        if (!t || !t->access_token || t->access_token_len == 0 || strlen(t->access_token) != t->access_token_len ||
            !t->token_type || strcmp(t->token_type, "Bearer") != 0 || t->expires_at <= 0)
                __builtin_trap();
        for (size_t i = 0; i < t->access_token_len; i++)
                if ((unsigned char)t->access_token[i] <= 0x20 || (unsigned char)t->access_token[i] >= 0x7f)
                        __builtin_trap();
}

static void explain(long status, const char *body, size_t size, const struct ft_gcp_context *ctx)
{
        struct ft_diag diag;

        ft_gcp_explain_error(status, body, size, ctx, &diag);
        check_diag(&diag);
        if (!diag.msg[0] || diag.http_status != status || has_token_run(diag.msg) || has_token_run(diag.code))
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const long statuses[] = { 400, 403, 404, 429, 503 };
        const char *body = (const char *)data;
        struct ft_access_token *token = NULL;
        struct ft_diag diag = { 0 };

        if (ft_gcp_parse_sts(body, size, NOW, &token, &diag) == 0) {
                check_token(token);
                if (token->expires_at <= NOW || token->expires_at > NOW + 86400)
                        __builtin_trap();
                ft_access_token_free(token);
                token = NULL;
        }
        check_diag(&diag);

        ft_diag_clear(&diag);
        if (ft_gcp_parse_generate(body, size, &token, &diag) == 0) {
                check_token(token);
                ft_access_token_free(token);
                token = NULL;
        }
        check_diag(&diag);

        for (size_t i = 0; i < FT_ELEMENTSOF(contexts); i++)
                explain(statuses[(size + i) % FT_ELEMENTSOF(statuses)], body, size, &contexts[i]);
        explain(500, body, size, NULL);
        return 0;
}
