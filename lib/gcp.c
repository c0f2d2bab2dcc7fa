/* SPDX-License-Identifier: MIT */
#include "gcp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "text.h"
#include "timeutil.h"

/* The exact Content-Type google-auth-library 10 sends (gaxios for a URLSearchParams body). */
#define GCP_FORM_TYPE "application/x-www-form-urlencoded;charset=UTF-8"
#define GCP_JSON_TYPE "application/json"
#define GCP_GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define GCP_TOKEN_TYPE_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define GCP_TOKEN_TYPE_JWT "urn:ietf:params:oauth:token-type:jwt"

/*
 * Input limits. Google's pool and provider ids are at most 32 characters
 * (workforce pools 63) of a-z 0-9 '-'; project numbers are short. A service
 * account email is at most 254 characters like any address. Access tokens
 * are documented up to 12 KiB; 32 KiB leaves room and stays well inside
 * FT_GCP_MAX_BODY. Google's tokens live one hour (STS) and at most 12 hours
 * (generateAccessToken), so a lifetime above one day is no answer of theirs.
 */
#define GCP_URL_MAX 2048
#define GCP_AUDIENCE_MAX 1024
#define GCP_RESOURCE_ID_MAX 63
#define GCP_PROJECT_NUMBER_MAX 20
#define GCP_SCOPE_MAX 4096
#define GCP_SCOPES_MAX 32
#define GCP_SA_MAX 254
#define GCP_PATH_MAX 4096
#define GCP_ACCESS_TOKEN_MAX (32 * 1024)
#define GCP_EXPIRES_IN_MAX 86400
#define GCP_LIFETIME_MIN 600
#define GCP_LIFETIME_MAX 43200
/* Without the org policy constraints/iam.allowServiceAccountCredentialLifetimeExtension. */
#define GCP_LIFETIME_DEFAULT_MAX 3600

/* How much of a value, and of Google's own message, a diagnosis quotes. */
#define SHOW_VALUE_MAX 256
#define SHOW_MESSAGE_MAX 300
/* How many of a JWT's audiences a diagnosis lists. */
#define SHOW_AUDIENCES_MAX 4

/* ------------------------------------------------------------------------ */
/* Text helpers                                                             */

/* A configured value or a claim, quoted in an error about the request. */
static const char *show_str(char *buf, size_t size, const char *s)
{
        if (!s)
                return "(none)";
        return ft_text_show(buf, size, s, strlen(s), SHOW_VALUE_MAX);
}

