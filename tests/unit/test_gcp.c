/* SPDX-License-Identifier: MIT */
/*
 * test_gcp.c: the Google STS and generateAccessToken requests against the
 * bytes google-auth-library sent (vectors/captured/gcp-*), their answers,
 * the diagnosis of Google's errors and the external_account file.
 */
#include <errno.h>

#include <cjson/cJSON.h>

#include "gcp.h"
#include "test.h"

#define AUD "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool/providers/aws-outbound"
#define WORKFORCE_AUD "//iam.googleapis.com/locations/global/workforcePools/corp-pool/providers/aws"
#define SA "example-sa@example-project.iam.gserviceaccount.com"
#define STS_URL "https://localhost:8444/v1/token"
#define IAM_URL "https://localhost:8444"
#define SCOPE_RO "https://www.googleapis.com/auth/cloud-platform.read-only"
#define ROLE_ARN "arn:aws:iam::111122223333:role/example-workload-role"
#define FED_TOKEN "ya29.d.FAKE-FEDERATED-ACCESS-TOKEN-EXAMPLE"
#define NOW 1764590400
#define CAPTURED(name) "vectors/captured/" name

/* ---- helpers ---- */

/* The body of a captured request: everything after the blank line. */
static const char *http_body(const char *raw)
{
        const char *p = raw ? strstr(raw, "\r\n\r\n") : NULL;

        return p ? p + 4 : NULL;
}

/* A form field's raw (still encoded) value; malloc'd. */
static char *form_value(const char *body, const char *name)
{
        size_t n = strlen(name);

        for (const char *p = body; p && *p;) {
                size_t len = strcspn(p, "&");
                if (len > n && strncmp(p, name, n) == 0 && p[n] == '=')
                        return strndup(p + n + 1, len - n - 1);
                p += len;
                if (*p == '&')
                        p++;
        }
        return NULL;
}

/* The value of a captured request's header line "name: value"; malloc'd. */
static char *http_header(const char *raw, const char *name)
{
        size_t n = strlen(name);

        for (const char *p = strstr(raw, "\r\n"); p && strncmp(p, "\r\n\r\n", 4) != 0; p = strstr(p + 2, "\r\n")) {
                const char *line = p + 2;
                if (strncasecmp(line, name, n) == 0 && line[n] == ':')
                        return strndup(line + n + 2, strcspn(line + n + 2, "\r"));
        }
        return NULL;
}

/* The request target of a captured request line, "POST /path HTTP/1.1"; malloc'd. */
static char *http_target(const char *raw)
{
        const char *sp = strchr(raw, ' ');

        return sp ? strndup(sp + 1, strcspn(sp + 1, " ")) : NULL;
}

static char *captured_subject_token(void)
{
        char *raw = test_read_shared(CAPTURED("gcp-sts.http"), NULL);
        char *token = form_value(http_body(raw), "subject_token");

        free(raw);
        return token;
}

static struct ft_jwt sample_jwt(void)
{
        struct ft_jwt j = {
                .alg = (char *)"RS256",
                .kid = (char *)"EXAMPLE-KEY-ID",
                .iss = (char *)"https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws",
                .sub = (char *)ROLE_ARN,
                .aud = { (char *)"api://AzureADTokenExchange" },
                .n_aud = 1,
                .iat = NOW,
                .exp = NOW + 300,
        };
        return j;
}

static bool no_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
                        return false;
        return true;
}

/* ---- STS request ---- */

/* Build with the captured subject token and compare with the captured request byte for byte. */
static void check_sts_capture(const char *file, const char *scope, bool impersonate)
{
        size_t raw_len;
        char *raw = test_read_shared(file, &raw_len);
        const char *body = http_body(raw);
        char *token = form_value(body, "subject_token");
        char *content_length = raw ? http_header(raw, "content-length") : NULL;
        struct ft_gcp_sts_params p = {
                .endpoint = STS_URL, .audience = AUD, .scope = scope, .impersonate = impersonate,
                .subject_token = token,
        };
        struct ft_request *req = NULL;
        struct ft_diag diag = { 0 };

        CHECK(raw && body && token && content_length);
        if (!raw || !body || !token || !content_length)
                goto out;
        CHECK_INT(ft_gcp_build_sts(&p, &req, &diag), 0);
        if (!req)
                goto out;
        CHECK_STR(req->method, "POST");
        CHECK_STR(req->url, STS_URL);
        CHECK_INT(req->body_len, strlen(body));
        CHECK_INT(req->body_len, atoi(content_length));
        CHECK(req->body_len == strlen(body) && memcmp(req->body, body, req->body_len) == 0);
        if (req->body_len != strlen(body) || memcmp(req->body, body, req->body_len) != 0)
                fprintf(stderr, "  %s:\n  got:  %s\n  want: %s\n", file, req->body, body);
        CHECK_STR(ft_request_header(req, "Host"), "localhost:8444");
        CHECK_STR(ft_request_header(req, "Content-Type"), "application/x-www-form-urlencoded;charset=UTF-8");
        CHECK_STR(ft_request_header(req, "Accept"), "application/json");
        CHECK(ft_request_header(req, "Authorization") == NULL);
        CHECK_INT(req->n_headers, 3);
out:
        ft_request_free(req);
        free(content_length);
        free(token);
        free(raw);
}

static void test_sts_captured(void)
{
        /* Impersonation: cloud-platform whatever is configured. */
        check_sts_capture(CAPTURED("gcp-sts.http"), NULL, true);
        check_sts_capture(CAPTURED("gcp-sts.http"), SCOPE_RO, true);
        /* Direct: the configured scope. */
        check_sts_capture(CAPTURED("gcp-sts-no-impersonation.http"), SCOPE_RO, false);
        /* Direct without a scope: the library's default. */
        check_sts_capture(CAPTURED("gcp-sts-url-source.http"), NULL, false);
        check_sts_capture(CAPTURED("gcp-sts-url-source.http"), FT_GCP_DEFAULT_SCOPE, false);
}

