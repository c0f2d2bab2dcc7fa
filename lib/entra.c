/* SPDX-License-Identifier: MIT */
#include "entra.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "json.h"
#include "text.h"
#include "timeutil.h"

#define ENTRA_FORM_TYPE "application/x-www-form-urlencoded;charset=utf-8"
#define ENTRA_TOKEN_PATH "/oauth2/v2.0/token"
#define ENTRA_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define ENTRA_FIC_AUDIENCE "api://AzureADTokenExchange"

/* Limits on what we send: far above any real value, low enough to keep a URL and a diagnosis sane. */
#define AUTHORITY_MAX 2048
#define DOMAIN_MAX 253
#define DOMAIN_LABEL_MAX 63
#define SCOPE_MAX 1024
#define BODY_MAX (FT_JWT_MAX_LEN + 8 * 1024)

/*
 * Lifetimes Entra ID may give an access token: about an hour normally, a day
 * with refresh_in (CAE). Ten years is a ceiling no real token reaches, yet it
 * keeps now + expires_in far from overflow and refuses nonsense.
 */
#define EXPIRES_IN_MAX (INT64_C(3650) * 86400)

/* AADSTS codes have up to seven digits; a number past nine digits is no code. */
#define ERROR_CODE_MAX INT64_C(999999999)

/*
 * How much of a value a diagnosis quotes. Claims (issuer, subject) may be
 * 600 characters; 200 shows every real one and keeps the sentence within
 * diag->msg; Entra ID's description is cut likewise, as it mostly repeats it.
 */
#define SHOW_VALUE_MAX 200
#define SHOW_DESCRIPTION_MAX 200
#define SHOW_ID_MAX 64

/* Entra ID's loop detection (AADSTS50196) blocks a client for minutes: wait at least this long. */
#define LOOP_RETRY_AFTER 300
/* A new federated credential takes minutes to reach every Entra ID front end: do not hammer it meanwhile. */
#define PROPAGATION_RETRY_AFTER 30
/* How far the issuer's times may lie ahead of the local clock before we call the clock off. */
#define CLOCK_SKEW 60

/* ------------------------------------------------------------------------ */
/* Text helpers                                                             */

static const char *show_str(char *buf, size_t size, const char *s)
{
        return ft_text_show(buf, size, s, strlen(s), SHOW_VALUE_MAX);
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* ------------------------------------------------------------------------ */
/* Request                                                                  */

/* 8-4-4-4-12 hex digits, either case: the shape of every tenant and client id. */
static bool is_guid(const char *s)
{
        static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == '-' ? s[i] != '-' : !ft_text_is_hex(s[i]))
                        return false;
        return s[sizeof(shape) - 1] == '\0';
}

/*
 * A DNS name of at least two labels (contoso.onmicrosoft.com), each 1..63
 * letters, digits or inner hyphens. The tenant becomes a path segment of
 * the token URL, so this also keeps '/', '?', '%' and ".." out of it.
 */
static bool is_domain(const char *s)
{
        size_t len = strlen(s), labels = 0;

        if (len == 0 || len > DOMAIN_MAX)
                return false;
        for (const char *p = s;;) {
                size_t n = strcspn(p, ".");

                if (n == 0 || n > DOMAIN_LABEL_MAX || p[0] == '-' || p[n - 1] == '-')
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!ft_text_is_alnum(p[i]) && p[i] != '-')
                                return false;
                labels++;
                if (p[n] == '\0')
                        break;
                p += n + 1;
        }
        return labels >= 2;
}

static int check_tenant(const char *tenant, struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 4];

        if (!tenant || !*tenant)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "no Entra ID tenant is configured: set tenant_id to the directory (tenant) id");
        if (strcasecmp(tenant, "common") == 0 || strcasecmp(tenant, "organizations") == 0 ||
            strcasecmp(tenant, "consumers") == 0)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID tenant \"%s\" is not a tenant but a multi-tenant alias, which the "
                                    "client-credentials grant does not accept: set tenant_id to the directory (tenant) "
                                    "id or its domain name", tenant);
        if (!is_guid(tenant) && !is_domain(tenant))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID tenant \"%s\" is neither a GUID nor a domain name such as "
                                    "contoso.onmicrosoft.com: set tenant_id to the directory (tenant) id",
                                    show_str(shown, sizeof(shown), tenant));
        return 0;
}

static int check_client_id(const char *client_id, struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 4];

        if (!client_id || !is_guid(client_id))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID client id \"%s\" is not a GUID: set client_id to the application "
                                    "(client) id of the app registration, or the client id of the user-assigned "
                                    "managed identity, that holds the federated credential",
                                    client_id ? show_str(shown, sizeof(shown), client_id) : "");
        return 0;
}

/*
 * One resource and "/.default": the only scope form the client-credentials
 * grant accepts. Several resources (space-separated) are AADSTS700022, so
 * they are refused here with the reason rather than sent.
 */