static bool skip_prefix(const char **p, const char *prefix)
{
        size_t n = strlen(prefix);

        if (strncmp(*p, prefix, n) != 0)
                return false;
        *p += n;
        return true;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                               */

/* RFC 3986 characters only: anything else would have to be encoded first. */
static bool url_text_ok(const char *s, size_t max)
{
        size_t n = 0;

        for (; s[n]; n++) {
                unsigned char c = (unsigned char)s[n];
                if (n >= max || !(ft_text_is_alnum(c) || strchr("-._~:/?#[]@!$&'()*+,;=%", c)))
                        return false;
        }
        return n > 0;
}

static bool scheme_is(const struct ft_url *u, const char *scheme)
{
        return u->scheme_len == strlen(scheme) && strncasecmp(u->scheme, scheme, u->scheme_len) == 0;
}

/* localhost, 127.0.0.0/8 or ::1: the only hosts a token may travel to in clear text. */
static bool host_is_loopback(const struct ft_url *u)
{
        size_t dots = 0;

        if (u->host_len == 9 && strncasecmp(u->host, "localhost", 9) == 0)
                return true;
        if (u->host_len == 3 && memcmp(u->host, "::1", 3) == 0)
                return true;
        if (u->host_len < 7 || memcmp(u->host, "127.", 4) != 0)
                return false;
        for (size_t i = 0; i < u->host_len; i++) {
                if (u->host[i] == '.')
                        dots++;
                else if (u->host[i] < '0' || u->host[i] > '9')
                        return false;
        }
        return dots == 3;
}

/*
 * Google's endpoints are https. Plain http carries the subject token and the
 * access tokens in clear, so it is allowed only to a loopback host, for tests
 * and local proxies. A query or fragment has no place in these endpoints.
 */
static bool endpoint_valid(const char *url)
{
        struct ft_url u;

        if (!url || !url_text_ok(url, GCP_URL_MAX) || strpbrk(url, "?#") || ft_url_split(url, &u) < 0)
                return false;
        if (scheme_is(&u, "https"))
                return true;
        return scheme_is(&u, "http") && host_is_loopback(&u);
}

/* A pool or provider id: [a-z0-9-]{1,63}; 0 when there is none. */
static size_t resource_id_len(const char *p)
{
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");

        return n <= GCP_RESOURCE_ID_MAX ? n : 0;
}

/*
 * A provider's full resource name, workload identity
 * (//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X)
 * or workforce (//iam.googleapis.com/locations/global/workforcePools/P/providers/X).
 * *ret_pool_end is the length of the part that names the pool, from which
 * the federated principal's name is derived.
 */
static bool audience_split(const char *audience, size_t *ret_pool_end)
{
        const char *p = audience;
        size_t n, pool_end;

        if (!audience || strlen(audience) > GCP_AUDIENCE_MAX || !skip_prefix(&p, "//iam.googleapis.com/"))
                return false;
        if (skip_prefix(&p, "projects/")) {
                n = strspn(p, "0123456789");
                if (n == 0 || n > GCP_PROJECT_NUMBER_MAX)
                        return false;
                p += n;
                if (!skip_prefix(&p, "/locations/global/workloadIdentityPools/"))
                        return false;
        } else if (!skip_prefix(&p, "locations/global/workforcePools/")) {
                return false;
        }
        n = resource_id_len(p);
        if (n == 0)
                return false;
        p += n;
        pool_end = (size_t)(p - audience);
        if (!skip_prefix(&p, "/providers/"))
                return false;
        n = resource_id_len(p);
        if (n == 0 || p[n] != '\0')
                return false;
        *ret_pool_end = pool_end;
        return true;
}

static bool audience_valid(const char *audience)
{
        size_t pool_end;

        return audience_split(audience, &pool_end);
}

/* One or more https scope URLs separated by single spaces, as the configuration allows. */
static bool scope_valid(const char *scope)
{
        size_t count = 0;

        if (!scope || strlen(scope) > GCP_SCOPE_MAX)
                return false;
        for (const char *p = scope;;) {
                size_t n = strcspn(p, " ");
                char one[GCP_URL_MAX + 1];
                struct ft_url u;

                if (n == 0 || n > GCP_URL_MAX || ++count > GCP_SCOPES_MAX)
                        return false;
                memcpy(one, p, n);
                one[n] = '\0';
                if (strncmp(one, "https://", 8) != 0 || !url_text_ok(one, GCP_URL_MAX) || strpbrk(one, "?#") ||
                    ft_url_split(one, &u) < 0)
                        return false;
                if (p[n] == '\0')
                        return true;
                p += n + 1;
        }
}

/* Three non-empty base64url parts: what Google STS accepts as a subject token of type jwt. */
static bool jwt_shape_valid(const char *token)
{
        size_t parts = 1, part_len = 0, len = 0;

        if (!token)
                return false;
        for (const char *p = token; *p; p++) {
                if (++len > FT_JWT_MAX_LEN)
                        return false;
                if (*p == '.') {
                        if (part_len == 0)
                                return false;
                        parts++;
                        part_len = 0;
                } else if (ft_text_is_base64url((unsigned char)*p)) {
                        part_len++;
                } else {
                        return false;
                }
        }
        return parts == 3 && part_len > 0;
}

/*
 * NAME@PROJECT.iam.gserviceaccount.com, or any x@y Google would take: the
 * email goes into the URL path as it is, so nothing that would end the
 * segment, start a query or need encoding is allowed.
 */
static bool service_account_valid(const char *sa)
{
        const char *at;
        size_t len;

        if (!sa)
                return false;
        len = strlen(sa);
        at = strchr(sa, '@');
        if (len == 0 || len > GCP_SA_MAX || !at || at == sa || at[1] == '\0' || strchr(at + 1, '@'))
                return false;
        for (const char *p = sa; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if (c <= 0x20 || c >= 0x7f || strchr("/?:#%\\\"<>[]{}|^`", c))
                        return false;
        }
        return true;
}

/* Printable ASCII without spaces: what can follow "Bearer " in a header and be written to a file. */
static bool access_token_text_ok(const char *s)
{
        size_t n = 0;

        for (; s[n]; n++)
                if (n >= GCP_ACCESS_TOKEN_MAX || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
                        return false;
        return n > 0;
}

/* An absolute path in valid UTF-8 without control characters: it is written into JSON. */
static bool token_file_valid(const char *path)
{
        const unsigned char *p = (const unsigned char *)path;
        size_t avail;

        if (!path || path[0] != '/')
                return false;
        avail = strlen(path);
        if (avail > GCP_PATH_MAX)
                return false;
        while (avail > 0) {
                uint32_t cp;
                int n = ft_text_utf8_next(p, avail, &cp);
                if (n < 0 || ft_text_is_control(cp))
                        return false;
                p += n;
                avail -= (size_t)n;
        }
        return true;
}

static bool lifetime_valid(int lifetime)
{
        return lifetime >= GCP_LIFETIME_MIN && lifetime <= GCP_LIFETIME_MAX;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

/*
 * application/x-www-form-urlencoded as WHATWG URLSearchParams serializes it,
 * which is how google-auth-library 10 builds the STS body: A-Z a-z 0-9 and
 * "*-._" kept, space as '+', every other byte %XX. ft_strbuf_urlencode
 * differs in '~', '*' and space; a list of scopes has spaces.
 */
static void form_encode(struct ft_strbuf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (ft_text_is_alnum(*p) || *p == '*' || *p == '-' || *p == '.' || *p == '_') {
                        ft_strbuf_append(b, (const char *)p, 1);
                } else if (*p == ' ') {
                        ft_strbuf_append(b, "+", 1);
                } else {
                        char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
                        ft_strbuf_append(b, e, 3);
                }
        }
}

static void form_param(struct ft_strbuf *b, const char *name, const char *value)
{
        if (b->len > 0)
                ft_strbuf_puts(b, "&");
        ft_strbuf_puts(b, name);
        ft_strbuf_puts(b, "=");
        form_encode(b, value);
}

/* A POST with Host, Content-Type, Accept and, when given, Authorization. */
static int post_request(const char *url, const char *content_type, const char *authorization, const char *body,
                        size_t body_len, struct ft_request **ret)
{
        struct ft_request *req = NULL;
        int r;

        r = ft_request_new_post(&req, url, content_type, body, body_len);
        if (r < 0)
                return r;
        r = ft_request_add_header(req, "Accept", GCP_JSON_TYPE);
        if (r >= 0 && authorization)
                r = ft_request_add_header(req, "Authorization", authorization);
        if (r < 0) {
                ft_request_free(req);
                return r;
        }
        *ret = req;
        return 0;
}

static int check_sts_params(const struct ft_gcp_sts_params *p, struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 5];

        if (!endpoint_valid(p->endpoint))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Google STS endpoint %s is not usable: expected an https URL without query, such "
                                    "as " FT_GCP_DEFAULT_STS " (plain http only to a loopback address)",
                                    show_str(shown, sizeof(shown), p->endpoint));
        if (!audience_valid(p->audience))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Google audience %s is not a provider's full name: expected "
                                    "//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/"
                                    "providers/PROVIDER (or "
                                    ".../locations/global/workforcePools/POOL/providers/PROVIDER)",
                                    show_str(shown, sizeof(shown), p->audience));
        if (p->scope && !scope_valid(p->scope))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Google scope %s is not valid: expected https scope URLs separated by single "
                                    "spaces, such as " FT_GCP_DEFAULT_SCOPE, show_str(shown, sizeof(shown), p->scope));
        /* Never quote the token itself, even a malformed one. */
        if (!jwt_shape_valid(p->subject_token))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "the subject token for Google STS is not a JWT (three non-empty base64url parts, "
                                    "at most %d bytes)", FT_JWT_MAX_LEN);
        return 0;
}

int ft_gcp_build_sts(const struct ft_gcp_sts_params *p, struct ft_request **ret, struct ft_diag *diag)
{
        struct ft_strbuf body = { 0 };
        const char *scope;
        int r;

        if (!p || !ret)
                return -EINVAL;
        r = check_sts_params(p, diag);
        if (r < 0)
                return r;
        /*
         * With impersonation the federated token only has to call
         * generateAccessToken, so google-auth-library always asks STS for
         * cloud-platform and applies the configured scopes to the service
         * account's token instead.
         */
        scope = p->impersonate || !p->scope ? FT_GCP_DEFAULT_SCOPE : p->scope;
        /* The library's field order, checked byte for byte against its requests. */
        form_param(&body, "grant_type", GCP_GRANT_TOKEN_EXCHANGE);
        form_param(&body, "audience", p->audience);
        form_param(&body, "scope", scope);
        form_param(&body, "requested_token_type", GCP_TOKEN_TYPE_ACCESS);
        form_param(&body, "subject_token", p->subject_token);
        form_param(&body, "subject_token_type", GCP_TOKEN_TYPE_JWT);
        if (body.oom)
                r = -ENOMEM;
        else
                r = post_request(p->endpoint, GCP_FORM_TYPE, NULL, body.p, body.len, ret);
        /* The body holds the subject token: wiped here, and in the request when it is freed. */
        ft_strbuf_done(&body);
        if (r < 0)
                return ft_diag_fail(diag, r, FT_RETRY_BACKOFF, "cannot build the Google STS request: out of memory");
        return 0;
}

