/* SPDX-License-Identifier: MIT */
/*
 * test_jwt.c: decoding, local checks and JWKS verification of AWS-style
 * tokens. Signed fixtures come from tests/data/jwt/ (see make.py there): an
 * RSA-2048 and a P-384 key, tokens frozen at 2025-12-01T12:00:00Z
 * (1764590400) with exp one hour later.
 */
#include <errno.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "jwt.h"
#include "test.h"

#define NOW INT64_C(1764590400)
#define AZURE_AUD "api://AzureADTokenExchange"
#define GCP_AUD "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/" \
                "example-pool/providers/example-aws"
#define ROLE "arn:aws:iam::111122223333:role/example-workload-role"

/* $FT_TESTS_DIR/data/jwt/<name> (tests/ when run from the source tree). */
static char *read_jwt_data(const char *name, size_t *ret_len)
{
        const char *dir = getenv("FT_TESTS_DIR");
        char path[4096];
        char *s;

        snprintf(path, sizeof(path), "%s/data/jwt/%s", dir && *dir ? dir : "tests", name);
        s = test_read_file(path, ret_len);
        if (!s) {
                fprintf(stderr, "cannot read %s (set FT_TESTS_DIR)\n", path);
                exit(2);
        }
        return s;
}

static int decode_file(const char *name, struct ft_jwt **ret, struct ft_diag *diag)
{
        size_t len;
        char *token = read_jwt_data(name, &len);
        int r = ft_jwt_decode(token, len, ret, diag);

        free(token);
        return r;
}

/* Decode a token file and verify it against a JWKS text; the diagnosis is kept for checks. */
static int verify_file(const char *name, const char *jwks, struct ft_diag *diag)
{
        struct ft_jwt *j = NULL;
        int r;

        ft_diag_clear(diag);
        r = decode_file(name, &j, diag);
        if (r < 0)
                return r;
        r = ft_jwt_verify_jwks(j, jwks, strlen(jwks), diag);
        ft_jwt_free(j);
        return r;
}

/* "b64url(header).b64url(payload).sig" from JSON texts, for decode's error paths. */
static char *make_token(const char *header, const char *payload, const char *sig)
{
        char *h = NULL, *p = NULL, *t;
        size_t n;

        if (ft_base64url_encode(header, strlen(header), &h) < 0 ||
            ft_base64url_encode(payload, strlen(payload), &p) < 0)
                abort();
        n = strlen(h) + strlen(p) + strlen(sig) + 3;
        t = malloc(n);
        if (!t)
                abort();
        snprintf(t, n, "%s.%s.%s", h, p, sig);
        free(h);
        free(p);
        return t;
}

static int decode_json(const char *header, const char *payload, struct ft_diag *diag)
{
        char *t = make_token(header, payload, "c2ln");
        struct ft_jwt *j = NULL;
        int r;

        ft_diag_clear(diag);
        r = ft_jwt_decode(t, strlen(t), &j, diag);
        ft_jwt_free(j);
        free(t);
        return r;
}

static int decode_text(const char *token, struct ft_diag *diag)
{
        struct ft_jwt *j = NULL;
        int r;

        ft_diag_clear(diag);
        r = ft_jwt_decode(token, strlen(token), &j, diag);
        ft_jwt_free(j);
        return r;
}