static int build_sts(const char *endpoint, const char *audience, const char *scope, bool impersonate,
                     const char *token, struct ft_request **ret, struct ft_diag *diag)
{
        struct ft_gcp_sts_params p = {
                .endpoint = endpoint, .audience = audience, .scope = scope, .impersonate = impersonate,
                .subject_token = token,
        };

        return ft_gcp_build_sts(&p, ret, diag);
}

static void test_sts_multiple_scopes(void)
{
        char *token = captured_subject_token();
        struct ft_request *req = NULL;

        CHECK_INT(build_sts(STS_URL, AUD, FT_GCP_DEFAULT_SCOPE " https://www.googleapis.com/auth/userinfo.email",
                            false, token, &req, NULL), 0);
        /* URLSearchParams writes the space that joins the scopes as '+'. */
        if (req)
                CHECK_CONTAINS(req->body, "&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform+"
                                          "https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fuserinfo.email&");
        ft_request_free(req);
        free(token);
}

static void test_sts_endpoints(void)
{
        static const char *const good[] = {
                "https://sts.googleapis.com/v1/token", "http://127.0.0.1:8080/v1/token", "http://localhost:1/t",
                "http://[::1]:9/v1/token", "HTTPS://sts.googleapis.com/v1/token", "http://127.1.2.3/t",
        };
        static const char *const bad[] = {
                "http://sts.googleapis.com/v1/token", "http://127.0.0.1.example.com/v1/token",
                "http://1270.0.0.1/", "http://127.0.0/", "ftp://sts.googleapis.com/v1/token",
                "https://sts.googleapis.com/v1/token?x=1", "https://sts.googleapis.com/v1/token#f",
                "https://sts.googleapis .com/", "https://user@sts.googleapis.com/v1/token", "sts.googleapis.com",
                "https:///v1/token", "", "http://[::2]/t", "https://sts.googleapis.com/v1/\"token\"",
        };
        char *token = captured_subject_token();

        for (size_t i = 0; i < FT_ELEMENTSOF(good); i++) {
                struct ft_request *req = NULL;
                CHECK_INT(build_sts(good[i], AUD, NULL, true, token, &req, NULL), 0);
                if (req)
                        CHECK_STR(req->url, good[i]);
                ft_request_free(req);
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                struct ft_request *req = (struct ft_request *)&token;  /* must stay untouched */
                struct ft_diag diag = { 0 };
                CHECK_INT(build_sts(bad[i], AUD, NULL, true, token, &req, &diag), -EINVAL);
                CHECK(req == (struct ft_request *)&token);
                CHECK_CONTAINS(diag.msg, "Google STS endpoint");
                CHECK_INT(diag.retry, FT_RETRY_SLOW);
        }
        CHECK_INT(build_sts(NULL, AUD, NULL, true, token, &(struct ft_request *){ NULL }, NULL), -EINVAL);
        free(token);
}

static void test_sts_audiences(void)
{
        static const char *const bad[] = {
                "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool",
                "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool/providers/",
                "//iam.googleapis.com/projects/my-project/locations/global/workloadIdentityPools/p/providers/x",
                "//iam.googleapis.com/projects//locations/global/workloadIdentityPools/p/providers/x",
                "//iam.googleapis.com/projects/1/locations/us/workloadIdentityPools/p/providers/x",
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/AWS/providers/x",
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x/",
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x&scope=y",
                "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
                ("//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/"
                 "a123456789012345678901234567890123456789012345678901234567890123"),
                "//iam.googleapis.com/locations/global/workforcePools/p",
                "//sts.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
                "api://AzureADTokenExchange",
                "",
        };
        char *token = captured_subject_token();
        struct ft_request *req = NULL;
        struct ft_diag diag = { 0 };

        CHECK_INT(build_sts(STS_URL, WORKFORCE_AUD, NULL, false, token, &req, NULL), 0);
        if (req)
                CHECK_CONTAINS(req->body, "&audience=%2F%2Fiam.googleapis.com%2Flocations%2Fglobal%2F"
                                          "workforcePools%2Fcorp-pool%2Fproviders%2Faws&");
        ft_request_free(req);
        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                ft_diag_clear(&diag);
                CHECK_INT(build_sts(STS_URL, bad[i], NULL, false, token, &req, &diag), -EINVAL);
                CHECK_CONTAINS(diag.msg, "is not a provider's full name");
        }
        CHECK_INT(build_sts(STS_URL, NULL, NULL, false, token, &req, NULL), -EINVAL);
        free(token);
}

