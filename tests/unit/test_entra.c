/* SPDX-License-Identifier: MIT */
/*
 * test_entra.c: the Entra ID token request byte for byte against the
 * captured MSAL requests (the five protocol fields, in order), parameter
 * checks on hostile values, the success parser on the captured responses
 * and on every malformed shape, and the explanation of every AADSTS code
 * with the values it must name.
 */
#include <errno.h>

#include "crypto.h"
#include "entra.h"
#include "test.h"

#define CAPTURED "vectors/captured/"
#define NOW INT64_C(1764590400) /* 2025-12-01T12:00:00Z, the capture clock */
#define TENANT "11111111-2222-3333-4444-555555555555"
#define CLIENT "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
#define SCOPE "https://management.azure.com/.default"
#define ISSUER "https://00000000-aaaa-bbbb-cccc-000000000000.tokens.sts.global.api.aws"
#define ROLE "arn:aws:iam::111122223333:role/example-workload-role"
#define FIC_AUD "api://AzureADTokenExchange"
#define OK_BODY "{\"access_token\":\"tok\",\"expires_in\":3599}"
#define JWT_SHAPED "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* The body of a captured .http file: everything after the first blank line. */
static char *capture_body(const char *file)
{
        char *text = test_read_shared(file, NULL);
        char *sep, *body;

        if (!text)
                return NULL;
        sep = strstr(text, "\r\n\r\n");
        body = sep ? strdup(sep + 4) : NULL;
        free(text);
        return body;
}

/* The value of header `name` in a .http file; static buffer. */
static const char *capture_header(const char *file, const char *name)
{
        static char value[512];
        char *text = test_read_shared(file, NULL);
        size_t n = strlen(name);

        value[0] = '\0';
        if (!text)
                return NULL;
        for (char *line = strstr(text, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
                if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
                        const char *v = line + 2 + n + 2;
                        snprintf(value, sizeof(value), "%.*s", (int)strcspn(v, "\r"), v);
                        break;
                }
        }
        free(text);
        return value[0] ? value : NULL;
}

/* The request target of a .http file, without its query; static buffer. */
static const char *capture_path(const char *file)
{
        static char path[512];
        char *text = test_read_shared(file, NULL);
        const char *p;

        path[0] = '\0';
        if (!text)
                return NULL;
        p = strchr(text, ' ');
        if (p)
                snprintf(path, sizeof(path), "%.*s", (int)strcspn(p + 1, " ?"), p + 1);
        free(text);
        return path[0] ? path : NULL;
}

/*
 * The protocol fields of a captured body, in the order MSAL sent them and
 * joined by '&', without its telemetry fields. Also returns the raw
 * (still encoded) value of one field, which the caller frees.
 */
static char *protocol_fields(const char *body, const char *want_field, char **ret_value)
{
        static const char *const fields[] = { "client_id", "scope", "grant_type", "client_assertion",
                                              "client_assertion_type" };
        struct ft_strbuf b = { 0 };
        const char *p = body;

        while (*p) {
                size_t n = strcspn(p, "&"), name_len = strcspn(p, "=");

                for (size_t i = 0; i < FT_ELEMENTSOF(fields); i++) {
                        if (name_len < n && strlen(fields[i]) == name_len && strncmp(p, fields[i], name_len) == 0) {
                                if (b.len)
                                        ft_strbuf_puts(&b, "&");
                                ft_strbuf_append(&b, p, n);
                                if (want_field && strcmp(fields[i], want_field) == 0)
                                        *ret_value = ft_strndup(p + name_len + 1, n - name_len - 1);
                        }
                }
                p += n;
                if (*p == '&')
                        p++;
        }
        return ft_strbuf_steal(&b);
}

static bool body_is(const struct ft_request *r, const char *want)
{
        return r && want && r->body_len == strlen(want) && memcmp(r->body, want, r->body_len) == 0;
}

static struct ft_entra_params params(const char *assertion)
{
        return (struct ft_entra_params){
                .authority = NULL, .tenant_id = TENANT, .client_id = CLIENT, .scope = SCOPE, .assertion = assertion,
        };
}

/* Build with `p`; returns the error; the diagnosis is cleared first. */
static int build(const struct ft_entra_params *p, struct ft_request **ret, struct ft_diag *d)
{
        ft_diag_clear(d);
        *ret = NULL;
        return ft_entra_build(p, ret, d);
}

static char *repeat(const char *unit, size_t n)
{
        size_t ul = strlen(unit);
        char *s = malloc(ul * n + 1);

        if (!s)
                abort();
        for (size_t i = 0; i < n; i++)
                memcpy(s + i * ul, unit, ul);
        s[ul * n] = '\0';
        return s;
}

/* ------------------------------------------------------------------------ */
/* Access token                                                             */

static void test_access_token_free(void)
{
        struct ft_access_token *t = calloc(1, sizeof(*t));

        ft_access_token_free(NULL);
        CHECK(t != NULL);
        if (!t)
                return;
        t->access_token = strdup("eyJ.secret.token");
        t->token_type = strdup("Bearer");
        /* A length that was never set must not keep the token from being wiped and freed (ASan/LSan watch). */
        t->access_token_len = 0;
        ft_access_token_free(t);
        CHECK(true);
}

/* ------------------------------------------------------------------------ */
/* Request                                                                  */

static void check_capture(const char *file, const char *scope)
{
        char *body = capture_body(file), *want = NULL, *assertion = NULL;
        struct ft_entra_params p = params(NULL);
        struct ft_request *r = NULL;
        struct ft_diag d;
        char url[1024];

        CHECK(body != NULL);
        if (!body)
                return;
        want = protocol_fields(body, "client_assertion", &assertion);
        CHECK(assertion != NULL);
        /* The five fields really are in the capture, in this order. */
        CHECK(want && strncmp(want, "client_id=" CLIENT "&scope=", 10 + 36 + 7) == 0);
        CHECK_CONTAINS(want, "&grant_type=client_credentials&client_assertion=");
        p.authority = "https://localhost:8443";
        p.scope = scope;
        p.assertion = assertion;
        CHECK_INT(build(&p, &r, &d), 0);
        CHECK(body_is(r, want));
        if (r && !body_is(r, want))
                fprintf(stderr, "  got:  %s\n  want: %s\n", r->body, want);
        snprintf(url, sizeof(url), "https://localhost:8443%s", capture_path(file));
        CHECK_STR(r ? r->url : NULL, url);
        CHECK_STR(r ? r->method : NULL, "POST");
        CHECK_STR(ft_request_header(r, "Host"), capture_header(file, "host"));
        CHECK_STR(ft_request_header(r, "Content-Type"), capture_header(file, "content-type"));
        CHECK_INT(r ? r->n_headers : 0, 2);
        ft_request_free(r);
        free(assertion);
        free(want);
        free(body);
}