static void test_captured_token(void)
{
        struct ft_diag diag = { 0 };
        struct ft_jwt *j = NULL;
        size_t len;
        char *token = test_read_shared("vectors/captured/aws-web-identity-token.jwt", &len);

        CHECK(token != NULL);
        if (!token)
                return;
        while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r'))
                token[--len] = '\0';
        CHECK_INT(ft_jwt_decode(token, len, &j, &diag), 0);
        if (!j) {
                free(token);
                return;
        }
        CHECK_STR(j->alg, "RS256");
        CHECK_STR(j->kid, "EXAMPLE-KEY-ID");
        CHECK_STR(j->iss, "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws");
        CHECK_STR(j->sub, ROLE);
        CHECK_INT(j->n_aud, 1);
        CHECK_STR(j->aud[0], AZURE_AUD);
        CHECK_INT(j->exp, 1764590700);
        CHECK_INT(j->iat, 1764590400);
        CHECK_INT(j->nbf, 0);
        CHECK_STR(j->jti, "00000000-fake-jti0-0000-000000000001");
        CHECK_STR(j->aws_account, "111122223333");
        CHECK_STR(j->aws_source_region, "us-east-2");
        CHECK_STR(j->aws_principal_id, ROLE);
        /* What was signed is the token up to its last dot, byte for byte. */
        CHECK_INT(j->signing_input_len, (size_t)(strrchr(token, '.') - token));
        CHECK(memcmp(j->signing_input, token, j->signing_input_len) == 0);
        CHECK_INT(j->signature_len, strlen("FAKE-SIGNATURE-NOT-VALID"));
        CHECK(j->signature && memcmp(j->signature, "FAKE-SIGNATURE-NOT-VALID", j->signature_len) == 0);
        CHECK(ft_jwt_has_audience(j, AZURE_AUD));
        CHECK(!ft_jwt_has_audience(j, "api://AzureADTokenExchang"));
        CHECK(!ft_jwt_has_audience(j, NULL));

        /* The captured token lives 300 s from 12:00:00Z. */
        {
                const char *auds[] = { AZURE_AUD };
                const char *other[] = { AZURE_AUD, "api://other" };

                CHECK_INT(ft_jwt_check(j, NOW, 60, 60, auds, 1, &diag), 0);
                CHECK_INT(ft_jwt_check(j, NOW + 239, 60, 60, NULL, 0, &diag), 0);
                CHECK_INT(ft_jwt_check(j, NOW + 241, 60, 60, NULL, 0, &diag), -EKEYEXPIRED);
                CHECK_CONTAINS(diag.msg, "has only 59 s left, less than the 60 s required");
                CHECK_INT(diag.retry, FT_RETRY_NOW);
                CHECK_INT(ft_jwt_check(j, NOW + 300, 0, 60, NULL, 0, &diag), -EKEYEXPIRED);
                CHECK_CONTAINS(diag.msg, "the token expired at 2025-12-01T12:05:00Z (0 s ago)");
                CHECK_INT(ft_jwt_check(j, NOW + 400, 0, 60, NULL, 0, &diag), -EKEYEXPIRED);
                CHECK_CONTAINS(diag.msg, "expired at 2025-12-01T12:05:00Z (100 s ago)");
                CHECK_INT(ft_jwt_check(j, NOW, 600, 60, NULL, 0, &diag), -EKEYEXPIRED);
                CHECK_CONTAINS(diag.msg, "expires at 2025-12-01T12:05:00Z and has only 300 s left, less than "
                                         "the 600 s required");
                /* Issued 100 s in this host's future: allowed with 100 s of skew, not with 99. */
                CHECK_INT(ft_jwt_check(j, NOW - 100, 0, 100, NULL, 0, &diag), 0);
                CHECK_INT(ft_jwt_check(j, NOW - 100, 0, 99, NULL, 0, &diag), -EKEYREJECTED);
                CHECK_CONTAINS(diag.msg, "issued at 2025-12-01T12:00:00Z, 100 s in the future");
                CHECK_CONTAINS(diag.msg, "99 s of clock skew");
                CHECK_INT(ft_jwt_check(j, NOW, 0, INT64_MAX, NULL, 0, &diag), 0);
                CHECK_INT(ft_jwt_check(j, NOW, 0, 0, other, 2, &diag), -EKEYREJECTED);
                CHECK_CONTAINS(diag.msg, "audience \"api://other\" missing; token is for [" AZURE_AUD "]");
                CHECK_INT(ft_jwt_check(j, -1, 0, 0, NULL, 0, &diag), -EINVAL);
                CHECK_INT(ft_jwt_check(j, NOW, -1, 0, NULL, 0, &diag), -EINVAL);
                CHECK_INT(ft_jwt_check(j, NOW, 0, 0, NULL, 1, &diag), -EINVAL);
        }
        ft_jwt_free(j);
        free(token);
}