static void test_sts_scope_and_token(void)
{
        static const char *const bad_scopes[] = {
                "cloud-platform", "https://a  https://b", "https://a ", " https://a", "http://www.googleapis.com/x",
                "https://www.googleapis.com/auth/x?y", "https://www.googleapis.com/auth/\"x\"", "",
        };
        static const char *const bad_tokens[] = {
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", "eyJhbGciOiJSUzI1NiJ9..c2ln",
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.", ".eyJzdWIiOiJ4In0.c2ln",
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0=.c2ln", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln&x=y",
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln.c2ln", "",
        };
        char *token = captured_subject_token();
        struct ft_request *req = NULL;
        struct ft_diag diag = { 0 };
        char *huge;

        for (size_t i = 0; i < FT_ELEMENTSOF(bad_scopes); i++) {
                ft_diag_clear(&diag);
                CHECK_INT(build_sts(STS_URL, AUD, bad_scopes[i], false, token, &req, &diag), -EINVAL);
                CHECK_CONTAINS(diag.msg, "Google scope");
        }
        /* A bad scope is refused even when impersonation replaces it: it is the configuration that is wrong. */
        CHECK_INT(build_sts(STS_URL, AUD, "cloud-platform", true, token, &req, NULL), -EINVAL);
        for (size_t i = 0; i < FT_ELEMENTSOF(bad_tokens); i++) {
                ft_diag_clear(&diag);
                CHECK_INT(build_sts(STS_URL, AUD, NULL, true, bad_tokens[i], &req, &diag), -EINVAL);
                CHECK_CONTAINS(diag.msg, "is not a JWT");
                /* The token is never quoted, even a malformed one. */
                CHECK(strstr(diag.msg, "eyJ") == NULL);
        }
        CHECK_INT(build_sts(STS_URL, AUD, NULL, true, NULL, &req, NULL), -EINVAL);
        /* Longer than any JWT we accept. */
        huge = malloc(FT_JWT_MAX_LEN + 16);
        if (huge) {
                memset(huge, 'A', FT_JWT_MAX_LEN + 15);
                huge[10] = '.';
                huge[20] = '.';
                huge[FT_JWT_MAX_LEN + 15] = '\0';
                CHECK_INT(build_sts(STS_URL, AUD, NULL, true, huge, &req, NULL), -EINVAL);
                free(huge);
        }
        CHECK_INT(ft_gcp_build_sts(NULL, &req, NULL), -EINVAL);
        free(token);
}

/* ---- STS answer ---- */

static int parse_sts(const char *body, struct ft_access_token **ret, struct ft_diag *diag)
{
        return ft_gcp_parse_sts(body, strlen(body), NOW, ret, diag);
}

static void test_parse_sts_captured(void)
{
        size_t len;
        char *body = test_read_shared(CAPTURED("gcp-sts-response.json"), &len);
        struct ft_access_token *t = NULL;
        struct ft_diag diag = { 0 };

        CHECK(body != NULL);
        if (!body)
                return;
        CHECK_INT(ft_gcp_parse_sts(body, len, NOW, &t, &diag), 0);
        if (t) {
                CHECK_STR(t->access_token, FED_TOKEN);
                CHECK_INT(t->access_token_len, strlen(FED_TOKEN));
                CHECK_STR(t->token_type, "Bearer");
                CHECK_INT(t->expires_at, NOW + 3599);
                CHECK_INT(t->refresh_at, 0);
        }
        ft_access_token_free(t);
        free(body);
}

static void test_parse_sts_variants(void)
{
        static const struct { const char *body; int64_t expires_in; } good[] = {
                { "{\"access_token\":\"ya29.x\",\"expires_in\":\"3599\"}", 3599 },
                { "{\"access_token\":\"ya29.x\",\"expires_in\":3599.0,\"token_type\":\"bearer\"}", 3599 },
                { "{\"access_token\":\"ya29.x\",\"expires_in\":1,\"scope\":\"x\",\"extra\":[1,{\"a\":null}]}", 1 },
                { " \r\n{\"access_token\":\"ya29.x\",\"expires_in\":86400}\n\t ", 86400 },
        };
        static const char *const bad[] = {
                "",
                "[]",
                "null",
                "{\"access_token\":\"ya29.x\",\"expires_in\":3599",
                "{\"access_token\":\"ya29.x\",\"expires_in\":3599}{}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":3599} x",
                "{\"expires_in\":3599}",
                "{\"access_token\":42,\"expires_in\":3599}",
                "{\"access_token\":\"\",\"expires_in\":3599}",
                "{\"access_token\":\"ya29 x\",\"expires_in\":3599}",
                "{\"access_token\":\"ya29\\r\\nX-Evil: 1\",\"expires_in\":3599}",
                "{\"access_token\":\"ya29.\u00e9\",\"expires_in\":3599}",
                "{\"access_token\":\"ya29.x\"}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":0}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":-5}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":3599.5}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":86401}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":1e300}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":\"3599 \"}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":\"+3599\"}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":\"\"}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":\"0099999\"}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":true}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":\"MAC\"}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":7}",
                ("{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"issued_token_type\":"
                 "\"urn:ietf:params:oauth:token-type:id_token\"}"),
                "{\"access_token\":\"ya29.x\",\"access_token\":\"ya29.y\",\"expires_in\":3599}",
                "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"expires_in\":60}",
        };
        struct ft_access_token *sentinel = (struct ft_access_token *)&good;

        for (size_t i = 0; i < FT_ELEMENTSOF(good); i++) {
                struct ft_access_token *t = NULL;
                CHECK_INT(parse_sts(good[i].body, &t, NULL), 0);
                if (t) {
                        CHECK_STR(t->access_token, "ya29.x");
                        CHECK_STR(t->token_type, "Bearer");
                        CHECK_INT(t->expires_at, NOW + good[i].expires_in);
                }
                ft_access_token_free(t);
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                struct ft_access_token *t = sentinel;
                struct ft_diag diag = { 0 };
                int r = parse_sts(bad[i], &t, &diag);
                CHECK_INT(r, -EBADMSG);
                if (r != -EBADMSG)
                        fprintf(stderr, "  accepted: %s\n", bad[i]);
                CHECK(t == sentinel);
                CHECK_CONTAINS(diag.msg, "Google STS answer is unusable");
                CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
                CHECK(strstr(diag.msg, "ya29") == NULL);
        }
}