static void test_build_captures(void)
{
        check_capture(CAPTURED "entra-client-assertion.http", SCOPE);
        check_capture(CAPTURED "entra-workload-identity-post-1.http", SCOPE);
        check_capture(CAPTURED "entra-workload-identity-post-2.http", "https://storage.azure.com/.default");
        check_capture(CAPTURED "entra-workload-identity-post-3.http", "https://vault.azure.net/.default");
}

static void test_build_authority(void)
{
        static const struct {
                const char *authority;
                const char *url;
                const char *host;
        } ok[] = {
                { NULL, "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token", "login.microsoftonline.com" },
                { "", "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token", "login.microsoftonline.com" },
                { "https://login.microsoftonline.us/", "https://login.microsoftonline.us/" TENANT "/oauth2/v2.0/token",
                  "login.microsoftonline.us" },
                { "https://login.chinacloudapi.cn//", "https://login.chinacloudapi.cn/" TENANT "/oauth2/v2.0/token",
                  "login.chinacloudapi.cn" },
                { "HTTPS://login.example.test:8443/base", "HTTPS://login.example.test:8443/base/" TENANT
                  "/oauth2/v2.0/token", "login.example.test:8443" },
                { "http://127.0.0.1:8080", "http://127.0.0.1:8080/" TENANT "/oauth2/v2.0/token", "127.0.0.1:8080" },
                { "http://127.8.9.10", "http://127.8.9.10/" TENANT "/oauth2/v2.0/token", "127.8.9.10" },
                { "http://LOCALHOST:1", "http://LOCALHOST:1/" TENANT "/oauth2/v2.0/token", "LOCALHOST:1" },
                { "http://[::1]:8443/", "http://[::1]:8443/" TENANT "/oauth2/v2.0/token", "[::1]:8443" },
        };
        static const struct {
                const char *authority;
                const char *words;
        } bad[] = {
                { "http://login.microsoftonline.com", "plain http to host \"login.microsoftonline.com\"" },
                { "http://127.0.0.1.evil.example", "plain http" },
                { "http://[::2]:80", "plain http" },
                { "http://169.254.169.254", "plain http" },
                { "ftp://login.microsoftonline.com", "not an https:// URL" },
                { "login.microsoftonline.com", "not a URL" },
                { "https://login.microsoftonline.com/?x=1", "without user name, query or fragment" },
                { "https://login.microsoftonline.com#frag", "not a URL" },
                { "https://user@login.microsoftonline.com", "not a URL" },
                { "https://", "not a URL" },
                { "https:///", "not a URL" },
                { "https://login.microsoftonline.com/a b", "space, control or non-ASCII" },
                { "https://login.microsoftonline.com\r\nX: y", "space, control or non-ASCII" },
                { "https://login.micr\xc3\xb6soft.com", "space, control or non-ASCII" },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(ok); i++) {
                struct ft_entra_params p = params(JWT_SHAPED);
                struct ft_request *r;
                struct ft_diag d;

                p.authority = ok[i].authority;
                CHECK_INT(build(&p, &r, &d), 0);
                CHECK_STR(r ? r->url : NULL, ok[i].url);
                CHECK_STR(ft_request_header(r, "Host"), ok[i].host);
                ft_request_free(r);
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                struct ft_entra_params p = params(JWT_SHAPED);
                struct ft_request *r;
                struct ft_diag d;

                p.authority = bad[i].authority;
                CHECK_INT(build(&p, &r, &d), -EINVAL);
                CHECK(r == NULL);
                CHECK_CONTAINS(d.msg, bad[i].words);
                CHECK_INT(d.retry, FT_RETRY_SLOW);
                /* The authority is named, tamed: no raw control character reaches the message. */
                CHECK(strpbrk(d.msg, "\r\n") == NULL);
        }
}

static void test_build_tenant(void)
{
        static const char *const ok[] = {
                TENANT, "ABCDEF01-2345-6789-ABCD-EF0123456789", "contoso.onmicrosoft.com", "contoso.com",
                "a-b.c-d.example", "xn--bcher-kva.example",
        };
        static const struct {
                const char *tenant;
                const char *words;
        } bad[] = {
                { "common", "multi-tenant alias" },
                { "Organizations", "multi-tenant alias" },
                { "consumers", "multi-tenant alias" },
                { "contoso", "neither a GUID nor a domain name" },
                { "../x.com", "\"../x.com\"" },
                { "contoso..com", "\"contoso..com\"" },
                { "a/b.com", "\"a/b.com\"" },
                { "a.com?x=1", "\"a.com?x=1\"" },
                { "a.com#", "neither a GUID" },
                { "a%2f.com", "neither a GUID" },
                { "-a.com", "neither a GUID" },
                { "a-.com", "neither a GUID" },
                { "a.com.", "neither a GUID" },
                { ".a.com", "neither a GUID" },
                { "11111111-2222-3333-4444-55555555555", "neither a GUID" },
                { "11111111-2222-3333-4444-5555555555555", "neither a GUID" },
                { "1111111g-2222-3333-4444-555555555555", "neither a GUID" },
                { "a.c\xc3\xb6m", "neither a GUID" },
                { "", "no Entra ID tenant" },
        };
        char *long_label = repeat("a", 64), *long_domain = repeat("abcdefg.", 32);
        struct ft_entra_params p = params(JWT_SHAPED);
        struct ft_request *r;
        struct ft_diag d;
        char name[128];

        for (size_t i = 0; i < FT_ELEMENTSOF(ok); i++) {
                p.tenant_id = ok[i];
                CHECK_INT(build(&p, &r, &d), 0);
                CHECK_CONTAINS(r ? r->url : NULL, ok[i]);
                ft_request_free(r);
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                p.tenant_id = bad[i].tenant;
                CHECK_INT(build(&p, &r, &d), -EINVAL);
                CHECK(r == NULL);
                CHECK_CONTAINS(d.msg, bad[i].words);
        }
        p.tenant_id = NULL;
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        CHECK_CONTAINS(d.msg, "set tenant_id");
        /* 63 is the longest DNS label and 253 the longest name. */
        snprintf(name, sizeof(name), "%.63s.com", long_label);
        p.tenant_id = name;
        CHECK_INT(build(&p, &r, &d), 0);
        ft_request_free(r);
        snprintf(name, sizeof(name), "%s.com", long_label);
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        long_domain[strlen(long_domain) - 1] = '\0';
        p.tenant_id = long_domain;
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        free(long_label);
        free(long_domain);
}

