/* SPDX-License-Identifier: MIT */
#include "awscreds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ini.h"
#include "json.h"
#include "text.h"
#include "timeutil.h"

struct ft_aws_creds *ft_aws_creds_new(void)
{
        return calloc(1, sizeof(struct ft_aws_creds));
}

static int dup_field(const char *s, char **ret)
{
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int ft_aws_creds_dup(const struct ft_aws_creds *c, struct ft_aws_creds **ret)
{
        struct ft_aws_creds *n;

        if (!c || !ret)
                return -EINVAL;
        n = ft_aws_creds_new();
        if (!n)
                return -ENOMEM;
        if (dup_field(c->access_key_id, &n->access_key_id) < 0 ||
            dup_field(c->secret_access_key, &n->secret_access_key) < 0 ||
            dup_field(c->session_token, &n->session_token) < 0 ||
            dup_field(c->role_arn, &n->role_arn) < 0 ||
            dup_field(c->account_id, &n->account_id) < 0) {
                ft_aws_creds_free(n);
                return -ENOMEM;
        }
        n->expiration = c->expiration;
        *ret = n;
        return 0;
}

void ft_aws_creds_free(struct ft_aws_creds *c)
{
        if (!c)
                return;
        ft_free_secret(c->access_key_id);
        ft_free_secret(c->secret_access_key);
        ft_free_secret(c->session_token);
        free(c->role_arn);
        free(c->account_id);
        ft_wipe(c, sizeof(*c));
        free(c);
}

/* --- provider request builders and parsers follow --- */

/* Credential answers are a few hundred bytes; anything near this is not one. */
#define CREDS_JSON_MAX (64 * 1024)
/* IMDS lists instance-profile role names, which IAM caps at 128 characters. */
#define ROLE_NAME_MAX 128
/* IMDSv2 tokens are about 60 bytes; this bounds what goes into a header. */
#define IMDS_TOKEN_MAX 4096
#define IMDS_TTL_MAX 21600
#define URL_MAX 2048

/* Key ids, secrets and tokens travel in HTTP headers: printable ASCII, no spaces. */
static bool is_credential_text(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
                        return false;
        return true;
}

/* Printable ASCII without spaces or backslashes, which URL parsers disagree about. */
static bool is_url_text(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '\\')
                        return false;
        return true;
}

/* `where` prefixes the name, e.g. "~/.aws/credentials: profile [x]: ". Never prints the value. */
static int check_credential_text(const char *value, const char *where, const char *name, struct ft_diag *diag)
{
        if (is_credential_text(value))
                return 0;
        return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                            "%s%s is empty or holds white space or control characters (a stray line break?)", where,
                            name);
}

static int creds_new(const char *access_key_id, const char *secret_access_key, const char *session_token,
                     int64_t expiration, struct ft_aws_creds **ret)
{
        struct ft_aws_creds *c = ft_aws_creds_new();

        if (!c)
                return -ENOMEM;
        c->access_key_id = strdup(access_key_id);
        c->secret_access_key = strdup(secret_access_key);
        c->session_token = session_token ? strdup(session_token) : NULL;
        if (!c->access_key_id || !c->secret_access_key || (session_token && !c->session_token)) {
                ft_aws_creds_free(c);
                return -ENOMEM;
        }
        c->expiration = expiration;
        *ret = c;
        return 0;
}

/* ---- environment ---- */

static const char *env_value(ft_getenv_fn env, void *ud, const char *name)
{
        const char *v = env(name, ud);

        /* The SDKs treat an empty variable as unset. */
        return v && *v ? v : NULL;
}