static void test_parse_sts_limits(void)
{
        struct ft_access_token *t = NULL;
        struct ft_diag diag = { 0 };
        size_t n = FT_GCP_MAX_BODY + 1;
        char *big = malloc(n + 1);
        static const char with_nul[] = "{\"access_token\":\"ya29.x\",\"expires_in\":3599}\0garbage";

        if (big) {
                /* Valid JSON, padded with white space past the cap: refused before parsing. */
                const char *doc = "{\"access_token\":\"ya29.x\",\"expires_in\":3599}";
                memset(big, ' ', n);
                memcpy(big, doc, strlen(doc));
                big[n] = '\0';
                CHECK_INT(ft_gcp_parse_sts(big, n, NOW, &t, &diag), -EBADMSG);
                CHECK_CONTAINS(diag.msg, "more than the 65536");
                CHECK_INT(ft_gcp_parse_sts(big, n - 1, NOW, &t, NULL), 0);
                ft_access_token_free(t);
                t = NULL;
                free(big);
        }
        /* Bytes after a NUL are part of the body: a second thing after the object is refused. */
        CHECK_INT(ft_gcp_parse_sts(with_nul, sizeof(with_nul) - 1, NOW, &t, NULL), -EBADMSG);
        CHECK_INT(ft_gcp_parse_sts(NULL, 0, NOW, &t, NULL), -EBADMSG);
        CHECK_INT(ft_gcp_parse_sts(NULL, 5, NOW, &t, NULL), -EINVAL);
        CHECK_INT(ft_gcp_parse_sts("{}", 2, NOW, NULL, NULL), -EINVAL);
        CHECK(t == NULL);
}

/* ---- generateAccessToken request ---- */

static void test_generate_captured(void)
{
        char *raw = test_read_shared(CAPTURED("gcp-generateaccesstoken.http"), NULL);
        const char *body = http_body(raw);
        char *authorization = raw ? http_header(raw, "authorization") : NULL;
        char *target = raw ? http_target(raw) : NULL;
        char url[1024];
        struct ft_request *req = NULL;

        CHECK(raw && body && authorization && target);
        if (!raw || !body || !authorization || !target)
                goto out;
        CHECK_STR(authorization, "Bearer " FED_TOKEN);
        snprintf(url, sizeof(url), "%s%s", IAM_URL, target);
        CHECK_INT(ft_gcp_build_generate(IAM_URL, SA, authorization + strlen("Bearer "), NULL, 3600, &req, NULL), 0);
        if (!req)
                goto out;
        CHECK_STR(req->method, "POST");
        CHECK_STR(req->url, url);
        CHECK_STR(req->body, body);
        CHECK_INT(req->body_len, strlen(body));
        CHECK_STR(ft_request_header(req, "Authorization"), authorization);
        CHECK_STR(ft_request_header(req, "Content-Type"), "application/json");
        CHECK_STR(ft_request_header(req, "Host"), "localhost:8444");
        ft_request_free(req);
        req = NULL;
        /* A trailing slash on the endpoint changes nothing; the configured scope goes to the SA's token. */
        CHECK_INT(ft_gcp_build_generate(IAM_URL "/", SA, FED_TOKEN, FT_GCP_DEFAULT_SCOPE, 3600, &req, NULL), 0);
        if (req) {
                CHECK_STR(req->url, url);
                CHECK_STR(req->body, body);
        }
out:
        ft_request_free(req);
        free(target);
        free(authorization);
        free(raw);
}

static void test_generate_scopes_lifetime(void)
{
        struct ft_request *req = NULL;

        CHECK_INT(ft_gcp_build_generate(FT_GCP_DEFAULT_IAM, SA, FED_TOKEN, SCOPE_RO " https://www.googleapis.com/auth/devstorage.read_only",
                                        43200, &req, NULL), 0);
        if (req) {
                CHECK_STR(req->url, "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/" SA
                                    ":generateAccessToken");
                CHECK_STR(req->body, "{\"scope\":[\"" SCOPE_RO "\",\"https://www.googleapis.com/auth/"
                                     "devstorage.read_only\"],\"lifetime\":\"43200s\"}");
        }
        ft_request_free(req);
        req = NULL;
        CHECK_INT(ft_gcp_build_generate(FT_GCP_DEFAULT_IAM, SA, FED_TOKEN, NULL, 600, &req, NULL), 0);
        if (req)
                CHECK_CONTAINS(req->body, "\"lifetime\":\"600s\"");
        ft_request_free(req);
}

