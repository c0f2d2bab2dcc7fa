/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "awscreds.h"
#include "crypto.h"
#include "sigv4.h"
#include "test.h"
#include "timeutil.h"

#define MAX_RAW_HEADERS 64

/* A request as written in a vector file, before it becomes a struct ft_request. */
struct raw_request {
        char *method;
        char *path;
        char *names[MAX_RAW_HEADERS];
        char *values[MAX_RAW_HEADERS];
        size_t n_headers;
        char *body;
        size_t body_len;
};

static void raw_request_done(struct raw_request *r)
{
        free(r->method);
        free(r->path);
        for (size_t i = 0; i < r->n_headers; i++) {
                free(r->names[i]);
                free(r->values[i]);
        }
        free(r->body);
        memset(r, 0, sizeof(*r));
}

static char *concat3(const char *a, const char *b, const char *c)
{
        size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
        char *s = malloc(la + lb + lc + 1);

        if (!s)
                abort();
        memcpy(s, a, la);
        memcpy(s + la, b, lb);
        memcpy(s + la + lb, c, lc + 1);
        return s;
}

static char *dup_n(const char *s, size_t n)
{
        char *r = ft_strndup(s, n);

        if (!r)
                abort();
        return r;
}

/*
 * Parse "METHOD path HTTP/1.1", "Name:value" lines (LF or CRLF), obsolete
 * folding (a line starting with white space continues the previous value,
 * joined with one space), a blank line and the body. `strip_ows` drops the
 * white space after the colon, as an HTTP parser would; the SigV4 suite
 * keeps it raw so the signer's trimming is what is tested.
 */
static int parse_raw_request(const char *text, size_t len, bool strip_ows, struct raw_request *r)
{
        const char *p = text, *end = text + len;
        bool first = true;

        memset(r, 0, sizeof(*r));
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *line_end = nl ? nl : end;
                size_t n = (size_t)(line_end - p);

                if (n > 0 && p[n - 1] == '\r')
                        n--;
                if (first) {
                        /* The path may hold spaces: the version is after the last one. */
                        const char *sp1 = memchr(p, ' ', n), *sp2 = p + n;

                        while (sp2 > p && sp2[-1] != ' ')
                                sp2--;
                        if (!sp1 || sp2 - 1 <= sp1)
                                return -EINVAL;
                        r->method = dup_n(p, (size_t)(sp1 - p));
                        r->path = dup_n(sp1 + 1, (size_t)(sp2 - 1 - sp1 - 1));
                        first = false;
                } else if (n == 0) {
                        p = nl ? nl + 1 : end;
                        r->body_len = (size_t)(end - p);
                        r->body = dup_n(p, r->body_len);
                        return 0;
                } else if (p[0] == ' ' || p[0] == '\t') {
                        const char *q = p;
                        char *cont, *joined;

                        if (r->n_headers == 0)
                                return -EINVAL;
                        while (q < p + n && (*q == ' ' || *q == '\t'))
                                q++;
                        cont = dup_n(q, (size_t)(p + n - q));
                        joined = concat3(r->values[r->n_headers - 1], " ", cont);
                        free(cont);
                        free(r->values[r->n_headers - 1]);
                        r->values[r->n_headers - 1] = joined;
                } else {
                        const char *colon = memchr(p, ':', n), *v;

                        if (!colon || r->n_headers == MAX_RAW_HEADERS)
                                return -EINVAL;
                        v = colon + 1;
                        while (strip_ows && v < p + n && (*v == ' ' || *v == '\t'))
                                v++;
                        r->names[r->n_headers] = dup_n(p, (size_t)(colon - p));
                        r->values[r->n_headers] = dup_n(v, (size_t)(p + n - v));
                        r->n_headers++;
                }
                p = nl ? nl + 1 : end;
        }
        r->body = dup_n("", 0);
        return first ? -EINVAL : 0;
}

static const char *raw_header(const struct raw_request *r, const char *name)
{
        for (size_t i = 0; i < r->n_headers; i++)
                if (strcasecmp(r->names[i], name) == 0)
                        return r->values[i];
        return NULL;
}

static char *read_in(const char *dir, const char *file, size_t *ret_len)
{
        char *path = concat3(dir, "/", file);
        char *text = test_read_file(path, ret_len);

        free(path);
        return text;
}

/* The ";"-separated list after "SignedHeaders=" in an Authorization value. */
static char *signed_headers_of(const char *authz)
{
        const char *s = authz ? strstr(authz, "SignedHeaders=") : NULL;

        if (!s)
                return NULL;
        s += strlen("SignedHeaders=");
        return dup_n(s, strcspn(s, ","));
}

