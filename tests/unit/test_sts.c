/* SPDX-License-Identifier: MIT */
/*
 * test_sts.c: STS endpoints against the SDK's resolution table, request
 * bodies byte for byte against the captured SDK requests, the response and
 * error parsers on captured and hostile XML, every error explanation, and
 * the duration clamp.
 */
#include <errno.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "awscreds.h"
#include "sigv4.h"
#include "sts.h"
#include "test.h"

#define CAPTURED "vectors/captured/"
#define NOW 1764590400 /* 2025-12-01T12:00:00Z, the capture clock */

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* The body of a captured .http file: everything after the first blank line. */
static char *capture_body(const char *file, size_t *ret_len)
{
        size_t len;
        char *text = test_read_shared(file, &len);
        char *sep, *body;

        if (!text)
                return NULL;
        sep = strstr(text, "\r\n\r\n");
        if (!sep) {
                free(text);
                return NULL;
        }
        *ret_len = len - (size_t)(sep + 4 - text);
        body = ft_strndup(sep + 4, *ret_len);
        free(text);
        return body;
}

/* The value of header `name` (lower case, as captured) in a .http file; static buffer. */
static const char *capture_header(const char *file, const char *name)
{
        static char value[512];
        char *text = test_read_shared(file, NULL);
        char *line;
        size_t n = strlen(name);

        value[0] = '\0';
        if (!text)
                return NULL;
        for (line = strstr(text, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
                if (strncmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
                        const char *v = line + 2 + n + 2;
                        snprintf(value, sizeof(value), "%.*s", (int)strcspn(v, "\r"), v);
                        break;
                }
        }
        free(text);
        return value[0] ? value : NULL;
}

static bool body_equals(const struct ft_request *req, const char *want, size_t want_len)
{
        return req && want && req->body_len == want_len && memcmp(req->body, want, want_len) == 0;
}

static char *repeat(const char *unit, size_t n)
{
        size_t ul = strlen(unit);
        char *s = malloc(ul * n + 1);

        for (size_t i = 0; i < n; i++)
                memcpy(s + i * ul, unit, ul);
        s[ul * n] = '\0';
        return s;
}

/* ------------------------------------------------------------------------ */
/* Endpoints                                                                */

static void test_endpoint_vectors(void)
{
        char *text = test_read_shared(CAPTURED "sts-endpoint-resolution.json", NULL);
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        const cJSON *e;
        unsigned checked = 0;

        CHECK(root != NULL);
        cJSON_ArrayForEach(e, root) {
                const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(e, "config");
                const char *region = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "region"));
                const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "url"));
                const char *signing = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "signingRegion"));
                bool fips = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "useFipsEndpoint"));
                bool dual = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "useDualstackEndpoint"));
                char *got = NULL;

                /* The global endpoint does not serve GetWebIdentityToken. */
                if (strcmp(region, "aws-global") == 0) {
                        CHECK_INT(ft_sts_endpoint(region, fips, dual, &got), -EINVAL);
                        continue;
                }
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "useGlobalEndpoint"))) {
                        CHECK_INT(ft_sts_endpoint(region, fips, dual, &got), 0);
                        CHECK(got && strcmp(got, url) != 0 && strstr(got, region));
                        free(got);
                        continue;
                }
                CHECK_INT(ft_sts_endpoint(region, fips, dual, &got), 0);
                CHECK_STR(got, url);
                /* The signing region is the region itself for every regional endpoint. */
                CHECK_STR(signing, region);
                free(got);
                checked++;
        }
        CHECK_INT(checked, 6);
        cJSON_Delete(root);
        free(text);
}

static void test_endpoint_partitions(void)
{
        static const struct {
                const char *region;
                bool fips, dual;
                const char *url;
        } cases[] = {
                { "us-east-2", true, true, "https://sts-fips.us-east-2.api.aws/" },
                { "eu-central-1", false, false, "https://sts.eu-central-1.amazonaws.com/" },
                { "ap-southeast-5", false, true, "https://sts.ap-southeast-5.api.aws/" },
                { "us-gov-west-1", true, false, "https://sts.us-gov-west-1.amazonaws.com/" },
                { "us-gov-east-1", false, true, "https://sts.us-gov-east-1.api.aws/" },
                { "us-gov-east-1", true, true, "https://sts-fips.us-gov-east-1.api.aws/" },
                { "cn-north-1", true, false, "https://sts-fips.cn-north-1.amazonaws.com.cn/" },
                { "cn-northwest-1", false, true, "https://sts.cn-northwest-1.api.amazonwebservices.com.cn/" },
                { "us-iso-east-1", false, false, "https://sts.us-iso-east-1.c2s.ic.gov/" },
                { "us-isob-east-1", true, false, "https://sts-fips.us-isob-east-1.sc2s.sgov.gov/" },
                { "eu-isoe-west-1", false, false, "https://sts.eu-isoe-west-1.cloud.adc-e.uk/" },
        };
        char *got;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                got = NULL;
                CHECK_INT(ft_sts_endpoint(cases[i].region, cases[i].fips, cases[i].dual, &got), 0);
                CHECK_STR(got, cases[i].url);
                free(got);
        }
        got = (char *)"untouched";
        CHECK_INT(ft_sts_endpoint("us-iso-east-1", false, true, &got), -EOPNOTSUPP);
        CHECK_INT(ft_sts_endpoint("us-isob-east-1", true, true, &got), -EOPNOTSUPP);
        CHECK_STR(got, "untouched");
}

static void test_endpoint_hostile_region(void)
{
        static const char *const bad[] = {
                "", "aws-global", "us-east", "us-east-", "-us-east-1", "us--east-1", "US-EAST-1",
                "us-east-1.evil.example", "us-east-1/", "us-east-1#", "evil.example/x-y-1", "us-east-1\r\nX: y",
                "us-east-1 ", "us_east_1", "1us-east-1", "us-east-1a", "us-east-x",
                "abcdefghij-abcdefghij-abcdefghij-abcdefghij-1",
        };
        char *got = (char *)"untouched";

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                CHECK_INT(ft_sts_endpoint(bad[i], false, false, &got), -EINVAL);
        CHECK_INT(ft_sts_endpoint(NULL, false, false, &got), -EINVAL);
        CHECK_INT(ft_sts_endpoint("us-east-1", false, false, NULL), -EINVAL);
        CHECK_STR(got, "untouched");
}

/* ------------------------------------------------------------------------ */
/* GetWebIdentityToken request                                              */