static void test_generate_validation(void)
{
        static const char *const bad_sas[] = {
                "example-sa", "@example-project.iam.gserviceaccount.com", "example-sa@", "a@b@c.com",
                "a/b@example.com", "a@example.com/../x", "a@example.com?x", "a@example.com:getIamPolicy",
                "a@example.com#x", "a%2F@example.com", "a b@example.com", "a@example.com\n", "a\x01@b.com",
                "\xc3\xa9@example.com", "",
        };
        struct ft_request *req = NULL;
        struct ft_diag diag = { 0 };
        char long_sa[300];

        for (size_t i = 0; i < FT_ELEMENTSOF(bad_sas); i++) {
                ft_diag_clear(&diag);
                CHECK_INT(ft_gcp_build_generate(IAM_URL, bad_sas[i], FED_TOKEN, NULL, 3600, &req, &diag), -EINVAL);
                CHECK_CONTAINS(diag.msg, "service account");
                CHECK(no_control_chars(diag.msg));
        }
        CHECK_INT(ft_gcp_build_generate(IAM_URL, NULL, FED_TOKEN, NULL, 3600, &req, NULL), -EINVAL);
        /* 254 characters is the most an address can have. */
        memset(long_sa, 'a', sizeof(long_sa));
        memcpy(long_sa + 254 - strlen("@x.com"), "@x.com", strlen("@x.com") + 1);
        CHECK_INT(ft_gcp_build_generate(IAM_URL, long_sa, FED_TOKEN, NULL, 3600, &req, NULL), 0);
        ft_request_free(req);
        req = NULL;
        memset(long_sa, 'a', sizeof(long_sa));
        memcpy(long_sa + 255 - strlen("@x.com"), "@x.com", strlen("@x.com") + 1);
        CHECK_INT(ft_gcp_build_generate(IAM_URL, long_sa, FED_TOKEN, NULL, 3600, &req, NULL), -EINVAL);

        ft_diag_clear(&diag);
        CHECK_INT(ft_gcp_build_generate(IAM_URL, SA, FED_TOKEN, NULL, 599, &req, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "599 s is out of range: allowed 600-43200");
        CHECK_INT(ft_gcp_build_generate(IAM_URL, SA, FED_TOKEN, NULL, 43201, &req, NULL), -EINVAL);
        CHECK_INT(ft_gcp_build_generate(IAM_URL, SA, FED_TOKEN, "cloud-platform", 3600, &req, NULL), -EINVAL);
        CHECK_INT(ft_gcp_build_generate("http://iamcredentials.googleapis.com", SA, FED_TOKEN, NULL, 3600, &req,
                                        NULL), -EINVAL);
        CHECK_INT(ft_gcp_build_generate("https://iamcredentials.googleapis.com?x", SA, FED_TOKEN, NULL, 3600, &req,
                                        NULL), -EINVAL);
        CHECK_INT(ft_gcp_build_generate(NULL, SA, FED_TOKEN, NULL, 3600, &req, NULL), -EINVAL);
        /* A token that would split the header or is empty; never quoted. */
        static const char *const bad_tokens[] = { "", "ya29.x\r\nX-Evil: 1", "ya29 x", "ya29.\xc3\xa9" };
        for (size_t i = 0; i < FT_ELEMENTSOF(bad_tokens); i++) {
                ft_diag_clear(&diag);
                CHECK_INT(ft_gcp_build_generate(IAM_URL, SA, bad_tokens[i], NULL, 3600, &req, &diag), -EINVAL);
                CHECK_CONTAINS(diag.msg, "federated access token");
                CHECK(strstr(diag.msg, "ya29") == NULL);
        }
        CHECK_INT(ft_gcp_build_generate(IAM_URL, SA, NULL, NULL, 3600, &req, NULL), -EINVAL);
        CHECK_INT(ft_gcp_build_generate(IAM_URL, SA, FED_TOKEN, NULL, 3600, NULL, NULL), -EINVAL);
        CHECK(req == NULL);
}

/* ---- generateAccessToken answer ---- */

static void test_parse_generate(void)
{
        static const struct { const char *body; int64_t expires_at; } good[] = {
                { "{\"accessToken\":\"ya29.c.x\",\"expireTime\":\"2025-12-01T13:00:00.123456Z\"}", 1764594000 },
                { "{\"expireTime\":\"2025-12-01T14:00:00+01:00\",\"accessToken\":\"ya29.c.x\"}", 1764594000 },
        };
        static const char *const bad[] = {
                "{\"accessToken\":\"ya29.c.x\"}",
                "{\"expireTime\":\"2025-12-01T13:00:00Z\"}",
                "{\"accessToken\":\"ya29.c.x\",\"expireTime\":\"tomorrow\"}",
                "{\"accessToken\":\"ya29.c.x\",\"expireTime\":1764594000}",
                "{\"accessToken\":\"ya29.c.x\",\"expireTime\":\"2025-12-01T13:00:00Z \"}",
                "{\"accessToken\":\"ya29 c\",\"expireTime\":\"2025-12-01T13:00:00Z\"}",
                "{\"accessToken\":\"a\",\"accessToken\":\"b\",\"expireTime\":\"2025-12-01T13:00:00Z\"}",
                "{\"access_token\":\"ya29.c.x\",\"expires_in\":3599}",
                "\"ya29.c.x\"",
        };
        size_t len;
        char *body = test_read_shared(CAPTURED("gcp-generateaccesstoken-response.json"), &len);
        struct ft_access_token *t = NULL;
        struct ft_diag diag = { 0 };

        CHECK(body != NULL);
        if (body) {
                CHECK_INT(ft_gcp_parse_generate(body, len, &t, &diag), 0);
                if (t) {
                        CHECK_STR(t->access_token, "ya29.c.FAKE-IMPERSONATED-SA-ACCESS-TOKEN-EXAMPLE");
                        CHECK_STR(t->token_type, "Bearer");
                        CHECK_INT(t->expires_at, 1764594000);
                }
                ft_access_token_free(t);
                t = NULL;
                free(body);
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(good); i++) {
                CHECK_INT(ft_gcp_parse_generate(good[i].body, strlen(good[i].body), &t, NULL), 0);
                if (t)
                        CHECK_INT(t->expires_at, good[i].expires_at);
                ft_access_token_free(t);
                t = NULL;
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                ft_diag_clear(&diag);
                CHECK_INT(ft_gcp_parse_generate(bad[i], strlen(bad[i]), &t, &diag), -EBADMSG);
                CHECK_CONTAINS(diag.msg, "generateAccessToken answer is unusable");
                CHECK(strstr(diag.msg, "ya29") == NULL);
        }
        CHECK(t == NULL);
}

/* ---- errors ---- */

static void explain(long status, const char *body, const struct ft_gcp_context *ctx, struct ft_diag *diag)
{
        ft_gcp_explain_error(status, body, body ? strlen(body) : 0, ctx, diag);
        /* Whatever the input, the sentence is printable and names no token. */
        CHECK(no_control_chars(diag->msg));
        CHECK(no_control_chars(diag->code));
        CHECK(strstr(diag->msg, "eyJ") == NULL);
        CHECK(strstr(diag->msg, "FAKE-FEDERATED") == NULL);
        CHECK_INT(diag->http_status, status);
}

static void test_explain_captured_audience(void)
{
        struct ft_jwt jwt = sample_jwt();
        struct ft_gcp_context ctx = { .step = "sts", .audience = AUD, .subject = &jwt, .now = NOW };
        char *body = test_read_shared(CAPTURED("gcp-sts-error.json"), NULL);
        struct ft_diag diag;

        CHECK(body != NULL);
        if (!body)
                return;
        explain(400, body, &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "Google STS rejected the token for provider " AUD ": its audience "
                                 "api://AzureADTokenExchange is not among the provider's allowed audiences: add it, "
                                 "or request exactly that audience from AWS");
        CHECK_CONTAINS(diag.msg, "accepts only https:" AUD);
        CHECK_CONTAINS(diag.msg, "; Google says: \"The audience in ID Token [api://AzureADTokenExchange] does not "
                                 "match the expected audience. (fake message)\"");
        CHECK_STR(diag.code, "invalid_grant");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);
        free(body);
}