static bool list_has(const char *list, const char *name)
{
        size_t n = strlen(name);

        for (const char *p = list; p && *p;) {
                size_t len = strcspn(p, ";");
                if (len == n && strncasecmp(p, name, n) == 0)
                        return true;
                p += len + (p[len] == ';');
        }
        return false;
}

static struct ft_request *request_from_raw(const char *scheme, const struct raw_request *raw,
                                           const char *only_signed)
{
        struct ft_request *req = NULL;
        const char *host = raw_header(raw, "host");
        char *url;

        url = concat3(scheme, host ? host : "", raw->path);
        if (ft_request_new(&req, raw->method, url) < 0)
                abort();
        free(url);
        for (size_t i = 0; i < raw->n_headers; i++) {
                if (only_signed && !list_has(only_signed, raw->names[i]))
                        continue;
                CHECK_INT(ft_request_add_header(req, raw->names[i], raw->values[i]), 0);
        }
        CHECK_INT(ft_request_set_body(req, raw->body, raw->body_len), 0);
        return req;
}

/* The suite's context.json. */
struct suite_context {
        struct ft_aws_creds creds;
        struct ft_sigv4_params params;
};

static char *json_string_dup(const cJSON *obj, const char *key)
{
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

        return cJSON_IsString(item) ? dup_n(item->valuestring, strlen(item->valuestring)) : NULL;
}