static int impersonation_url(const char *iam_endpoint, const char *service_account, char **ret)
{
        struct ft_strbuf b = { 0 };
        size_t n = strlen(iam_endpoint);

        if (n > 0 && iam_endpoint[n - 1] == '/')
                n--;
        ft_strbuf_append(&b, iam_endpoint, n);
        ft_strbuf_printf(&b, "/v1/projects/-/serviceAccounts/%s:generateAccessToken", service_account);
        *ret = ft_strbuf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

/* Each space-separated scope as a string item of `array`. */
static bool add_scope_items(cJSON *array, const char *scope)
{
        for (const char *p = scope;;) {
                size_t n = strcspn(p, " ");
                char *one = ft_strndup(p, n);
                cJSON *item;

                if (!one)
                        return false;
                item = cJSON_CreateString(one);
                free(one);
                if (!item || !cJSON_AddItemToArray(array, item)) {
                        cJSON_Delete(item);
                        return false;
                }
                if (p[n] == '\0')
                        return true;
                p += n + 1;
        }
}

/* {"scope":[...],"lifetime":"3600s"}, as JSON.stringify writes it; free with cJSON_free(). */
static int generate_body(const char *scope, int lifetime, char **ret)
{
        cJSON *root = cJSON_CreateObject(), *scopes;
        char lifetime_text[16];
        char *text = NULL;

        if (!root)
                return -ENOMEM;
        snprintf(lifetime_text, sizeof(lifetime_text), "%ds", lifetime);
        scopes = cJSON_AddArrayToObject(root, "scope");
        if (scopes && add_scope_items(scopes, scope) && cJSON_AddStringToObject(root, "lifetime", lifetime_text))
                text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

static int check_generate_params(const char *iam_endpoint, const char *service_account,
                                 const char *federated_token, const char *scope, int lifetime,
                                 struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 5];

        if (!endpoint_valid(iam_endpoint))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "IAM Credentials endpoint %s is not usable: expected an https URL without query, "
                                    "such as " FT_GCP_DEFAULT_IAM " (plain http only to a loopback address)",
                                    show_str(shown, sizeof(shown), iam_endpoint));
        if (!service_account_valid(service_account))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "service account %s is not valid: expected an email such as "
                                    "NAME@PROJECT.iam.gserviceaccount.com (at most %d characters, no '/', '?', ':', "
                                    "'%%', spaces or control characters)",
                                    show_str(shown, sizeof(shown), service_account), GCP_SA_MAX);
        if (scope && !scope_valid(scope))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Google scope %s is not valid: expected https scope URLs separated by single "
                                    "spaces, such as " FT_GCP_DEFAULT_SCOPE, show_str(shown, sizeof(shown), scope));
        if (!lifetime_valid(lifetime))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "service account token lifetime %d s is out of range: allowed %d-%d s", lifetime,
                                    GCP_LIFETIME_MIN, GCP_LIFETIME_MAX);
        if (!federated_token || !access_token_text_ok(federated_token))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "the federated access token from Google STS is empty, longer than %d bytes or "
                                    "holds characters a bearer token cannot contain", GCP_ACCESS_TOKEN_MAX);
        return 0;
}

int ft_gcp_build_generate(const char *iam_endpoint, const char *service_account, const char *federated_token,
                          const char *scope, int lifetime, struct ft_request **ret, struct ft_diag *diag)
{
        struct ft_strbuf authorization = { 0 };
        _cleanup_free_ char *url = NULL;
        char *body = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        r = check_generate_params(iam_endpoint, service_account, federated_token, scope, lifetime, diag);
        if (r < 0)
                return r;
        r = impersonation_url(iam_endpoint, service_account, &url);
        if (r >= 0)
                r = generate_body(scope ? scope : FT_GCP_DEFAULT_SCOPE, lifetime, &body);
        if (r >= 0) {
                ft_strbuf_puts(&authorization, "Bearer ");
                ft_strbuf_puts(&authorization, federated_token);
                r = authorization.oom ? -ENOMEM
                                      : post_request(url, GCP_JSON_TYPE, authorization.p, body, strlen(body), ret);
        }
        ft_strbuf_done(&authorization);
        cJSON_free(body);
        if (r < 0)
                return ft_diag_fail(diag, r, FT_RETRY_BACKOFF,
                                    "cannot build the generateAccessToken request: out of memory");
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */

/* The tree's copy of the access token must not linger in freed memory. */
static void json_free_secret(cJSON *root, const char *secret_name)
{
        ft_json_free_secrets(root, &secret_name, 1);
}

/*
 * A member we read must appear once: cJSON takes the first of two, another
 * reader the last, and a token answer that means two things is refused.
 */
static const char *duplicate_member(const cJSON *root, const char *const *names, size_t n_names)
{
        for (size_t i = 0; i < n_names; i++) {
                size_t seen = 0;
                for (const cJSON *it = root->child; it; it = it->next)
                        if (it->string && strcmp(it->string, names[i]) == 0 && ++seen > 1)
                                return names[i];
        }
        return NULL;
}

/* The body of a 200 answer as a JSON object, size-capped and without repeated members. */
static int parse_answer(const char *body, size_t len, const char *what, const char *secret_name,
                        const char *const *names, size_t n_names, cJSON **ret, struct ft_diag *diag)
{
        const char *dup;
        cJSON *root = NULL;

        if (len > FT_GCP_MAX_BODY)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "%s answer is unusable: it is %zu bytes, more than the %d a token answer can be",
                                    what, len, FT_GCP_MAX_BODY);
        if (ft_json_parse_object(body, len, &root) < 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "%s answer is unusable: it is not a JSON object",
                                    what);
        dup = duplicate_member(root, names, n_names);
        if (dup) {
                json_free_secret(root, secret_name);
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "%s answer is unusable: it has \"%s\" twice", what, dup);
        }
        *ret = root;
        return 0;
}

static int access_token_new(const char *token, int64_t expires_at, struct ft_access_token **ret)
{
        struct ft_access_token *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->access_token_len = strlen(token);
        t->access_token = ft_strndup(token, t->access_token_len);
        t->token_type = strdup("Bearer");
        if (!t->access_token || !t->token_type) {
                ft_access_token_free(t);
                return -ENOMEM;
        }
        t->expires_at = expires_at;
        *ret = t;
        return 0;
}

/* expires_in: a whole number of seconds, 1 to a day, as a JSON number or a string of digits. */
static bool expires_in_value(const cJSON *it, int64_t *ret)
{
        int64_t v = 0;

        if (cJSON_IsNumber(it)) {
                double d = it->valuedouble;
                if (!(d >= 1 && d <= GCP_EXPIRES_IN_MAX) || d != (double)(int64_t)d)
                        return false;
                v = (int64_t)d;
        } else if (cJSON_IsString(it) && it->valuestring) {
                const char *s = it->valuestring;
                size_t n = strlen(s);
                if (n == 0 || n > 6 || strspn(s, "0123456789") != n)
                        return false;
                for (size_t i = 0; i < n; i++)
                        v = v * 10 + (s[i] - '0');
                if (v < 1 || v > GCP_EXPIRES_IN_MAX)
                        return false;
        } else {
                return false;
        }
        *ret = v;
        return true;
}