static void test_build_client_id(void)
{
        static const char *const bad[] = {
                "", "my-app", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee ", "aaaaaaaabbbbccccddddeeeeeeeeeeee",
                "{aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee}", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee&x=1",
        };
        struct ft_entra_params p = params(JWT_SHAPED);
        struct ft_request *r;
        struct ft_diag d;

        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                char want[128];

                p.client_id = bad[i];
                CHECK_INT(build(&p, &r, &d), -EINVAL);
                snprintf(want, sizeof(want), "client id \"%s\" is not a GUID", bad[i]);
                CHECK_CONTAINS(d.msg, want);
        }
        p.client_id = NULL;
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        p.client_id = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE";
        CHECK_INT(build(&p, &r, &d), 0);
        CHECK(r && strncmp(r->body, "client_id=AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE&", 47) == 0);
        ft_request_free(r);
}

static void test_build_scope(void)
{
        static const struct {
                const char *scope;
                const char *words;
        } bad[] = {
                { "https://management.azure.com/.default https://storage.azure.com/.default", "several resources" },
                { "https://management.azure.com/.default\thttps://storage.azure.com/.default", "AADSTS700022" },
                { "https://management.azure.com/", "not one resource followed by /.default" },
                { "https://management.azure.com/user_impersonation", "not one resource" },
                { "/.default", "not one resource" },
                { "https://management.azure.com/.Default", "not one resource" },
                { "https://management.azure.com/.default\n", "control or non-ASCII" },
                { "https://m\xc3\xa4nagement.azure.com/.default", "control or non-ASCII" },
                { "", "no Entra ID scope" },
        };
        static const struct {
                const char *scope;
                const char *encoded;
        } encoded[] = {
                { "api://aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/.default",
                  "&scope=api%3A%2F%2Faaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee%2F.default&" },
                { "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/.default", "&scope=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee%2F.default&" },
                /* encodeURIComponent keeps ! ~ * ' ( ) and encodes the rest, as MSAL sends it. */
                { "https://x.test/a!b~c*d'e(f)g+h&i=j%k/.default",
                  "&scope=https%3A%2F%2Fx.test%2Fa!b~c*d'e(f)g%2Bh%26i%3Dj%25k%2F.default&" },
        };
        struct ft_entra_params p = params(JWT_SHAPED);
        char *long_scope = repeat("a", 1025);
        struct ft_request *r;
        struct ft_diag d;

        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                p.scope = bad[i].scope;
                CHECK_INT(build(&p, &r, &d), -EINVAL);
                CHECK(r == NULL);
                CHECK_CONTAINS(d.msg, bad[i].words);
                CHECK(strpbrk(d.msg, "\t\n") == NULL);
        }
        p.scope = NULL;
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        for (size_t i = 0; i < FT_ELEMENTSOF(encoded); i++) {
                p.scope = encoded[i].scope;
                CHECK_INT(build(&p, &r, &d), 0);
                CHECK_CONTAINS(r ? r->body : NULL, encoded[i].encoded);
                ft_request_free(r);
        }
        /* 1024 bytes is the longest scope accepted. */
        memcpy(long_scope + strlen(long_scope) - 9, "/.default", 9);
        p.scope = long_scope;
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        p.scope = long_scope + 1;
        CHECK_INT(build(&p, &r, &d), 0);
        ft_request_free(r);
        free(long_scope);
}

static void test_build_assertion(void)
{
        static const char *const bad[] = {
                "", "abc", "abc.def", "abc.def.", ".def.ghi", "abc..ghi", "abc.def.ghi.jkl", "abc.def.gh=",
                "abc.def.g+h", "abc.def.g/h", "abc.def.gh ", "abc.d\nf.ghi", "abc.def.ghi\r\n",
        };
        char *huge = repeat("A", FT_JWT_MAX_LEN + 1);
        char fp[FT_FINGERPRINT_LEN];
        struct ft_entra_params p = params(NULL);
        struct ft_request *r;
        struct ft_diag d;

        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                p.assertion = bad[i];
                CHECK_INT(build(&p, &r, &d), -EINVAL);
                CHECK(r == NULL);
                if (!*bad[i])
                        continue;
                /* The assertion is a credential: identified by fingerprint, never quoted. */
                ft_fingerprint(bad[i], strlen(bad[i]), fp);
                CHECK_CONTAINS(d.msg, fp);
                CHECK(strstr(d.msg, bad[i]) == NULL);
        }
        p.assertion = NULL;
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        CHECK_CONTAINS(d.msg, "no client assertion");
        memcpy(huge + 10, ".", 1);
        memcpy(huge + 20, ".", 1);
        p.assertion = huge;
        CHECK_INT(build(&p, &r, &d), -EINVAL);
        CHECK_CONTAINS(d.msg, "bytes long");
        huge[FT_JWT_MAX_LEN] = '\0';
        CHECK_INT(build(&p, &r, &d), 0);
        CHECK(r && r->body_len > FT_JWT_MAX_LEN);
        ft_request_free(r);
        free(huge);
        /* Missing arguments. */
        p.assertion = JWT_SHAPED;
        CHECK_INT(ft_entra_build(NULL, &r, &d), -EINVAL);
        CHECK_INT(ft_entra_build(&p, NULL, &d), -EINVAL);
        CHECK_INT(ft_entra_build(&p, &r, NULL), 0);
        ft_request_free(r);
}