int ft_aws_creds_from_env(ft_getenv_fn env, void *ud, struct ft_aws_creds **ret, struct ft_diag *diag)
{
        const char *access_key_id, *secret_access_key, *session_token, *expiration;
        int64_t expires = 0;
        char shown[64];
        int r;

        if (!env || !ret)
                return -EINVAL;
        access_key_id = env_value(env, ud, "AWS_ACCESS_KEY_ID");
        secret_access_key = env_value(env, ud, "AWS_SECRET_ACCESS_KEY");
        if (!access_key_id && !secret_access_key)
                return -ENOENT;
        if (!access_key_id || !secret_access_key)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "%s is set but %s is not: set both for static keys, or neither to use another "
                                    "credential provider",
                                    access_key_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                                    access_key_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        session_token = env_value(env, ud, "AWS_SESSION_TOKEN");
        expiration = env_value(env, ud, "AWS_CREDENTIAL_EXPIRATION");

        r = check_credential_text(access_key_id, "", "AWS_ACCESS_KEY_ID", diag);
        if (r >= 0)
                r = check_credential_text(secret_access_key, "", "AWS_SECRET_ACCESS_KEY", diag);
        if (r >= 0 && session_token)
                r = check_credential_text(session_token, "", "AWS_SESSION_TOKEN", diag);
        if (r < 0)
                return r;
        /* An expiration at or before 1970 is a mistake, and 0 would mean "never expires". */
        if (expiration && (ft_time_parse_iso8601(expiration, strlen(expiration), &expires) < 0 || expires <= 0))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "AWS_CREDENTIAL_EXPIRATION \"%s\" is not an ISO 8601 time such as "
                                    "2025-12-01T18:00:00Z",
                                    ft_text_ascii(shown, sizeof(shown), expiration, strlen(expiration)));
        return creds_new(access_key_id, secret_access_key, session_token, expires, ret);
}

/* ---- shared credentials and config files ---- */

/*
 * Keys of profiles that get their credentials some other way (assumed role,
 * external process, SSO, web identity), which fedtokend does not implement.
 */
static const char *const unsupported_profile_keys[] = {
        "role_arn", "credential_process", "web_identity_token_file", "sso_session", "sso_start_url",
};

struct profile_parse {
        const char *profile;
        bool found;
        bool found_config_form;     /* "[profile NAME]" seen: the config file's syntax */
        char *access_key_id;
        char *secret_access_key;
        char *session_token;
        const char *unsupported;    /* the first of unsupported_profile_keys seen */
};

/* "[profile NAME]", the config file's name for every profile but "default". */
static bool section_is_config_profile(const char *section, const char *profile)
{
        if (strncmp(section, "profile", 7) != 0 || (section[7] != ' ' && section[7] != '\t'))
                return false;
        section += 7;
        while (*section == ' ' || *section == '\t')
                section++;
        return strcmp(section, profile) == 0;
}

/* A key given twice in a profile: the last one wins, as in the SDKs' parsers. */
static int replace_secret(char **field, const char *value, struct ft_diag *diag)
{
        char *v = strdup(value);

        if (!v)
                return ft_diag_fail(diag, -ENOMEM, FT_RETRY_BACKOFF, "out of memory");
        ft_free_secret(*field);
        *field = v;
        return 0;
}

static int profile_key(const char *section, const char *key, const char *value, unsigned line, void *userdata,
                       struct ft_diag *diag)
{
        struct profile_parse *p = userdata;

        if (strcmp(section, p->profile) != 0) {
                if (!key && section_is_config_profile(section, p->profile))
                        p->found_config_form = true;
                return 0;
        }
        p->found = true;
        if (!key)
                return 0;
        if (strcmp(key, "aws_access_key_id") == 0)
                return replace_secret(&p->access_key_id, value, diag);
        if (strcmp(key, "aws_secret_access_key") == 0)
                return replace_secret(&p->secret_access_key, value, diag);
        if (strcmp(key, "aws_session_token") == 0)
                return replace_secret(&p->session_token, value, diag);
        for (size_t i = 0; i < FT_ELEMENTSOF(unsupported_profile_keys) && !p->unsupported; i++)
                if (strcmp(key, unsupported_profile_keys[i]) == 0)
                        p->unsupported = unsupported_profile_keys[i];
        return 0;
}