static void test_decode_fixtures(void)
{
        struct ft_diag diag = { 0 };
        struct ft_jwt *j = NULL;
        const char *both[] = { AZURE_AUD, GCP_AUD };

        CHECK_INT(decode_file("rs256-multi-aud.jwt", &j, &diag), 0);
        if (j) {
                CHECK_STR(j->kid, "test-rsa-1");
                CHECK_INT(j->n_aud, 2);
                CHECK_STR(j->aud[0], AZURE_AUD);
                CHECK_STR(j->aud[1], GCP_AUD);
                CHECK_INT(ft_jwt_check(j, NOW, 300, 60, both, 2, &diag), 0);
                CHECK_INT(ft_jwt_check(j, NOW, 300, 60, (const char *[]){ "api://x" }, 1, &diag), -EKEYREJECTED);
                CHECK_CONTAINS(diag.msg, "token is for [" AZURE_AUD ", " GCP_AUD "]");
                ft_jwt_free(j);
                j = NULL;
        }
        CHECK_INT(decode_file("rs256-nokid.jwt", &j, &diag), 0);
        if (j) {
                CHECK(j->kid == NULL);
                ft_jwt_free(j);
                j = NULL;
        }
        CHECK_INT(decode_file("rs256-expired.jwt", &j, &diag), 0);
        if (j) {
                CHECK_INT(ft_jwt_check(j, NOW, 0, 60, NULL, 0, &diag), -EKEYEXPIRED);
                CHECK_CONTAINS(diag.msg, "expired at 2025-12-01T11:00:00Z (3600 s ago)");
                ft_jwt_free(j);
                j = NULL;
        }
        /* alg none decodes (with an empty signature); only verification refuses it. */
        CHECK_INT(decode_file("alg-none.jwt", &j, &diag), 0);
        if (j) {
                CHECK_STR(j->alg, "none");
                CHECK_INT(j->signature_len, 0);
                ft_jwt_free(j);
                j = NULL;
        }
}