static void check_gwit_capture(const char *file, const char *endpoint, const struct ft_gwit_params *p,
                               const char *want_host)
{
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        size_t want_len = 0;
        char *want = capture_body(file, &want_len);

        CHECK(want != NULL);
        CHECK_INT(ft_sts_build_gwit(endpoint, p, &req, &diag), 0);
        if (!req) {
                free(want);
                return;
        }
        CHECK(body_equals(req, want, want_len));
        if (!body_equals(req, want, want_len))
                fprintf(stderr, "  got:  %s\n  want: %s\n", req->body, want ? want : "(null)");
        CHECK_STR(req->method, "POST");
        CHECK_STR(req->url, endpoint);
        CHECK_INT(req->n_headers, 2);
        CHECK_STR(req->headers[0].name, "Host");
        CHECK_STR(req->headers[0].value, want_host);
        CHECK_STR(ft_request_header(req, "host"), capture_header(file, "host"));
        CHECK_STR(req->headers[1].name, "Content-Type");
        CHECK_STR(req->headers[1].value, "application/x-www-form-urlencoded; charset=utf-8");
        ft_request_free(req);
        free(want);
}

static const char *const azure_audience[] = { "api://AzureADTokenExchange" };

static void test_gwit_captures(void)
{
        static const char *const two[] = { "api://AzureADTokenExchange", "https://sts.googleapis.com/example" };
        static const struct ft_sts_tag tags[] = { { "host", "web-01" }, { "env", "prod test/=+-@:." } };
        struct ft_gwit_params basic = { .audiences = azure_audience, .n_audiences = 1,
                                        .signing_algorithm = "RS256", .duration = 300 };
        struct ft_gwit_params multi = { .audiences = two, .n_audiences = 2, .signing_algorithm = "ES384",
                                        .duration = 3600, .tags = tags, .n_tags = 2 };

        check_gwit_capture(CAPTURED "sts-getwebidentitytoken.http", "http://127.0.0.1:8080/", &basic,
                           "127.0.0.1:8080");
        check_gwit_capture(CAPTURED "sts-getwebidentitytoken-realhost.http", "https://sts.us-east-2.amazonaws.com/",
                           &basic, "sts.us-east-2.amazonaws.com");
        check_gwit_capture(CAPTURED "sts-getwebidentitytoken-minimal.http", "https://sts.us-east-2.amazonaws.com/",
                           &basic, "sts.us-east-2.amazonaws.com");
        check_gwit_capture(CAPTURED "sts-getwebidentitytoken-multi-audience-tags.http", "http://127.0.0.1:8080/",
                           &multi, "127.0.0.1:8080");
        /* The minimal vector is signed with exactly our Content-Type value. */
        CHECK_STR(capture_header(CAPTURED "sts-getwebidentitytoken-minimal.http", "content-type"),
                  "application/x-www-form-urlencoded; charset=utf-8");
}

/* Build with `p`; expect success and return the body (caller frees), or NULL. */
static char *gwit_body(const struct ft_gwit_params *p)
{
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        char *body;

        if (ft_sts_build_gwit("https://sts.us-east-2.amazonaws.com/", p, &req, &diag) < 0) {
                fprintf(stderr, "  unexpected failure: %s\n", diag.msg);
                return NULL;
        }
        body = strdup(req->body);
        ft_request_free(req);
        return body;
}

/* Build with `p`; expect -EINVAL, an untouched ret and a diagnosis containing `needle`. */
static void check_gwit_refused(const struct ft_gwit_params *p, const char *needle)
{
        struct ft_diag diag = { 0 };
        struct ft_request *req = (struct ft_request *)&diag;

        CHECK_INT(ft_sts_build_gwit("https://sts.us-east-2.amazonaws.com/", p, &req, &diag), -EINVAL);
        CHECK(req == (struct ft_request *)&diag);
        CHECK_CONTAINS(diag.msg, needle);
}

static void test_gwit_defaults_and_encoding(void)
{
        static const char *const unicode[] = { "urn:caf\xc3\xa9 x" };
        static const struct ft_sts_tag empty_value[] = { { "team", "" } };
        struct ft_gwit_params p = { .audiences = azure_audience, .n_audiences = 1 };
        char *body;

        /* NULL algorithm means RS256; duration 0 leaves DurationSeconds out. */
        body = gwit_body(&p);
        CHECK_STR(body, "Action=GetWebIdentityToken&Version=2011-06-15"
                        "&Audience.member.1=api%3A%2F%2FAzureADTokenExchange&SigningAlgorithm=RS256");
        free(body);

        p.audiences = unicode;
        p.duration = 60;
        p.tags = empty_value;
        p.n_tags = 1;
        body = gwit_body(&p);
        CHECK_STR(body, "Action=GetWebIdentityToken&Version=2011-06-15&Audience.member.1=urn%3Acaf%C3%A9%20x"
                        "&SigningAlgorithm=RS256&DurationSeconds=60&Tags.member.1.Key=team&Tags.member.1.Value=");
        free(body);
}

static void test_gwit_audience_limits(void)
{
        const char *auds[11];
        char *a1000 = repeat("a", 1000), *a1001 = repeat("a", 1001);
        char *e1000 = repeat("\xc3\xa9", 1000); /* 1000 characters, 2000 bytes */
        struct ft_gwit_params p = { .audiences = auds, .n_audiences = 1 };
        char *body;

        for (int i = 0; i < 11; i++)
                auds[i] = "aud";
        p.n_audiences = 0;
        check_gwit_refused(&p, "1 to 10 audiences");
        p.n_audiences = 11;
        check_gwit_refused(&p, "11 given");
        p.n_audiences = 10;
        body = gwit_body(&p);
        CHECK_CONTAINS(body, "&Audience.member.10=aud&SigningAlgorithm=RS256");
        free(body);

        p.n_audiences = 1;
        auds[0] = a1000;
        body = gwit_body(&p);
        CHECK(body != NULL);
        free(body);
        auds[0] = e1000;
        body = gwit_body(&p);
        CHECK(body != NULL);
        free(body);
        auds[0] = a1001;
        check_gwit_refused(&p, "1001 characters");
        auds[0] = "";
        check_gwit_refused(&p, "audience 1 is empty");
        auds[0] = NULL;
        check_gwit_refused(&p, "audience 1 is empty");
        auds[0] = "api://x\r\nHost: evil";
        check_gwit_refused(&p, "control character");
        auds[0] = "bad\xc3";
        check_gwit_refused(&p, "not UTF-8");
        auds[0] = "overlong\xc0\xaf";
        check_gwit_refused(&p, "not UTF-8");
        p.audiences = NULL;
        check_gwit_refused(&p, "audiences");
        free(a1000);
        free(a1001);
        free(e1000);
}