/* What the parsed profile holds, as credentials or as a diagnosis. */
static int profile_result(const struct profile_parse *p, const char *filename, struct ft_aws_creds **ret,
                          struct ft_diag *diag)
{
        char shown[128], where[512];
        int r;

        ft_text_ascii(shown, sizeof(shown), p->profile, strlen(p->profile));
        if (!p->found)
                return ft_diag_fail(diag, -ENOENT, FT_RETRY_SLOW, "%s has no profile [%s]%s", filename, shown,
                                    p->found_config_form ? " (it has [profile NAME], the config file's form: the "
                                                           "credentials file names a profile without \"profile\")"
                                                         : "");
        /* The SDKs let role_arn win over static keys; using the keys would be another identity. */
        if (p->unsupported &&
            (strcmp(p->unsupported, "role_arn") == 0 || !p->access_key_id || !p->secret_access_key))
                return ft_diag_fail(diag, -EOPNOTSUPP, FT_RETRY_SLOW,
                                    "%s: profile [%s] gets its credentials through %s, which fedtokend does not "
                                    "support: put static keys (aws_access_key_id, aws_secret_access_key) in the "
                                    "profile, or use another provider (environment, web identity, container or IMDS)",
                                    filename, shown, p->unsupported);
        if (!p->access_key_id || !p->secret_access_key)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW, "%s: profile [%s] has no %s", filename, shown,
                                    p->access_key_id ? "aws_secret_access_key" : "aws_access_key_id");
        snprintf(where, sizeof(where), "%s: profile [%s]: ", filename, shown);
        r = check_credential_text(p->access_key_id, where, "aws_access_key_id", diag);
        if (r >= 0)
                r = check_credential_text(p->secret_access_key, where, "aws_secret_access_key", diag);
        if (r >= 0 && p->session_token)
                r = check_credential_text(p->session_token, where, "aws_session_token", diag);
        if (r < 0)
                return r;
        return creds_new(p->access_key_id, p->secret_access_key, p->session_token, 0, ret);
}

int ft_aws_creds_from_profile(const char *text, size_t len, const char *filename, const char *profile,
                              struct ft_aws_creds **ret, struct ft_diag *diag)
{
        struct profile_parse p = { .profile = profile };
        int r;

        if ((!text && len) || !filename || !profile || !ret)
                return -EINVAL;
        r = ft_ini_parse(text ? text : "", len, filename, profile_key, &p, diag);
        if (r >= 0)
                r = profile_result(&p, filename, ret, diag);
        ft_free_secret(p.access_key_id);
        ft_free_secret(p.secret_access_key);
        ft_free_secret(p.session_token);
        return r < 0 ? r : 0;
}

struct region_parse {
        const char *profile;
        char *region;
};

static int region_key(const char *section, const char *key, const char *value, unsigned line, void *userdata,
                      struct ft_diag *diag)
{
        struct region_parse *p = userdata;
        char *v;

        if (!key || strcmp(key, "region") != 0)
                return 0;
        if (!section_is_config_profile(section, p->profile) &&
            !(strcmp(p->profile, "default") == 0 && strcmp(section, "default") == 0))
                return 0;
        v = strdup(value);
        if (!v)
                return ft_diag_fail(diag, -ENOMEM, FT_RETRY_BACKOFF, "out of memory");
        free(p->region);
        p->region = v;
        return 0;
}