/* ------------------------------------------------------------------------ */
/* Success response                                                         */

static void check_captured_success(const char *file, int64_t expires_in, int64_t refresh_in)
{
        size_t len;
        char *body = test_read_shared(file, &len);
        struct ft_access_token *t = NULL;
        struct ft_diag d = { 0 };
        char want[4096];
        const char *at;

        CHECK(body != NULL);
        if (!body)
                return;
        at = strstr(body, "\"access_token\": \"");
        CHECK(at != NULL);
        snprintf(want, sizeof(want), "%.*s", at ? (int)strcspn(at + 17, "\"") : 0, at ? at + 17 : "");
        CHECK_INT(ft_entra_parse(body, len, NOW, &t, &d), 0);
        CHECK(t != NULL);
        if (t) {
                CHECK_STR(t->access_token, want);
                CHECK_INT(t->access_token_len, strlen(want));
                CHECK_STR(t->token_type, "Bearer");
                CHECK_INT(t->expires_at, NOW + expires_in);
                CHECK_INT(t->refresh_at, refresh_in ? NOW + refresh_in : 0);
        }
        ft_access_token_free(t);
        free(body);
}

/* Parse a literal body; *ret_t receives the token, the error is returned. */
static int parse_text(const char *body, struct ft_access_token **ret_t, struct ft_diag *d)
{
        ft_diag_clear(d);
        return ft_entra_parse(body, strlen(body), NOW, ret_t, d);
}

static void test_parse_captures(void)
{
        check_captured_success(CAPTURED "entra-success.json", 3599, 0);
        check_captured_success(CAPTURED "entra-success-refresh-in.json", 86399, 43199);
}

static void test_parse_variants(void)
{
        static const struct {
                const char *body;
                int64_t expires_in, refresh_in;
        } cases[] = {
                { "{\"access_token\":\"tok\",\"expires_in\":\"3599\",\"token_type\":\"Bearer\"}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":\"86399\",\"refresh_in\":\"43199\"}", 86399, 43199 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599.0,\"token_type\":\"bearer\"}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":1}", 1, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":315360000}", 315360000, 0 },
                /* refresh_in is a hint: one that is not before expiry, or malformed, is ignored. */
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"refresh_in\":3599}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"refresh_in\":7200}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"refresh_in\":0}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"refresh_in\":-5}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"refresh_in\":\"soon\"}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"refresh_in\":null}", 3599, 0 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"refresh_in\":3598}", 3599, 3598 },
                { "{\"access_token\":\"tok\",\"expires_in\":3599,\"ext_expires_in\":\"bogus\",\"extra\":[1,{}]}",
                  3599, 0 },
                { " \r\n{\"access_token\":\"tok\",\"expires_in\":3599}\r\n\t ", 3599, 0 },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                struct ft_access_token *t = NULL;
                struct ft_diag d;

                CHECK_INT(parse_text(cases[i].body, &t, &d), 0);
                if (!t) {
                        fprintf(stderr, "  case %zu: %s\n", i, d.msg);
                        continue;
                }
                CHECK_STR(t->access_token, "tok");
                CHECK_STR(t->token_type, "Bearer");
                CHECK_INT(t->expires_at, NOW + cases[i].expires_in);
                CHECK_INT(t->refresh_at, cases[i].refresh_in ? NOW + cases[i].refresh_in : 0);
                ft_access_token_free(t);
        }
}

static void test_parse_rejects(void)
{
        static const struct {
                const char *body;
                const char *words;
        } cases[] = {
                { "", "not a JSON object" },
                { "<html>502 Bad Gateway</html>", "not a JSON object" },
                { "[{\"access_token\":\"SECRET\",\"expires_in\":3599}]", "not a JSON object" },
                { "\"SECRET\"", "not a JSON object" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":3599", "not a JSON object" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":3599}{}", "not a JSON object" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":3599} x", "not a JSON object" },
                { "{\"expires_in\":3599}", "no access_token" },
                { "{\"access_token\":\"\",\"expires_in\":3599}", "no access_token" },
                { "{\"access_token\":null,\"expires_in\":3599}", "no access_token" },
                { "{\"access_token\":42,\"expires_in\":3599}", "no access_token" },
                { "{\"Access_Token\":\"SECRET\",\"expires_in\":3599}", "no access_token" },
                { "{\"access_token\":\"SECRET tok\",\"expires_in\":3599}", "spaces, control" },
                { "{\"access_token\":\"SECRET\\r\\nX-Evil: 1\",\"expires_in\":3599}", "spaces, control" },
                { "{\"access_token\":\"SECRET\\u00f6\",\"expires_in\":3599}", "non-ASCII" },
                { "{\"access_token\":\"SECRET\",\"access_token\":\"SECRET2\",\"expires_in\":3599}", "\"access_token\" twice" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":3599,\"expires_in\":1}", "\"expires_in\" twice" },
                { "{\"access_token\":\"SECRET\",\"token_type\":\"pop\",\"expires_in\":3599}", "type \"pop\"" },
                { "{\"access_token\":\"SECRET\",\"token_type\":1,\"expires_in\":3599}", "not a Bearer token" },
                { "{\"access_token\":\"SECRET\",\"token_type\":null,\"expires_in\":3599}", "not a Bearer token" },
                { "{\"access_token\":\"SECRET\"}", "no expires_in" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":0}", "between 1 and 315360000" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":-1}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":\"-1\"}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":3599.5}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":\"3599.0\"}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":\" 3599\"}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":\"\"}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":\"0x10\"}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":315360001}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":1e300}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":1e999}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":\"99999999999999999999999\"}", "whole number" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":true}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":null}", "whole number of seconds" },
                { "{\"access_token\":\"SECRET\",\"expires_in\":[3599]}", "whole number of seconds" },
        };
        struct ft_access_token *sentinel = (struct ft_access_token *)&sentinel, *t;
        struct ft_diag d;
        char *big, *deep;
        int r;

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                t = sentinel;
                r = parse_text(cases[i].body, &t, &d);
                CHECK_INT(r, -EBADMSG);
                /* ret_* is written only on success. */
                CHECK(t == sentinel);
                CHECK_CONTAINS(d.msg, cases[i].words);
                /* The token is never quoted in a diagnosis. */
                CHECK(strstr(d.msg, "SECRET") == NULL);
        }

        /* A NUL byte would end the token early inside cJSON: refused as a whole. */
        t = sentinel;
        CHECK_INT(ft_entra_parse("{\"access_token\":\"tok\0evil\",\"expires_in\":3599}", 45, NOW, &t, &d), -EBADMSG);
        CHECK(t == sentinel);

        /* Size cap: refused before parsing. */
        big = malloc(FT_ENTRA_MAX_BODY + 2);
        CHECK(big != NULL);
        memset(big, ' ', FT_ENTRA_MAX_BODY + 1);
        memcpy(big, OK_BODY, strlen(OK_BODY));
        big[FT_ENTRA_MAX_BODY + 1] = '\0';
        t = sentinel;
        CHECK_INT(ft_entra_parse(big, FT_ENTRA_MAX_BODY + 1, NOW, &t, &d), -EMSGSIZE);
        CHECK(t == sentinel);
        CHECK_CONTAINS(d.msg, "65537 bytes");
        t = NULL;
        CHECK_INT(ft_entra_parse(big, FT_ENTRA_MAX_BODY, NOW, &t, &d), 0);
        ft_access_token_free(t);
        free(big);

        /* Deep nesting stays within cJSON's own depth limit: refused, not a stack overflow. */
        deep = repeat("[", 50000);
        CHECK_INT(parse_text(deep, &t, &d), -EBADMSG);
        free(deep);

        /* A clock near the end of time cannot overflow expires_at. */
        t = sentinel;
        CHECK_INT(ft_entra_parse(OK_BODY, strlen(OK_BODY), INT64_MAX - 10, &t, &d), -EINVAL);
        CHECK(t == sentinel);
        CHECK_INT(ft_entra_parse(NULL, 0, NOW, &t, &d), -EINVAL);
        CHECK_INT(ft_entra_parse("{}", 2, NOW, NULL, &d), -EINVAL);
        /* Without a diagnosis to fill, the result is the same. */
        CHECK_INT(ft_entra_parse("{}", 2, NOW, &t, NULL), -EBADMSG);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

