/* SPDX-License-Identifier: MIT */
/*
 * fuzz_jwt.c: decode any bytes as a token; whatever decodes goes through the
 * local checks, the audience lookup and signature verification against the
 * test JWKS of tests/data/jwt/ (its RS256 and ES384 keys).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks[] =
        "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"test-rsa-1\",\"n\":\"zJ7gxSu5hlTKjuZ1N8LxSfIj"
        "iCvpPme3Eizt14zfYAgMOuCpvjoQR8smF8FtmOeBdI8LTp2ZI5K7qb8YKITz16aWu-GYa_Ck4wQ2yeClL76iI9_8yE0Alw9Y"
        "9HC1m27Myw7BpFkYihQTZXCK0WMk8bz3eXrUhPVW5kypiFoZoWZUXjGMKqaYOdsnalcEbIcnOJrT4Nbuyb1Ry6XWWic2Cl0o"
        "ADa1EM8T2yUYFiN8k0gf8XNK3R2GefQOo851vAOBB6zBGaJISo3pJwIXs7fmgSESfU4vNy9kI86AOUc7ww9LaZuvfQORNZDr"
        "WVgK0LbR-9mGNmxEIOB_J0X-Z85gpQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"use\":\"sig\",\"alg\":\"ES384\",\"kid\":\"test-ec"
        "-1\",\"crv\":\"P-384\",\"x\":\"JV64-BRislnFLzql6YxnxhZ91O4ijGtiKKc537XskHk8AlwLi3oRbQkW0axsPMYO\",\"y\":\"n8"
        "RpatvQAAB9JMxNVbQv0bcNCAaya4R_kLsC7Benvu7hT7ygokjBU2SOsD_IBaCp\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const audiences[] = { "api://AzureADTokenExchange", "//iam.googleapis.com/x" };
        struct ft_diag diag = { 0 };
        struct ft_jwt *j = NULL;

        if (ft_jwt_decode((const char *)data, size, &j, &diag) < 0)
                return 0;
        (void)ft_jwt_check(j, 1764590400, 300, 60, audiences, 1, &diag);
        (void)ft_jwt_check(j, 1764590400, 0, 0, audiences, 2, &diag);
        /* Times from the token itself reach the boundaries. */
        (void)ft_jwt_check(j, j->exp, 0, j->iat, NULL, 0, &diag);
        (void)ft_jwt_check(j, j->iat, j->nbf, INT64_MAX, NULL, 0, &diag);
        for (size_t i = 0; i < j->n_aud; i++)
                (void)ft_jwt_has_audience(j, j->aud[i]);
        (void)ft_jwt_verify_jwks(j, jwks, sizeof(jwks) - 1, &diag);
        ft_jwt_free(j);
        return 0;
}