/* The region becomes part of a host name (sts.REGION.amazonaws.com): letters, digits, '-'. */
static bool is_region_name(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 64 || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

int ft_aws_config_region(const char *text, size_t len, const char *profile, char **ret)
{
        struct region_parse p = { .profile = profile };
        struct ft_diag diag = { 0 };
        int r;

        if ((!text && len) || !profile || !ret)
                return -EINVAL;
        r = ft_ini_parse(text ? text : "", len, "config", region_key, &p, &diag);
        if (r >= 0 && (!p.region || !*p.region))
                r = -ENOENT;
        else if (r >= 0 && !is_region_name(p.region))
                r = -EINVAL;
        if (r < 0) {
                free(p.region);
                return r;
        }
        *ret = p.region;
        return 0;
}

/* ---- credentials JSON (IMDS, container, Pod Identity) ---- */

/* The credential strings must not linger in freed memory once the tree is gone. */
static void json_free_secret(cJSON *root)
{
        static const char *const secret_names[] = { "AccessKeyId", "SecretAccessKey", "Token" };

        ft_json_free_secrets(root, secret_names, FT_ELEMENTSOF(secret_names));
}

/* An optional non-secret string (RoleArn, AccountId): kept when it is a sane one, else ignored. */
static int json_optional_copy(const cJSON *root, const char *name, char **ret)
{
        const char *s = ft_json_string(root, name);

        if (!s || !*s || strlen(s) > 2048 || !is_credential_text(s))
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* A {"Code": ..., "Message": ...} answer, or Code other than "Success": the endpoint's own refusal. */
static int explain_refusal(const cJSON *root, struct ft_diag *diag)
{
        const char *code = ft_json_string(root, "Code"), *message = ft_json_string(root, "Message");
        char shown_code[96], shown_message[512];

        ft_text_ascii(shown_message, sizeof(shown_message), message ? message : "", message ? strlen(message) : 0);
        if (!code)
                return ft_diag_fail(diag, -EACCES, FT_RETRY_SLOW,
                                    "the credentials endpoint answered without credentials: %s", shown_message);
        ft_text_ascii(shown_code, sizeof(shown_code), code, strlen(code));
        if (diag)
                snprintf(diag->code, sizeof(diag->code), "%s", shown_code);
        return ft_diag_fail(diag, -EACCES, FT_RETRY_SLOW,
                            "the credentials endpoint answered Code \"%s\"%s%s", shown_code, message ? ": " : "",
                            shown_message);
}

static int creds_from_json(const cJSON *root, struct ft_aws_creds **ret, struct ft_diag *diag)
{
        static const char *const required[] = { "AccessKeyId", "SecretAccessKey", "Token", "Expiration" };
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "Code");
        const char *where = "the credentials answer's ";
        const char *expiration;
        struct ft_aws_creds *c = NULL;
        int64_t expires;
        char shown[64];
        int r;

        if (code && !cJSON_IsString(code))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the credentials answer's Code is not a string");
        if (code && strcmp(code->valuestring, "Success") != 0)
                return explain_refusal(root, diag);
        if (!cJSON_GetObjectItemCaseSensitive(root, "AccessKeyId") && ft_json_string(root, "Message"))
                return explain_refusal(root, diag);
        for (size_t i = 0; i < FT_ELEMENTSOF(required); i++)
                if (!ft_json_string(root, required[i]))
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the credentials answer has no %s string",
                                            required[i]);
        r = check_credential_text(ft_json_string(root, "AccessKeyId"), where, "AccessKeyId", diag);
        if (r >= 0)
                r = check_credential_text(ft_json_string(root, "SecretAccessKey"), where, "SecretAccessKey", diag);
        if (r >= 0)
                r = check_credential_text(ft_json_string(root, "Token"), where, "Token", diag);
        if (r < 0)
                return -EBADMSG;
        expiration = ft_json_string(root, "Expiration");
        if (ft_time_parse_iso8601(expiration, strlen(expiration), &expires) < 0 || expires <= 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the credentials answer's Expiration \"%s\" is not an RFC 3339 time",
                                    ft_text_ascii(shown, sizeof(shown), expiration, strlen(expiration)));
        r = creds_new(ft_json_string(root, "AccessKeyId"), ft_json_string(root, "SecretAccessKey"),
                      ft_json_string(root, "Token"), expires, &c);
        if (r >= 0)
                r = json_optional_copy(root, "RoleArn", &c->role_arn);
        if (r >= 0)
                r = json_optional_copy(root, "AccountId", &c->account_id);
        if (r < 0) {
                ft_aws_creds_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int ft_aws_creds_parse_json(const char *body, size_t len, struct ft_aws_creds **ret, struct ft_diag *diag)
{
        cJSON *root = NULL;
        int r;

        if ((!body && len) || !ret)
                return -EINVAL;
        if (len > CREDS_JSON_MAX)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "the credentials answer is %zu bytes, more than the %d a credentials document "
                                    "can be", len, CREDS_JSON_MAX);
        if (ft_json_parse_object(body, len, &root) < 0)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF, "the credentials answer is not a JSON object");
        r = creds_from_json(root, ret, diag);
        json_free_secret(root);
        return r;
}

