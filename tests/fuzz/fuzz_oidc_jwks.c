/* SPDX-License-Identifier: MIT */
/*
 * fuzz_oidc_jwks.c: the documents fetched to verify a token. The first byte
 * chooses: 0 parses the rest as an OpenID discovery document; 1 and 2 use
 * the rest as a JWKS to verify a valid RS256 or ES384 token from
 * tests/data/jwt/ (rs256.jwt, es384.jwt; see make.py there) against.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISSUER "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws"

static const char rs256_token[] =
        "eyJraWQiOiJ0ZXN0LXJzYS0xIiwidHlwIjoiSldUIiwiYWxnIjoiUlMyNTYifQ.eyJhdWQiOiJhcGk6Ly9BenVyZUFEVG9rZ"
        "W5FeGNoYW5nZSIsInN1YiI6ImFybjphd3M6aWFtOjoxMTExMjIyMjMzMzM6cm9sZS9leGFtcGxlLXdvcmtsb2FkLXJvbGUiL"
        "CJodHRwczovL3N0cy5hbWF6b25hd3MuY29tLyI6eyJhd3NfYWNjb3VudCI6IjExMTEyMjIyMzMzMyIsInNvdXJjZV9yZWdpb"
        "24iOiJ1cy1lYXN0LTIiLCJwcmluY2lwYWxfaWQiOiJhcm46YXdzOmlhbTo6MTExMTIyMjIzMzMzOnJvbGUvZXhhbXBsZS13b"
        "3JrbG9hZC1yb2xlIn0sImlzcyI6Imh0dHBzOi8vMDAwMDAwMDAtYWFhYS1iYmJiLWNjY2MtMDAwMDAwMDAwMDAwLnRva2Vuc"
        "y5zdHMuZ2xvYmFsLmFwaS5hd3MiLCJleHAiOjE3NjQ1OTQwMDAsImlhdCI6MTc2NDU5MDQwMCwianRpIjoiMDAwMDAwMDAtd"
        "GVzdC1qdGkwLTAwMDAtMDAwMDAwMDAwMDAxIn0.UYBFiWdgI8iaBMRmLxjY3H93_zmxBWsm43bjGqOM3Txk5FStmbXqCOHZn"
        "meWr8pI9CkqshIl7oU_SwdzoQ3xE_C5cISuT_nqcC_zhYfJcTrLuOtgSfDDxF7wUA0LwXGLDcv9VyTHH9SiNEedt0IrO9Jxt"
        "7usteZE7bqk6yoB195A8s55CWQ_2rACMw8Zcz3Hes35bUSje-r6TU_qK422UNllZfEUkYf81Nla2e9Gk5Fs2eb_WvKJs5b1K"
        "rrh6CUFoxx9-NikWyGB0DWYf_BsziX9f-SOoVK_HA895AUHJu3ddBqpdH5CvD4oWV1y7ptJ1eIRStTML2-pAyAFnWRrSA";

static const char es384_token[] =
        "eyJraWQiOiJ0ZXN0LWVjLTEiLCJ0eXAiOiJKV1QiLCJhbGciOiJFUzM4NCJ9.eyJhdWQiOlsiYXBpOi8vQXp1cmVBRFRva2V"
        "uRXhjaGFuZ2UiLCIvL2lhbS5nb29nbGVhcGlzLmNvbS9wcm9qZWN0cy8xMjM0NTY3ODkwMTIvbG9jYXRpb25zL2dsb2JhbC9"
        "3b3JrbG9hZElkZW50aXR5UG9vbHMvZXhhbXBsZS1wb29sL3Byb3ZpZGVycy9leGFtcGxlLWF3cyJdLCJzdWIiOiJhcm46YXd"
        "zOmlhbTo6MTExMTIyMjIzMzMzOnJvbGUvZXhhbXBsZS13b3JrbG9hZC1yb2xlIiwiaHR0cHM6Ly9zdHMuYW1hem9uYXdzLmN"
        "vbS8iOnsiYXdzX2FjY291bnQiOiIxMTExMjIyMjMzMzMiLCJzb3VyY2VfcmVnaW9uIjoidXMtZWFzdC0yIiwicHJpbmNpcGF"
        "sX2lkIjoiYXJuOmF3czppYW06OjExMTEyMjIyMzMzMzpyb2xlL2V4YW1wbGUtd29ya2xvYWQtcm9sZSJ9LCJpc3MiOiJodHR"
        "wczovLzAwMDAwMDAwLWFhYWEtYmJiYi1jY2NjLTAwMDAwMDAwMDAwMC50b2tlbnMuc3RzLmdsb2JhbC5hcGkuYXdzIiwiZXh"
        "wIjoxNzY0NTk0MDAwLCJpYXQiOjE3NjQ1OTA0MDAsImp0aSI6IjAwMDAwMDAwLXRlc3QtanRpMC0wMDAwLTAwMDAwMDAwMDA"
        "wNyJ9.KQ1JwlR2Yqp3T6NFV1XHFW_FnKP4hNA8Kq9TgqJM7JfJD3NRRiCi7wFFOwbScltn4XVClxQwj-0RsOZV0q0cxRcfHu"
        "UqwRs5Opl6pgTcwC-F7i5Rc8Q_er24no9pD2Yj";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *doc = (const char *)data + 1;
        struct ft_diag diag = { 0 };
        struct ft_jwt *j = NULL;
        char *jwks_uri = NULL;
        const char *token;

        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0:
                if (ft_oidc_parse_config(doc, size - 1, ISSUER, &jwks_uri, &diag) == 0)
                        free(jwks_uri);
                return 0;
        case 1:
                token = rs256_token;
                break;
        default:
                token = es384_token;
                break;
        }
        if (ft_jwt_decode(token, strlen(token), &j, &diag) < 0)
                abort();
        (void)ft_jwt_verify_jwks(j, doc, size - 1, &diag);
        ft_jwt_free(j);
        return 0;
}