static char alg_rs256[] = "RS256", kid[] = "EXAMPLE-KEY-ID", iss[] = ISSUER, sub[] = ROLE, aud[] = FIC_AUD;

static struct ft_jwt sample_jwt(void)
{
        return (struct ft_jwt){
                .alg = alg_rs256, .kid = kid, .iss = iss, .sub = sub, .aud = { aud }, .n_aud = 1,
                .iat = NOW, .exp = NOW + 300,
        };
}

static struct ft_entra_context sample_ctx(const struct ft_jwt *j)
{
        return (struct ft_entra_context){
                .tenant_id = TENANT, .client_id = CLIENT, .scope = SCOPE,
                .authority = "https://login.microsoftonline.com", .assertion = j, .now = NOW + 10,
        };
}

static void explain_code(int64_t code, long status, const struct ft_entra_context *ctx, struct ft_diag *d)
{
        char body[512];

        snprintf(body, sizeof(body),
                 "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS%" PRId64 ": Entra text.\\r\\n"
                 "Trace ID: 0b0b0b0b-1111-2222-3333-444444444444\\r\\nCorrelation ID: c-1\",\"error_codes\":[%" PRId64
                 "],\"timestamp\":\"2025-12-01 12:00:00Z\",\"trace_id\":\"0b0b0b0b-1111-2222-3333-444444444444\","
                 "\"correlation_id\":\"c-1\"}", code, code);
        memset(d, 0x55, sizeof(*d));
        ft_entra_explain_error(status, body, strlen(body), ctx, d);
}

static void test_explain_captured(void)
{
        size_t len;
        char *body = test_read_shared(CAPTURED "entra-error.json", &len);
        char *capture = capture_body(CAPTURED "entra-client-assertion.http");
        char *assertion = NULL, *fields;
        struct ft_entra_context ctx;
        struct ft_jwt *j = NULL;
        struct ft_diag d;

        CHECK(body != NULL && capture != NULL);
        if (!body || !capture)
                return;
        /* The claims of the very assertion MSAL sent, decoded by lib/jwt.c. */
        fields = protocol_fields(capture, "client_assertion", &assertion);
        CHECK_INT(assertion ? ft_jwt_decode(assertion, strlen(assertion), &j, &d) : -1, 0);
        ctx = sample_ctx(j);
        ctx.authority = "https://localhost:8443";
        ft_entra_explain_error(400, body, len, &ctx, &d);
        CHECK_STR(d.code, "AADSTS700213");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        CHECK_INT(d.http_status, 400);
        CHECK_INT(d.retry_after, 0);
        CHECK_CONTAINS(d.msg, "no federated identity credential on application or managed identity \"" CLIENT
                              "\" in tenant \"" TENANT "\" matching issuer \"" ISSUER "\", subject \"" ROLE
                              "\" and audience \"" FIC_AUD "\"");
        CHECK_CONTAINS(d.msg, "the subject is what matched no credential");
        CHECK_CONTAINS(d.msg, "create one with exactly these values (case-sensitive)");
        /* Entra's words, without the code prefix and without the trailer of ids, then the ids. */
        CHECK_CONTAINS(d.msg, "; Entra ID says: \"No matching federated identity record found for presented "
                              "assertion subject 'arn:aws:iam::111122223333:role/example-workload-role'.");
        CHECK(strstr(d.msg, "(fake message)\" (trace id 0b0b0b0b-1111-2222-3333-444444444444, correlation id "
                            "0c0c0c0c-1111-2222-3333-444444444444, at 2025-12-01 12:00:00Z)") != NULL ||
              strstr(d.msg, "...\" (trace id") != NULL);
        CHECK(strstr(d.msg, "Trace ID:") == NULL);
        CHECK(strstr(d.msg, "AADSTS700213:") == NULL);
        /* The assertion itself never appears, not even its signature part. */
        CHECK(strstr(d.msg, "eyJ") == NULL && strstr(d.msg, "RkFLRS1TSUdOQVRVUkUtTk9ULVZBTElE") == NULL);
        ft_jwt_free(j);
        free(assertion);
        free(fields);
        free(capture);
        free(body);
}