static void test_gwit_algorithm_duration(void)
{
        struct ft_gwit_params p = { .audiences = azure_audience, .n_audiences = 1 };
        char *body;

        p.signing_algorithm = "HS256";
        check_gwit_refused(&p, "'HS256'");
        p.signing_algorithm = "rs256";
        check_gwit_refused(&p, "'rs256'");
        p.signing_algorithm = "ES384";
        body = gwit_body(&p);
        CHECK_CONTAINS(body, "&SigningAlgorithm=ES384");
        free(body);

        p.signing_algorithm = NULL;
        p.duration = 59;
        check_gwit_refused(&p, "59 s is out of range");
        p.duration = 3601;
        check_gwit_refused(&p, "3601 s");
        p.duration = -1;
        check_gwit_refused(&p, "-1 s");
        p.duration = 3600;
        body = gwit_body(&p);
        CHECK_CONTAINS(body, "&DurationSeconds=3600");
        free(body);
}

static void test_gwit_tag_limits(void)
{
        struct ft_sts_tag tags[51];
        char keys[51][16];
        char *k128 = repeat("k", 128), *k129 = repeat("k", 129), *v256 = repeat("v", 256), *v257 = repeat("v", 257);
        struct ft_gwit_params p = { .audiences = azure_audience, .n_audiences = 1, .tags = tags };
        char *body;

        for (int i = 0; i < 51; i++) {
                snprintf(keys[i], sizeof(keys[i]), "k%d", i);
                tags[i] = (struct ft_sts_tag){ keys[i], "v" };
        }
        p.n_tags = 51;
        check_gwit_refused(&p, "51 request tags");
        p.n_tags = 50;
        body = gwit_body(&p);
        CHECK_CONTAINS(body, "&Tags.member.50.Key=k49&Tags.member.50.Value=v");
        free(body);

        p.n_tags = 1;
        tags[0] = (struct ft_sts_tag){ k128, v256 };
        body = gwit_body(&p);
        CHECK(body != NULL);
        free(body);
        tags[0] = (struct ft_sts_tag){ k129, "v" };
        check_gwit_refused(&p, "129 characters");
        tags[0] = (struct ft_sts_tag){ "k", v257 };
        check_gwit_refused(&p, "257 characters");
        tags[0] = (struct ft_sts_tag){ "", "v" };
        check_gwit_refused(&p, "empty key");
        tags[0] = (struct ft_sts_tag){ "k", NULL };
        check_gwit_refused(&p, "'k' has no value");
        tags[0] = (struct ft_sts_tag){ "cost#center", "v" };
        check_gwit_refused(&p, "contains '#'");
        tags[0] = (struct ft_sts_tag){ "k", "a,b" };
        check_gwit_refused(&p, "contains ','");
        tags[0] = (struct ft_sts_tag){ "k", "line\nbreak" };
        check_gwit_refused(&p, "control character");
        /* Non-ASCII letters are left to STS. */
        tags[0] = (struct ft_sts_tag){ "r\xc3\xa9gion", "z\xc3\xbcrich" };
        body = gwit_body(&p);
        CHECK_CONTAINS(body, "Tags.member.1.Key=r%C3%A9gion&Tags.member.1.Value=z%C3%BCrich");
        free(body);

        p.n_tags = 2;
        tags[0] = (struct ft_sts_tag){ "Env", "a" };
        tags[1] = (struct ft_sts_tag){ "env", "b" };
        check_gwit_refused(&p, "'env' is given twice");
        p.tags = NULL;
        check_gwit_refused(&p, "request tags");
        free(k128);
        free(k129);
        free(v256);
        free(v257);
}

static void test_gwit_bad_endpoint(void)
{
        static const char *const bad[] = { "ftp://sts.example/", "https://sts.example/?Action=x",
                                           "https://sts.example/#f", "sts.us-east-2.amazonaws.com",
                                           "https://user@sts.example/", "https:///" };
        struct ft_gwit_params p = { .audiences = azure_audience, .n_audiences = 1 };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK_INT(ft_sts_build_gwit(bad[i], &p, &req, &diag), -EINVAL);
                CHECK_CONTAINS(diag.msg, "STS endpoint");
        }
        CHECK_INT(ft_sts_build_gwit(NULL, &p, &req, &diag), -EINVAL);
        CHECK_INT(ft_sts_build_gwit("https://sts.example/", NULL, &req, &diag), -EINVAL);
        CHECK(req == NULL);
}

/* ------------------------------------------------------------------------ */
/* AssumeRoleWithWebIdentity request                                        */

#define IRSA_ROLE "arn:aws:iam::111122223333:role/example-irsa-role"

static void test_arwwi_capture(void)
{
        const char *file = CAPTURED "assume-role-with-web-identity.http";
        size_t want_len = 0, token_len = 0;
        char *want = capture_body(file, &want_len);
        char *token = test_read_shared(CAPTURED "irsa-service-account-token.jwt", &token_len);
        struct ft_request *req = NULL;

        CHECK(want && token);
        if (!want || !token)
                goto out;
        /* The token file has no trailing newline and the SDK sent it as is. */
        CHECK(token_len > 0 && token[token_len - 1] != '\n');
        CHECK_INT(ft_sts_build_arwwi("http://127.0.0.1:8081/", IRSA_ROLE, "example-session", token, 0, &req), 0);
        CHECK(body_equals(req, want, want_len));
        CHECK_STR(req->method, "POST");
        CHECK_INT(req->n_headers, 2);
        CHECK_STR(ft_request_header(req, "Host"), capture_header(file, "host"));
        CHECK_STR(ft_request_header(req, "Content-Type"), capture_header(file, "content-type"));
        CHECK(ft_request_header(req, "Authorization") == NULL);
out:
        ft_request_free(req);
        free(want);
        free(token);
}

static void test_arwwi_params(void)
{
        struct ft_request *req = NULL, *untouched = (struct ft_request *)&req;
        char *long_name = repeat("n", 65), *long_token = repeat("t", 20001);

        CHECK_INT(ft_sts_build_arwwi("https://sts.us-east-2.amazonaws.com/", IRSA_ROLE, "s1", "tok\n", 900, &req), 0);
        /* The token is sent verbatim, newline included, as the SDKs do. */
        CHECK_STR(req->body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn="
                             "arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fexample-irsa-role&RoleSessionName=s1"
                             "&WebIdentityToken=tok%0A&DurationSeconds=900");
        CHECK_STR(ft_request_header(req, "Host"), "sts.us-east-2.amazonaws.com");
        ft_request_free(req);

        req = untouched;
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, "s1", "t", 899, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, "s1", "t", 43201, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, "s", "t", 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, long_name, "t", 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, "bad name", "t", 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", "role/x", "s1", "t", 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, "s1", "", 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, "s1", long_token, 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", NULL, "s1", "t", 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, NULL, "t", 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("https://sts.x/", IRSA_ROLE, "s1", NULL, 0, &req), -EINVAL);
        CHECK_INT(ft_sts_build_arwwi("gopher://sts.x/", IRSA_ROLE, "s1", "t", 0, &req), -EINVAL);
        CHECK(req == untouched);
        free(long_name);
        free(long_token);
}

/* ------------------------------------------------------------------------ */
/* GetWebIdentityToken response                                             */