static int check_scope(const char *scope, struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 4];
        size_t len;

        if (!scope || !*scope)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "no Entra ID scope is configured: set scope to one resource followed by /.default, "
                                    "such as https://management.azure.com/.default");
        show_str(shown, sizeof(shown), scope);
        len = strlen(scope);
        if (strpbrk(scope, " \t"))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID scope \"%s\" names several resources: the client-credentials grant "
                                    "takes exactly one resource followed by /.default (AADSTS700022 otherwise); "
                                    "configure one token per resource", shown);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)scope[i] <= 0x20 || (unsigned char)scope[i] >= 0x7f)
                        return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                            "Entra ID scope \"%s\" contains a control or non-ASCII character: a "
                                            "resource identifier is a URI or a GUID", shown);
        if (len > SCOPE_MAX || len <= strlen("/.default") || !ends_with(scope, "/.default"))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID scope \"%s\" is not one resource followed by /.default, such as "
                                    "https://management.azure.com/.default: the client-credentials grant accepts no "
                                    "other form", shown);
        return 0;
}

/*
 * The assertion is the AWS JWT: three base64url parts, the last (the
 * signature) not empty, since Entra ID only accepts signed tokens. The
 * diagnosis identifies it by fingerprint only: it is a bearer credential.
 */
static int check_assertion(const char *assertion, struct ft_diag *diag)
{
        char fp[FT_FINGERPRINT_LEN];
        size_t len, parts = 1, part_len = 0;

        if (!assertion || !*assertion)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_BACKOFF,
                                    "no client assertion to send to Entra ID: the AWS JWT is missing");
        len = strlen(assertion);
        ft_fingerprint(assertion, len, fp);
        if (len > FT_JWT_MAX_LEN)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_BACKOFF,
                                    "the client assertion (%s) is %zu bytes long, more than the %d a JWT may have here",
                                    fp, len, FT_JWT_MAX_LEN);
        for (size_t i = 0; i <= len; i++) {
                if (i < len && ft_text_is_base64url(assertion[i])) {
                        part_len++;
                        continue;
                }
                if (part_len == 0 || (i < len && (assertion[i] != '.' || parts == 3)))
                        return ft_diag_fail(diag, -EINVAL, FT_RETRY_BACKOFF,
                                            "the client assertion (%s) is not a signed compact JWT (three non-empty "
                                            "base64url parts separated by dots): Entra ID would refuse it", fp);
                parts++;
                part_len = 0;
        }
        if (parts != 4)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_BACKOFF,
                                    "the client assertion (%s) is not a signed compact JWT (three non-empty base64url "
                                    "parts separated by dots): Entra ID would refuse it", fp);
        return 0;
}

/* "localhost", 127.0.0.0/8 or [::1]: the only hosts a test authority may reach over plain http. */
static bool is_loopback(const char *url, const struct ft_url *u)
{
        bool bracketed = u->host > url && u->host[-1] == '[';
        struct in6_addr a6;
        struct in_addr a4;
        char host[64];

        if (u->host_len >= sizeof(host))
                return false;
        memcpy(host, u->host, u->host_len);
        host[u->host_len] = '\0';
        if (bracketed)
                return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        if (strcasecmp(host, "localhost") == 0)
                return true;
        return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/*
 * The authority as AZURE_AUTHORITY_HOST gives it ("https://login.microsoftonline.com",
 * a sovereign cloud's host, or a path below one), trailing slashes dropped.
 * It must be https: the request carries a bearer credential. Plain http is
 * allowed to loopback only, for the test servers. A query, fragment or user
 * name has no place in it.
 */
static int check_authority(const char *authority, size_t *ret_len, struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 4], host[SHOW_VALUE_MAX + 4];
        size_t len = strlen(authority);
        bool https, http;
        struct ft_url u;

        show_str(shown, sizeof(shown), authority);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)authority[i] <= 0x20 || (unsigned char)authority[i] >= 0x7f)
                        return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                            "Entra ID authority \"%s\" contains a space, control or non-ASCII "
                                            "character: set it to a URL such as %s", shown, FT_ENTRA_DEFAULT_AUTHORITY);
        while (len > 0 && authority[len - 1] == '/')
                len--;
        if (len == 0 || len > AUTHORITY_MAX || strpbrk(authority, "?#") || ft_url_split(authority, &u) < 0)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID authority \"%s\" is not a URL of the form https://host[:port][/path] "
                                    "without user name, query or fragment, such as %s", shown,
                                    FT_ENTRA_DEFAULT_AUTHORITY);
        https = u.scheme_len == 5 && strncasecmp(u.scheme, "https", 5) == 0;
        http = u.scheme_len == 4 && strncasecmp(u.scheme, "http", 4) == 0;
        if (!https && !http)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID authority \"%s\" is not an https:// URL", shown);
        if (http && !is_loopback(authority, &u))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "Entra ID authority \"%s\" uses plain http to host \"%s\": the token request "
                                    "carries the AWS JWT, so it goes over https (plain http only to a loopback test "
                                    "server)", shown,
                                    ft_text_show(host, sizeof(host), u.host, u.host_len, SHOW_VALUE_MAX));
        *ret_len = len;
        return 0;
}

/*
 * MSAL encodes every form value with JavaScript's encodeURIComponent, which
 * leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) as they are and writes every other
 * byte of the UTF-8 text as %XX in upper case. Doing the same makes our body
 * byte-identical to the SDK's for every value, not only the usual ones.
 */