static void test_explain_table(void)
{
        static const struct {
                int64_t code;
                long status;
                enum ft_retry retry;
                const char *words[3];
        } cases[] = {
                { 70021, 400, FT_RETRY_SLOW,
                  { "no federated identity credential on application or managed identity \"" CLIENT "\" in tenant \""
                    TENANT "\" matching issuer \"" ISSUER "\", subject \"" ROLE "\" and audience \"" FIC_AUD "\"",
                    "create one with exactly these values (case-sensitive)", "may still be propagating" } },
                { 700211, 401, FT_RETRY_SLOW,
                  { "matching issuer \"" ISSUER "\", subject \"" ROLE "\"", "the issuer is what matched no credential",
                    "case-sensitive" } },
                { 700212, 400, FT_RETRY_SLOW,
                  { "and audience \"" FIC_AUD "\"", "the audience is what matched no credential", "case-sensitive" } },
                { 700213, 400, FT_RETRY_SLOW,
                  { "on application or managed identity \"" CLIENT "\" in tenant \"" TENANT "\"",
                    "the subject is what matched no credential", "IAM role ARN" } },
                { 7002137, 400, FT_RETRY_SLOW,
                  { "subject \"" ROLE "\"", "compared case-sensitively", "create one with exactly these values" } },
                { 7002138, 400, FT_RETRY_SLOW,
                  { "issuer \"" ISSUER "\"", "compared case-sensitively", "create one with exactly these values" } },
                { 700024, 400, FT_RETRY_NOW,
                  { "outside its validity window (issued 2025-12-01T12:00:00Z, expires 2025-12-01T12:05:00Z)",
                    "local clock says 2025-12-01T12:00:10Z", "retrying at once with a fresh token" } },
                { 700016, 400, FT_RETRY_SLOW,
                  { "no application or managed identity with client id \"" CLIENT "\" in tenant \"" TENANT "\"",
                    "check client_id and tenant_id", "just created" } },
                { 90002, 400, FT_RETRY_SLOW,
                  { "no tenant \"" TENANT "\" at authority \"https://login.microsoftonline.com\"",
                    "login.microsoftonline.us", "check tenant_id" } },
                { 50027, 400, FT_RETRY_BACKOFF,
                  { "invalid JWT", "issuer \"" ISSUER "\", audience \"" FIC_AUD "\"",
                    "issued 2025-12-01T12:00:00Z, expires 2025-12-01T12:05:00Z; retrying with backoff" } },
                { 700027, 401, FT_RETRY_SLOW,
                  { "could not verify the client assertion's signature with the keys issuer \"" ISSUER "\"",
                    "/.well-known/openid-configuration", "supports only RS256" } },
                { 7000218, 400, FT_RETRY_SLOW, { "no client_assertion", "bug", "please report it" } },
                { 900144, 400, FT_RETRY_SLOW,
                  { "required field missing from the token request for client \"" CLIENT "\"", "bug",
                    "please report it" } },
                { 70011, 400, FT_RETRY_SLOW,
                  { "refused scope \"" SCOPE "\"", "one resource known to tenant \"" TENANT "\"", "/.default" } },
                { 700022, 400, FT_RETRY_SLOW, { "refused scope \"" SCOPE "\"", "exactly one resource", "/.default" } },
                { 700229, 400, FT_RETRY_SLOW, { "ForbiddenTokenType", "app-only tokens", "issuer \"" ISSUER "\"" } },
                { 50196, 400, FT_RETRY_BACKOFF,
                  { "request loop", "client \"" CLIENT "\"", "waiting at least 300 s" } },
                { 90024, 503, FT_RETRY_BACKOFF, { "transient failure", "client \"" CLIENT "\"", "retrying with backoff" } },
                { 50033, 400, FT_RETRY_BACKOFF, { "transient failure", "client \"" CLIENT "\"", "retrying with backoff" } },
        };
        struct ft_jwt j = sample_jwt();
        struct ft_entra_context ctx = sample_ctx(&j);

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                char code[32];
                struct ft_diag d;

                explain_code(cases[i].code, cases[i].status, &ctx, &d);
                snprintf(code, sizeof(code), "AADSTS%" PRId64, cases[i].code);
                CHECK_STR(d.code, code);
                CHECK_INT(d.retry, cases[i].retry);
                CHECK_INT(d.http_status, cases[i].status);
                CHECK_INT(d.retry_after, cases[i].code == 50196 ? 300 : 0);
                for (size_t w = 0; w < 3; w++)
                        CHECK_CONTAINS(d.msg, cases[i].words[w]);
                CHECK_CONTAINS(d.msg, "; Entra ID says: \"Entra text.\" (trace id "
                                      "0b0b0b0b-1111-2222-3333-444444444444, correlation id c-1, at 2025-12-01 "
                                      "12:00:00Z)");
                /* Every placeholder of the table was expanded. */
                CHECK(strchr(d.msg, '{') == NULL && strchr(d.msg, '}') == NULL);
                if (strchr(d.msg, '{') || strchr(d.msg, '}'))
                        fprintf(stderr, "  %s\n", d.msg);
        }
}