/* ---- IMDSv2 ---- */

static bool scheme_is(const struct ft_url *u, const char *scheme)
{
        return u->scheme_len == strlen(scheme) && strncasecmp(u->scheme, scheme, u->scheme_len) == 0;
}

/*
 * The length of the endpoint's "scheme://host[:port]" part. Every IMDS path
 * is absolute, so an endpoint with a path, query or fragment is refused
 * rather than guessed at; one trailing slash is fine.
 */
static int imds_base_len(const char *endpoint, size_t *ret_len)
{
        const char *rest;
        struct ft_url u;

        if (!endpoint || !is_url_text(endpoint) || strlen(endpoint) > URL_MAX || ft_url_split(endpoint, &u) < 0)
                return -EINVAL;
        if (!scheme_is(&u, "http") && !scheme_is(&u, "https"))
                return -EINVAL;
        rest = strstr(endpoint, "://") + 3;
        rest += strcspn(rest, "/?#");
        if (*rest && strcmp(rest, "/") != 0)
                return -EINVAL;
        *ret_len = (size_t)(rest - endpoint);
        return 0;
}

/* One path segment: RFC 3986 pchar characters kept, everything else percent-encoded. */
static void append_path_segment(struct ft_strbuf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        static const char keep[] = "-._~!$&'()*+,;=:@";

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    strchr(keep, c)) {
                        ft_strbuf_append(b, s, 1);
                } else {
                        char e[3] = { '%', hex[c >> 4], hex[c & 15] };
                        ft_strbuf_append(b, e, 3);
                }
        }
}

static int imds_request(const char *method, const char *endpoint, const char *path, const char *role,
                        const char *token, struct ft_request **ret)
{
        struct ft_strbuf url = { .max = URL_MAX + 512 };
        struct ft_request *req = NULL;
        size_t base_len;
        char *s;
        int r;

        r = imds_base_len(endpoint, &base_len);
        if (r < 0)
                return r;
        ft_strbuf_append(&url, endpoint, base_len);
        ft_strbuf_puts(&url, path);
        if (role)
                append_path_segment(&url, role);
        s = ft_strbuf_steal(&url);
        if (!s)
                return -ENOMEM;
        r = ft_request_new(&req, method, s);
        free(s);
        if (r < 0)
                return r;
        if (token)
                r = ft_request_add_header(req, "x-aws-ec2-metadata-token", token);
        if (r < 0) {
                ft_request_free(req);
                return r;
        }
        *ret = req;
        return 0;
}

static bool is_imds_token(const char *token)
{
        return token && strlen(token) <= IMDS_TOKEN_MAX && is_credential_text(token);
}

int ft_imds_build_token(const char *endpoint, int ttl, struct ft_request **ret)
{
        struct ft_request *req = NULL;
        char ttl_text[16];
        int r;

        if (!ret || ttl < 1 || ttl > IMDS_TTL_MAX)
                return -EINVAL;
        r = imds_request("PUT", endpoint, "/latest/api/token", NULL, NULL, &req);
        if (r < 0)
                return r;
        snprintf(ttl_text, sizeof(ttl_text), "%d", ttl);
        r = ft_request_add_header(req, "x-aws-ec2-metadata-token-ttl-seconds", ttl_text);
        /* An empty body, so the PUT goes out with Content-Length: 0 as IMDS expects. */
        if (r >= 0)
                r = ft_request_set_body(req, "", 0);
        if (r < 0) {
                ft_request_free(req);
                return r;
        }
        *ret = req;
        return 0;
}