static void test_explain_sts_grants(void)
{
        struct ft_jwt jwt = sample_jwt();
        struct ft_gcp_context ctx = { .step = "sts", .audience = AUD, .subject = &jwt, .now = NOW };
        struct ft_diag diag;

        /* Issuer problems name the issuer; an ES384 token is called out. */
        jwt.alg = (char *)"ES384";
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Unable to verify the ID Token signature "
                     "with the JWKS of the issuer.\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "the provider's issuer must be " "https://00000000-aaaa-bbbb-cccc-000000000000."
                                 "tokens.sts.global.api.aws");
        CHECK_CONTAINS(diag.msg, "RS256 or ES256");
        CHECK_CONTAINS(diag.msg, "this token is signed ES384, which Google does not accept");
        CHECK_CONTAINS(diag.msg, "signing_algorithm = RS256");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);
        /* Google names nothing, but the token's alg explains it. */
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid ID Token.\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "signed ES384");
        jwt.alg = (char *)"RS256";
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"The issuer in ID Token does not match\"}",
                &ctx, &diag);
        CHECK(strstr(diag.msg, "ES384") == NULL);
        CHECK_CONTAINS(diag.msg, "could not verify the token for provider " AUD);

        /* A token that expired on the way: retry at once with a fresh one. */
        jwt.iat = NOW - 400;
        jwt.exp = NOW - 100;
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"ID Token expired.\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "issued at 2025-12-01T11:53:20Z and expires at 2025-12-01T11:58:20Z");
        CHECK_CONTAINS(diag.msg, "clock read 2025-12-01T12:00:00Z");
        CHECK_CONTAINS(diag.msg, "had expired before it was sent");
        CHECK_INT(diag.retry, FT_RETRY_NOW);
        /* Valid by our clock, refused by Google's: a clock problem. */
        jwt.iat = NOW;
        jwt.exp = NOW + 300;
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"ID Token issued at 1764590400 is in the "
                     "future.\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "time synchronisation");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);
        /* "iat" must stand alone: "appropriate" is no claim name. */
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"not appropriate\"}", &ctx, &diag);
        CHECK(strstr(diag.msg, "time synchronisation") == NULL);
        CHECK_CONTAINS(diag.msg, "(invalid_grant): check the provider's issuer");
        CHECK_CONTAINS(diag.msg, "the token has api://AzureADTokenExchange");
        CHECK_CONTAINS(diag.msg, "sub " ROLE_ARN);

        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"The given credential is rejected by the "
                     "attribute condition.\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "do not satisfy the provider's attribute condition");
        CHECK_CONTAINS(diag.msg, ROLE_ARN);
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"The mapped attribute google.subject "
                     "exceeds the 127 bytes limit.\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "attribute mapping");
        CHECK_CONTAINS(diag.msg, "52 bytes");

        /* Several audiences are listed, a long list shortened. */
        for (size_t i = 0; i < 6; i++)
                jwt.aud[i] = (char *)"aud-x";
        jwt.n_aud = 6;
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"audience mismatch\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "its audience aud-x, aud-x, aud-x, aud-x and 2 more is not among");
}