static int sts_answer(const cJSON *root, int64_t now, struct ft_access_token **ret, struct ft_diag *diag)
{
        const char *token = ft_json_string(root, "access_token");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "token_type");
        const cJSON *issued = cJSON_GetObjectItemCaseSensitive(root, "issued_token_type");
        char shown[SHOW_VALUE_MAX + 5];
        int64_t expires_in;
        int r;

        if (!token)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "Google STS answer is unusable: it has no "
                                    "access_token string");
        if (!access_token_text_ok(token))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "Google STS answer is unusable: its access_token "
                                    "is empty, longer than %d bytes or holds characters a bearer token cannot contain",
                                    GCP_ACCESS_TOKEN_MAX);
        /* Other token types need proof of possession: a bearer header would not work, and should not. */
        if (type && !(cJSON_IsString(type) && type->valuestring && strcasecmp(type->valuestring, "Bearer") == 0))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "Google STS answer is unusable: its token_type is %s, not Bearer",
                                    cJSON_IsString(type) ? show_str(shown, sizeof(shown), type->valuestring)
                                                         : "not a string");
        if (issued && !(cJSON_IsString(issued) && issued->valuestring &&
                        strcmp(issued->valuestring, GCP_TOKEN_TYPE_ACCESS) == 0))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "Google STS answer is unusable: its "
                                    "issued_token_type is %s, not " GCP_TOKEN_TYPE_ACCESS,
                                    cJSON_IsString(issued) ? show_str(shown, sizeof(shown), issued->valuestring)
                                                           : "not a string");
        if (!expires_in_value(cJSON_GetObjectItemCaseSensitive(root, "expires_in"), &expires_in))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "Google STS answer is unusable: its expires_in is missing or not a whole number "
                                    "of seconds between 1 and %d", GCP_EXPIRES_IN_MAX);
        if (now < 0 || now > INT64_MAX - GCP_EXPIRES_IN_MAX)
                return -EINVAL;
        r = access_token_new(token, now + expires_in, ret);
        if (r < 0)
                return ft_diag_fail(diag, r, FT_RETRY_BACKOFF, "cannot keep the Google STS token: out of memory");
        return 0;
}

int ft_gcp_parse_sts(const char *body, size_t len, int64_t now, struct ft_access_token **ret, struct ft_diag *diag)
{
        static const char *const names[] = { "access_token", "token_type", "issued_token_type", "expires_in" };
        cJSON *root = NULL;
        int r;

        if ((!body && len) || !ret)
                return -EINVAL;
        r = parse_answer(body, len, "Google STS", "access_token", names, FT_ELEMENTSOF(names), &root, diag);
        if (r < 0)
                return r;
        r = sts_answer(root, now, ret, diag);
        json_free_secret(root, "access_token");
        return r;
}

static int generate_answer(const cJSON *root, struct ft_access_token **ret, struct ft_diag *diag)
{
        const char *token = ft_json_string(root, "accessToken");
        const char *expire = ft_json_string(root, "expireTime");
        char shown[SHOW_VALUE_MAX + 5];
        int64_t expires_at;
        int r;

        if (!token)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "generateAccessToken answer is unusable: it has no accessToken string");
        if (!access_token_text_ok(token))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "generateAccessToken answer is unusable: its accessToken is empty, longer than "
                                    "%d bytes or holds characters a bearer token cannot contain", GCP_ACCESS_TOKEN_MAX);
        if (!expire)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "generateAccessToken answer is unusable: it has no expireTime string");
        if (ft_time_parse_iso8601(expire, strlen(expire), &expires_at) < 0 || expires_at <= 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "generateAccessToken answer is unusable: its "
                                    "expireTime %s is not an RFC 3339 time", show_str(shown, sizeof(shown), expire));
        r = access_token_new(token, expires_at, ret);
        if (r < 0)
                return ft_diag_fail(diag, r, FT_RETRY_BACKOFF, "cannot keep the service account token: out of memory");
        return 0;
}