static void test_gwit_parse_capture(void)
{
        size_t len = 0, jwt_len = 0;
        char *xml = test_read_shared(CAPTURED "sts-getwebidentitytoken-response.xml", &len);
        char *jwt = test_read_shared(CAPTURED "aws-web-identity-token.jwt", &jwt_len);
        struct ft_diag diag = { 0 };
        char *token = NULL;
        int64_t exp = 0;

        CHECK(xml && jwt);
        CHECK_INT(ft_sts_parse_gwit(xml, len, &token, &exp, &diag), 0);
        CHECK_STR(token, jwt);
        CHECK_INT(exp, NOW + 300); /* 2025-12-01T12:05:00.000Z, as the SDK printed */
        ft_free_secret(token);
        free(xml);
        free(jwt);
}

#define GWIT_OPEN "<GetWebIdentityTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">" \
                  "<GetWebIdentityTokenResult>"
#define GWIT_CLOSE "</GetWebIdentityTokenResult></GetWebIdentityTokenResponse>"
#define GWIT_TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"

static int parse_gwit_str(const char *xml, char **token, int64_t *exp, struct ft_diag *diag)
{
        return ft_sts_parse_gwit(xml, strlen(xml), token, exp, diag);
}

static void test_gwit_parse_variants(void)
{
        static const char *const ok[] = {
                /* Namespace prefixes, whitespace, CDATA, unknown elements, no fractional seconds. */
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<sts:GetWebIdentityTokenResponse xmlns:sts=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                "<sts:GetWebIdentityTokenResult><sts:WebIdentityToken>" GWIT_TOKEN "</sts:WebIdentityToken>"
                "<sts:Expiration>2025-12-01T12:05:00Z</sts:Expiration></sts:GetWebIdentityTokenResult>"
                "</sts:GetWebIdentityTokenResponse>",
                GWIT_OPEN "<WebIdentityToken>\n   " GWIT_TOKEN "\r\n\t</WebIdentityToken><!-- c -->"
                "<Unknown><WebIdentityToken>not this one</WebIdentityToken></Unknown>"
                "<Expiration> 2025-12-01T12:05:00.000Z </Expiration>" GWIT_CLOSE,
                GWIT_OPEN "<WebIdentityToken><![CDATA[" GWIT_TOKEN "]]></WebIdentityToken>"
                "<Expiration>2025-12-01T12:05:00.123Z</Expiration>" GWIT_CLOSE
                "<!-- trailing comment -->",
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                struct ft_diag diag = { 0 };
                char *token = NULL;
                int64_t exp = 0;

                CHECK_INT(parse_gwit_str(ok[i], &token, &exp, &diag), 0);
                CHECK_STR(token, GWIT_TOKEN);
                CHECK_INT(exp, NOW + 300);
                if (diag.msg[0])
                        fprintf(stderr, "  case %zu: %s\n", i, diag.msg);
                ft_free_secret(token);
        }
}

static void check_gwit_rejected(const char *xml, size_t len, int want, const char *needle)
{
        struct ft_diag diag = { 0 };
        char *token = (char *)"untouched";
        int64_t exp = 42;

        CHECK_INT(ft_sts_parse_gwit(xml, len, &token, &exp, &diag), want);
        CHECK_STR(token, "untouched");
        CHECK_INT(exp, 42);
        CHECK_CONTAINS(diag.msg, needle);
        /* Whatever went wrong, the token never reaches the diagnosis. */
        CHECK(strstr(diag.msg, "eyJ") == NULL);
}

static void check_gwit_rejected_str(const char *xml, int want, const char *needle)
{
        check_gwit_rejected(xml, strlen(xml), want, needle);
}

static void test_gwit_parse_rejects(void)
{
        char *deep, *big_body, *p;
        size_t n;

        check_gwit_rejected_str(GWIT_OPEN "<WebIdentityToken>" GWIT_TOKEN "</WebIdentityToken>" GWIT_CLOSE,
                                -EINVAL, "no <Expiration> element");
        check_gwit_rejected_str(GWIT_OPEN "<Expiration>2025-12-01T12:05:00Z</Expiration>" GWIT_CLOSE,
                                -EINVAL, "no <WebIdentityToken> element");
        check_gwit_rejected_str(GWIT_OPEN "<WebIdentityToken>" GWIT_TOKEN "</WebIdentityToken>"
                                "<WebIdentityToken>" GWIT_TOKEN "</WebIdentityToken>"
                                "<Expiration>2025-12-01T12:05:00Z</Expiration>" GWIT_CLOSE,
                                -EBADMSG, "<WebIdentityToken> appears more than once");
        check_gwit_rejected_str(GWIT_OPEN "<WebIdentityToken>" GWIT_TOKEN "</WebIdentityToken>"
                                "<Expiration>tomorrow</Expiration>" GWIT_CLOSE,
                                -EINVAL, "<Expiration> 'tomorrow' is not an ISO 8601 time");
        check_gwit_rejected_str(GWIT_OPEN "<WebIdentityToken>eyJ a.b.c</WebIdentityToken>"
                                "<Expiration>2025-12-01T12:05:00Z</Expiration>" GWIT_CLOSE,
                                -EINVAL, "characters a JWT cannot contain");
        check_gwit_rejected_str(GWIT_OPEN "<WebIdentityToken>  </WebIdentityToken>"
                                "<Expiration>2025-12-01T12:05:00Z</Expiration>" GWIT_CLOSE,
                                -EINVAL, "<WebIdentityToken> is empty");
        check_gwit_rejected_str(GWIT_OPEN "<WebIdentityToken>eyJ<b>x</b></WebIdentityToken>"
                                "<Expiration>2025-12-01T12:05:00Z</Expiration>" GWIT_CLOSE,
                                -EBADMSG, "<WebIdentityToken> holds an element");
        check_gwit_rejected_str("<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>",
                                -EBADMSG, "root element is <ErrorResponse>, not <GetWebIdentityTokenResponse>");
        check_gwit_rejected_str(GWIT_OPEN "<WebIdentityToken>" GWIT_TOKEN "</WebIdentityToken>", -EBADMSG,
                                "not well-formed XML");
        check_gwit_rejected_str("eyJhbGciOiJSUzI1NiJ9 plain text", -EBADMSG, "not well-formed XML");
        check_gwit_rejected("", 0, -EBADMSG, "empty");
        check_gwit_rejected(NULL, 0, -EBADMSG, "empty");
        check_gwit_rejected_str("<a>&undefined;</a>", -EBADMSG, "not well-formed");

        /* An entity bomb is refused at the DOCTYPE, before any entity is declared. */
        check_gwit_rejected_str("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                                "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
                                "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
                                "<GetWebIdentityTokenResponse><GetWebIdentityTokenResult>"
                                "<WebIdentityToken>&lol3;</WebIdentityToken></GetWebIdentityTokenResult>"
                                "</GetWebIdentityTokenResponse>",
                                -EBADMSG, "DOCTYPE");
        check_gwit_rejected_str("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x/>", -EBADMSG, "DOCTYPE");

        /* Nesting is capped. */
        n = 200;
        deep = malloc(n * 7 + 1);
        p = deep;
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "<a>");
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "</a>");
        check_gwit_rejected_str(deep, -EBADMSG, "nested deeper than");
        free(deep);

        /* The body cap comes before expat sees a byte; the token cap inside it. */
        big_body = malloc(FT_STS_MAX_BODY + 2);
        memset(big_body, ' ', FT_STS_MAX_BODY + 1);
        big_body[FT_STS_MAX_BODY + 1] = '\0';
        check_gwit_rejected(big_body, FT_STS_MAX_BODY + 1, -EMSGSIZE, "more than the 65536 accepted");
        p = big_body + sprintf(big_body, GWIT_OPEN "<WebIdentityToken>");
        memset(p, 'A', 50000);
        strcpy(p + 50000, "</WebIdentityToken><Expiration>2025-12-01T12:05:00Z</Expiration>" GWIT_CLOSE);
        check_gwit_rejected_str(big_body, -EMSGSIZE, "<WebIdentityToken> is longer than 49152 bytes");
        free(big_body);
}