int ft_imds_build_role(const char *endpoint, const char *token, struct ft_request **ret)
{
        if (!ret || !is_imds_token(token))
                return -EINVAL;
        return imds_request("GET", endpoint, "/latest/meta-data/iam/security-credentials/", NULL, token, ret);
}

int ft_imds_build_creds(const char *endpoint, const char *token, const char *role, struct ft_request **ret)
{
        if (!ret || !is_imds_token(token) || !role || !*role || strlen(role) > ROLE_NAME_MAX)
                return -EINVAL;
        /* The role is one path segment: no '/', no dot segments, nothing that ends a line. */
        if (strchr(role, '/') || strcmp(role, ".") == 0 || strcmp(role, "..") == 0)
                return -EINVAL;
        for (const char *p = role; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return -EINVAL;
        return imds_request("GET", endpoint, "/latest/meta-data/iam/security-credentials/", role, token, ret);
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* An IAM role name: [\w+=,.@-]{1,128}. */
static bool is_role_name(const char *s, size_t n)
{
        if (n < 1 || n > ROLE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      (c && strchr("_+=,.@-", c))))
                        return false;
        }
        return true;
}

int ft_imds_parse_role(const char *body, size_t len, char **ret, struct ft_diag *diag)
{
        size_t pos = 0;
        char shown[64];

        if ((!body && len) || !ret)
                return -EINVAL;
        while (pos < len) {
                const char *nl = memchr(body + pos, '\n', len - pos);
                size_t start = pos, end = nl ? (size_t)(nl - body) : len;

                pos = end + 1;
                while (start < end && is_blank(body[start]))
                        start++;
                while (end > start && is_blank(body[end - 1]))
                        end--;
                if (start == end)
                        continue;
                if (!is_role_name(body + start, end - start))
                        return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                            "the IMDS role listing does not start with an IAM role name (\"%s\")",
                                            ft_text_ascii(shown, sizeof(shown), body + start, end - start));
                *ret = ft_strndup(body + start, end - start);
                return *ret ? 0 : -ENOMEM;
        }
        return ft_diag_fail(diag, -ENOENT, FT_RETRY_SLOW,
                            "IMDS lists no IAM role: attach an instance profile with a role to this instance");
}

int ft_imds_parse_token(const char *body, size_t len, char **ret, struct ft_diag *diag)
{
        size_t start = 0, end = len;
        char *token;

        if ((!body && len) || !ret)
                return -EINVAL;
        while (start < end && is_blank(body[start]))
                start++;
        while (end > start && is_blank(body[end - 1]))
                end--;
        if (start == end)
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "IMDS answered the token request with an empty body");
        if (end - start > IMDS_TOKEN_MAX || memchr(body + start, '\0', end - start))
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "IMDS answered the token request with %zu bytes that are not a token", end - start);
        token = ft_strndup(body + start, end - start);
        if (!token)
                return -ENOMEM;
        if (!is_credential_text(token)) {
                ft_free_secret(token);
                return ft_diag_fail(diag, -EBADMSG, FT_RETRY_BACKOFF,
                                    "IMDS answered the token request with text that is not a token (white space or "
                                    "control characters inside)");
        }
        *ret = token;
        return 0;
}