static void test_explain_fic_context(void)
{
        static char custom_aud[] = "api://my-custom-audience", other_aud[] = "sts.amazonaws.com";
        struct ft_jwt j = sample_jwt();
        struct ft_entra_context ctx = sample_ctx(&j);
        struct ft_diag d;

        /* Just after start-up, 70021 may be a credential still propagating: retried, not left to a person. */
        ctx.recently_created = true;
        explain_code(70021, 400, &ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);
        CHECK_INT(d.retry_after, 30);
        CHECK_CONTAINS(d.msg, "new federated credentials take a few minutes to propagate: retrying");
        CHECK(strstr(d.msg, "may still be propagating") == NULL);
        /* Only 70021 means that; a subject mismatch stays one. */
        explain_code(700213, 400, &ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        ctx.recently_created = false;

        /* An audience other than the documented one is pointed out. */
        j.aud[0] = custom_aud;
        explain_code(700212, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "and audience \"api://my-custom-audience\"");
        CHECK_CONTAINS(d.msg, "the token does not carry api://AzureADTokenExchange");
        j.aud[0] = aud;
        explain_code(700212, 400, &ctx, &d);
        CHECK(strstr(d.msg, "does not carry") == NULL);

        /* Several audiences are all named. */
        j.aud[1] = other_aud;
        j.aud[2] = custom_aud;
        j.n_aud = 3;
        explain_code(70021, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "audience \"" FIC_AUD "\", \"sts.amazonaws.com\" or \"api://my-custom-audience\"");

        /* Without a decoded assertion or a context, the sentence still stands and says what is unknown. */
        ctx.assertion = NULL;
        explain_code(70021, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "matching issuer (unknown), subject (unknown) and audience (unknown)");
        explain_code(70021, 400, NULL, &d);
        CHECK_STR(d.code, "AADSTS70021");
        CHECK_CONTAINS(d.msg, "managed identity (the configured client id) in tenant (the configured tenant)");
}

static void test_explain_time_window(void)
{
        struct ft_jwt j = sample_jwt();
        struct ft_entra_context ctx = sample_ctx(&j);
        struct ft_diag d;

        /* Expired by the local clock: held too long. */
        ctx.now = NOW + 400;
        explain_code(700024, 400, &ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_NOW);
        CHECK_CONTAINS(d.msg, "(issued 2025-12-01T12:00:00Z, expires 2025-12-01T12:05:00Z) while the local clock "
                              "says 2025-12-01T12:06:40Z: the token had expired 100 s before it was used");
        /* Issued in the local future: the local clock is behind. */
        ctx.now = NOW - 600;
        explain_code(700024, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "starts 600 s in the future, so the local clock is behind AWS's");
        CHECK_CONTAINS(d.msg, "time synchronisation");
        /* nbf counts as the start when later than iat. */
        j.nbf = NOW + 200;
        ctx.now = NOW + 100;
        explain_code(700024, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "not before 2025-12-01T12:03:20Z");
        CHECK_CONTAINS(d.msg, "starts 100 s in the future");
        j.nbf = 0;
        /* About to expire. */
        ctx.now = NOW + 280;
        explain_code(700024, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "only 20 s left when sent");
        /* Valid here: someone's clock is off. */
        ctx.now = NOW + 10;
        explain_code(700024, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "by the local clock the token was valid");
        CHECK_CONTAINS(d.msg, "retrying at once with a fresh token");
        /* Without times. */
        ctx.assertion = NULL;
        explain_code(700024, 400, &ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_NOW);
        CHECK_CONTAINS(d.msg, "(the assertion's times are unknown here): retrying at once");
        j.exp = 0;
        j.iat = 0;
        ctx.assertion = &j;
        explain_code(700024, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "issued (absent), expires (absent)");
}

static void test_explain_signature(void)
{
        static char es384[] = "ES384";
        struct ft_jwt j = sample_jwt();
        struct ft_entra_context ctx = sample_ctx(&j);
        struct ft_diag d;

        explain_code(700027, 401, &ctx, &d);
        CHECK_CONTAINS(d.msg, "key id is \"EXAMPLE-KEY-ID\"");
        j.alg = es384;
        explain_code(700027, 401, &ctx, &d);
        CHECK_CONTAINS(d.msg, "the assertion is signed with \"ES384\": request RS256 tokens from STS");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
}

static void test_explain_oauth_only(void)
{
        static const struct {
                const char *body;
                long status;
                const char *code;
                enum ft_retry retry;
                const char *words;
        } cases[] = {
                { "{\"error\":\"temporarily_unavailable\"}", 400, "temporarily_unavailable", FT_RETRY_BACKOFF,
                  "temporarily unavailable" },
                { "{\"error\":\"server_error\",\"error_codes\":[]}", 500, "server_error", FT_RETRY_BACKOFF,
                  "failed internally" },
                { "{\"error\":\"invalid_client\",\"error_codes\":[\"700213\"]}", 401, "invalid_client", FT_RETRY_SLOW,
                  "client \"" CLIENT "\" in tenant \"" TENANT "\" (issuer \"" ISSUER "\"" },
                { "{\"error\":\"invalid_client\",\"error_codes\":[-1]}", 401, "invalid_client", FT_RETRY_SLOW,
                  "check the federated credential" },
                { "{\"error\":\"invalid_client\",\"error_codes\":[700213.5]}", 401, "invalid_client", FT_RETRY_SLOW,
                  "check the federated credential" },
                { "{\"error\":\"invalid_client\",\"error_codes\":[1e300]}", 401, "invalid_client", FT_RETRY_SLOW,
                  "check the federated credential" },
                { "{\"error\":\"invalid_client\",\"error_codes\":700213}", 401, "invalid_client", FT_RETRY_SLOW,
                  "check the federated credential" },
                { "{\"error\":\"unauthorized_client\"}", 400, "unauthorized_client", FT_RETRY_SLOW,
                  "client-credentials grant" },
                { "{\"error\":\"invalid_grant\"}", 400, "invalid_grant", FT_RETRY_SLOW, "subject \"" ROLE "\"" },
                { "{\"error\":\"invalid_scope\"}", 400, "invalid_scope", FT_RETRY_SLOW, "scope \"" SCOPE "\"" },
                { "{\"error\":\"invalid_request\"}", 400, "invalid_request", FT_RETRY_SLOW, "please report it" },
                { "{\"error\":\"novel_error\"}", 400, "novel_error", FT_RETRY_SLOW,
                  "with error \"novel_error\" (HTTP 400)" },
                { "{\"error\":\"novel_error\"}", 503, "novel_error", FT_RETRY_BACKOFF, "(HTTP 503)" },
                { "{\"error\":\"bad\\r\\nerror\"}", 400, "bad\?\?error", FT_RETRY_SLOW, "\"bad\?\?error\"" },
        };
        struct ft_jwt j = sample_jwt();
        struct ft_entra_context ctx = sample_ctx(&j);

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                struct ft_diag d;

                ft_entra_explain_error(cases[i].status, cases[i].body, strlen(cases[i].body), &ctx, &d);
                CHECK_STR(d.code, cases[i].code);
                CHECK_INT(d.retry, cases[i].retry);
                CHECK_INT(d.http_status, cases[i].status);
                CHECK_CONTAINS(d.msg, cases[i].words);
                CHECK(strchr(d.msg, '{') == NULL && strpbrk(d.msg, "\r\n") == NULL);
        }
}