static void test_decode_rejects(void)
{
        static const char hdr[] = "{\"alg\":\"RS256\",\"kid\":\"k\"}";
        struct ft_diag diag = { 0 };
        char *big, aud17[512], *t;
        size_t o;

        CHECK_INT(decode_json(hdr, "{\"iss\":\"https://x\",\"exp\":1764590700}", &diag), 0);
        CHECK_INT(decode_text("", &diag), -EBADMSG);
        CHECK_INT(decode_text("abc.def", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "three dot-separated parts");
        CHECK_INT(decode_text("a.b.c.d", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "more than three parts");
        CHECK_INT(decode_text("a.b.c.d.e", &diag), -EBADMSG);
        CHECK_INT(decode_text(".e30.c2ln", &diag), -EBADMSG);
        CHECK_INT(decode_text("e30..c2ln", &diag), -EBADMSG);
        /* Padding, white space and the standard alphabet are not base64url. */
        CHECK_INT(decode_text("eyJhbGciOiJSUzI1NiJ9.e30=.c2ln", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "outside base64url at offset 24");
        CHECK_INT(decode_text("eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n", &diag), -EBADMSG);
        CHECK_INT(decode_text("eyJhbGciOiJSUzI1NiJ9.e30.c2+n", &diag), -EBADMSG);
        CHECK_INT(decode_text("eyJhbGciOiJSUzI1NiJ9.e30.c", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "signature is not base64url");
        CHECK_INT(decode_text("eyJhbGciOiJSUzI1NiJ9.e30.", &diag), 0);
        CHECK_INT(decode_text("eyJhbGciOiJSUzI1NiJ9.e.c2ln", &diag), -EBADMSG);

        /* Oversize: refused before any decoding. */
        big = malloc(FT_JWT_MAX_LEN + 2);
        memset(big, 'A', FT_JWT_MAX_LEN + 1);
        big[5] = '.';
        big[10] = '.';
        big[FT_JWT_MAX_LEN + 1] = '\0';
        CHECK_INT(decode_text(big, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "more than the 32768 accepted");
        free(big);

        /* Header. */
        CHECK_INT(decode_json("[1]", "{}", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "header is not a JSON object");
        CHECK_INT(decode_json("{\"kid\":\"k\"}", "{}", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "no alg");
        CHECK_INT(decode_json("{\"alg\":\"\"}", "{}", &diag), -EBADMSG);
        CHECK_INT(decode_json("{\"alg\":256}", "{}", &diag), -EBADMSG);
        CHECK_INT(decode_json("{\"alg\":\"RS256\",\"kid\":7}", "{}", &diag), -EBADMSG);
        CHECK_INT(decode_json("{\"alg\":\"RS256\",\"crit\":[\"b64\"],\"b64\":false}", "{}", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "crit");
        CHECK_INT(decode_json("{\"alg\":\"none\",\"alg\":\"RS256\"}", "{}", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "names \"alg\" twice");
        CHECK_INT(decode_json("{\"alg\":\"RS256\"} {}", "{}", &diag), -EBADMSG);
        CHECK_INT(decode_json("{\"alg\":\"RS256\"", "{}", &diag), -EBADMSG);

        /* Claims of the wrong type or shape. */
        CHECK_INT(decode_json(hdr, "[]", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "payload is not a JSON object");
        CHECK_INT(decode_json(hdr, "{\"aud\":\"a\",\"aud\":\"b\"}", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "names \"aud\" twice");
        CHECK_INT(decode_json(hdr, "{\"iss\":1}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"sub\":null}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"aud\":[]}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"aud\":\"\"}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"aud\":[\"a\",2]}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"aud\":{\"a\":1}}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"exp\":\"1764590700\"}", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "exp claim is not a number");
        CHECK_INT(decode_json(hdr, "{\"exp\":1764590700.5}", &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "whole number of seconds");
        CHECK_INT(decode_json(hdr, "{\"iat\":-1}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"nbf\":1e999}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"exp\":253402300800}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"exp\":253402300799}", &diag), 0);
        CHECK_INT(decode_json(hdr, "{\"https://sts.amazonaws.com/\":\"111122223333\"}", &diag), -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"https://sts.amazonaws.com/\":{\"aws_account\":111122223333}}", &diag),
                  -EBADMSG);
        CHECK_INT(decode_json(hdr, "{\"https://sts.amazonaws.com/\":{\"aws_account\":\"1\",\"aws_account\":\"2\"}}",
                              &diag), -EBADMSG);
        /* Unknown claims of any shape are fine. */
        CHECK_INT(decode_json(hdr, "{\"x\":[1,{\"y\":null}],\"https://sts.amazonaws.com/\":{\"org_id\":[]}}", &diag),
                  0);

        /* FT_JWT_MAX_AUD audiences are accepted, one more is not. */
        o = (size_t)snprintf(aud17, sizeof(aud17), "{\"aud\":[");
        for (int i = 0; i < FT_JWT_MAX_AUD; i++)
                o += (size_t)snprintf(aud17 + o, sizeof(aud17) - o, "%s\"a%d\"", i ? "," : "", i);
        snprintf(aud17 + o, sizeof(aud17) - o, "]}");
        CHECK_INT(decode_json(hdr, aud17, &diag), 0);
        snprintf(aud17 + o, sizeof(aud17) - o, ",\"a16\"]}");
        CHECK_INT(decode_json(hdr, aud17, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "more than 16 audiences");

        /* A token without exp decodes, but fails the local check. */
        t = make_token(hdr, "{\"aud\":\"a\"}", "c2ln");
        {
                struct ft_jwt *j = NULL;

                CHECK_INT(ft_jwt_decode(t, strlen(t), &j, &diag), 0);
                if (j) {
                        CHECK_INT(ft_jwt_check(j, NOW, 0, 0, NULL, 0, &diag), -EBADMSG);
                        CHECK_CONTAINS(diag.msg, "no exp");
                }
                ft_jwt_free(j);
        }
        free(t);

        /* nbf in the future. */
        t = make_token(hdr, "{\"exp\":1764594000,\"nbf\":1764591000}", "c2ln");
        {
                struct ft_jwt *j = NULL;

                CHECK_INT(ft_jwt_decode(t, strlen(t), &j, &diag), 0);
                if (j) {
                        CHECK_INT(ft_jwt_check(j, NOW, 0, 60, NULL, 0, &diag), -EKEYREJECTED);
                        CHECK_CONTAINS(diag.msg, "not valid before 2025-12-01T12:10:00Z, 600 s from now");
                        CHECK_INT(ft_jwt_check(j, NOW + 600, 0, 0, NULL, 0, &diag), 0);
                }
                ft_jwt_free(j);
        }
        free(t);
}

static void test_verify_fixtures(void)
{
        struct ft_diag diag = { 0 };
        char *jwks = read_jwt_data("jwks.json", NULL);
        char *weak = read_jwt_data("jwks-weak.json", NULL);

        CHECK_INT(verify_file("rs256.jwt", jwks, &diag), 0);
        CHECK_INT(verify_file("rs256-multi-aud.jwt", jwks, &diag), 0);
        CHECK_INT(verify_file("es384.jwt", jwks, &diag), 0);
        /* The signature of an expired token is still good: expiry is ft_jwt_check's business. */
        CHECK_INT(verify_file("rs256-expired.jwt", jwks, &diag), 0);
        /* Without kid every RSA key is tried: test-rsa-1 fails, test-rsa-2 verifies. */
        CHECK_INT(verify_file("rs256-nokid.jwt", jwks, &diag), 0);

        CHECK_INT(verify_file("rs256-wrong-kid.jwt", jwks, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "no key in the JWKS (3 keys) has the token's kid \"test-rsa-unknown\"");
        CHECK_INT(diag.retry, FT_RETRY_NOW);
        CHECK_INT(verify_file("rs256-tampered-payload.jwt", jwks, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "the RS256 signature does not match key \"test-rsa-1\"");
        CHECK_INT(verify_file("rs256-tampered-signature.jwt", jwks, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "the RS256 signature does not match key \"test-rsa-1\"");
        CHECK_INT(verify_file("es384-tampered-signature.jwt", jwks, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "the ES384 signature does not match key \"test-ec-1\"");
        CHECK_INT(verify_file("es384-der-signature.jwt", jwks, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "not the 96 of raw r||s");
        CHECK_INT(verify_file("alg-none.jwt", jwks, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "alg \"none\" is not accepted");
        CHECK_INT(verify_file("hs256.jwt", jwks, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "alg \"HS256\" is not accepted");
        CHECK_INT(verify_file("rs256-weak.jwt", weak, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "key \"test-rsa-weak\" is a 1024-bit RSA key");
        /* A good token against a JWKS without its key, and the other way round. */
        CHECK_INT(verify_file("rs256.jwt", weak, &diag), -EBADMSG);
        CHECK_INT(verify_file("rs256-weak.jwt", jwks, &diag), -EBADMSG);

        free(jwks);
        free(weak);
}

/* Verify rs256.jwt or es384.jwt against jwks.json after `edit` changed it. */
static int verify_edited(const char *token_file, void (*edit)(cJSON *keys), struct ft_diag *diag)
{
        char *text = read_jwt_data("jwks.json", NULL);
        cJSON *root = cJSON_Parse(text);
        char *edited;
        int r;

        free(text);
        if (!root)
                abort();
        edit(cJSON_GetObjectItem(root, "keys"));
        edited = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        r = verify_file(token_file, edited, diag);
        free(edited);
        return r;
}

static void set_string(cJSON *obj, const char *name, const char *value)
{
        cJSON_DeleteItemFromObject(obj, name);
        cJSON_AddStringToObject(obj, name, value);
}

static void edit_rsa_alg(cJSON *keys) { set_string(cJSON_GetArrayItem(keys, 0), "alg", "RS512"); }
static void edit_rsa_use(cJSON *keys) { set_string(cJSON_GetArrayItem(keys, 0), "use", "enc"); }
static void edit_rsa_no_e(cJSON *keys) { cJSON_DeleteItemFromObject(cJSON_GetArrayItem(keys, 0), "e"); }
static void edit_rsa_no_alg_use(cJSON *keys)
{
        cJSON_DeleteItemFromObject(cJSON_GetArrayItem(keys, 0), "alg");
        cJSON_DeleteItemFromObject(cJSON_GetArrayItem(keys, 0), "use");
}
static void edit_ec_curve(cJSON *keys) { set_string(cJSON_GetArrayItem(keys, 1), "crv", "P-256"); }
static void edit_ec_short_x(cJSON *keys)
{
        /* 47 bytes: the leading zero byte a sloppy encoder drops. */
        set_string(cJSON_GetArrayItem(keys, 1), "x", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4");
}
static void edit_ec_off_curve(cJSON *keys)
{
        cJSON *ec = cJSON_GetArrayItem(keys, 1);
        set_string(ec, "y", cJSON_GetObjectItem(ec, "x")->valuestring);
}
/* An EC key that shares the RSA key's kid comes first: skipped for RS256, the RSA key still verifies. */
static void edit_ec_shares_kid(cJSON *keys)
{
        cJSON *ec = cJSON_DetachItemFromArray(keys, 1);
        set_string(ec, "kid", "test-rsa-1");
        cJSON_InsertItemInArray(keys, 0, ec);
}
static void edit_only_ec_with_rsa_kid(cJSON *keys)
{
        set_string(cJSON_GetArrayItem(keys, 1), "kid", "test-rsa-1");
        cJSON_DeleteItemFromArray(keys, 0);
}
static void edit_101_keys(cJSON *keys)
{
        while (cJSON_GetArraySize(keys) < 101)
                cJSON_AddItemToArray(keys, cJSON_Duplicate(cJSON_GetArrayItem(keys, 2), true));
}
static void edit_100_keys(cJSON *keys)
{
        /* Decoys first, the real key last. */
        cJSON *first = cJSON_DetachItemFromArray(keys, 0);
        while (cJSON_GetArraySize(keys) < 99)
                cJSON_AddItemToArray(keys, cJSON_Duplicate(cJSON_GetArrayItem(keys, 1), true));
        cJSON_AddItemToArray(keys, first);
}
static void edit_drop_rsa2(cJSON *keys) { cJSON_DeleteItemFromArray(keys, 2); }
static void edit_rsa1_twice(cJSON *keys)
{
        cJSON_DeleteItemFromArray(keys, 2);
        cJSON_AddItemToArray(keys, cJSON_Duplicate(cJSON_GetArrayItem(keys, 0), true));
}
static void edit_garbage_keys(cJSON *keys)
{
        cJSON_InsertItemInArray(keys, 0, cJSON_CreateString("not a key"));
        cJSON_InsertItemInArray(keys, 0, cJSON_CreateNull());
        cJSON_InsertItemInArray(keys, 0, cJSON_CreateObject());
}

static void test_verify_jwks_rules(void)
{
        struct ft_diag diag = { 0 };
        struct ft_jwt *j = NULL;
        char *big;

        CHECK_INT(verify_edited("rs256.jwt", edit_rsa_alg, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "key \"test-rsa-1\" is not for alg RS256");
        CHECK_INT(verify_edited("rs256.jwt", edit_rsa_use, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "not for signatures");
        CHECK_INT(verify_edited("rs256.jwt", edit_rsa_no_e, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "no usable RSA n and e");
        CHECK_INT(verify_edited("rs256.jwt", edit_rsa_no_alg_use, &diag), 0);
        CHECK_INT(verify_edited("es384.jwt", edit_ec_curve, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "not on curve P-384");
        CHECK_INT(verify_edited("es384.jwt", edit_ec_short_x, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "no usable P-384 x and y");
        CHECK_INT(verify_edited("es384.jwt", edit_ec_off_curve, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "not a point on P-384");
        CHECK_INT(verify_edited("rs256.jwt", edit_ec_shares_kid, &diag), 0);
        CHECK_INT(verify_edited("rs256.jwt", edit_only_ec_with_rsa_kid, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "is not an RSA key");
        CHECK_INT(verify_edited("rs256.jwt", edit_101_keys, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "101 keys, more than the 100 accepted");
        CHECK_INT(verify_edited("rs256.jwt", edit_100_keys, &diag), 0);
        CHECK_INT(verify_edited("rs256.jwt", edit_garbage_keys, &diag), 0);
        /* Without kid: one candidate names its failure, several are summed up. */
        CHECK_INT(verify_edited("rs256-nokid.jwt", edit_drop_rsa2, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "signature does not verify: the RS256 signature does not match key \"test-rsa-1\"");
        CHECK_INT(verify_edited("rs256-nokid.jwt", edit_rsa1_twice, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "none of the JWKS's 2 RSA keys verifies");

        CHECK_INT(decode_file("rs256.jwt", &j, &diag), 0);
        if (!j)
                return;
        CHECK_INT(ft_jwt_verify_jwks(j, "{\"keys\":{}}", 11, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "no keys array");
        CHECK_INT(ft_jwt_verify_jwks(j, "{}", 2, &diag), -EBADMSG);
        CHECK_INT(ft_jwt_verify_jwks(j, "{\"keys\":[]}", 11, &diag), -EBADMSG);
        CHECK_INT(ft_jwt_verify_jwks(j, "[]", 2, &diag), -EBADMSG);
        CHECK_INT(ft_jwt_verify_jwks(j, "", 0, &diag), -EBADMSG);
        CHECK_INT(ft_jwt_verify_jwks(j, "{\"keys\":[]} x", 13, &diag), -EBADMSG);
        big = malloc(FT_JWKS_MAX_LEN + 1);
        memset(big, ' ', FT_JWKS_MAX_LEN + 1);
        memcpy(big, "{\"keys\":[]}", 11);
        CHECK_INT(ft_jwt_verify_jwks(j, big, FT_JWKS_MAX_LEN + 1, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "more than the 262144 accepted");
        free(big);
        ft_jwt_free(j);
}

static void test_oidc_config(void)
{
        static const char issuer[] = "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws";
        struct ft_diag diag = { 0 };
        size_t len;
        char *doc = read_jwt_data("openid-configuration.json", &len), *uri = NULL;

        CHECK_INT(ft_oidc_parse_config(doc, len, issuer, &uri, &diag), 0);
        CHECK_STR(uri, "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws"
                       "/.well-known/jwks.json");
        free(uri);
        uri = NULL;
        /* The issuer must match exactly: a trailing slash is another issuer. */
        CHECK_INT(ft_oidc_parse_config(doc, len, "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts."
                                                 "global.api.aws/", &uri, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "names issuer \"" "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts."
                                 "global.api.aws\", not the expected");
        CHECK(uri == NULL);
        free(doc);

        doc = test_read_shared("vectors/captured/entra-openid-configuration.json", &len);
        CHECK(doc != NULL);
        if (doc) {
                CHECK_INT(ft_oidc_parse_config(doc, len,
                                               "https://localhost:8443/11111111-2222-3333-4444-555555555555/v2.0",
                                               &uri, &diag), 0);
                CHECK_STR(uri, "https://localhost:8443/common/discovery/v2.0/keys");
                free(uri);
                uri = NULL;
                free(doc);
        }

#define CONFIG(s) s, sizeof(s) - 1, "https://i"
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"issuer\":\"https://i\",\"jwks_uri\":\"http://i/k\"}"), &uri, &diag),
                  -EBADMSG);
        CHECK_CONTAINS(diag.msg, "\"http://i/k\", which is not an https URL");
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"issuer\":\"https://i\",\"jwks_uri\":\"https://u@i/k\"}"), &uri,
                                       &diag), -EBADMSG);
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"issuer\":\"https://i\",\"jwks_uri\":\"https://i/ k\"}"), &uri,
                                       &diag), -EBADMSG);
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"issuer\":\"https://i\"}"), &uri, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "no jwks_uri");
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"jwks_uri\":\"https://i/k\"}"), &uri, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "no issuer");
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"issuer\":[\"https://i\"],\"jwks_uri\":\"https://i/k\"}"), &uri,
                                       &diag), -EBADMSG);
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"issuer\":\"https://i\",\"jwks_uri\":\"https://i/k\"}"), &uri,
                                       &diag), 0);
        CHECK_STR(uri, "https://i/k");
        free(uri);
        uri = NULL;
        CHECK_INT(ft_oidc_parse_config(CONFIG("<html>"), &uri, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "not a JSON object");
        CHECK_INT(ft_oidc_parse_config(CONFIG("{\"issuer\":\"https://evil\x01\",\"jwks_uri\":\"https://i/k\"}"),
                                       &uri, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "\"https://evil?\"");
#undef CONFIG
        {
                char *big = malloc(FT_OIDC_CONFIG_MAX_LEN + 1);

                memset(big, ' ', FT_OIDC_CONFIG_MAX_LEN + 1);
                big[0] = '{';
                big[FT_OIDC_CONFIG_MAX_LEN] = '}';
                CHECK_INT(ft_oidc_parse_config(big, FT_OIDC_CONFIG_MAX_LEN + 1, "https://i", &uri, &diag), -EBADMSG);
                CHECK_CONTAINS(diag.msg, "more than the 65536 accepted");
                free(big);
        }
        CHECK(uri == NULL);
}

int main(void)
{
        test_captured_token();
        test_decode_fixtures();
        test_decode_rejects();
        test_verify_fixtures();
        test_verify_jwks_rules();
        test_oidc_config();
        return test_summary();
}