void ft_imds_explain_status(long status, const char *step, struct ft_diag *diag)
{
        bool token_step, role_step;

        if (!diag)
                return;
        if (!step)
                step = "metadata";
        token_step = strcmp(step, "token") == 0;
        role_step = strcmp(step, "role") == 0;
        diag->http_status = status;
        diag->code[0] = '\0';
        if (status == 400)
                ft_diag_fail(diag, 0, FT_RETRY_SLOW,
                             "IMDS answered 400 to the %s request: the token request was malformed (the TTL header "
                             "must be 1 to 21600 seconds)", step);
        else if (status == 401)
                ft_diag_fail(diag, 0, FT_RETRY_NOW,
                             "IMDS answered 401 to the %s request: the IMDSv2 token is missing, invalid or expired; "
                             "getting a new token", step);
        else if (status == 403 && token_step)
                ft_diag_fail(diag, 0, FT_RETRY_SLOW,
                             "IMDS answered 403 to the token request: the instance metadata service is disabled "
                             "(HttpEndpoint), or the PUT was refused because it carried X-Forwarded-For or came "
                             "through a proxy. When fedtokend runs in a container, raise the instance's "
                             "HttpPutResponseHopLimit to 2 (aws ec2 modify-instance-metadata-options)");
        else if (status == 403)
                ft_diag_fail(diag, 0, FT_RETRY_SLOW,
                             "IMDS answered 403 to the %s request: access to instance metadata is disabled or not "
                             "allowed for this instance", step);
        else if (status == 404 && role_step)
                ft_diag_fail(diag, 0, FT_RETRY_SLOW,
                             "IMDS answered 404 to the role request: no IAM instance profile is attached to this "
                             "instance; attach one (aws ec2 associate-iam-instance-profile)");
        else if (status == 404 && token_step)
                ft_diag_fail(diag, 0, FT_RETRY_SLOW,
                             "IMDS answered 404 to the token request: this endpoint does not offer IMDSv2; check "
                             "AWS_EC2_METADATA_SERVICE_ENDPOINT");
        else if (status == 404)
                ft_diag_fail(diag, 0, FT_RETRY_SLOW,
                             "IMDS answered 404 to the %s request: the instance profile's role has no credentials "
                             "(was the instance profile changed? the role is looked up again)", step);
        else if (status == 429)
                ft_diag_fail(diag, 0, FT_RETRY_BACKOFF,
                             "IMDS answered 429 to the %s request: it throttles this instance; backing off", step);
        else if (status >= 500 && status <= 599)
                ft_diag_fail(diag, 0, FT_RETRY_BACKOFF, "IMDS answered %ld to the %s request: a server error; retrying",
                             status, step);
        else if (status >= 400 && status <= 499)
                ft_diag_fail(diag, 0, FT_RETRY_SLOW, "IMDS refused the %s request with HTTP status %ld", step, status);
        else
                ft_diag_fail(diag, 0, FT_RETRY_BACKOFF, "IMDS answered the %s request with unexpected HTTP status %ld",
                             step, status);
}

/* ---- container provider and the plain-http rule ---- */

/*
 * The hosts to which the AWS SDKs send credential requests over plain http:
 * loopback, the ECS and EKS Pod Identity agents and, for `imds`, IMDS. Hosts
 * are matched as parsed addresses, so "127.0.0.1.evil.com" or "[::2]" never
 * pass; a name other than "localhost" never does either.
 */
static bool http_host_allowed(const char *url, const struct ft_url *u, bool imds)
{
        static const uint8_t eks_v6[16] = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23 };
        static const uint8_t imds_v6[16] = { 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 };
        bool bracketed = u->host > url && u->host[-1] == '[';
        struct in6_addr a6;
        struct in_addr a4;
        char host[64];
        uint32_t ip;

        if (u->host_len >= sizeof(host))
                return false;
        memcpy(host, u->host, u->host_len);
        host[u->host_len] = '\0';
        if (bracketed) {
                if (inet_pton(AF_INET6, host, &a6) != 1)
                        return false;
                return IN6_IS_ADDR_LOOPBACK(&a6) || memcmp(&a6, eks_v6, 16) == 0 ||
                       (imds && memcmp(&a6, imds_v6, 16) == 0);
        }
        if (strcasecmp(host, "localhost") == 0)
                return true;
        if (inet_pton(AF_INET, host, &a4) != 1)
                return false;
        ip = ntohl(a4.s_addr);
        return (ip >> 24) == 127 ||
               ip == 0xa9feaa02 ||              /* 169.254.170.2, ECS */
               ip == 0xa9feaa17 ||              /* 169.254.170.23, EKS Pod Identity */
               (imds && ip == 0xa9fea9fe);      /* 169.254.169.254, IMDS */
}