static void test_explain_status_only(void)
{
        static const struct {
                const char *body;
                long status;
                const char *code;
                enum ft_retry retry;
                const char *words;
        } cases[] = {
                { "<html>Service Unavailable</html>", 503, "HTTP 503", FT_RETRY_BACKOFF, "unavailable or failing (HTTP 503)" },
                { "", 500, "HTTP 500", FT_RETRY_BACKOFF, "(HTTP 500): retrying with backoff" },
                { "Too Many Requests", 429, "HTTP 429", FT_RETRY_BACKOFF, "throttling requests (HTTP 429)" },
                { "Not Found", 404, "HTTP 404", FT_RETRY_SLOW, "no token endpoint for tenant \"" TENANT "\"" },
                { "", 302, "HTTP 302", FT_RETRY_SLOW, "redirect (HTTP 302)" },
                { "{}", 400, "HTTP 400", FT_RETRY_SLOW, "answered HTTP 400 without an Entra ID error" },
                { "{\"error\":\"\"}", 401, "HTTP 401", FT_RETRY_SLOW, "no proxy answers in its place" },
                { "[1,2]", 403, "HTTP 403", FT_RETRY_SLOW, "\"https://login.example.test\" answered HTTP 403" },
        };
        struct ft_entra_context ctx = sample_ctx(NULL);

        ctx.authority = "https://login.example.test";
        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                struct ft_diag d;

                ft_entra_explain_error(cases[i].status, cases[i].body, strlen(cases[i].body), &ctx, &d);
                CHECK_STR(d.code, cases[i].code);
                CHECK_INT(d.retry, cases[i].retry);
                CHECK_CONTAINS(d.msg, cases[i].words);
        }
        {
                struct ft_diag d;

                ft_entra_explain_error(502, NULL, 0, NULL, &d);
                CHECK_STR(d.code, "HTTP 502");
                CHECK_CONTAINS(d.msg, "\"" FT_ENTRA_DEFAULT_AUTHORITY "\" is unavailable");
                ft_entra_explain_error(502, NULL, 0, NULL, NULL);
        }
}

static void test_explain_unknown_and_hostile(void)
{
        struct ft_jwt j = sample_jwt();
        struct ft_entra_context ctx = sample_ctx(&j);
        char *long_text = repeat("word ", 400), *long_sub = repeat("S", 600), *body;
        struct ft_diag d;
        size_t n;

        /* An unknown code: named, with a tamed and shortened description. */
        n = strlen(long_text) + 512;
        body = malloc(n);
        if (!body)
                abort();
        snprintf(body, n, "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS123456: First\\r\\n\\t line"
                          "\\u0007 bell \\u00e9t\\u00e9 %s Trace ID: secret-looking\",\"error_codes\":[123456,70021]}",
                 long_text);
        ft_entra_explain_error(400, body, strlen(body), &ctx, &d);
        CHECK_STR(d.code, "AADSTS123456");
        CHECK_INT(d.retry, FT_RETRY_SLOW);
        CHECK_CONTAINS(d.msg, "refused the token request for client \"" CLIENT "\" in tenant \"" TENANT
                              "\" with AADSTS123456 (\"invalid_request\"), HTTP 400");
        CHECK_CONTAINS(d.msg, "; Entra ID says: \"First line bell \xc3\xa9t\xc3\xa9 word word");
        CHECK(strlen(d.msg) > 4 && strcmp(d.msg + strlen(d.msg) - 4, "...\"") == 0);
        CHECK(strstr(d.msg, "Trace ID") == NULL && strstr(d.msg, "secret-looking") == NULL);
        CHECK(strpbrk(d.msg, "\r\n\t\a") == NULL);
        CHECK(strlen(d.msg) < 1023);
        ft_entra_explain_error(500, body, strlen(body), &ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);
        free(body);

        /* A known code from an overloaded server is retried with backoff. */
        explain_code(700016, 503, &ctx, &d);
        CHECK_INT(d.retry, FT_RETRY_BACKOFF);

        /* Huge claims are cut, the message stays a terminated string that ends on a character. */
        j.sub = long_sub;
        explain_code(700213, 400, &ctx, &d);
        CHECK_CONTAINS(d.msg, "subject \"SSSS");
        CHECK_CONTAINS(d.msg, "S...\"");
        CHECK(strlen(d.msg) < sizeof(d.msg));
        j.sub = sub;

        /* Control characters and invalid UTF-8 in what Entra returns and in claims are shown as '?'. */
        {
                static char evil_iss[] = "https://evil\r\nX-Injected: 1\xff\xfe";

                j.iss = evil_iss;
                explain_code(700211, 400, &ctx, &d);
                CHECK_CONTAINS(d.msg, "issuer \"https://evil??X-Injected: 1??\"");
                j.iss = iss;
        }
        {
                static const char odd[] = "{\"error\":\"x\",\"error_description\":\"\\u0001\\u0002\",\"trace_id\":"
                                          "\"t\\r\\n\",\"correlation_id\":\"\",\"error_codes\":[50196]}";

                ft_entra_explain_error(429, odd, strlen(odd), &ctx, &d);
                CHECK_STR(d.code, "AADSTS50196");
                CHECK(strstr(d.msg, "Entra ID says") == NULL);
                CHECK_CONTAINS(d.msg, "(trace id t\?\?)");
        }
        /* Non-JSON and oversized bodies fall back to the status. */
        {
                char *big = repeat(" ", FT_ENTRA_MAX_BODY + 1);

                memcpy(big, "{\"error_codes\":[70021]}", 23);
                ft_entra_explain_error(400, big, strlen(big), &ctx, &d);
                CHECK_STR(d.code, "HTTP 400");
                free(big);
        }
        free(long_text);
        free(long_sub);
}

int main(void)
{
        test_access_token_free();
        test_build_captures();
        test_build_authority();
        test_build_tenant();
        test_build_client_id();
        test_build_scope();
        test_build_assertion();
        test_parse_captures();
        test_parse_variants();
        test_parse_rejects();
        test_explain_captured();
        test_explain_table();
        test_explain_fic_context();
        test_explain_time_window();
        test_explain_signature();
        test_explain_oauth_only();
        test_explain_status_only();
        test_explain_unknown_and_hostile();
        return test_summary();
}