static bool json_bool(const cJSON *obj, const char *key)
{
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static int parse_context(const char *text, size_t len, struct suite_context *ctx)
{
        cJSON *root = cJSON_ParseWithLengthOpts(text, len, NULL, false);
        const cJSON *creds = cJSON_GetObjectItemCaseSensitive(root, "credentials");
        char *timestamp = NULL;
        int r = -EINVAL;

        memset(ctx, 0, sizeof(*ctx));
        if (!root || !cJSON_IsObject(creds))
                goto out;
        ctx->creds.access_key_id = json_string_dup(creds, "access_key_id");
        ctx->creds.secret_access_key = json_string_dup(creds, "secret_access_key");
        ctx->creds.session_token = json_string_dup(creds, "token");
        ctx->params.region = json_string_dup(root, "region");
        ctx->params.service = json_string_dup(root, "service");
        ctx->params.normalize_path = json_bool(root, "normalize");
        ctx->params.sign_body_hash = json_bool(root, "sign_body");
        ctx->params.omit_session_token = json_bool(root, "omit_session_token");
        timestamp = json_string_dup(root, "timestamp");
        if (!ctx->creds.access_key_id || !ctx->creds.secret_access_key || !ctx->params.region ||
            !ctx->params.service || !timestamp ||
            ft_time_parse_iso8601(timestamp, strlen(timestamp), &ctx->params.now) < 0)
                goto out;
        r = 0;
out:
        free(timestamp);
        cJSON_Delete(root);
        return r;
}

static void context_done(struct suite_context *ctx)
{
        free(ctx->creds.access_key_id);
        free(ctx->creds.secret_access_key);
        free(ctx->creds.session_token);
        free((char *)ctx->params.region);
        free((char *)ctx->params.service);
}

/* Every header of `want` is on `got` with the same value, and nothing else is. */
static void check_same_headers(const struct ft_request *got, const struct raw_request *want)
{
        bool used[FT_MAX_HEADERS] = { false };

        CHECK_INT(got->n_headers, want->n_headers);
        for (size_t i = 0; i < want->n_headers; i++) {
                bool found = false;
                for (size_t k = 0; k < got->n_headers && !found; k++) {
                        if (used[k] || strcasecmp(got->headers[k].name, want->names[i]) != 0 ||
                            strcmp(got->headers[k].value, want->values[i]) != 0)
                                continue;
                        used[k] = found = true;
                }
                if (!found)
                        fprintf(stderr, "  missing header %s: %s\n", want->names[i], want->values[i]);
                CHECK(found);
        }
}

/* Canonical request, string to sign and signature from the intermediate API. */
static void check_suite_intermediates(const char *dir, const struct raw_request *raw,
                                      const struct suite_context *ctx)
{
        struct ft_request *req = request_from_raw("https://", raw, NULL);
        char amz_date[17], sig[65] = "", date8[9];
        char *creq = NULL, *sts = NULL, *want_creq, *want_sts, *want_sig;
        const struct ft_sigv4_params *p = &ctx->params;

        ft_time_format_amz(p->now, amz_date);
        memcpy(date8, amz_date, 8);
        date8[8] = '\0';
        CHECK_INT(ft_request_add_header(req, "X-Amz-Date", amz_date), 0);
        if (ctx->creds.session_token && !p->omit_session_token)
                CHECK_INT(ft_request_add_header(req, "X-Amz-Security-Token", ctx->creds.session_token), 0);
        if (p->sign_body_hash) {
                uint8_t d[FT_SHA256_LEN];
                char hex[65];
                ft_sha256(raw->body, raw->body_len, d);
                ft_hex_encode(d, sizeof(d), hex);
                CHECK_INT(ft_request_add_header(req, "x-amz-content-sha256", hex), 0);
        }
        want_creq = read_in(dir, "header-canonical-request.txt", NULL);
        want_sts = read_in(dir, "header-string-to-sign.txt", NULL);
        want_sig = read_in(dir, "header-signature.txt", NULL);
        CHECK(want_creq && want_sts && want_sig);

        CHECK_INT(ft_sigv4_canonical_request(req, p->normalize_path, &creq, NULL), 0);
        CHECK_STR(creq, want_creq);
        CHECK_INT(ft_sigv4_string_to_sign(creq ? creq : "", amz_date, p->region, p->service, &sts), 0);
        CHECK_STR(sts, want_sts);
        CHECK_INT(ft_sigv4_signature(ctx->creds.secret_access_key, date8, p->region, p->service,
                                     sts ? sts : "", sig), 0);
        CHECK_STR(sig, want_sig);

        ft_free_secret(creq);
        free(sts);
        free(want_creq);
        free(want_sts);
        free(want_sig);
        ft_request_free(req);
}

/* ft_sigv4_sign adds exactly the headers of header-signed-request.txt, with or without a cache. */
static void check_suite_signed(const char *dir, const struct raw_request *raw, const struct suite_context *ctx,
                               struct ft_sigv4_cache *cache)
{
        struct raw_request want;
        struct ft_request *req = request_from_raw("https://", raw, NULL);
        struct ft_request *cached = request_from_raw("https://", raw, NULL);
        size_t len;
        char *text = read_in(dir, "header-signed-request.txt", &len);

        CHECK(text != NULL);
        if (!text || parse_raw_request(text, len, false, &want) < 0) {
                CHECK(!"header-signed-request.txt parses");
                goto out;
        }
        CHECK_INT(ft_sigv4_sign(req, &ctx->creds, &ctx->params, NULL), 0);
        CHECK_STR(ft_request_header(req, "Authorization"), raw_header(&want, "Authorization"));
        check_same_headers(req, &want);
        CHECK_INT(req->body_len, want.body_len);
        CHECK(req->body_len == want.body_len && memcmp(req->body, want.body, want.body_len) == 0);

        CHECK_INT(ft_sigv4_sign(cached, &ctx->creds, &ctx->params, cache), 0);
        CHECK_STR(ft_request_header(cached, "Authorization"), raw_header(&want, "Authorization"));
        raw_request_done(&want);
out:
        free(text);
        ft_request_free(req);
        ft_request_free(cached);
}

static const char *suite_dir(void)
{
        static const char *const candidates[] = { "vectors/sigv4/aws-c-auth/v4", "sigv4/aws-c-auth/v4" };
        static char found[4096];

        for (size_t i = 0; i < FT_ELEMENTSOF(candidates); i++) {
                DIR *d = opendir(test_shared_path(candidates[i]));
                if (d) {
                        closedir(d);
                        snprintf(found, sizeof(found), "%s", test_shared_path(candidates[i]));
                        return found;
                }
        }
        return NULL;
}

static void test_aws_suite(void)
{
        const char *root = suite_dir();
        struct ft_sigv4_cache *cache = NULL;
        unsigned cases = 0, failed_cases = 0;
        struct dirent *de;
        DIR *d;

        CHECK(root != NULL);
        if (!root)
                return;
        CHECK_INT(ft_sigv4_cache_new(&cache), 0);
        d = opendir(root);
        while (d && (de = readdir(d))) {
                struct suite_context ctx;
                struct raw_request raw;
                unsigned failed_before = test_failed;
                char *dir, *req_text, *ctx_text;
                size_t req_len, ctx_len;

                if (de->d_name[0] == '.')
                        continue;
                dir = concat3(root, "/", de->d_name);
                req_text = read_in(dir, "request.txt", &req_len);
                ctx_text = read_in(dir, "context.json", &ctx_len);
                if (!req_text || !ctx_text) {
                        /* Not a case folder (LICENSE files live one level up). */
                        free(req_text);
                        free(ctx_text);
                        free(dir);
                        continue;
                }
                cases++;
                if (parse_raw_request(req_text, req_len, false, &raw) < 0 ||
                    parse_context(ctx_text, ctx_len, &ctx) < 0) {
                        CHECK(!"case files parse");
                } else {
                        check_suite_intermediates(dir, &raw, &ctx);
                        check_suite_signed(dir, &raw, &ctx, cache);
                }
                raw_request_done(&raw);
                context_done(&ctx);
                if (test_failed != failed_before) {
                        failed_cases++;
                        fprintf(stderr, "FAIL sigv4 suite case %s\n", de->d_name);
                }
                free(req_text);
                free(ctx_text);
                free(dir);
        }
        if (d)
                closedir(d);
        ft_sigv4_cache_free(cache);
        printf("aws-c-auth v4 suite: %u cases, %u failed\n", cases, failed_cases);
        /* The snapshot has 38 cases; fewer means the suite was not found or not read. */
        CHECK(cases >= 38);
}

/* The credentials of every captured STS vector (captured/README.md). */
static const struct ft_aws_creds captured_creds = {
        .access_key_id = (char *)"AKIDEXAMPLE",
        .secret_access_key = (char *)"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE",
        .session_token = (char *)"FAKE-SESSION-TOKEN-EXAMPLE",
};
#define CAPTURED_NOW INT64_C(1764590400) /* 2025-12-01T12:00:00Z */

static bool has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Expected file next to the .http (same base name), or NULL when there is none. */
static char *read_sibling(const char *dir, const char *http_name, const char *ext)
{
        size_t base_len = strlen(http_name) - strlen(".http");
        char *base = dup_n(http_name, base_len);
        char *file = concat3(base, ext, "");
        char *text = read_in(dir, file, NULL);

        free(base);
        free(file);
        return text;
}

/*
 * Sign one SDK-captured request: the headers it signed (except the three the
 * signer adds itself) go on an ft_request in their captured order; the
 * result must carry the SDK's own Authorization.
 */
static void check_captured(const char *dir, const char *name, unsigned *triples)
{
        struct raw_request raw;
        struct ft_request *req = NULL;
        struct ft_sigv4_params p = {
                .region = "us-east-2", .service = "sts", .now = CAPTURED_NOW, .normalize_path = true,
        };
        char *text, *signed_list = NULL, *creq = NULL, *sts = NULL;
        char *want_creq = NULL, *want_sts = NULL, *want_authz = NULL, *only = NULL;
        const char *want;
        size_t len;

        text = read_in(dir, name, &len);
        CHECK(text != NULL);
        if (!text || parse_raw_request(text, len, true, &raw) < 0) {
                CHECK(!"captured request parses");
                free(text);
                return;
        }
        want = raw_header(&raw, "authorization");
        signed_list = signed_headers_of(want);
        CHECK(signed_list != NULL);
        if (!signed_list)
                goto out;
        p.sign_body_hash = list_has(signed_list, "x-amz-content-sha256");
        /* The list without the headers ft_sigv4_sign adds, so the test cannot pre-supply them. */
        only = dup_n(signed_list, strlen(signed_list));
        for (char *s = only; *s; s++)
                if (*s == ';')
                        *s = ' ';
        for (const char *drop = "x-amz-date"; drop;) {
                char *at = strstr(only, drop);
                if (at)
                        memset(at, '#', strlen(drop));
                drop = strcmp(drop, "x-amz-date") == 0 ? "x-amz-security-token" :
                       strcmp(drop, "x-amz-security-token") == 0 ? "x-amz-content-sha256" : NULL;
        }
        for (char *s = only; *s; s++)
                if (*s == ' ')
                        *s = ';';

        req = request_from_raw("http://", &raw, only);
        CHECK_INT(ft_sigv4_sign(req, &captured_creds, &p, NULL), 0);
        CHECK_STR(ft_request_header(req, "Authorization"), want);
        CHECK_STR(ft_request_header(req, "X-Amz-Date"), raw_header(&raw, "x-amz-date"));
        CHECK_STR(ft_request_header(req, "X-Amz-Security-Token"), raw_header(&raw, "x-amz-security-token"));
        if (p.sign_body_hash)
                CHECK_STR(ft_request_header(req, "x-amz-content-sha256"), raw_header(&raw, "x-amz-content-sha256"));
        else
                CHECK(ft_request_header(req, "x-amz-content-sha256") == NULL);

        want_authz = read_sibling(dir, name, ".authz");
        want_creq = read_sibling(dir, name, ".creq");
        want_sts = read_sibling(dir, name, ".sts");
        if (want_authz || want_creq || want_sts) {
                CHECK(want_authz && want_creq && want_sts);
                (*triples)++;
                CHECK_STR(ft_request_header(req, "Authorization"), want_authz);
                /* The signed request's own Authorization header must not be part of its canonical form. */
                CHECK_INT(ft_sigv4_canonical_request(req, true, &creq, NULL), 0);
                CHECK_STR(creq, want_creq);
                CHECK_INT(ft_sigv4_string_to_sign(creq ? creq : "", "20251201T120000Z", "us-east-2", "sts",
                                                  &sts), 0);
                CHECK_STR(sts, want_sts);
        }
out:
        ft_free_secret(creq);
        free(sts);
        free(want_authz);
        free(want_creq);
        free(want_sts);
        free(signed_list);
        free(only);
        ft_request_free(req);
        raw_request_done(&raw);
        free(text);
}

static void test_captured_sts(void)
{
        char dir[4096];
        unsigned requests = 0, triples = 0;
        struct dirent *de;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s", test_shared_path("vectors/captured"));
        d = opendir(dir);
        CHECK(d != NULL);
        while (d && (de = readdir(d))) {
                unsigned failed_before = test_failed;

                if (strncmp(de->d_name, "sts-getwebidentitytoken", strlen("sts-getwebidentitytoken")) != 0 ||
                    !has_suffix(de->d_name, ".http"))
                        continue;
                requests++;
                check_captured(dir, de->d_name, &triples);
                if (test_failed != failed_before)
                        fprintf(stderr, "FAIL captured STS vector %s\n", de->d_name);
        }
        if (d)
                closedir(d);
        printf("captured STS requests: %u signed, %u with .creq/.sts/.authz\n", requests, triples);
        CHECK(requests >= 7);
        CHECK(triples >= 4);
}

/* --- behaviour beyond the vectors --- */

static const struct ft_aws_creds suite_creds = {
        .access_key_id = (char *)"AKIDEXAMPLE",
        .secret_access_key = (char *)"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
#define SUITE_NOW INT64_C(1440938160) /* 2015-08-30T12:36:00Z */
#define VANILLA_AUTHZ                                                                               \
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "          \
        "SignedHeaders=host;x-amz-date, "                                                           \
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static struct ft_request *new_request(const char *method, const char *url, const char *host)
{
        struct ft_request *req = NULL;

        if (ft_request_new(&req, method, url) < 0)
                abort();
        if (host)
                CHECK_INT(ft_request_add_header(req, "Host", host), 0);
        return req;
}

/* Sign and return a copy of the Authorization value (NULL on failure). */
static char *sign_authz(const char *body, const struct ft_aws_creds *creds, const struct ft_sigv4_params *p,
                        struct ft_sigv4_cache *cache)
{
        struct ft_request *req = new_request("POST", "https://example.amazonaws.com/", "example.amazonaws.com");
        const char *a;
        char *copy = NULL;

        CHECK_INT(ft_request_set_body(req, body, strlen(body)), 0);
        if (ft_sigv4_sign(req, creds, p, cache) == 0 && (a = ft_request_header(req, "Authorization")))
                copy = dup_n(a, strlen(a));
        ft_request_free(req);
        return copy;
}

static void test_host_added_from_url(void)
{
        struct ft_sigv4_params p = { .region = "us-east-1", .service = "service", .now = SUITE_NOW,
                                     .normalize_path = true };
        struct ft_request *req = new_request("GET", "https://example.amazonaws.com/", NULL);

        /* get-vanilla without its Host line: the signer adds the one curl would send. */
        CHECK_INT(ft_sigv4_sign(req, &suite_creds, &p, NULL), 0);
        CHECK_STR(ft_request_header(req, "Host"), "example.amazonaws.com");
        CHECK_STR(ft_request_header(req, "Authorization"), VANILLA_AUTHZ);
        ft_request_free(req);

        req = new_request("POST", "http://[::1]:8443/x?b=1", NULL);
        CHECK_INT(ft_sigv4_sign(req, &suite_creds, &p, NULL), 0);
        CHECK_STR(ft_request_header(req, "Host"), "[::1]:8443");
        ft_request_free(req);

        /* A caller's own Host is kept, not replaced by the URL's. */
        req = new_request("GET", "https://127.0.0.1:8080/", "sts.us-east-2.amazonaws.com");
        CHECK_INT(ft_sigv4_sign(req, &suite_creds, &p, NULL), 0);
        CHECK_STR(ft_request_header(req, "Host"), "sts.us-east-2.amazonaws.com");
        CHECK_INT(req->n_headers, 3);
        ft_request_free(req);
}

static void test_resign_is_idempotent(void)
{
        struct ft_sigv4_params p = { .region = "us-east-1", .service = "service", .now = SUITE_NOW,
                                     .normalize_path = true };
        struct ft_request *req = new_request("GET", "https://example.amazonaws.com/", "example.amazonaws.com");
        size_t n;

        CHECK_INT(ft_sigv4_sign(req, &suite_creds, &p, NULL), 0);
        n = req->n_headers;
        /* A retry re-signs the same request: the old Authorization is replaced, never signed. */
        CHECK_INT(ft_sigv4_sign(req, &suite_creds, &p, NULL), 0);
        CHECK_INT(req->n_headers, n);
        CHECK_STR(ft_request_header(req, "Authorization"), VANILLA_AUTHZ);
        ft_request_free(req);
}

static void test_cache(void)
{
        struct ft_sigv4_params p = { .region = "us-east-2", .service = "sts", .now = CAPTURED_NOW,
                                     .normalize_path = true };
        struct ft_aws_creds rotated = captured_creds;
        struct ft_sigv4_cache *cache = NULL;
        char *plain, *hit1, *hit2, *rot_plain, *rot_cached, *back, *next_day, *next_day_plain;

        CHECK_INT(ft_sigv4_cache_new(&cache), 0);
        plain = sign_authz("Action=X", &captured_creds, &p, NULL);
        hit1 = sign_authz("Action=X", &captured_creds, &p, cache);
        hit2 = sign_authz("Action=X", &captured_creds, &p, cache);
        CHECK(plain != NULL);
        CHECK_STR(hit1, plain);
        CHECK_STR(hit2, plain);

        /* Same day, region and service, rotated secret: the cached key must not be reused. */
        rotated.secret_access_key = (char *)"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLF";
        rot_plain = sign_authz("Action=X", &rotated, &p, NULL);
        rot_cached = sign_authz("Action=X", &rotated, &p, cache);
        CHECK_STR(rot_cached, rot_plain);
        CHECK(rot_cached && plain && strcmp(rot_cached, plain) != 0);
        back = sign_authz("Action=X", &captured_creds, &p, cache);
        CHECK_STR(back, plain);

        /* A second later is the same key; a day later is not. */
        p.now = CAPTURED_NOW + 86400;
        next_day = sign_authz("Action=X", &captured_creds, &p, cache);
        next_day_plain = sign_authz("Action=X", &captured_creds, &p, NULL);
        CHECK_STR(next_day, next_day_plain);
        CHECK(next_day && strstr(next_day, "/20251202/us-east-2/sts/aws4_request"));
        free(next_day);
        free(next_day_plain);

        /* Another region, then another service, through the same cache. */
        p.now = CAPTURED_NOW;
        p.region = "eu-west-1";
        next_day = sign_authz("Action=X", &captured_creds, &p, cache);
        next_day_plain = sign_authz("Action=X", &captured_creds, &p, NULL);
        CHECK_STR(next_day, next_day_plain);
        free(next_day);
        free(next_day_plain);
        p.service = "iam";
        next_day = sign_authz("Action=X", &captured_creds, &p, cache);
        next_day_plain = sign_authz("Action=X", &captured_creds, &p, NULL);
        CHECK_STR(next_day, next_day_plain);
        free(next_day);
        free(next_day_plain);

        free(plain);
        free(hit1);
        free(hit2);
        free(rot_plain);
        free(rot_cached);
        free(back);
        ft_sigv4_cache_free(cache);
        ft_sigv4_cache_free(NULL);
}

static void test_session_token_placement(void)
{
        struct ft_sigv4_params p = { .region = "us-east-2", .service = "sts", .now = CAPTURED_NOW,
                                     .normalize_path = true };
        struct ft_request *req = new_request("POST", "https://sts.us-east-2.amazonaws.com/",
                                             "sts.us-east-2.amazonaws.com");
        struct ft_aws_creds no_token = captured_creds;
        const char *a;

        CHECK_INT(ft_sigv4_sign(req, &captured_creds, &p, NULL), 0);
        a = ft_request_header(req, "Authorization");
        CHECK_CONTAINS(a, "SignedHeaders=host;x-amz-date;x-amz-security-token,");
        ft_request_free(req);

        p.omit_session_token = true;
        req = new_request("POST", "https://sts.us-east-2.amazonaws.com/", "sts.us-east-2.amazonaws.com");
        CHECK_INT(ft_sigv4_sign(req, &captured_creds, &p, NULL), 0);
        a = ft_request_header(req, "Authorization");
        CHECK_CONTAINS(a, "SignedHeaders=host;x-amz-date,");
        CHECK(a && !strstr(a, "security-token"));
        /* The token is still sent, just unsigned, and after Authorization. */
        CHECK_STR(ft_request_header(req, "X-Amz-Security-Token"), "FAKE-SESSION-TOKEN-EXAMPLE");
        CHECK_STR(req->headers[req->n_headers - 1].name, "X-Amz-Security-Token");
        /* Re-signed, the token header already there must still stay unsigned. */
        CHECK_INT(ft_sigv4_sign(req, &captured_creds, &p, NULL), 0);
        CHECK_CONTAINS(ft_request_header(req, "Authorization"), "SignedHeaders=host;x-amz-date,");
        ft_request_free(req);

        /* Long-term keys, or an empty token, send no token header at all. */
        no_token.session_token = (char *)"";
        req = new_request("POST", "https://sts.us-east-2.amazonaws.com/", "sts.us-east-2.amazonaws.com");
        CHECK_INT(ft_sigv4_sign(req, &no_token, &p, NULL), 0);
        CHECK(ft_request_header(req, "X-Amz-Security-Token") == NULL);
        ft_request_free(req);
}

static void test_body_is_signed(void)
{
        struct ft_sigv4_params p = { .region = "us-east-2", .service = "sts", .now = CAPTURED_NOW,
                                     .normalize_path = true };
        const char *body = "Action=GetWebIdentityToken&Version=2011-06-15&DurationSeconds=300";
        char *a, *b, *c, *d;

        a = sign_authz(body, &captured_creds, &p, NULL);
        b = sign_authz("Action=GetWebIdentityToken&Version=2011-06-15&DurationSeconds=3600", &captured_creds, &p,
                       NULL);
        CHECK(a && b && strcmp(a, b) != 0);
        /* Without x-amz-content-sha256 the body still reaches the signature through the payload hash. */
        p.sign_body_hash = true;
        c = sign_authz(body, &captured_creds, &p, NULL);
        d = sign_authz("Action=GetWebIdentityToken&Version=2011-06-15&DurationSeconds=301", &captured_creds, &p,
                       NULL);
        CHECK(c && d && strcmp(c, d) != 0);
        CHECK_CONTAINS(c, "x-amz-content-sha256");
        free(a);
        free(b);
        free(c);
        free(d);
}

static void check_creq(const char *url, bool normalize, const char *want_path_query)
{
        struct ft_request *req = new_request("GET", url, "h");
        char *creq = NULL, *signed_headers = NULL;
        char *want = concat3("GET\n", want_path_query,
                             "\nhost:h\n\nhost\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

        CHECK_INT(ft_sigv4_canonical_request(req, normalize, &creq, &signed_headers), 0);
        CHECK_STR(creq, want);
        CHECK_STR(signed_headers, "host");
        ft_free_secret(creq);
        free(signed_headers);
        free(want);
        ft_request_free(req);
}

static void test_canonical_uri_and_query(void)
{
        check_creq("https://h/a/./b/../c//d/", true, "/a/c/d/\n");
        check_creq("https://h/a/./b/../c//d/", false, "/a/./b/../c//d/\n");
        check_creq("https://h/..", true, "/\n");
        check_creq("https://h/../../x", true, "/x\n");
        check_creq("https://h/a/b/..", true, "/a\n");
        check_creq("https://h", true, "/\n");
        check_creq("https://h?x=1", true, "/\nx=1");
        /* The URL carries the wire form: AWS encodes that once more ("double encoding"). */
        check_creq("https://h/a%2Fb/%20", true, "/a%252Fb/%2520\n");
        check_creq("https://h/a:b@c+d", true, "/a%3Ab%40c%2Bd\n");
        /* Query: decoded then re-encoded, sorted by key then value, bare keys get "=". */
        check_creq("https://h/?b=2&a=1&a=0&c&&=x", true, "/\n=x&a=0&a=1&b=2&c=");
        check_creq("https://h/?k=%7e%41&s=a+b c&p=%zz%4", true, "/\nk=~A&p=%25zz%254&s=a%2Bb%20c");
        check_creq("https://h/?Param-3=3&Param=2", true, "/\nParam=2&Param-3=3");
        check_creq("https://h/?x=%00%FF", true, "/\nx=%00%FF");
        check_creq("https://h/p#frag?no=1", true, "/p\n");
}

static void test_canonical_headers(void)
{
        struct ft_request *req = new_request("POST", "https://h/", "h");
        char *creq = NULL, *signed_headers = NULL;

        CHECK_INT(ft_request_add_header(req, "X-B", "\t two \t\t words  "), 0);
        CHECK_INT(ft_request_add_header(req, "x-a", "1"), 0);
        CHECK_INT(ft_request_add_header(req, "X-A", ""), 0);
        CHECK_INT(ft_request_add_header(req, "X-a", " 3 "), 0);
        CHECK_INT(ft_request_add_header(req, "Authorization", "old signature"), 0);
        CHECK_INT(ft_sigv4_canonical_request(req, true, &creq, &signed_headers), 0);
        CHECK_STR(creq, "POST\n/\n\nhost:h\nx-a:1,,3\nx-b:two words\n\nhost;x-a;x-b\n"
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK_STR(signed_headers, "host;x-a;x-b");
        ft_free_secret(creq);
        free(signed_headers);
        ft_request_free(req);

        /*
         * Names that would make SignedHeaders ambiguous, or values that would
         * forge canonical lines. ft_request_add_header refuses them; the
         * signer refuses them too when they are put on the struct directly.
         */
        {
                static const char *const bad[][2] = {
                        { "a;b", "v" }, { "a b", "v" }, { "", "v" }, { "a,b", "v" },
                        { "x", "h\nx-amz-date:1" }, { "x", "v\r" },
                };
                for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                        req = new_request("GET", "https://h/", "h");
                        CHECK_INT(ft_request_add_header(req, bad[i][0], bad[i][1]), -EINVAL);
                        req->headers[req->n_headers].name = dup_n(bad[i][0], strlen(bad[i][0]));
                        req->headers[req->n_headers].value = dup_n(bad[i][1], strlen(bad[i][1]));
                        req->n_headers++;
                        creq = NULL;
                        CHECK_INT(ft_sigv4_canonical_request(req, true, &creq, NULL), -EINVAL);
                        CHECK(creq == NULL);
                        ft_request_free(req);
                }
        }
        req = new_request("GET ", "https://h/", "h");
        CHECK_INT(ft_sigv4_canonical_request(req, true, &creq, NULL), -EINVAL);
        ft_request_free(req);
}

static void test_invalid_arguments(void)
{
        struct ft_sigv4_params p = { .region = "us-east-2", .service = "sts", .now = CAPTURED_NOW };
        struct ft_aws_creds c = captured_creds;
        struct ft_request *req = new_request("POST", "https://sts.us-east-2.amazonaws.com/", NULL);
        char *s = NULL, hex[65];

        CHECK_INT(ft_sigv4_sign(NULL, &c, &p, NULL), -EINVAL);
        CHECK_INT(ft_sigv4_sign(req, NULL, &p, NULL), -EINVAL);
        CHECK_INT(ft_sigv4_sign(req, &c, NULL, NULL), -EINVAL);
        p.region = "us-east-2/x";
        CHECK_INT(ft_sigv4_sign(req, &c, &p, NULL), -EINVAL);
        p.region = "";
        CHECK_INT(ft_sigv4_sign(req, &c, &p, NULL), -EINVAL);
        p.region = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 64 */
        CHECK_INT(ft_sigv4_sign(req, &c, &p, NULL), -EINVAL);
        p.region = "us-east-2";
        p.service = "s ts";
        CHECK_INT(ft_sigv4_sign(req, &c, &p, NULL), -EINVAL);
        p.service = "sts";
        c.access_key_id = (char *)"AKID/EXAMPLE";
        CHECK_INT(ft_sigv4_sign(req, &c, &p, NULL), -EINVAL);
        c.access_key_id = (char *)"AKIDEXAMPLE";
        c.secret_access_key = NULL;
        CHECK_INT(ft_sigv4_sign(req, &c, &p, NULL), -EINVAL);
        c.secret_access_key = (char *)"";
        CHECK_INT(ft_sigv4_sign(req, &c, &p, NULL), -EINVAL);
        ft_request_free(req);

        req = new_request("GET", "no-scheme/path", NULL);
        CHECK_INT(ft_sigv4_sign(req, &captured_creds, &p, NULL), -EINVAL);
        ft_request_free(req);

        /* A request already full has no room for X-Amz-Date. */
        req = new_request("GET", "https://h/", "h");
        for (int i = 1; i < FT_MAX_HEADERS; i++) {
                char name[16];
                snprintf(name, sizeof(name), "x-h%d", i);
                CHECK_INT(ft_request_add_header(req, name, "v"), 0);
        }
        CHECK_INT(ft_sigv4_sign(req, &captured_creds, &p, NULL), -E2BIG);
        ft_request_free(req);

        CHECK_INT(ft_sigv4_string_to_sign("x", "20251201T120000", "us-east-2", "sts", &s), -EINVAL);
        CHECK_INT(ft_sigv4_string_to_sign("x", "20251201X120000Z", "us-east-2", "sts", &s), -EINVAL);
        CHECK_INT(ft_sigv4_string_to_sign(NULL, "20251201T120000Z", "us-east-2", "sts", &s), -EINVAL);
        CHECK(s == NULL);
        CHECK_INT(ft_sigv4_string_to_sign("", "20251201T120000Z", "us-east-2", "sts", &s), 0);
        CHECK_STR(s, "AWS4-HMAC-SHA256\n20251201T120000Z\n20251201/us-east-2/sts/aws4_request\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        free(s);
        CHECK_INT(ft_sigv4_signature("secret", "2025120", "us-east-2", "sts", "x", hex), -EINVAL);
        CHECK_INT(ft_sigv4_signature("secret", "2025120a", "us-east-2", "sts", "x", hex), -EINVAL);
        CHECK_INT(ft_sigv4_signature("", "20251201", "us-east-2", "sts", "x", hex), -EINVAL);
        CHECK_INT(ft_sigv4_cache_new(NULL), -EINVAL);
}

int main(void)
{
        test_aws_suite();
        test_captured_sts();
        test_host_added_from_url();
        test_resign_is_idempotent();
        test_cache();
        test_session_token_placement();
        test_body_is_signed();
        test_canonical_uri_and_query();
        test_canonical_headers();
        test_invalid_arguments();
        return test_summary();
}