static void form_encode(struct ft_strbuf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (ft_text_is_alnum(*p) || strchr("-_.!~*'()", *p)) {
                        ft_strbuf_append(b, (const char *)p, 1);
                } else {
                        char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
                        ft_strbuf_append(b, e, 3);
                }
        }
}

int ft_entra_build(const struct ft_entra_params *p, struct ft_request **ret, struct ft_diag *diag)
{
        struct ft_strbuf url = { .max = AUTHORITY_MAX + DOMAIN_MAX + 64 };
        struct ft_strbuf body = { .max = BODY_MAX };
        const char *authority;
        size_t authority_len = 0;
        int r;

        if (!p || !ret)
                return -EINVAL;
        authority = p->authority && *p->authority ? p->authority : FT_ENTRA_DEFAULT_AUTHORITY;
        r = check_authority(authority, &authority_len, diag);
        if (r >= 0)
                r = check_tenant(p->tenant_id, diag);
        if (r >= 0)
                r = check_client_id(p->client_id, diag);
        if (r >= 0)
                r = check_scope(p->scope, diag);
        if (r >= 0)
                r = check_assertion(p->assertion, diag);
        if (r < 0)
                return r;

        ft_strbuf_append(&url, authority, authority_len);
        ft_strbuf_puts(&url, "/");
        ft_strbuf_puts(&url, p->tenant_id);
        ft_strbuf_puts(&url, ENTRA_TOKEN_PATH);

        /*
         * The five protocol fields in the order MSAL sends them, without its
         * telemetry fields. The body holds the assertion: ft_strbuf_done and
         * ft_request_free wipe their copies.
         */
        ft_strbuf_puts(&body, "client_id=");
        form_encode(&body, p->client_id);
        ft_strbuf_puts(&body, "&scope=");
        form_encode(&body, p->scope);
        ft_strbuf_puts(&body, "&grant_type=client_credentials&client_assertion=");
        form_encode(&body, p->assertion);
        ft_strbuf_puts(&body, "&client_assertion_type=");
        form_encode(&body, ENTRA_ASSERTION_TYPE);

        if (url.oom || body.oom)
                r = -ENOMEM;
        else
                r = ft_request_new_post(ret, url.p, ENTRA_FORM_TYPE, body.p, body.len);
        ft_strbuf_done(&url);
        ft_strbuf_done(&body);
        if (r < 0)
                return ft_diag_fail(diag, r, FT_RETRY_BACKOFF, "cannot build the Entra ID token request: %s",
                                    strerror(-r));
        return 0;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */

/* The member `name`, or NULL; *ret_dup is set when it appears more than once. */
static const cJSON *json_member(const cJSON *obj, const char *name, bool *ret_dup)
{
        const cJSON *found = NULL;

        for (const cJSON *it = obj->child; it; it = it->next) {
                if (!it->string || strcmp(it->string, name) != 0)
                        continue;
                if (found)
                        *ret_dup = true;
                else
                        found = it;
        }
        return found;
}

/*
 * Tokens must not linger in freed memory once the tree is gone. Only
 * access_token is expected; refresh_token and id_token are wiped too in case
 * an endpoint ever adds them. A body that fails to parse is freed by cJSON
 * unwiped: its hooks are process-global, which lib/ does not touch.
 */
static void json_free_secrets(cJSON *root)
{
        static const char *const secret_names[] = { "access_token", "refresh_token", "id_token" };

        ft_json_free_secrets(root, secret_names, FT_ELEMENTSOF(secret_names));
}

/*
 * A number of seconds as Entra ID sends it: a JSON number or a string of
 * decimal digits (MSAL accepts both). Whole seconds, 0..EXPIRES_IN_MAX;
 * -ERANGE outside, -EBADMSG for any other shape.
 */
static int json_seconds(const cJSON *it, int64_t *ret)
{
        int64_t v = 0;

        if (cJSON_IsNumber(it)) {
                double d = it->valuedouble;

                if (!isfinite(d) || d != floor(d))
                        return -EBADMSG;
                if (d < 0 || d > (double)EXPIRES_IN_MAX)
                        return -ERANGE;
                *ret = (int64_t)d;
                return 0;
        }
        if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring)
                return -EBADMSG;
        for (const char *p = it->valuestring; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EBADMSG;
                /* Stop accumulating once out of range, but keep checking the digits. */
                if (v <= EXPIRES_IN_MAX)
                        v = v * 10 + (*p - '0');
        }
        if (v > EXPIRES_IN_MAX)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* A bearer token goes into an Authorization header and files: visible ASCII only, no space. */
static bool token_text_ok(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return false;
        return true;
}

static int parse_token(const cJSON *root, int64_t now, struct ft_access_token **ret, struct ft_diag *diag)
{
        static const char *const unique[] = { "access_token", "token_type", "expires_in", "refresh_in" };
        const cJSON *access_token, *token_type, *expires_in, *refresh_in;
        struct ft_access_token *t;
        int64_t expires = 0, refresh = 0;
        char shown[SHOW_VALUE_MAX + 4];
        bool dup = false;
        int r;

        for (size_t i = 0; i < FT_ELEMENTSOF(unique); i++) {
                json_member(root, unique[i], &dup);
                if (dup)
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                            "Entra ID's token response names \"%s\" twice: refusing an ambiguous "
                                            "answer", unique[i]);
        }
        access_token = json_member(root, "access_token", &dup);
        token_type = json_member(root, "token_type", &dup);
        expires_in = json_member(root, "expires_in", &dup);
        refresh_in = json_member(root, "refresh_in", &dup);

        if (!cJSON_IsString(access_token) || !access_token->valuestring || !*access_token->valuestring)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "Entra ID's token response has no access_token string");
        if (!token_text_ok(access_token->valuestring))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "Entra ID's access_token contains spaces, control or non-ASCII characters: it "
                                    "cannot be used as a bearer token");
        /* MSAL defaults a missing token_type to Bearer; any other type (pop) needs proof we cannot give. */
        if (token_type && !(cJSON_IsString(token_type) && token_type->valuestring &&
                            strcasecmp(token_type->valuestring, "Bearer") == 0))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_SLOW,
                                    "Entra ID issued a token of type \"%s\", not a Bearer token: this client can only "
                                    "use Bearer tokens",
                                    cJSON_IsString(token_type) && token_type->valuestring
                                            ? show_str(shown, sizeof(shown), token_type->valuestring)
                                            : "(not a string)");
        if (!expires_in)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "Entra ID's token response has no expires_in");
        r = json_seconds(expires_in, &expires);
        if (r < 0 || expires < 1)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "Entra ID's expires_in is not a whole number of seconds between 1 and %" PRId64,
                                    EXPIRES_IN_MAX);
        /*
         * refresh_in only asks for an early refresh. One that is malformed,
         * zero or not before expiry says nothing usable: ignore it and
         * refresh on expires_in alone, as MSAL does.
         */
        if (refresh_in && (json_seconds(refresh_in, &refresh) < 0 || refresh < 1 || refresh >= expires))
                refresh = 0;
        if (now < 0 || now > INT64_MAX - EXPIRES_IN_MAX)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_BACKOFF, "the local clock (%" PRId64 ") is out of range",
                                    now);

        t = calloc(1, sizeof(*t));
        if (!t)
                return ft_diag_fail(diag, -ENOMEM, FT_RETRY_BACKOFF, "out of memory reading Entra ID's token");
        t->access_token_len = strlen(access_token->valuestring);
        t->access_token = ft_strndup(access_token->valuestring, t->access_token_len);
        t->token_type = strdup("Bearer");
        if (!t->access_token || !t->token_type) {
                ft_access_token_free(t);
                return ft_diag_fail(diag, -ENOMEM, FT_RETRY_BACKOFF, "out of memory reading Entra ID's token");
        }
        t->expires_at = now + expires;
        t->refresh_at = refresh ? now + refresh : 0;
        *ret = t;
        return 0;
}