/* ------------------------------------------------------------------------ */
/* AssumeRoleWithWebIdentity response                                       */

static void test_arwwi_parse_capture(void)
{
        size_t len = 0;
        char *xml = test_read_shared(CAPTURED "assume-role-with-web-identity-response.xml", &len);
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;

        CHECK(xml != NULL);
        CHECK_INT(ft_sts_parse_arwwi(xml, len, &c, &diag), 0);
        if (c) {
                /* What the SDK printed in sdk-output/irsa.txt. */
                CHECK_STR(c->access_key_id, "ASIAEXAMPLEIRSA00001");
                CHECK_STR(c->secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEIRSA");
                CHECK_STR(c->session_token, "FwoGZXIvYXdzEXAMPLE-FAKE-SESSION-TOKEN-IRSA");
                CHECK_INT(c->expiration, NOW + 3600);
                CHECK_STR(c->role_arn, "arn:aws:sts::111122223333:assumed-role/example-irsa-role/example-session");
                CHECK_STR(c->account_id, "111122223333");
        }
        ft_aws_creds_free(c);
        free(xml);
}

#define ARWWI_OPEN "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
#define ARWWI_CLOSE "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"

static void check_arwwi(const char *xml, int want, const char *needle)
{
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = (struct ft_aws_creds *)&diag;

        CHECK_INT(ft_sts_parse_arwwi(xml, strlen(xml), &c, &diag), want);
        if (want == 0) {
                CHECK(c != (struct ft_aws_creds *)&diag);
                ft_aws_creds_free(c);
                return;
        }
        CHECK(c == (struct ft_aws_creds *)&diag);
        CHECK_CONTAINS(diag.msg, needle);
        CHECK(strstr(diag.msg, "SECRET") == NULL && strstr(diag.msg, "STOKEN") == NULL);
}

static void test_arwwi_parse_variants(void)
{
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;
        const char *no_user = ARWWI_OPEN "<Credentials><AccessKeyId>ASIA1</AccessKeyId>"
                              "<SecretAccessKey>SECRET</SecretAccessKey><SessionToken>STOKEN</SessionToken>"
                              "<Expiration>2025-12-01T13:00:00Z</Expiration></Credentials>" ARWWI_CLOSE;

        CHECK_INT(ft_sts_parse_arwwi(no_user, strlen(no_user), &c, &diag), 0);
        CHECK(c && c->role_arn == NULL && c->account_id == NULL);
        ft_aws_creds_free(c);

        check_arwwi(ARWWI_OPEN "<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>SECRET"
                    "</SecretAccessKey><Expiration>2025-12-01T13:00:00Z</Expiration></Credentials>" ARWWI_CLOSE,
                    -EINVAL, "no <SessionToken> element");
        check_arwwi(ARWWI_OPEN "<Credentials><AccessKeyId>ASIA 1</AccessKeyId><SecretAccessKey>SECRET"
                    "</SecretAccessKey><SessionToken>STOKEN</SessionToken><Expiration>2025-12-01T13:00:00Z"
                    "</Expiration></Credentials>" ARWWI_CLOSE,
                    -EINVAL, "<AccessKeyId> is empty or holds spaces");
        check_arwwi(ARWWI_OPEN "<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>SECRET"
                    "</SecretAccessKey><SessionToken>STOKEN</SessionToken><Expiration>2025-12-01T13:00:00Z"
                    "</Expiration></Credentials><AssumedRoleUser><Arn>a</Arn><Arn>b</Arn></AssumedRoleUser>"
                    ARWWI_CLOSE,
                    -EBADMSG, "<Arn> appears more than once");
        check_arwwi(ARWWI_OPEN "<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>SECRET"
                    "</SecretAccessKey><SessionToken>STOKEN</SessionToken><Expiration>2025-13-01T13:00:00Z"
                    "</Expiration></Credentials>" ARWWI_CLOSE,
                    -EINVAL, "not an ISO 8601 time");
        check_arwwi(GWIT_OPEN "<WebIdentityToken>x</WebIdentityToken>" GWIT_CLOSE, -EBADMSG,
                    "root element is <GetWebIdentityTokenResponse>");
        /* A non-ARN in AssumedRoleUser is kept but yields no account. */
        c = NULL;
        {
                const char *odd = ARWWI_OPEN "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S"
                                  "</SecretAccessKey><SessionToken>T</SessionToken><Expiration>"
                                  "2025-12-01T13:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>"
                                  "arn:aws:sts::1234:assumed-role/x</Arn></AssumedRoleUser>" ARWWI_CLOSE;
                CHECK_INT(ft_sts_parse_arwwi(odd, strlen(odd), &c, &diag), 0);
                CHECK(c && c->account_id == NULL);
                CHECK_STR(c ? c->role_arn : NULL, "arn:aws:sts::1234:assumed-role/x");
                ft_aws_creds_free(c);
        }
}

/* ------------------------------------------------------------------------ */
/* Error explanations                                                       */

static const struct ft_sts_context gwit_ctx = {
        .operation = "GetWebIdentityToken",
        .region = "us-east-2",
        .endpoint = "https://sts.us-east-2.amazonaws.com/",
        .account_id = "111122223333",
        .principal_arn = "arn:aws:iam::111122223333:role/example-workload-role",
        .credential_source = "imds",
        .duration = 3600,
        .creds_expiration = NOW + 1800,
        .now = NOW,
};

static const struct ft_sts_context arwwi_ctx = {
        .operation = "AssumeRoleWithWebIdentity",
        .region = "us-east-2",
        .endpoint = "https://sts.us-east-2.amazonaws.com/",
        .principal_arn = "arn:aws:iam::111122223333:role/example-irsa-role",
        .credential_source = "web-identity",
        .now = NOW,
};

static void explain_file(const char *file, long status, const struct ft_sts_context *ctx, struct ft_diag *diag)
{
        size_t len = 0;
        char *xml = test_read_shared(file, &len);

        CHECK(xml != NULL);
        ft_sts_explain_error(status, xml, len, ctx, diag);
        free(xml);
}

static void test_explain_captured(void)
{
        struct ft_diag d;

        explain_file(CAPTURED "sts-error-response.xml", 403, &gwit_ctx, &d);
        CHECK_STR(d.code, "OutboundWebIdentityFederationDisabledException");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        CHECK_INT(d.http_status, 403);
        CHECK_CONTAINS(d.msg, "outbound identity federation is not enabled on account 111122223333");
        CHECK_CONTAINS(d.msg, "EnableOutboundWebIdentityFederation");
        CHECK_CONTAINS(d.msg, "AWS says: \"Outbound web identity federation is disabled for this account "
                              "(fake message)\"");
        CHECK_CONTAINS(d.msg, "(request id 11111111-2222-3333-4444-000000000002)");

        explain_file(CAPTURED "sts-error-jwt-payload-size.xml", 400, &gwit_ctx, &d);
        CHECK_STR(d.code, "JWTPayloadSizeExceededException");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        CHECK_CONTAINS(d.msg, "fewer or shorter request tags");

        explain_file(CAPTURED "sts-error-session-duration.xml", 403, &gwit_ctx, &d);
        CHECK_STR(d.code, "SessionDurationEscalationException");
        CHECK_INT(d.retry, FT_RETRY_NOW);
        CHECK_CONTAINS(d.msg, "lifetime of 3600 s would outlive the AWS credentials from imds (they expire at "
                              "2025-12-01T12:30:00Z)");
        CHECK_CONTAINS(d.msg, "shorter duration");

        explain_file(CAPTURED "sts-error-access-denied.xml", 403, &gwit_ctx, &d);
        CHECK_STR(d.code, "AccessDenied");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        CHECK_CONTAINS(d.msg, "arn:aws:iam::111122223333:role/example-workload-role may not call "
                              "sts:GetWebIdentityToken in us-east-2");
        CHECK_CONTAINS(d.msg, "sts:IdentityTokenAudience");

        explain_file(CAPTURED "sts-error-throttling.xml", 400, &gwit_ctx, &d);
        CHECK_STR(d.code, "Throttling");
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);
        CHECK_CONTAINS(d.msg, "throttling");
        CHECK_CONTAINS(d.msg, "Rate exceeded (fake message)");
}