static void test_explain_sts_others(void)
{
        struct ft_jwt jwt = sample_jwt();
        struct ft_gcp_context ctx = { .step = "sts", .audience = AUD, .subject = &jwt, .now = NOW,
                                      .scope = SCOPE_RO };
        struct ft_diag diag;

        explain(400, "{\"error\":\"invalid_target\",\"error_description\":\"The target service indicated by the "
                     "\\\"audience\\\" parameters is invalid.\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "the workload identity pool or provider " AUD " does not exist, is disabled or "
                                 "was deleted");
        CHECK_STR(diag.code, "invalid_target");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);
        explain(400, "{\"error\":\"invalid_request\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "malformed");
        CHECK(strstr(diag.msg, "Google says") == NULL);
        explain(400, "{\"error\":\"invalid_scope\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "refused the scope " SCOPE_RO);
        ctx.service_account = SA;
        explain(400, "{\"error\":\"invalid_scope\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "refused the scope " FT_GCP_DEFAULT_SCOPE);
        explain(401, "{\"error\":\"unauthorized_client\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "does not allow this token exchange");
        explain(503, "{\"error\":\"temporarily_unavailable\"}", &ctx, &diag);
        CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
        explain(400, "{\"error\":\"brand_new_error\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "with error brand_new_error (HTTP 400)");
        CHECK_STR(diag.code, "brand_new_error");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);
        /* A 5xx is retried whatever its body claims. */
        explain(500, "{\"error\":\"invalid_grant\",\"error_description\":\"audience\"}", &ctx, &diag);
        CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
}

static void test_explain_iam(void)
{
        struct ft_jwt jwt = sample_jwt();
        struct ft_gcp_context ctx = { .step = "iam", .audience = AUD, .service_account = SA, .subject = &jwt,
                                      .now = NOW, .lifetime = 7200 };
        struct ft_diag diag;

        explain(403, "{\"error\":{\"code\":403,\"message\":\"Permission 'iam.serviceAccounts.getAccessToken' "
                     "denied on resource (or it may not exist).\",\"status\":\"PERMISSION_DENIED\",\"details\":"
                     "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"IAM_PERMISSION_DENIED\"}]}}",
                &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "principal://iam.googleapis.com/projects/123456789012/locations/global/"
                                 "workloadIdentityPools/aws-pool/subject/" ROLE_ARN
                                 " needs roles/iam.workloadIdentityUser on " SA);
        CHECK_CONTAINS(diag.msg, "Google says: \"Permission 'iam.serviceAccounts.getAccessToken' denied");
        CHECK_STR(diag.code, "PERMISSION_DENIED");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);

        ctx.audience = WORKFORCE_AUD;
        explain(403, "{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\"}}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "principal://iam.googleapis.com/locations/global/workforcePools/corp-pool/subject/"
                                 ROLE_ARN " needs");
        ctx.audience = AUD;

        explain(403, "{\"error\":{\"code\":403,\"message\":\"IAM Service Account Credentials API has not been used "
                     "in project 123456789012 before or it is disabled.\",\"status\":\"PERMISSION_DENIED\","
                     "\"details\":[{\"reason\":\"SERVICE_DISABLED\"}]}}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "enable iamcredentials.googleapis.com");

        explain(404, "{\"error\":{\"code\":404,\"message\":\"Not found; Gaia id not found for email " SA "\","
                     "\"status\":\"NOT_FOUND\"}}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "service account " SA " does not exist");
        CHECK_STR(diag.code, "NOT_FOUND");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);

        explain(400, "{\"error\":{\"code\":400,\"message\":\"Requested lifetime exceeds the maximum allowed.\","
                     "\"status\":\"INVALID_ARGUMENT\"}}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "lifetime of 7200 s for " SA " exceeds what the organization allows");
        CHECK_CONTAINS(diag.msg, "constraints/iam.allowServiceAccountCredentialLifetimeExtension");

        explain(429, "{\"error\":{\"code\":429,\"message\":\"Quota exceeded\",\"status\":\"RESOURCE_EXHAUSTED\"}}",
                &ctx, &diag);
        CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
        CHECK_STR(diag.code, "RESOURCE_EXHAUSTED");
        explain(503, "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}", &ctx, &diag);
        CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
        explain(401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}", &ctx, &diag);
        CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
        /* Only a number: the status is derived for the sentence, but no code is invented. */
        explain(403, "{\"error\":{\"code\":403}}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "needs roles/iam.workloadIdentityUser");
        CHECK_STR(diag.code, "");
}

static void test_explain_no_error_body(void)
{
        struct ft_gcp_context ctx = { .step = "iam", .service_account = SA };
        struct ft_diag diag;
        char *big;

        explain(503, "<html>Service Unavailable</html>", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "IAM Credentials is unavailable or failing (HTTP 503)");
        CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
        explain(429, "", &ctx, &diag);
        CHECK_INT(diag.retry, FT_RETRY_BACKOFF);
        explain(302, NULL, &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "redirect");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);
        explain(404, "{\"error\":7}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "HTTP 404 and no Google error");
        CHECK_INT(diag.retry, FT_RETRY_SLOW);
        /* No context at all: still a sentence. */
        explain(400, "{\"error\":\"invalid_grant\"}", NULL, &diag);
        CHECK_CONTAINS(diag.msg, "Google STS rejected the token for provider (the configured audience)");
        explain(403, "{\"error\":{\"status\":\"PERMISSION_DENIED\"}}", NULL, &diag);
        CHECK_CONTAINS(diag.msg, "the federated principal");
        ft_gcp_explain_error(400, "{}", 2, NULL, NULL);
        /* Past the size cap the body is not parsed. */
        big = malloc(FT_GCP_MAX_BODY + 2);
        if (big) {
                const char *doc = "{\"error\":\"invalid_target\"}";
                memset(big, ' ', FT_GCP_MAX_BODY + 1);
                memcpy(big, doc, strlen(doc));
                big[FT_GCP_MAX_BODY + 1] = '\0';
                explain(400, big, &ctx, &diag);
                CHECK_STR(diag.code, "");
                CHECK_CONTAINS(diag.msg, "no Google error");
                free(big);
        }
}

static void test_explain_hostile(void)
{
        struct ft_jwt jwt = sample_jwt();
        struct ft_gcp_context ctx = { .step = "sts", .audience = AUD, .subject = &jwt, .now = NOW };
        char *token = captured_subject_token();
        char body[20000];
        struct ft_diag diag;
        size_t n;

        /* A message quoting tokens: they are removed, the words around them kept. */
        snprintf(body, sizeof(body), "{\"error\":\"invalid_grant\",\"error_description\":\"bad token %s and "
                 "%s for example-sa@example-project.iam.gserviceaccount.com\"}", token ? token : "", FED_TOKEN);
        explain(400, body, &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "bad token [token removed]");
        CHECK_CONTAINS(diag.msg, "and [token removed] for example-sa@example-project.iam.gserviceaccount.com");
        /* Control characters and an escaped NUL, which ends the string for cJSON. */
        explain(400, "{\"error\":\"invalid_grant\\u0007\\n\",\"error_description\":\"line1\\r\\nline2\\u0000"
                     "hidden\"}", &ctx, &diag);
        CHECK_STR(diag.code, "invalid_grant??");
        CHECK_CONTAINS(diag.msg, "with error invalid_grant?? (HTTP 400)");
        CHECK_CONTAINS(diag.msg, "Google says: \"line1??line2\"");
        /* Invalid UTF-8 and a very long message: replaced and capped. */
        n = (size_t)snprintf(body, sizeof(body), "{\"error\":\"invalid_request\",\"error_description\":\"\xff\xfe ");
        memset(body + n, 'x', 15000);
        n += 15000;
        memcpy(body + n, "\"}", 3);
        explain(400, body, &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "Google says: \"?? xxxx");
        CHECK(strlen(diag.msg) < 1024);
        CHECK_CONTAINS(diag.msg, "xxx ...\"");
        /* Deep nesting is bounded by cJSON and explained by status. */
        memset(body, '[', 5000);
        body[5000] = '\0';
        explain(400, body, &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "no Google error");
        /* A hostile claim in the context is shown cleaned. */
        jwt.sub = (char *)"evil\nInjected: yes";
        explain(400, "{\"error\":\"invalid_grant\",\"error_description\":\"condition\"}", &ctx, &diag);
        CHECK_CONTAINS(diag.msg, "evil?Injected: yes");
        free(token);
}

/* ---- external_account ---- */

static void check_external_account(const char *file, const char *json)
{
        char *want_text = test_read_shared(file, NULL);
        cJSON *want = want_text ? cJSON_Parse(want_text) : NULL;
        cJSON *got = json ? cJSON_Parse(json) : NULL;

        CHECK(want != NULL);
        CHECK(got != NULL);
        /* Every field and no other, as Google's libraries read them. */
        CHECK(want && got && cJSON_Compare(want, got, true));
        if (json)
                CHECK(json[strlen(json) - 1] == '\n');
        if (want && got && !cJSON_Compare(want, got, true))
                fprintf(stderr, "  %s:\n%s\n", file, json);
        cJSON_Delete(want);
        cJSON_Delete(got);
        free(want_text);
}

static void test_external_account(void)
{
        static const char path[] = "/run/aws-outbound-federation/gcp-subject-token.jwt";
        char *json = NULL;
        cJSON *doc;

        CHECK_INT(ft_gcp_external_account(AUD, path, STS_URL, IAM_URL, SA, 3600, &json), 0);
        check_external_account(CAPTURED("gcp-external-account-file-impersonate.json"), json);
        free(json);
        json = NULL;
        CHECK_INT(ft_gcp_external_account_scoped(AUD, path, STS_URL, NULL, NULL, 0, SCOPE_RO, &json), 0);
        check_external_account(CAPTURED("gcp-external-account-file-direct.json"), json);
        free(json);
        json = NULL;
        /* The default scope is what the libraries use anyway: not written. */
        CHECK_INT(ft_gcp_external_account_scoped(AUD, path, STS_URL, IAM_URL, SA, 3600, FT_GCP_DEFAULT_SCOPE, &json),
                  0);
        check_external_account(CAPTURED("gcp-external-account-file-impersonate.json"), json);
        free(json);
        json = NULL;

        /* Quotes, backslashes and non-ASCII in the path survive the round trip. */
        CHECK_INT(ft_gcp_external_account(AUD, "/run/a \"b\"\\c/\xc3\xa9.jwt", FT_GCP_DEFAULT_STS, NULL, NULL, 0,
                                          &json), 0);
        doc = json ? cJSON_Parse(json) : NULL;
        CHECK(doc != NULL);
        if (doc) {
                const cJSON *src = cJSON_GetObjectItemCaseSensitive(doc, "credential_source");
                CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "file")),
                          "/run/a \"b\"\\c/\xc3\xa9.jwt");
                CHECK(cJSON_GetObjectItemCaseSensitive(doc, "service_account_impersonation_url") == NULL);
                CHECK(cJSON_GetObjectItemCaseSensitive(doc, "scopes") == NULL);
                CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "token_url")),
                          FT_GCP_DEFAULT_STS);
        }
        cJSON_Delete(doc);
        free(json);
        json = NULL;

        CHECK_INT(ft_gcp_external_account(AUD, "run/t.jwt", STS_URL, NULL, NULL, 0, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, "/run/t\n.jwt", STS_URL, NULL, NULL, 0, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, "/run/\xff.jwt", STS_URL, NULL, NULL, 0, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, NULL, STS_URL, NULL, NULL, 0, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account("api://x", path, STS_URL, NULL, NULL, 0, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, path, "http://sts.googleapis.com/v1/token", NULL, NULL, 0, &json),
                  -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, path, STS_URL, IAM_URL, SA, 599, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, path, STS_URL, NULL, SA, 3600, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, path, STS_URL, IAM_URL, "a/b@c.com", 3600, &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account_scoped(AUD, path, STS_URL, NULL, NULL, 0, "cloud-platform", &json), -EINVAL);
        CHECK_INT(ft_gcp_external_account(AUD, path, STS_URL, NULL, NULL, 0, NULL), -EINVAL);
        CHECK(json == NULL);
}

int main(void)
{
        test_sts_captured();
        test_sts_multiple_scopes();
        test_sts_endpoints();
        test_sts_audiences();
        test_sts_scope_and_token();
        test_parse_sts_captured();
        test_parse_sts_variants();
        test_parse_sts_limits();
        test_generate_captured();
        test_generate_scopes_lifetime();
        test_generate_validation();
        test_parse_generate();
        test_explain_captured_audience();
        test_explain_sts_grants();
        test_explain_sts_others();
        test_explain_iam();
        test_explain_no_error_body();
        test_explain_hostile();
        test_external_account();
        return test_summary();
}