int ft_entra_parse(const char *body, size_t len, int64_t now, struct ft_access_token **ret, struct ft_diag *diag)
{
        cJSON *root = NULL;
        int r;

        if (!body || !ret)
                return -EINVAL;
        if (len > FT_ENTRA_MAX_BODY)
                return ft_diag_fail(diag, -EMSGSIZE, FT_RETRY_BACKOFF,
                                    "Entra ID's token response is %zu bytes, more than the %d accepted", len,
                                    FT_ENTRA_MAX_BODY);
        if (ft_json_parse_object(body, len, &root) < 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "Entra ID's token response is not a JSON object: a proxy may have answered in its "
                                    "place");
        r = parse_token(root, now, ret, diag);
        json_free_secrets(root);
        return r;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

struct entra_error {
        const char *error;             /* OAuth class: invalid_client, ... */
        const char *description;
        const char *trace_id;
        const char *correlation_id;
        const char *timestamp;
        int64_t code;                  /* first of error_codes; 0 when none */
};

/* The fields of an error body; all NULL/0 when it is not a JSON object. Strings point into `root`. */
static cJSON *parse_error_doc(const char *body, size_t len, struct entra_error *ret)
{
        const cJSON *codes, *first;
        cJSON *root = NULL;

        if (!body || len > FT_ENTRA_MAX_BODY)
                return NULL;
        if (ft_json_parse_object(body, len, &root) < 0)
                return NULL;
        ret->error = ft_json_string(root, "error");
        ret->description = ft_json_string(root, "error_description");
        ret->trace_id = ft_json_string(root, "trace_id");
        ret->correlation_id = ft_json_string(root, "correlation_id");
        ret->timestamp = ft_json_string(root, "timestamp");
        codes = cJSON_GetObjectItemCaseSensitive(root, "error_codes");
        first = cJSON_IsArray(codes) ? codes->child : NULL;
        if (cJSON_IsNumber(first) && isfinite(first->valuedouble) && first->valuedouble == floor(first->valuedouble) &&
            first->valuedouble >= 1 && first->valuedouble <= (double)ERROR_CODE_MAX)
                ret->code = (int64_t)first->valuedouble;
        return root;
}

/* What the caller told us, with an empty context standing in for NULL. */
struct explain_args {
        const struct ft_entra_context *ctx;
        const struct ft_jwt *jwt;      /* may be NULL */
        const char *authority;
        long status;
};

static void put_quoted(struct ft_strbuf *b, const char *s)
{
        char shown[SHOW_VALUE_MAX + 4];

        ft_strbuf_puts(b, "\"");
        ft_strbuf_puts(b, show_str(shown, sizeof(shown), s));
        ft_strbuf_puts(b, "\"");
}

static void put_value_or(struct ft_strbuf *b, const char *s, const char *fallback)
{
        if (s && *s)
                put_quoted(b, s);
        else
                ft_strbuf_puts(b, fallback);
}

static void put_audiences(struct ft_strbuf *b, const struct ft_jwt *j)
{
        if (!j || j->n_aud == 0) {
                ft_strbuf_puts(b, j ? "(the assertion has none)" : "(unknown)");
                return;
        }
        for (size_t i = 0; i < j->n_aud && i < FT_JWT_MAX_AUD; i++) {
                if (i > 0)
                        ft_strbuf_puts(b, i + 1 == j->n_aud ? " or " : ", ");
                put_value_or(b, j->aud[i], "\"\"");
        }
}

static void put_time(struct ft_strbuf *b, int64_t t)
{
        char when[21];

        if (t == 0) {
                ft_strbuf_puts(b, "(absent)");
                return;
        }
        ft_time_format_rfc3339(t, when);
        ft_strbuf_puts(b, when);
}

static void put_placeholder(struct ft_strbuf *b, const char *name, size_t len, const void *arg)
{
        const struct explain_args *a = arg;
        const struct ft_entra_context *c = a->ctx;
        const struct ft_jwt *j = a->jwt;

#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
        if (IS("client")) {
                put_value_or(b, c->client_id, "(the configured client id)");
        } else if (IS("tenant")) {
                put_value_or(b, c->tenant_id, "(the configured tenant)");
        } else if (IS("scope")) {
                put_value_or(b, c->scope, "(the configured scope)");
        } else if (IS("authority")) {
                put_quoted(b, a->authority);
        } else if (IS("issuer")) {
                put_value_or(b, j ? j->iss : NULL, "(unknown)");
        } else if (IS("subject")) {
                put_value_or(b, j ? j->sub : NULL, "(unknown)");
        } else if (IS("audience")) {
                put_audiences(b, j);
        } else if (IS("window")) {
                if (!j) {
                        ft_strbuf_puts(b, "the assertion's times are unknown here");
                        return;
                }
                ft_strbuf_puts(b, "issued ");
                put_time(b, j->iat);
                if (j->nbf) {
                        ft_strbuf_puts(b, ", not before ");
                        put_time(b, j->nbf);
                }
                ft_strbuf_puts(b, ", expires ");
                put_time(b, j->exp);
        } else {
                /* A typo in the table shows as itself, and the unit test catches it. */
                ft_strbuf_append(b, name - 1, len + 2);
        }
#undef IS
}

#define FIC_NOT_FOUND                                                                                   \
        "Entra ID found no federated identity credential on application or managed identity {client} " \
        "in tenant {tenant} matching issuer {issuer}, subject {subject} and audience {audience}"
#define FIC_CREATE ": create one with exactly these values (case-sensitive)"

/*
 * Each AADSTS code with what it means and what to do, from Entra ID's error
 * reference and the federated-credential documentation (protocols.md 3.3).
 * Placeholders: {client} {tenant} {scope} {authority} {issuer} {subject}
 * {audience} {window}. Codes that need more than a template (70021,
 * 700024, 700027, 50196) get their extra sentence in explain_code().
 */
struct entra_explanation {
        int64_t code;
        enum ft_retry retry;
        const char *text;
};

static const struct entra_explanation entra_explanations[] = {
        { 70021, FT_RETRY_SLOW, FIC_NOT_FOUND FIC_CREATE },
        { 700211, FT_RETRY_SLOW,
          FIC_NOT_FOUND "; the issuer is what matched no credential (it must equal the token's iss exactly, "
          "without a trailing slash or white space)" FIC_CREATE },
        { 700212, FT_RETRY_SLOW,
          FIC_NOT_FOUND "; the audience is what matched no credential (the documented value, mandatory for "
          "managed identities, is " ENTRA_FIC_AUDIENCE ")" FIC_CREATE },
        { 700213, FT_RETRY_SLOW,
          FIC_NOT_FOUND "; the subject is what matched no credential (for an AWS token it is the IAM role ARN)"
          FIC_CREATE },
        { 7002137, FT_RETRY_SLOW,
          FIC_NOT_FOUND "; the subject is what matched no credential, compared case-sensitively since 2025"
          FIC_CREATE },
        { 7002138, FT_RETRY_SLOW,
          FIC_NOT_FOUND "; the subject is what matched no credential, compared case-sensitively since 2025"
          FIC_CREATE },
        { 700024, FT_RETRY_NOW,
          "Entra ID found the client assertion outside its validity window ({window})" },
        { 700016, FT_RETRY_SLOW,
          "Entra ID found no application or managed identity with client id {client} in tenant {tenant}: "
          "check client_id and tenant_id (the app must be registered in, or consented to, that tenant), or "
          "wait a few minutes if it was just created" },
        { 90002, FT_RETRY_SLOW,
          "Entra ID found no tenant {tenant} at authority {authority}: check tenant_id, and that the authority "
          "is the cloud the tenant lives in (login.microsoftonline.us for US Government, "
          "login.chinacloudapi.cn for China)" },
        { 50027, FT_RETRY_BACKOFF,
          "Entra ID found the client assertion an invalid JWT (its format, signature, issuer, audience or "
          "time range): issuer {issuer}, audience {audience}, {window}; retrying with backoff" },
        { 700027, FT_RETRY_SLOW,
          "Entra ID could not verify the client assertion's signature with the keys issuer {issuer} publishes "
          "(its /.well-known/openid-configuration and jwks_uri must be reachable from the internet, and Entra "
          "ID supports only RS256)" },
        { 7000218, FT_RETRY_SLOW,
          "Entra ID found no client_assertion in the token request for client {client}: this is a bug in "
          "fedtokend or a proxy rewrote the body; please report it" },
        { 900144, FT_RETRY_SLOW,
          "Entra ID found a required field missing from the token request for client {client}: this is a bug "
          "in fedtokend or a proxy rewrote the body; please report it" },
        { 70011, FT_RETRY_SLOW,
          "Entra ID refused scope {scope}: it must be one resource known to tenant {tenant} followed by "
          "/.default, such as https://management.azure.com/.default" },
        { 700022, FT_RETRY_SLOW,
          "Entra ID refused scope {scope}: the client-credentials grant takes exactly one resource followed by "
          "/.default, such as https://management.azure.com/.default" },
        { 700229, FT_RETRY_SLOW,
          "Entra ID refused the client assertion's token type (ForbiddenTokenType): for tokens issued by Entra "
          "ID itself only app-only tokens are accepted as federated assertions; issuer {issuer}" },
        { 50196, FT_RETRY_BACKOFF,
          "Entra ID detected a request loop: client {client} asked for the same token too often; tokens are "
          "cached until their refresh time, so this points to repeated restarts or several daemons sharing "
          "one client" },
        { 90024, FT_RETRY_BACKOFF,
          "Entra ID could not serve the request for client {client} (a transient failure): retrying with "
          "backoff" },
        { 50033, FT_RETRY_BACKOFF,
          "Entra ID could not serve the request for client {client} (a transient failure): retrying with "
          "backoff" },
};

static const struct entra_explanation *explanation_of(int64_t code)
{
        for (size_t i = 0; i < FT_ELEMENTSOF(entra_explanations); i++)
                if (entra_explanations[i].code == code)
                        return &entra_explanations[i];
        return NULL;
}

/* Where the assertion's time window stands against the local clock, and what that tells. */
static void explain_window(struct ft_strbuf *b, const struct explain_args *a)
{
        const struct ft_jwt *j = a->jwt;
        int64_t now = a->ctx->now, start;

        if (!j || now <= 0) {
                ft_strbuf_puts(b, ": retrying at once with a fresh token");
                return;
        }
        ft_strbuf_puts(b, " while the local clock says ");
        put_time(b, now);
        start = j->nbf > j->iat ? j->nbf : j->iat;
        if (j->exp && now >= j->exp) {
                ft_strbuf_printf(b, ": the token had expired %" PRId64 " s before it was used, so it was held too "
                                 "long (a cached or delayed token)", now - j->exp);
        } else if (start > now + CLOCK_SKEW) {
                ft_strbuf_printf(b, ": the token starts %" PRId64 " s in the future, so the local clock is behind "
                                 "AWS's and tokens that look valid here may already have expired; fix time "
                                 "synchronisation (chrony, systemd-timesyncd)", start - now);
        } else if (j->exp && j->exp - now < CLOCK_SKEW) {
                ft_strbuf_printf(b, ": the token had only %" PRId64 " s left when sent", j->exp - now);
        } else {
                ft_strbuf_puts(b, ": by the local clock the token was valid, so the local clock (or Entra ID's) "
                               "differs from AWS's; check time synchronisation (chrony, systemd-timesyncd)");
        }
        ft_strbuf_puts(b, "; retrying at once with a fresh token");
}

static enum ft_retry explain_known(struct ft_strbuf *b, const struct entra_explanation *e,
                                   const struct explain_args *a, int64_t *ret_retry_after)
{
        const struct ft_jwt *j = a->jwt;
        enum ft_retry retry = e->retry;

        ft_text_expand(b, e->text, put_placeholder, a);
        switch (e->code) {
        case 70021:
                if (a->ctx->recently_created) {
                        ft_strbuf_puts(b, "; new federated credentials take a few minutes to propagate: retrying");
                        *ret_retry_after = PROPAGATION_RETRY_AFTER;
                        retry = FT_RETRY_BACKOFF;
                } else {
                        ft_strbuf_puts(b, "; a credential created minutes ago may still be propagating");
                }
                break;
        case 700212:
                if (j && j->n_aud > 0 && !ft_jwt_has_audience(j, ENTRA_FIC_AUDIENCE))
                        ft_strbuf_puts(b, "; the token does not carry " ENTRA_FIC_AUDIENCE ": request it with that "
                                       "audience, or give the credential the token's audience");
                break;
        case 700024:
                explain_window(b, a);
                break;
        case 700027:
                if (j && j->alg && strcmp(j->alg, "RS256") != 0) {
                        ft_strbuf_puts(b, "; the assertion is signed with ");
                        put_quoted(b, j->alg);
                        ft_strbuf_puts(b, ": request RS256 tokens from STS");
                } else if (j && j->kid) {
                        ft_strbuf_puts(b, "; the assertion's key id is ");
                        put_quoted(b, j->kid);
                        ft_strbuf_puts(b, ": Entra ID may have cached an older key set, or keeps only the first "
                                       "100 keys");
                }
                break;
        case 50196:
                ft_strbuf_printf(b, "; waiting at least %d s", LOOP_RETRY_AFTER);
                *ret_retry_after = LOOP_RETRY_AFTER;
                break;
        default:
                break;
        }
        return retry;
}

static bool is_transient_status(long status)
{
        return status == 429 || (status >= 500 && status <= 599);
}

/* An AADSTS code this table does not know: say which, and let Entra ID's description speak. */
static enum ft_retry explain_unknown_code(struct ft_strbuf *b, const struct entra_error *err,
                                          const struct explain_args *a)
{
        ft_strbuf_puts(b, "Entra ID refused the token request for client ");
        put_placeholder(b, "client", 6, a);
        ft_strbuf_puts(b, " in tenant ");
        put_placeholder(b, "tenant", 6, a);
        ft_strbuf_printf(b, " with AADSTS%" PRId64, err->code);
        if (err->error) {
                ft_strbuf_puts(b, " (");
                put_quoted(b, err->error);
                ft_strbuf_puts(b, ")");
        }
        ft_strbuf_printf(b, ", HTTP %ld", a->status);
        if (is_transient_status(a->status) || (err->error && strcmp(err->error, "temporarily_unavailable") == 0))
                return FT_RETRY_BACKOFF;
        return FT_RETRY_SLOW;
}

/* An OAuth error without AADSTS code: speak of its class. */
static enum ft_retry explain_oauth_error(struct ft_strbuf *b, const struct entra_error *err,
                                         const struct explain_args *a)
{
        static const struct {
                const char *error;
                enum ft_retry retry;
                const char *text;
        } classes[] = {
                { "temporarily_unavailable", FT_RETRY_BACKOFF,
                  "Entra ID is temporarily unavailable: retrying with backoff" },
                { "server_error", FT_RETRY_BACKOFF, "Entra ID failed internally: retrying with backoff" },
                { "invalid_client", FT_RETRY_SLOW,
                  "Entra ID did not accept the client assertion for client {client} in tenant {tenant} "
                  "(issuer {issuer}, subject {subject}, audience {audience}): check the federated credential" },
                { "unauthorized_client", FT_RETRY_SLOW,
                  "Entra ID does not allow client {client} in tenant {tenant} to use the client-credentials grant" },
                { "invalid_grant", FT_RETRY_SLOW,
                  "Entra ID refused the grant for client {client} in tenant {tenant} (issuer {issuer}, subject "
                  "{subject})" },
                { "invalid_scope", FT_RETRY_SLOW,
                  "Entra ID refused scope {scope}: it must be one resource followed by /.default" },
                { "invalid_request", FT_RETRY_SLOW,
                  "Entra ID found the token request malformed: this is a bug in fedtokend or a proxy rewrote "
                  "the body; please report it" },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(classes); i++) {
                if (strcmp(classes[i].error, err->error) == 0) {
                        ft_text_expand(b, classes[i].text, put_placeholder, a);
                        return classes[i].retry;
                }
        }
        ft_strbuf_puts(b, "Entra ID refused the token request with error ");
        put_quoted(b, err->error);
        ft_strbuf_printf(b, " (HTTP %ld)", a->status);
        return is_transient_status(a->status) ? FT_RETRY_BACKOFF : FT_RETRY_SLOW;
}

/* A body that is no Entra ID error: the status is all there is. */
static enum ft_retry explain_status(struct ft_strbuf *b, const struct explain_args *a)
{
        long status = a->status;

        ft_strbuf_puts(b, "Entra ID at ");
        put_quoted(b, a->authority);
        if (status == 429) {
                ft_strbuf_puts(b, " is throttling requests (HTTP 429): retrying with backoff");
                return FT_RETRY_BACKOFF;
        }
        if (status >= 500 && status <= 599) {
                ft_strbuf_printf(b, " is unavailable or failing (HTTP %ld): retrying with backoff", status);
                return FT_RETRY_BACKOFF;
        }
        if (status >= 300 && status <= 399) {
                ft_strbuf_printf(b, " answered with a redirect (HTTP %ld), which is not followed: check the "
                                 "authority URL", status);
                return FT_RETRY_SLOW;
        }
        if (status == 404) {
                ft_strbuf_puts(b, " has no token endpoint for tenant ");
                put_placeholder(b, "tenant", 6, a);
                ft_strbuf_puts(b, " (HTTP 404): check the authority URL and tenant_id");
                return FT_RETRY_SLOW;
        }
        ft_strbuf_printf(b, " answered HTTP %ld without an Entra ID error: check that the authority URL points "
                         "at Entra ID and that no proxy answers in its place", status);
        return FT_RETRY_SLOW;
}

/*
 * Entra ID's own description, tamed: the "AADSTSnnn: " prefix (the code is
 * said already) and everything from "Trace ID:" on (the ids are quoted
 * separately) are dropped, control characters and runs of white space
 * become one space, and it is cut short. It names values, never a secret.
 */
static void put_description(struct ft_strbuf *b, const char *desc)
{
        /* A few bytes more than shown, so a description cut here still ends in "...". */
        char clean[SHOW_DESCRIPTION_MAX + 8], shown[SHOW_DESCRIPTION_MAX + 4];
        const char *cut = strstr(desc, "Trace ID:");
        size_t len = cut ? (size_t)(cut - desc) : strlen(desc), i = 0, o = 0;
        bool space = false;

        if (strncmp(desc, "AADSTS", 6) == 0) {
                size_t d = 6;

                while (d < len && desc[d] >= '0' && desc[d] <= '9')
                        d++;
                if (d > 6 && d < len && desc[d] == ':')
                        i = d + 1;
        }
        for (; i < len && o < sizeof(clean) - 1; i++) {
                unsigned char c = (unsigned char)desc[i];

                if (c <= 0x20 || c == 0x7f) {
                        space = o > 0;
                        continue;
                }
                if (space)
                        clean[o++] = ' ';
                space = false;
                if (o < sizeof(clean) - 1)
                        clean[o++] = (char)c;
        }
        if (o == 0)
                return;
        ft_strbuf_puts(b, "; Entra ID says: \"");
        ft_strbuf_puts(b, ft_text_show(shown, sizeof(shown), clean, o, SHOW_DESCRIPTION_MAX));
        ft_strbuf_puts(b, "\"");
}

static void put_ids(struct ft_strbuf *b, const struct entra_error *err)
{
        char shown[SHOW_ID_MAX + 4];
        const char *sep = " (";

        if (err->trace_id && *err->trace_id) {
                ft_strbuf_printf(b, "%strace id %s", sep,
                                 ft_text_show(shown, sizeof(shown), err->trace_id, strlen(err->trace_id), SHOW_ID_MAX));
                sep = ", ";
        }
        if (err->correlation_id && *err->correlation_id) {
                ft_strbuf_printf(b, "%scorrelation id %s", sep,
                                 ft_text_show(shown, sizeof(shown), err->correlation_id, strlen(err->correlation_id),
                                              SHOW_ID_MAX));
                sep = ", ";
        }
        if (err->timestamp && *err->timestamp) {
                ft_strbuf_printf(b, "%sat %s", sep,
                                 ft_text_show(shown, sizeof(shown), err->timestamp, strlen(err->timestamp),
                                              SHOW_ID_MAX));
                sep = ", ";
        }
        if (sep[0] == ',')
                ft_strbuf_puts(b, ")");
}

void ft_entra_explain_error(long status, const char *body, size_t len, const struct ft_entra_context *ctx,
                            struct ft_diag *diag)
{
        static const struct ft_entra_context no_context = { 0 };
        static const char oom_msg[] = "cannot explain the Entra ID error: out of memory";
        struct entra_error err = { 0 };
        struct explain_args a = { .ctx = ctx ? ctx : &no_context, .status = status };
        /* Far more than diag->msg holds: every value quoted is capped, so this is never reached. */
        struct ft_strbuf b = { .max = 64 * 1024 };
        const struct entra_explanation *e;
        int64_t retry_after = 0;
        enum ft_retry retry;
        cJSON *root;

        if (!diag)
                return;
        ft_diag_clear(diag);
        a.jwt = a.ctx->assertion;
        a.authority = a.ctx->authority && *a.ctx->authority ? a.ctx->authority : FT_ENTRA_DEFAULT_AUTHORITY;

        root = parse_error_doc(body, len, &err);
        if (err.code) {
                e = explanation_of(err.code);
                retry = e ? explain_known(&b, e, &a, &retry_after) : explain_unknown_code(&b, &err, &a);
                /* A known code's advice stands, but a server that says it is overloaded is retried. */
                if (retry == FT_RETRY_SLOW && is_transient_status(status))
                        retry = FT_RETRY_BACKOFF;
                snprintf(diag->code, sizeof(diag->code), "AADSTS%" PRId64, err.code);
        } else if (err.error && *err.error) {
                retry = explain_oauth_error(&b, &err, &a);
                ft_text_show(diag->code, sizeof(diag->code), err.error, strlen(err.error), 64);
        } else {
                retry = explain_status(&b, &a);
                snprintf(diag->code, sizeof(diag->code), "HTTP %ld", status);
        }
        if (err.description && *err.description)
                put_description(&b, err.description);
        put_ids(&b, &err);

        if (b.oom || !b.p)
                ft_diag_put(diag, oom_msg, sizeof(oom_msg) - 1);
        else
                ft_diag_put(diag, b.p, b.len);
        diag->retry = retry;
        diag->retry_after = retry_after;
        diag->http_status = status;
        ft_strbuf_done(&b);
        cJSON_Delete(root);
}