int ft_gcp_parse_generate(const char *body, size_t len, struct ft_access_token **ret, struct ft_diag *diag)
{
        static const char *const names[] = { "accessToken", "expireTime" };
        cJSON *root = NULL;
        int r;

        if ((!body && len) || !ret)
                return -EINVAL;
        r = parse_answer(body, len, "generateAccessToken", "accessToken", names, FT_ELEMENTSOF(names), &root,
                         diag);
        if (r < 0)
                return r;
        r = generate_answer(root, ret, diag);
        json_free_secret(root, "accessToken");
        return r;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* What an error body says, in either of Google's two shapes. Strings point into the parsed tree. */
struct gcp_error {
        const char *error;         /* OAuth (STS): "invalid_grant" */
        const char *description;   /* OAuth: "error_description" */
        const char *status;        /* Google (IAM): "PERMISSION_DENIED" */
        const char *message;       /* Google: "error.message" */
        long code;                 /* Google: "error.code", 0 when absent */
        bool service_disabled;     /* a details[].reason is SERVICE_DISABLED */
};

static const char *nonempty(const char *s)
{
        return s && *s ? s : NULL;
}

static void error_from_json(const cJSON *root, struct gcp_error *ret)
{
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error"), *code, *details;
        size_t seen = 0;

        if (cJSON_IsString(e)) {
                ret->error = nonempty(e->valuestring);
                ret->description = nonempty(ft_json_string(root, "error_description"));
                return;
        }
        if (!cJSON_IsObject(e))
                return;
        ret->status = nonempty(ft_json_string(e, "status"));
        ret->message = nonempty(ft_json_string(e, "message"));
        code = cJSON_GetObjectItemCaseSensitive(e, "code");
        if (cJSON_IsNumber(code) && code->valuedouble >= 100 && code->valuedouble <= 599)
                ret->code = (long)code->valuedouble;
        details = cJSON_GetObjectItemCaseSensitive(e, "details");
        /* A bounded look: the reason sits in the first detail or two. */
        for (const cJSON *d = cJSON_IsArray(details) ? details->child : NULL; d && seen < 16; d = d->next, seen++) {
                const char *reason = ft_json_string(d, "reason");
                if (reason && strcmp(reason, "SERVICE_DISABLED") == 0)
                        ret->service_disabled = true;
        }
}

/* The canonical status of an HTTP code, for Google errors that carry only a number. */
static const char *status_of_code(long code)
{
        switch (code) {
        case 400: return "INVALID_ARGUMENT";
        case 401: return "UNAUTHENTICATED";
        case 403: return "PERMISSION_DENIED";
        case 404: return "NOT_FOUND";
        case 409: return "ABORTED";
        case 429: return "RESOURCE_EXHAUSTED";
        case 500: return "INTERNAL";
        case 503: return "UNAVAILABLE";
        case 504: return "DEADLINE_EXCEEDED";
        default: return NULL;
        }
}

struct explain {
        struct ft_strbuf *b;
        const struct ft_gcp_context *ctx;
        const struct ft_jwt *jwt;         /* ctx->subject, may be NULL */
        const struct gcp_error *err;
        long status;
        bool iam;                         /* the generateAccessToken step */
        const char *service;              /* "Google STS" or "IAM Credentials" */
        char lower[1024];                 /* Google's text in lower case, for keyword matching */
};

static bool has(const struct explain *x, const char *word)
{
        return strstr(x->lower, word) != NULL;
}

/* `word` standing alone (not inside a longer word), for short claim names such as "iat". */
static bool has_word(const struct explain *x, const char *word)
{
        size_t n = strlen(word);

        for (const char *p = strstr(x->lower, word); p; p = strstr(p + 1, word)) {
                bool left = p == x->lower || !ft_text_is_alnum((unsigned char)p[-1]);
                bool right = !ft_text_is_alnum((unsigned char)p[n]);
                if (left && right)
                        return true;
        }
        return false;
}

static void put_value(struct ft_strbuf *b, const char *s, const char *fallback)
{
        char shown[SHOW_VALUE_MAX + 5];

        if (!s || !*s)
                ft_strbuf_puts(b, fallback);
        else
                ft_strbuf_puts(b, ft_text_show(shown, sizeof(shown), s, strlen(s), SHOW_VALUE_MAX));
}

/* A value Google sent (an error code or status): shown with token-like strings removed. */
static void put_upstream(struct ft_strbuf *b, const char *s)
{
        char shown[SHOW_VALUE_MAX + 5];

        ft_strbuf_puts(b, ft_text_show_redacted(shown, sizeof(shown), s, strlen(s), 64));
}

static void put_audience(const struct explain *x)
{
        put_value(x->b, x->ctx->audience, "(the configured audience)");
}

static void put_sa(const struct explain *x)
{
        put_value(x->b, x->ctx->service_account, "the service account");
}

static void put_iss(const struct explain *x)
{
        put_value(x->b, x->jwt ? x->jwt->iss : NULL, "the token's iss");
}

static void put_sub(const struct explain *x)
{
        put_value(x->b, x->jwt ? x->jwt->sub : NULL, "the token's sub");
}

static void put_auds(const struct explain *x)
{
        size_t n = x->jwt ? x->jwt->n_aud : 0;

        if (n > FT_JWT_MAX_AUD)
                n = FT_JWT_MAX_AUD;
        if (n == 0) {
                ft_strbuf_puts(x->b, "the token's aud");
                return;
        }
        for (size_t i = 0; i < n && i < SHOW_AUDIENCES_MAX; i++) {
                if (i > 0)
                        ft_strbuf_puts(x->b, ", ");
                put_value(x->b, x->jwt->aud[i], "(empty)");
        }
        if (n > SHOW_AUDIENCES_MAX)
                ft_strbuf_printf(x->b, " and %zu more", n - SHOW_AUDIENCES_MAX);
}

static void put_time(struct ft_strbuf *b, int64_t t, const char *fallback)
{
        char text[21];

        /* Only years 1970-9999 have an RFC 3339 form. */
        if (t <= 0 || t > INT64_C(253402300799)) {
                ft_strbuf_puts(b, fallback);
                return;
        }
        ft_time_format_rfc3339(t, text);
        ft_strbuf_puts(b, text);
}

/*
 * principal://iam.googleapis.com/<pool>/subject/<sub>: the member a role
 * binding names for one federated identity, with google.subject mapped from
 * the token's sub as usual.
 */
static void put_principal(const struct explain *x)
{
        size_t pool_end;

        if (!x->ctx->audience || !audience_split(x->ctx->audience, &pool_end)) {
                ft_strbuf_puts(x->b, "the federated principal (principal://iam.googleapis.com/projects/NUMBER/"
                               "locations/global/workloadIdentityPools/POOL/subject/SUBJECT)");
                return;
        }
        ft_strbuf_puts(x->b, "principal://");
        ft_strbuf_append(x->b, x->ctx->audience + 2, pool_end - 2);
        ft_strbuf_puts(x->b, "/subject/");
        put_sub(x);
}

static bool alg_accepted(const struct ft_jwt *jwt)
{
        return !jwt || !jwt->alg || strcmp(jwt->alg, "RS256") == 0 || strcmp(jwt->alg, "ES256") == 0;
}

static bool expired_locally(const struct explain *x)
{
        return x->jwt && x->jwt->exp > 0 && x->ctx->now > 0 && x->jwt->exp <= x->ctx->now;
}

static bool from_future_locally(const struct explain *x)
{
        return x->jwt && x->jwt->iat > 0 && x->ctx->now > 0 && x->jwt->iat > x->ctx->now;
}

enum grant_cause { CAUSE_NONE, CAUSE_CONDITION, CAUSE_AUDIENCE, CAUSE_MAPPING, CAUSE_VERIFY, CAUSE_TIME };

/* What an invalid_grant is about, from the words of Google's description. */
static enum grant_cause grant_cause(const struct explain *x)
{
        if (has(x, "condition"))
                return CAUSE_CONDITION;
        if (has(x, "audience"))
                return CAUSE_AUDIENCE;
        if (has(x, "mapping") || has(x, "mapped") || has(x, "google.subject") || has(x, "attribute"))
                return CAUSE_MAPPING;
        if (has(x, "issuer") || has(x, "jwk") || has(x, "signature") || has(x, "key") || has_word(x, "kid") ||
            has(x, "discovery") || has(x, "openid") || has(x, "algorithm") || has_word(x, "alg") ||
            has(x, "certificate"))
                return CAUSE_VERIFY;
        if (has(x, "expir") || has(x, "stale") || has(x, "issued at") || has(x, "future") || has(x, "not yet") ||
            has(x, "clock") || has_word(x, "iat") || has_word(x, "exp") || has_word(x, "nbf"))
                return CAUSE_TIME;
        /* Google said nothing specific: what the token itself shows is the likeliest cause. */
        if (!alg_accepted(x->jwt))
                return CAUSE_VERIFY;
        if (expired_locally(x) || from_future_locally(x))
                return CAUSE_TIME;
        return CAUSE_NONE;
}

static void put_alg_advice(const struct explain *x)
{
        if (alg_accepted(x->jwt))
                return;
        ft_strbuf_puts(x->b, "; this token is signed ");
        put_value(x->b, x->jwt->alg, "?");
        /* ES384 is the one alternative AWS offers, and Google STS does not document accepting it. */
        ft_strbuf_puts(x->b, ", which Google does not accept: set signing_algorithm = RS256 for this token");
}

static enum ft_retry explain_time(const struct explain *x)
{
        struct ft_strbuf *b = x->b;

        ft_strbuf_puts(b, "Google STS refused the times of the token for provider ");
        put_audience(x);
        ft_strbuf_puts(b, ": it was issued at ");
        put_time(b, x->jwt ? x->jwt->iat : 0, "(unknown)");
        ft_strbuf_puts(b, " and expires at ");
        put_time(b, x->jwt ? x->jwt->exp : 0, "(unknown)");
        ft_strbuf_puts(b, ", and this host's clock read ");
        put_time(b, x->ctx->now, "(unknown)");
        if (expired_locally(x)) {
                ft_strbuf_puts(b, ": the token had expired before it was sent; a fresh token is requested");
                return FT_RETRY_NOW;
        }
        ft_strbuf_puts(b, ": Google needs iat in the past, exp in the future and less than 48 h after iat; "
                       "if this host's clock is off, fix its time synchronisation (chrony, systemd-timesyncd)");
        return FT_RETRY_SLOW;
}

static enum ft_retry explain_invalid_grant(const struct explain *x)
{
        struct ft_strbuf *b = x->b;

        switch (grant_cause(x)) {
        case CAUSE_CONDITION:
                ft_strbuf_puts(b, "Google STS rejected the token for provider ");
                put_audience(x);
                ft_strbuf_puts(b, ": its claims (iss ");
                put_iss(x);
                ft_strbuf_puts(b, ", sub ");
                put_sub(x);
                ft_strbuf_puts(b, ") do not satisfy the provider's attribute condition: change the condition, "
                               "or obtain the token with an AWS role it accepts");
                return FT_RETRY_SLOW;
        case CAUSE_AUDIENCE:
                ft_strbuf_puts(b, "Google STS rejected the token for provider ");
                put_audience(x);
                ft_strbuf_puts(b, ": its audience ");
                put_auds(x);
                ft_strbuf_puts(b, " is not among the provider's allowed audiences: add it, or request exactly "
                               "that audience from AWS");
                if (x->ctx->audience && audience_valid(x->ctx->audience) &&
                    strncmp(x->ctx->audience, "//iam.googleapis.com/projects/", 30) == 0) {
                        ft_strbuf_puts(b, " (a provider without allowed audiences accepts only https:");
                        put_audience(x);
                        ft_strbuf_puts(b, ")");
                }
                return FT_RETRY_SLOW;
        case CAUSE_MAPPING:
                ft_strbuf_puts(b, "Google STS could not apply the attribute mapping of provider ");
                put_audience(x);
                ft_strbuf_puts(b, " to the token (sub ");
                put_sub(x);
                if (x->jwt && x->jwt->sub)
                        ft_strbuf_printf(b, ", %zu bytes", strlen(x->jwt->sub));
                ft_strbuf_puts(b, "): the mapping may only use claims the token has and must yield a "
                               "google.subject of at most 127 bytes; fix the provider's attribute mapping");
                return FT_RETRY_SLOW;
        case CAUSE_VERIFY:
                ft_strbuf_puts(b, "Google STS could not verify the token for provider ");
                put_audience(x);
                ft_strbuf_puts(b, ": the provider's issuer must be ");
                put_iss(x);
                ft_strbuf_puts(b, " (Google reads its /.well-known/openid-configuration and the keys it lists) "
                               "and the token must be signed RS256 or ES256");
                put_alg_advice(x);
                return FT_RETRY_SLOW;
        case CAUSE_TIME:
                return explain_time(x);
        case CAUSE_NONE:
                break;
        }
        ft_strbuf_puts(b, "Google STS rejected the token for provider ");
        put_audience(x);
        ft_strbuf_puts(b, " (invalid_grant): check the provider's issuer (the token's is ");
        put_iss(x);
        ft_strbuf_puts(b, "), its allowed audiences (the token has ");
        put_auds(x);
        ft_strbuf_puts(b, ") and its attribute condition against the token's claims (sub ");
        put_sub(x);
        ft_strbuf_puts(b, ")");
        return FT_RETRY_SLOW;
}

/* An OAuth error from Google STS (RFC 6749 5.2, RFC 8693 2.2.2). */
static enum ft_retry explain_oauth(const struct explain *x)
{
        const char *e = x->err->error;
        struct ft_strbuf *b = x->b;

        if (strcmp(e, "invalid_grant") == 0)
                return explain_invalid_grant(x);
        if (strcmp(e, "invalid_target") == 0) {
                ft_strbuf_puts(b, "the workload identity pool or provider ");
                put_audience(x);
                ft_strbuf_puts(b, " does not exist, is disabled or was deleted: check the project number, pool "
                               "and provider ids in the configured audience, and that both are enabled");
                return FT_RETRY_SLOW;
        }
        if (strcmp(e, "invalid_request") == 0) {
                ft_strbuf_puts(b, "Google STS found the token exchange for provider ");
                put_audience(x);
                ft_strbuf_puts(b, " malformed: the audience must be the provider's full name "
                               "(//iam.googleapis.com/projects/NUMBER/...) and the subject token the AWS JWT");
                return FT_RETRY_SLOW;
        }
        if (strcmp(e, "invalid_scope") == 0) {
                ft_strbuf_puts(b, "Google STS refused the scope ");
                /* With impersonation, STS was asked for cloud-platform whatever the configuration says. */
                put_value(b, x->ctx->service_account ? FT_GCP_DEFAULT_SCOPE : x->ctx->scope, "requested");
                ft_strbuf_puts(b, ": request valid OAuth scopes such as " FT_GCP_DEFAULT_SCOPE);
                return FT_RETRY_SLOW;
        }
        if (strcmp(e, "unauthorized_client") == 0 || strcmp(e, "access_denied") == 0) {
                ft_strbuf_puts(b, "Google STS does not allow this token exchange for provider ");
                put_audience(x);
                ft_strbuf_puts(b, " (token iss ");
                put_iss(x);
                ft_strbuf_puts(b, ", sub ");
                put_sub(x);
                ft_strbuf_puts(b, "): check that the pool and provider are enabled and that the provider's "
                               "attribute condition admits this identity");
                return FT_RETRY_SLOW;
        }
        if (strcmp(e, "unsupported_grant_type") == 0 || strcmp(e, "unsupported_token_type") == 0) {
                ft_strbuf_puts(b, "the STS endpoint does not support a JWT token exchange: check that "
                               "sts_endpoint points at Google STS (" FT_GCP_DEFAULT_STS ")");
                return FT_RETRY_SLOW;
        }
        if (strcmp(e, "server_error") == 0 || strcmp(e, "temporarily_unavailable") == 0) {
                ft_strbuf_puts(b, "Google STS failed internally or is unavailable: retrying with backoff");
                return FT_RETRY_BACKOFF;
        }
        ft_strbuf_puts(b, "Google STS refused the token exchange for provider ");
        put_audience(x);
        ft_strbuf_puts(b, " with error ");
        put_upstream(b, e);
        ft_strbuf_printf(b, " (HTTP %ld)", x->status);
        return x->status == 429 || x->status >= 500 ? FT_RETRY_BACKOFF : FT_RETRY_SLOW;
}

static enum ft_retry explain_permission_denied(const struct explain *x)
{
        struct ft_strbuf *b = x->b;

        if (x->err->service_disabled || has(x, "has not been used") || has(x, "api has not been") ||
            has(x, "service_disabled")) {
                ft_strbuf_printf(b, "the %s API is not enabled in the project Google names: enable ",
                                 x->iam ? "IAM Service Account Credentials" : "Security Token Service");
                ft_strbuf_puts(b, x->iam ? "iamcredentials.googleapis.com" : "sts.googleapis.com");
                ft_strbuf_puts(b, " there (for workload identity federation, in the pool's project), then "
                               "wait a few minutes");
                return FT_RETRY_SLOW;
        }
        if (!x->iam) {
                ft_strbuf_puts(b, "Google STS denied the token exchange for provider ");
                put_audience(x);
                ft_strbuf_puts(b, ": check the provider's attribute condition and that the pool and provider "
                               "are enabled");
                return FT_RETRY_SLOW;
        }
        put_principal(x);
        ft_strbuf_puts(b, " needs roles/iam.workloadIdentityUser on ");
        put_sa(x);
        ft_strbuf_puts(b, " (or the service account does not exist): grant it, for example with gcloud iam "
                       "service-accounts add-iam-policy-binding ");
        put_sa(x);
        ft_strbuf_puts(b, " --role=roles/iam.workloadIdentityUser --member=");
        put_principal(x);
        ft_strbuf_puts(b, " (this assumes the provider maps google.subject = assertion.sub; a principalSet:// "
                       "member for a group of identities works too)");
        return FT_RETRY_SLOW;
}

static enum ft_retry explain_invalid_argument(const struct explain *x)
{
        struct ft_strbuf *b = x->b;

        if (x->iam && has(x, "lifetime")) {
                ft_strbuf_puts(b, "the requested token lifetime");
                if (x->ctx->lifetime > 0)
                        ft_strbuf_printf(b, " of %d s", x->ctx->lifetime);
                ft_strbuf_puts(b, " for ");
                put_sa(x);
                ft_strbuf_printf(b, " exceeds what the organization allows: lifetimes above %d s need the "
                                 "organization policy constraints/iam.allowServiceAccountCredentialLifetimeExtension "
                                 "to list this service account; have it extended, or configure lifetime = %d or "
                                 "less", GCP_LIFETIME_DEFAULT_MAX, GCP_LIFETIME_DEFAULT_MAX);
                return FT_RETRY_SLOW;
        }
        if (x->iam && has(x, "scope")) {
                ft_strbuf_puts(b, "IAM Credentials refused the scopes ");
                put_value(b, x->ctx->scope, FT_GCP_DEFAULT_SCOPE);
                ft_strbuf_puts(b, " for ");
                put_sa(x);
                ft_strbuf_puts(b, ": configure valid OAuth scope URLs");
                return FT_RETRY_SLOW;
        }
        if (x->iam) {
                ft_strbuf_puts(b, "IAM Credentials rejected the generateAccessToken request for ");
                put_sa(x);
                if (x->ctx->lifetime > 0)
                        ft_strbuf_printf(b, " (lifetime %d s)", x->ctx->lifetime);
                ft_strbuf_puts(b, ": check the service account email, scopes and lifetime");
                return FT_RETRY_SLOW;
        }
        ft_strbuf_puts(b, "Google STS rejected the token exchange for provider ");
        put_audience(x);
        ft_strbuf_puts(b, " as invalid: check the audience and scopes");
        return FT_RETRY_SLOW;
}

/* A Google API error {"error":{"code","message","status"}}, mostly from IAM Credentials. */
static enum ft_retry explain_google(const struct explain *x, const char *status)
{
        struct ft_strbuf *b = x->b;

        if (!status) {
                ft_strbuf_printf(b, "%s refused the request with HTTP %ld", x->service, x->status);
                return x->status == 429 || x->status >= 500 ? FT_RETRY_BACKOFF : FT_RETRY_SLOW;
        }
        if (strcmp(status, "PERMISSION_DENIED") == 0)
                return explain_permission_denied(x);
        if (strcmp(status, "INVALID_ARGUMENT") == 0)
                return explain_invalid_argument(x);
        if (strcmp(status, "NOT_FOUND") == 0 && x->iam) {
                ft_strbuf_puts(b, "service account ");
                put_sa(x);
                ft_strbuf_puts(b, " does not exist (or was deleted): check service_account, which must be the "
                               "full email NAME@PROJECT.iam.gserviceaccount.com");
                return FT_RETRY_SLOW;
        }
        if (strcmp(status, "FAILED_PRECONDITION") == 0 && x->iam) {
                ft_strbuf_puts(b, "IAM Credentials cannot issue tokens for ");
                put_sa(x);
                ft_strbuf_puts(b, " right now: the service account may be disabled; enable it");
                return FT_RETRY_SLOW;
        }
        if (strcmp(status, "UNAUTHENTICATED") == 0) {
                ft_strbuf_printf(b, "%s did not accept the ", x->service);
                ft_strbuf_puts(b, x->iam ? "federated access token from Google STS (it may have expired or be "
                                           "for another pool); a new exchange is made"
                                         : "request's credentials; retrying");
                return FT_RETRY_BACKOFF;
        }
        if (strcmp(status, "RESOURCE_EXHAUSTED") == 0) {
                ft_strbuf_printf(b, "%s quota is exhausted or requests are throttled: retrying with backoff; if "
                                 "this persists, request tokens less often", x->service);
                return FT_RETRY_BACKOFF;
        }
        if (strcmp(status, "UNAVAILABLE") == 0 || strcmp(status, "INTERNAL") == 0 ||
            strcmp(status, "DEADLINE_EXCEEDED") == 0 || strcmp(status, "ABORTED") == 0 ||
            strcmp(status, "UNKNOWN") == 0) {
                ft_strbuf_printf(b, "%s failed internally or is unavailable: retrying with backoff", x->service);
                return FT_RETRY_BACKOFF;
        }
        ft_strbuf_printf(b, "%s refused the request with ", x->service);
        put_upstream(b, status);
        ft_strbuf_printf(b, " (HTTP %ld)", x->status);
        if (x->iam) {
                ft_strbuf_puts(b, " for ");
                put_sa(x);
        }
        return x->status == 429 || x->status >= 500 ? FT_RETRY_BACKOFF : FT_RETRY_SLOW;
}

/* A sentence about the HTTP status alone, for bodies that carry no Google error. */
static enum ft_retry explain_status(const struct explain *x)
{
        struct ft_strbuf *b = x->b;
        long s = x->status;

        if (s == 429) {
                ft_strbuf_printf(b, "%s is throttling requests (HTTP 429): retrying with backoff", x->service);
                return FT_RETRY_BACKOFF;
        }
        if (s >= 500 && s <= 599) {
                ft_strbuf_printf(b, "%s is unavailable or failing (HTTP %ld): retrying with backoff", x->service,
                                 s);
                return FT_RETRY_BACKOFF;
        }
        if (s >= 300 && s <= 399) {
                ft_strbuf_printf(b, "%s answered with a redirect (HTTP %ld), which is not followed: configure "
                                 "the endpoint it points to", x->service, s);
                return FT_RETRY_SLOW;
        }
        ft_strbuf_printf(b, "%s refused the request with HTTP %ld and no Google error: check that the %s "
                         "endpoint points at Google and that no proxy answers in its place", x->service, s,
                         x->iam ? "iam" : "sts");
        return FT_RETRY_SLOW;
}

static void lower_copy(char *out, size_t size, const char *s)
{
        size_t i = 0;

        for (; s && s[i] && i + 1 < size; i++)
                out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
        out[i] = '\0';
}

void ft_gcp_explain_error(long status, const char *body, size_t len, const struct ft_gcp_context *ctx,
                          struct ft_diag *diag)
{
        static const struct ft_gcp_context no_context = { 0 };
        static const char oom_msg[] = "cannot explain the Google error: out of memory";
        struct gcp_error err = { 0 };
        struct ft_strbuf b = { 0 };
        struct explain x = { .b = &b, .err = &err, .status = status };
        char shown[SHOW_MESSAGE_MAX + 5];
        const char *upstream, *code;
        enum ft_retry retry;
        cJSON *root = NULL;

        if (!diag)
                return;
        ft_diag_clear(diag);
        x.ctx = ctx ? ctx : &no_context;
        x.jwt = x.ctx->subject;
        /* Error bodies hold no secret; a body beyond the cap is explained by its status alone. */
        if (body && len <= FT_GCP_MAX_BODY)
                (void)ft_json_parse_object(body, len, &root);
        if (root)
                error_from_json(root, &err);
        if (x.ctx->step)
                x.iam = strcmp(x.ctx->step, "iam") == 0;
        else
                x.iam = !err.error && (err.status || err.code);
        x.service = x.iam ? "IAM Credentials" : "Google STS";
        upstream = err.error ? err.description : err.message;
        lower_copy(x.lower, sizeof(x.lower), upstream);

        if (err.error)
                retry = explain_oauth(&x);
        else if (err.status || err.code)
                retry = explain_google(&x, err.status ? err.status : status_of_code(err.code));
        else
                retry = explain_status(&x);
        /* Whatever the body says, Google's overload and failure statuses are worth a retry. */
        if (status == 429 || (status >= 500 && status <= 599))
                retry = FT_RETRY_BACKOFF;
        if (upstream)
                ft_strbuf_printf(&b, "; Google says: \"%s\"",
                                 ft_text_show_redacted(shown, sizeof(shown), upstream, strlen(upstream),
                                                       SHOW_MESSAGE_MAX));

        if (b.oom || !b.p)
                ft_diag_put(diag, oom_msg, sizeof(oom_msg) - 1);
        else
                ft_diag_put(diag, b.p, b.len);
        code = err.error ? err.error : err.status;
        if (code)
                ft_text_show_redacted(diag->code, sizeof(diag->code), code, strlen(code), sizeof(diag->code) - 5);
        diag->retry = retry;
        diag->http_status = status;
        ft_strbuf_done(&b);
        cJSON_Delete(root);
}

/* ------------------------------------------------------------------------ */
/* external_account                                                         */

static bool external_account_fill(cJSON *root, const char *audience, const char *token_file,
                                   const char *sts_endpoint, const char *impersonation_url, int lifetime,
                                   const char *scope)
{
        cJSON *source, *format, *impersonation, *scopes;

        if (!cJSON_AddStringToObject(root, "type", "external_account") ||
            !cJSON_AddStringToObject(root, "audience", audience) ||
            !cJSON_AddStringToObject(root, "subject_token_type", GCP_TOKEN_TYPE_JWT) ||
            !cJSON_AddStringToObject(root, "token_url", sts_endpoint))
                return false;
        /* google-auth-library reads the file on every refresh and sends it untrimmed: it holds the JWT alone. */
        source = cJSON_AddObjectToObject(root, "credential_source");
        if (!source || !cJSON_AddStringToObject(source, "file", token_file))
                return false;
        format = cJSON_AddObjectToObject(source, "format");
        if (!format || !cJSON_AddStringToObject(format, "type", "text"))
                return false;
        if (impersonation_url) {
                if (!cJSON_AddStringToObject(root, "service_account_impersonation_url", impersonation_url))
                        return false;
                impersonation = cJSON_AddObjectToObject(root, "service_account_impersonation");
                if (!impersonation || !cJSON_AddNumberToObject(impersonation, "token_lifetime_seconds", lifetime))
                        return false;
        }
        /* Without "scopes" the libraries ask for cloud-platform, so that default is not written. */
        if (scope && strcmp(scope, FT_GCP_DEFAULT_SCOPE) != 0) {
                scopes = cJSON_AddArrayToObject(root, "scopes");
                if (!scopes || !add_scope_items(scopes, scope))
                        return false;
        }
        return true;
}

int ft_gcp_external_account_scoped(const char *audience, const char *token_file, const char *sts_endpoint,
                                   const char *iam_endpoint, const char *service_account, int lifetime,
                                   const char *scope, char **ret_json)
{
        _cleanup_free_ char *url = NULL;
        cJSON *root = NULL;
        char *text, *json;
        size_t n;
        int r;

        if (!ret_json || !audience_valid(audience) || !token_file_valid(token_file) || !endpoint_valid(sts_endpoint))
                return -EINVAL;
        if (scope && !scope_valid(scope))
                return -EINVAL;
        if (service_account) {
                if (!endpoint_valid(iam_endpoint) || !service_account_valid(service_account) ||
                    !lifetime_valid(lifetime))
                        return -EINVAL;
                r = impersonation_url(iam_endpoint, service_account, &url);
                if (r < 0)
                        return r;
        }
        root = cJSON_CreateObject();
        if (!root)
                return -ENOMEM;
        /* cJSON writes the strings, so a path with quotes or non-ASCII is escaped correctly. */
        text = external_account_fill(root, audience, token_file, sts_endpoint, url, lifetime, scope)
                       ? cJSON_Print(root)
                       : NULL;
        cJSON_Delete(root);
        if (!text)
                return -ENOMEM;
        /* A text file ends with a newline. */
        n = strlen(text);
        json = malloc(n + 2);
        if (json) {
                memcpy(json, text, n);
                memcpy(json + n, "\n", 2);
        }
        cJSON_free(text);
        if (!json)
                return -ENOMEM;
        *ret_json = json;
        return 0;
}

int ft_gcp_external_account(const char *audience, const char *token_file, const char *sts_endpoint,
                            const char *iam_endpoint, const char *service_account, int lifetime, char **ret_json)
{
        return ft_gcp_external_account_scoped(audience, token_file, sts_endpoint, iam_endpoint, service_account,
                                              lifetime, NULL, ret_json);
}