/* An ErrorResponse with `code`, explained for `ctx` at `status`. */
static void explain_code(const char *code, const char *message, long status, const struct ft_sts_context *ctx,
                         struct ft_diag *d)
{
        char xml[2048];

        snprintf(xml, sizeof(xml),
                 "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                 "<Code>%s</Code><Message>%s</Message></Error><RequestId>rid-1</RequestId></ErrorResponse>",
                 code, message);
        ft_sts_explain_error(status, xml, strlen(xml), ctx, d);
}

static void test_explain_table(void)
{
        static const struct {
                const char *code;
                bool arwwi;
                long status;
                enum ft_retry retry;
                const char *words;
        } cases[] = {
                { "ExpiredToken", false, 403, FT_RETRY_NOW, "session token of the AWS credentials from imds has expired" },
                { "ExpiredTokenException", false, 400, FT_RETRY_NOW, "fetch fresh credentials" },
                { "SignatureDoesNotMatch", false, 403, FT_RETRY_SLOW, "signed for region us-east-2" },
                { "InvalidSignatureException", false, 403, FT_RETRY_SLOW, "local clock" },
                { "IncompleteSignature", false, 400, FT_RETRY_SLOW, "Authorization or X-Amz-Date" },
                { "MissingAuthenticationToken", false, 403, FT_RETRY_SLOW, "without a signature" },
                { "RequestExpired", false, 400, FT_RETRY_SLOW, "local clock differs from AWS's" },
                { "RequestTimeTooSkewed", false, 403, FT_RETRY_SLOW, "time synchronisation" },
                { "ValidationError", false, 400, FT_RETRY_SLOW, "rejected a parameter of GetWebIdentityToken" },
                { "InvalidParameterValue", false, 400, FT_RETRY_SLOW, "requested lifetime 3600 s" },
                { "ThrottlingException", false, 400, FT_RETRY_BACKOFF, "account 111122223333 in us-east-2" },
                { "RequestLimitExceeded", false, 400, FT_RETRY_BACKOFF, "retrying with backoff" },
                { "ServiceUnavailable", false, 503, FT_RETRY_BACKOFF, "STS in us-east-2 failed internally" },
                { "InternalFailure", false, 500, FT_RETRY_BACKOFF, "unavailable" },
                { "RegionDisabledException", false, 403, FT_RETRY_SLOW, "STS is not activated in us-east-2" },
                { "InvalidAction", false, 400, FT_RETRY_SLOW,
                  "https://sts.us-east-2.amazonaws.com/ does not serve GetWebIdentityToken" },
                { "UnknownOperation", false, 400, FT_RETRY_SLOW, "global endpoint sts.amazonaws.com" },
                { "InvalidIdentityToken", true, 400, FT_RETRY_SLOW, "OIDC provider" },
                { "IDPRejectedClaim", true, 403, FT_RETRY_SLOW,
                  "trust policy of role arn:aws:iam::111122223333:role/example-irsa-role" },
                { "IDPCommunicationError", true, 400, FT_RETRY_BACKOFF, "could not reach the identity provider" },
                { "ExpiredTokenException", true, 400, FT_RETRY_SLOW, "token file has expired" },
                { "AccessDenied", true, 403, FT_RETRY_SLOW, "sts:AssumeRoleWithWebIdentity" },
                { "MalformedPolicyDocument", true, 400, FT_RETRY_SLOW, "not a valid policy document" },
                { "PackedPolicyTooLarge", true, 400, FT_RETRY_SLOW, "too large once packed" },
                { "RegionDisabledException", true, 403, FT_RETRY_SLOW, "account 111122223333" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ft_diag d;

                explain_code(cases[i].code, "aws text", cases[i].status, cases[i].arwwi ? &arwwi_ctx : &gwit_ctx,
                             &d);
                CHECK_STR(d.code, cases[i].code);
                CHECK_INT(d.retry, cases[i].retry);
                CHECK_INT(d.http_status, cases[i].status);
                CHECK_CONTAINS(d.msg, cases[i].words);
                CHECK_CONTAINS(d.msg, "; AWS says: \"aws text\" (request id rid-1)");
                /* Every placeholder of the table was expanded. */
                CHECK(strchr(d.msg, '{') == NULL && strchr(d.msg, '}') == NULL);
                if (strchr(d.msg, '{') || strchr(d.msg, '}'))
                        fprintf(stderr, "  %s\n", d.msg);
        }
}

static void test_explain_context_dependent(void)
{
        struct ft_sts_context c = gwit_ctx;
        struct ft_diag d;

        /* Temporary credentials may have been rotated: retry at once with fresh ones. */
        explain_code("InvalidClientTokenId", "The security token included in the request is invalid", 403, &c, &d);
        CHECK_INT(d.retry, FT_RETRY_NOW);
        CHECK_CONTAINS(d.msg, "access key of the AWS credentials from imds");
        c.creds_expiration = 0;
        c.credential_source = "env";
        explain_code("InvalidClientTokenId", "x", 403, &c, &d);
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        CHECK_CONTAINS(d.msg, "from env");

        /* Expired credentials are named as such. */
        c = gwit_ctx;
        c.creds_expiration = NOW - 60;
        explain_code("ExpiredToken", "x", 403, &c, &d);
        CHECK_CONTAINS(d.msg, "has expired (they expired at 2025-12-01T11:59:00Z)");

        /* Without a context the sentence still reads, with neutral words. */
        explain_code("OutboundWebIdentityFederationDisabledException", "x", 403, NULL, &d);
        CHECK_CONTAINS(d.msg, "not enabled on this AWS account");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        explain_code("SessionDurationEscalationException", "x", 403, NULL, &d);
        CHECK_CONTAINS(d.msg, "300 s (STS's default) would outlive the AWS credentials:");
        explain_code("AccessDenied", "x", 403, NULL, &d);
        CHECK_CONTAINS(d.msg, "the calling principal may not call sts:GetWebIdentityToken in the configured region");

        /* The account comes from the principal ARN when not given. */
        c = gwit_ctx;
        c.account_id = NULL;
        explain_code("OutboundWebIdentityFederationDisabledException", "x", 403, &c, &d);
        CHECK_CONTAINS(d.msg, "account 111122223333");

        /* Another operation gets the generic AccessDenied. */
        c.operation = "GetCallerIdentity";
        explain_code("AccessDenied", "x", 403, &c, &d);
        CHECK_CONTAINS(d.msg, "may not call GetCallerIdentity in us-east-2");
}

static void test_explain_unknown_and_shapes(void)
{
        struct ft_diag d;
        const char *old_shape = "<Response><Errors><Error><Code>RegionDisabledException</Code>"
                                "<Message>STS is not activated</Message></Error><Error><Code>Second</Code>"
                                "</Error></Errors><RequestID>req-2</RequestID></Response>";
        const char *receiver = "<ErrorResponse><Error><Type>Receiver</Type><Code>BrandNew</Code></Error>"
                               "</ErrorResponse>";

        explain_code("SomethingNewException", "new thing happened", 400, &gwit_ctx, &d);
        CHECK_STR(d.code, "SomethingNewException");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        CHECK_CONTAINS(d.msg, "STS refused GetWebIdentityToken with error SomethingNewException (HTTP 400)");
        CHECK_CONTAINS(d.msg, "new thing happened");
        explain_code("SomethingNewException", "x", 502, &gwit_ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);
        ft_sts_explain_error(400, receiver, strlen(receiver), &gwit_ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);

        /* The <Response><Errors> shape; the first error wins. */
        ft_sts_explain_error(403, old_shape, strlen(old_shape), &gwit_ctx, &d);
        CHECK_STR(d.code, "RegionDisabledException");
        CHECK_CONTAINS(d.msg, "STS is not activated in us-east-2");
        CHECK_CONTAINS(d.msg, "(request id req-2)");

        /* Keyed on the code, not the status: Throttling sent as 400 still backs off. */
        explain_code("Throttling", "x", 400, &gwit_ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);
        /* ... and a 503 with a client-fault code does not. */
        explain_code("AccessDenied", "x", 503, &gwit_ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_SLOW);
}

static void test_explain_status_only(void)
{
        static const struct {
                long status;
                const char *body;
                enum ft_retry retry;
                const char *words;
        } cases[] = {
                { 503, "<html><body>Service Unavailable</body></html>", FT_RETRY_BACKOFF, "unavailable or failing (HTTP 503)" },
                { 502, "Bad Gateway", FT_RETRY_BACKOFF, "HTTP 502" },
                { 500, "", FT_RETRY_BACKOFF, "HTTP 500" },
                { 429, "slow down", FT_RETRY_BACKOFF, "throttling requests (HTTP 429)" },
                { 403, "<html>Forbidden by proxy</html>", FT_RETRY_SLOW, "refused GetWebIdentityToken with HTTP 403" },
                { 404, "{\"message\":\"not found\"}", FT_RETRY_SLOW, "HTTP 404" },
                { 301, "", FT_RETRY_SLOW, "redirect (HTTP 301)" },
                { 200, "<ok/>", FT_RETRY_SLOW, "HTTP 200" },
                { 400, "<ErrorResponse><Error><Message>no code</Message></Error></ErrorResponse>", FT_RETRY_SLOW,
                  "AWS says: \"no code\"" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ft_diag d;

                ft_sts_explain_error(cases[i].status, cases[i].body, strlen(cases[i].body), &gwit_ctx, &d);
                CHECK_STR(d.code, "");
                CHECK_INT(d.retry, cases[i].retry);
                CHECK_INT(d.http_status, cases[i].status);
                CHECK_CONTAINS(d.msg, "https://sts.us-east-2.amazonaws.com/");
                CHECK_CONTAINS(d.msg, cases[i].words);
        }
        {
                struct ft_diag d;
                ft_sts_explain_error(503, NULL, 0, NULL, &d);
                CHECK_INT(d.retry, FT_RETRY_BACKOFF);
                CHECK_CONTAINS(d.msg, "STS at the STS endpoint is unavailable");
        }
}

static void test_explain_hostile_message(void)
{
        char *msg = repeat("\xc3\xa9", 3000);
        char *xml = malloc(8192);
        struct ft_diag d;
        bool clean = true;

        /* A long message is cut at a character boundary and marked. */
        snprintf(xml, 8192, "<ErrorResponse><Error><Code>ValidationError</Code><Message>%s</Message></Error>"
                 "</ErrorResponse>", msg);
        ft_sts_explain_error(400, xml, strlen(xml), &gwit_ctx, &d);
        CHECK_STR(d.code, "ValidationError");
        CHECK_CONTAINS(d.msg, "\xc3\xa9...\"");
        CHECK(strlen(d.msg) < 1024);

        /* Control characters (here from character references) never reach the sentence. */
        snprintf(xml, 8192, "<ErrorResponse><Error><Code>ValidationError</Code><Message>line1&#10;line2&#9;"
                 "\x1b]0;x</Message></Error></ErrorResponse>");
        ft_sts_explain_error(400, xml, strlen(xml), &gwit_ctx, &d);
        /* ESC is not allowed in XML at all: the body is not well-formed, so the status speaks. */
        CHECK_STR(d.code, "");
        snprintf(xml, 8192, "<ErrorResponse><Error><Code>ValidationError</Code><Message>line1&#10;line2&#9;"
                 "&#x85;end</Message></Error></ErrorResponse>");
        ft_sts_explain_error(400, xml, strlen(xml), &gwit_ctx, &d);
        CHECK_CONTAINS(d.msg, "line1?line2??end");
        for (const unsigned char *p = (const unsigned char *)d.msg; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        clean = false;
        CHECK(clean);

        /* An over-long code is cut to fit diag->code. */
        {
                char *code = repeat("X", 500);
                explain_code(code, "m", 400, &gwit_ctx, &d);
                CHECK(strlen(d.code) < sizeof(d.code));
                CHECK_CONTAINS(d.code, "XXX...");
                free(code);
        }

        /* An entity bomb in an error body is not expanded; the status speaks. */
        snprintf(xml, 8192, "<!DOCTYPE e [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
                 "<ErrorResponse><Error><Code>&b;</Code></Error></ErrorResponse>");
        ft_sts_explain_error(500, xml, strlen(xml), &gwit_ctx, &d);
        CHECK_STR(d.code, "");
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);
        free(msg);
        free(xml);
}

/* ------------------------------------------------------------------------ */
/* Duration clamp                                                           */

static void test_clamp(void)
{
        /* Credentials that never expire leave the request alone. */
        CHECK_INT(ft_sts_clamp_duration(3600, 0, NOW, 60), 3600);
        CHECK_INT(ft_sts_clamp_duration(0, 0, NOW, 60), 0);

        /* Exactly enough, one second short. */
        CHECK_INT(ft_sts_clamp_duration(3600, NOW + 3660, NOW, 60), 3600);
        CHECK_INT(ft_sts_clamp_duration(3600, NOW + 3659, NOW, 60), 3599);
        CHECK_INT(ft_sts_clamp_duration(900, NOW + 1800, NOW, 60), 900);
        CHECK_INT(ft_sts_clamp_duration(3600, NOW + 1800, NOW, 60), 1740);

        /* 0 stands for STS's 300 s: kept when 300 fits, clamped when not. */
        CHECK_INT(ft_sts_clamp_duration(0, NOW + 360, NOW, 60), 0);
        CHECK_INT(ft_sts_clamp_duration(0, NOW + 359, NOW, 60), 299);

        /* The 60 s floor. */
        CHECK_INT(ft_sts_clamp_duration(300, NOW + 120, NOW, 60), 60);
        CHECK_INT(ft_sts_clamp_duration(300, NOW + 119, NOW, 60), -ERANGE);
        CHECK_INT(ft_sts_clamp_duration(60, NOW + 60, NOW, 0), 60);
        CHECK_INT(ft_sts_clamp_duration(60, NOW + 59, NOW, 0), -ERANGE);
        CHECK_INT(ft_sts_clamp_duration(300, NOW, NOW, 0), -ERANGE);
        CHECK_INT(ft_sts_clamp_duration(300, NOW - 10, NOW, 60), -ERANGE);

        /* Out-of-range arguments. */
        CHECK_INT(ft_sts_clamp_duration(59, 0, NOW, 60), -EINVAL);
        CHECK_INT(ft_sts_clamp_duration(3601, 0, NOW, 60), -EINVAL);
        CHECK_INT(ft_sts_clamp_duration(-5, 0, NOW, 60), -EINVAL);
        CHECK_INT(ft_sts_clamp_duration(300, NOW + 3600, NOW, -1), -EINVAL);

        /* Absurd clocks do not overflow. */
        CHECK_INT(ft_sts_clamp_duration(300, INT64_MAX, INT64_MIN + 1, 60), 300);
        CHECK_INT(ft_sts_clamp_duration(300, INT64_MIN + 1, INT64_MAX, 60), -ERANGE);
        CHECK_INT(ft_sts_clamp_duration(300, NOW + 1000, NOW, INT32_MAX), -ERANGE);
}

/*
 * End to end without a network: the request fedtokend builds for the real
 * regional endpoint, signed as the daemon signs it, must carry exactly the
 * Authorization of the captured minimal vector (signed by the AWS SDK's own
 * signer with the same four headers).
 */
static void test_gwit_signed_like_the_sdk(void)
{
        static const char *const auds[] = { "api://AzureADTokenExchange" };
        struct ft_gwit_params p = { .audiences = auds, .n_audiences = 1, .signing_algorithm = "RS256",
                                    .duration = 300 };
        struct ft_aws_creds creds = { .access_key_id = "AKIDEXAMPLE",
                                      .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE",
                                      .session_token = "FAKE-SESSION-TOKEN-EXAMPLE" };
        struct ft_sigv4_params sp = { .region = "us-east-2", .service = "sts", .now = 1764590400,
                                      .normalize_path = true };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        char *endpoint = NULL, *want = NULL;
        size_t len = 0;

        CHECK_INT(ft_sts_endpoint("us-east-2", false, false, &endpoint), 0);
        CHECK_INT(ft_sts_build_gwit(endpoint, &p, &req, &diag), 0);
        CHECK_INT(ft_sigv4_sign(req, &creds, &sp, NULL), 0);
        want = test_read_shared("vectors/captured/sts-getwebidentitytoken-minimal.authz", &len);
        CHECK(want != NULL);
        if (want && req) {
                while (len > 0 && (want[len - 1] == '\n' || want[len - 1] == '\r'))
                        want[--len] = '\0';
                CHECK_STR(ft_request_header(req, "Authorization"), want);
        }
        free(want);
        free(endpoint);
        ft_request_free(req);
}

int main(void)
{
        test_endpoint_vectors();
        test_endpoint_partitions();
        test_endpoint_hostile_region();
        test_gwit_captures();
        test_gwit_defaults_and_encoding();
        test_gwit_audience_limits();
        test_gwit_algorithm_duration();
        test_gwit_tag_limits();
        test_gwit_bad_endpoint();
        test_arwwi_capture();
        test_arwwi_params();
        test_gwit_parse_capture();
        test_gwit_parse_variants();
        test_gwit_parse_rejects();
        test_arwwi_parse_capture();
        test_arwwi_parse_variants();
        test_explain_captured();
        test_explain_table();
        test_explain_context_dependent();
        test_explain_unknown_and_shapes();
        test_explain_status_only();
        test_explain_hostile_message();
        test_clamp();
        test_gwit_signed_like_the_sdk();
        return test_summary();
}