/* `what` names where the URL came from, for the diagnosis. */
static int check_container_url(const char *url, const char *what, struct ft_diag *diag)
{
        char shown[256], host[128];
        struct ft_url u;

        ft_text_ascii(shown, sizeof(shown), url, strlen(url));
        if (!is_url_text(url) || strlen(url) > URL_MAX || ft_url_split(url, &u) < 0)
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                    "%s \"%s\" is not a usable URL: it must be scheme://host[:port]/path, without a "
                                    "user name, spaces or control characters", what, shown);
        if (scheme_is(&u, "https"))
                return 0;
        if (!scheme_is(&u, "http"))
                return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW, "%s \"%s\" must be an https:// or http:// URL", what,
                                    shown);
        if (http_host_allowed(url, &u, false))
                return 0;
        return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                            "%s \"%s\": plain http is allowed only to loopback (127.0.0.0/8, localhost, [::1]), "
                            "169.254.170.2 (ECS) and 169.254.170.23 or [fd00:ec2::23] (EKS Pod Identity), as in the "
                            "AWS SDKs; host \"%s\" is none of these: use https",
                            what, shown, ft_text_ascii(host, sizeof(host), u.host, u.host_len));
}

int ft_container_url(const char *relative_uri, const char *full_uri, char **ret, struct ft_diag *diag)
{
        struct ft_strbuf b = { .max = URL_MAX + 64 };
        char shown[256], *url;
        int r;

        if (!ret)
                return -EINVAL;
        /* RELATIVE_URI wins over FULL_URI, as in every AWS SDK. */
        if (relative_uri && *relative_uri) {
                if (relative_uri[0] != '/' || !is_url_text(relative_uri) || strlen(relative_uri) > URL_MAX)
                        return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \"%s\" must be a path starting "
                                            "with '/', without spaces or control characters",
                                            ft_text_ascii(shown, sizeof(shown), relative_uri, strlen(relative_uri)));
                ft_strbuf_puts(&b, FT_ECS_CONTAINER_HOST);
                ft_strbuf_puts(&b, relative_uri);
                url = ft_strbuf_steal(&b);
                if (!url)
                        return -ENOMEM;
                r = check_container_url(url, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", diag);
                if (r < 0) {
                        free(url);
                        return r;
                }
                *ret = url;
                return 0;
        }
        if (!full_uri || !*full_uri)
                return -ENOENT;
        r = check_container_url(full_uri, "AWS_CONTAINER_CREDENTIALS_FULL_URI", diag);
        if (r < 0)
                return r;
        url = strdup(full_uri);
        if (!url)
                return -ENOMEM;
        *ret = url;
        return 0;
}

int ft_container_build(const char *url, const char *authorization, struct ft_request **ret, struct ft_diag *diag)
{
        struct ft_request *req = NULL;
        int r;

        if (!url || !ret)
                return -EINVAL;
        r = check_container_url(url, "the container credentials URL", diag);
        if (r < 0)
                return r;
        /* Like the SDKs, send the token exactly as given, and refuse rather than trim a line break. */
        for (const char *p = authorization; p && *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                        return ft_diag_fail(diag, -EINVAL, FT_RETRY_SLOW,
                                            "the container authorization token (AWS_CONTAINER_AUTHORIZATION_TOKEN, or "
                                            "the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names) contains a line "
                                            "break or control character, which the AWS SDKs refuse too: write it "
                                            "without a trailing newline");
        r = ft_request_new(&req, "GET", url);
        if (r < 0)
                return r;
        if (authorization && *authorization)
                r = ft_request_add_header(req, "Authorization", authorization);
        if (r < 0) {
                ft_request_free(req);
                return r;
        }
        *ret = req;
        return 0;
}

bool ft_aws_http_allowed(const char *url)
{
        struct ft_url u;

        if (!url || !is_url_text(url) || strlen(url) > URL_MAX || ft_url_split(url, &u) < 0)
                return false;
        if (scheme_is(&u, "https"))
                return true;
        return scheme_is(&u, "http") && http_host_allowed(url, &u, true);
}
