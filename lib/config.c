/* SPDX-License-Identifier: MIT */
/*
 * config.c: fedtokend.conf, read from one table of keys per section kind.
 *
 * Each key has a type, checks and a default written as it would appear in
 * the file. Defaults go through the same parser as the file, so a default can
 * never be invalid. The same tables free the values, print them
 * (ft_config_dump) and compare them (ft_config_jwt_equal): a new key is one
 * line in a table.
 *
 * The order of work: defaults; the file, key by key (ini.c); per-section
 * rules (required keys, the duration default); environment overrides;
 * checks across sections.
 */
#include "config.h"
#include "ini.h"
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_SECTION_KEYS 24
#define MAX_LIST_ITEMS FT_CONFIG_MAX_IDS
/* Keeps every line of the dump below FT_INI_MAX_LINE, so the dump always re-parses. */
#define MAX_VALUE_LEN 12288
#define MAX_PATH_LEN 4095
#define MAX_URL_LEN 2048
#define MAX_ID_LEN 256
#define MAX_TARGET_NAME 64
#define MAX_AUDIENCE_CHARS 1000
#define MAX_TAG_KEY_CHARS 128
#define MAX_TAG_VALUE_CHARS 256
/* sizeof(sun_path) - 1: a longer socket path cannot be bound. */
#define MAX_SOCKET_PATH 107
#define SHOW_MAX 64

enum section_kind { SECT_DAEMON, SECT_AWS, SECT_JWT, SECT_AZURE, SECT_GCP, SECT_COUNT };

enum value_type { VT_STRING, VT_BOOL, VT_INT, VT_MODE, VT_ENUM, VT_LIST };

enum {
        KEY_REQUIRED = 1 << 0,
        KEY_MARKS_SET = 1 << 1,  /* given in the file: set the bool at set_offset */
        KEY_ENUM_BOOL = 1 << 2,  /* a VT_ENUM stored in a bool */
        KEY_TRIM_SLASH = 1 << 3, /* a base URL: trailing '/' dropped so paths can be appended */
};

struct enum_name {
        const char *name;
        int value;
};

/* NULL when the value is acceptable; otherwise what is expected, as a phrase. */
typedef const char *(*check_fn)(const char *value);

struct key_def {
        const char *name;
        enum value_type type;
        size_t offset;
        const char *def;               /* default, as written in the file; NULL: unset */
        unsigned flags;
        int min, max;                  /* VT_INT: range; VT_LIST: number of items; VT_MODE: max = allowed bits */
        check_fn check;                /* VT_STRING, and every item of a VT_LIST */
        const struct enum_name *names; /* VT_ENUM, ends with { NULL } */
        size_t count_offset;           /* VT_LIST: its size_t count */
        size_t set_offset;             /* KEY_MARKS_SET */
        const char *unset;             /* dump: what applies when the key is not set */
};

struct section_def {
        const char *kind;
        bool named;
        const struct key_def *keys;
        size_t n_keys;
};

/* Where each value of one section came from. */
struct section_origin {
        unsigned line;                        /* the header; 0: the section is not in the file */
        unsigned key_line[MAX_SECTION_KEYS];  /* 0: not given in the file */
        uint8_t env[MAX_SECTION_KEYS];        /* 1 + index in env_overrides[]; 0: not from the environment */
};

struct ft_config_origin {
        struct section_origin daemon, aws;
        struct section_origin jwt[FT_CONFIG_MAX_TARGETS];
        struct section_origin azure[FT_CONFIG_MAX_TARGETS];
        struct section_origin gcp[FT_CONFIG_MAX_TARGETS];
};

/* ---- checks of string values ---- */

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

/* True when s is 1..max bytes, each alphanumeric or in `extra`. */
static bool made_of(const char *s, const char *extra, size_t max)
{
        size_t n = 0;

        for (; s[n]; n++)
                if (!ft_text_is_alnum(s[n]) && !strchr(extra, s[n]))
                        return false;
        return n > 0 && n <= max;
}

static bool starts_with(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

static size_t utf8_chars(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        n++;
        return n;
}

/*
 * What ini.c guarantees for the file, checked again for every value:
 * environment variables arrive unchecked, and a value the INI grammar cannot
 * carry (a '"', a control character) would make the dump unreadable.
 */
static const char *check_clean(const char *v)
{
        const unsigned char *p = (const unsigned char *)v;
        size_t n = strlen(v);
        const unsigned char *end = p + n;

        if (n > MAX_VALUE_LEN)
                return "is longer than the limit of 12288 bytes";
        if (n > 0 && (is_blank(v[0]) || is_blank(v[n - 1])))
                return "has white space at the start or the end";
        while (*p) {
                size_t len;

                if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                        return "contains a control character";
                if (*p == '"')
                        return "contains a '\"'";
                len = ft_text_utf8_len_no_c1(p, (size_t)(end - p));
                if (len == 0)
                        return "is not valid UTF-8";
                p += len;
        }
        return NULL;
}

/* A file, not a directory: absolute, not ending in '/'. */
static const char *check_abs_path(const char *v)
{
        size_t n = strlen(v);

        if (v[0] != '/' || v[n - 1] == '/' || n > MAX_PATH_LEN)
                return "an absolute path of a file (starting with /, not ending with /, at most 4095 bytes)";
        return NULL;
}

static const char *check_socket_path(const char *v)
{
        size_t n = strlen(v);

        if (v[0] != '/' || v[n - 1] == '/' || n > MAX_SOCKET_PATH)
                return "an absolute path of at most 107 bytes (the limit of a Unix socket address)";
        return NULL;
}

/* A user or group, by name or number (daemon/ resolves names at load). */
static const char *check_id(const char *v)
{
        const char *what = "a user or group name (A-Z a-z 0-9 _ . -, not starting with - or .) or a numeric id "
                           "below 4294967295";
        size_t digits = strspn(v, "0123456789");

        if (digits > 0 && v[digits] == '\0')
                return digits <= 10 && strtoull(v, NULL, 10) < 4294967295ULL ? NULL : what;
        if (v[0] == '-' || v[0] == '.' || !made_of(v, "_.-", MAX_ID_LEN))
                return what;
        return NULL;
}

static const char *check_target_name(const char *v)
{
        if (!made_of(v, "_-", MAX_TARGET_NAME))
                return "a section name of 1-64 characters A-Z a-z 0-9 _ -";
        return NULL;
}

#define URL_CHARS "-._~:/?#[]@!$&'()*+,;=%"

static const char *check_url(const char *v, bool http_ok, bool query_ok)
{
        struct ft_url u;

        if (!starts_with(v, "https://") && !(http_ok && starts_with(v, "http://")))
                return http_ok ? "an https:// or http:// URL" : "an https:// URL";
        /* RFC 3986 characters only: the URL goes into request lines and Host headers as it is. */
        if (!made_of(v, URL_CHARS, MAX_URL_LEN) || strchr(v, '#') || (!query_ok && strchr(v, '?')) ||
            ft_url_split(v, &u) < 0)
                return query_ok ? "a URL of the form scheme://host[:port][/path][?query], at most 2048 bytes"
                                : "a URL of the form scheme://host[:port][/path], at most 2048 bytes";
        return NULL;
}

static const char *check_https_url(const char *v)
{
        return check_url(v, false, false);
}

/* The IMDS endpoint is plain http wherever it is; the SDKs accept any host. */
static const char *check_imds_url(const char *v)
{
        return check_url(v, true, false);
}

static const char *check_container_url(const char *v)
{
        const char *why = check_url(v, true, true);

        if (why)
                return why;
        if (starts_with(v, "http://") && !ft_aws_http_allowed(v))
                return "an https:// URL, or http:// only to a loopback address, 169.254.170.2, 169.254.170.23 "
                       "or [fd00:ec2::23] (the AWS SDKs' rule)";
        return NULL;
}

static const char *check_region(const char *v)
{
        if (!(v[0] >= 'a' && v[0] <= 'z') || !made_of(v, "-", 32) || strpbrk(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
                return "an AWS region name such as us-east-1";
        return NULL;
}

static const char *check_profile(const char *v)
{
        if (!made_of(v, "_.-", 64))
                return "a profile name of 1-64 characters A-Z a-z 0-9 _ . -";
        return NULL;
}

/* arn:PARTITION:iam::ACCOUNT:role/PATH/NAME */
static const char *check_role_arn(const char *v)
{
        const char *what = "an IAM role ARN such as arn:aws:iam::123456789012:role/NAME";
        const char *p = v;
        size_t n;

        if (!starts_with(p, "arn:"))
                return what;
        p += 4;
        n = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
        if (n == 0 || !starts_with(p + n, ":iam::"))
                return what;
        p += n + 6;
        n = strspn(p, "0123456789");
        if (n != 12 || !starts_with(p + n, ":role/"))
                return what;
        p += n + 6;
        if (!made_of(p, "+=,.@_/-", 512))
                return what;
        return NULL;
}

static const char *check_session_name(const char *v)
{
        if (strlen(v) < 2 || !made_of(v, "+=,.@_-", 64))
                return "2-64 characters A-Z a-z 0-9 + = , . @ _ -";
        return NULL;
}

static const char *check_relative_uri(const char *v)
{
        if (v[0] != '/' || !made_of(v, URL_CHARS, 1024) || strchr(v, '#'))
                return "a path such as /v2/credentials/ID (starting with /, URL characters only)";
        return NULL;
}

static const char *check_signing_algorithm(const char *v)
{
        if (strcmp(v, "RS256") != 0 && strcmp(v, "ES384") != 0)
                return "RS256 or ES384";
        return NULL;
}

static const char *check_audience(const char *v)
{
        if (utf8_chars(v) > MAX_AUDIENCE_CHARS)
                return "audiences of at most 1000 characters each";
        return NULL;
}

static const char *check_guid(const char *v)
{
        static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        const char *what = "a GUID such as 8b7c6f3e-0d4a-4c1e-9f2b-3a5d6e7f8091";

        for (size_t i = 0; shape[i]; i++) {
                bool ok = shape[i] == '-' ? v[i] == '-' : v[i] && strchr("0123456789abcdefABCDEF", v[i]);
                if (!ok)
                        return what;
        }
        return v[sizeof(shape) - 1] == '\0' ? NULL : what;
}

static const char *check_azure_scope(const char *v)
{
        if (strlen(v) <= strlen("/.default") || strlen(v) > 1024 || !ends_with(v, "/.default") ||
            strpbrk(v, " \t"))
                return "one resource followed by /.default, such as https://management.azure.com/.default";
        return NULL;
}

static const char *check_gcp_audience(const char *v)
{
        if (!starts_with(v, "//iam.googleapis.com/") || strlen(v) > 1024 || strpbrk(v, " \t"))
                return "//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/"
                       "providers/PROVIDER";
        return NULL;
}

/* One or more OAuth scopes separated by single spaces, each an https URL. */
static const char *check_gcp_scope(const char *v)
{
        const char *what = "https:// scope URLs separated by single spaces";
        char one[MAX_URL_LEN + 1];

        if (strlen(v) > 4096)
                return what;
        for (const char *p = v;;) {
                size_t n = strcspn(p, " ");

                if (n == 0 || n > MAX_URL_LEN)
                        return what;
                memcpy(one, p, n);
                one[n] = '\0';
                if (check_https_url(one))
                        return what;
                if (p[n] == '\0')
                        return NULL;
                p += n + 1;
        }
}

static const char *check_email(const char *v)
{
        const char *at = strchr(v, '@');
        const char *what = "a service account email such as NAME@PROJECT.iam.gserviceaccount.com";
        char local[65];
        size_t n;

        if (!at || strchr(at + 1, '@') || !strchr(at + 1, '.') || !made_of(at + 1, ".-", 253))
                return what;
        n = (size_t)(at - v);
        if (n == 0 || n >= sizeof(local))
                return what;
        memcpy(local, v, n);
        local[n] = '\0';
        return made_of(local, "._%+-", 64) ? NULL : what;
}

/* ---- the tables ---- */

static const struct enum_name log_level_names[] = {
        { "debug", FT_LOG_DEBUG },     { "info", FT_LOG_INFO }, { "notice", FT_LOG_NOTICE },
        { "warning", FT_LOG_WARNING }, { "error", FT_LOG_ERR }, { NULL, 0 },
};

static const struct enum_name ready_names[] = {
        { "listening", FT_READY_LISTENING },
        { "tokens", FT_READY_TOKENS },
        { NULL, 0 },
};

static const struct enum_name cred_provider_names[] = {
        { "auto", FT_CREDS_AUTO },   { "env", FT_CREDS_ENV },
        { "profile", FT_CREDS_PROFILE }, { "web-identity", FT_CREDS_WEB_IDENTITY },
        { "container", FT_CREDS_CONTAINER }, { "imds", FT_CREDS_IMDS },
        { NULL, 0 },
};

static const struct enum_name imds_mode_names[] = {
        { "IPv4", 0 },
        { "IPv6", 1 },
        { NULL, 0 },
};

#define STRING_KEY(T, key, field, deflt, chk, fl, unset_text)                                      \
        { .name = key, .type = VT_STRING, .offset = offsetof(T, field), .def = deflt, .flags = fl, \
          .check = chk, .unset = unset_text }
#define BOOL_KEY(T, key, field, deflt) \
        { .name = key, .type = VT_BOOL, .offset = offsetof(T, field), .def = deflt }
#define INT_KEY(T, key, field, deflt, lo, hi) \
        { .name = key, .type = VT_INT, .offset = offsetof(T, field), .def = deflt, .min = lo, .max = hi }
#define MODE_KEY(T, key, field, deflt, bits) \
        { .name = key, .type = VT_MODE, .offset = offsetof(T, field), .def = deflt, .max = bits }
#define ENUM_KEY(T, key, field, deflt, list, fl)                                                  \
        { .name = key, .type = VT_ENUM, .offset = offsetof(T, field), .def = deflt, .flags = fl, \
          .names = list }
#define LIST_KEY(T, key, field, count, lo, hi, chk, fl, setf, unset_text)                      \
        { .name = key, .type = VT_LIST, .offset = offsetof(T, field), .flags = fl, .min = lo,   \
          .max = hi, .check = chk, .count_offset = offsetof(T, count), .set_offset = setf,      \
          .unset = unset_text }
#define ACL_KEYS(T, unset_text)                                                                      \
        LIST_KEY(T, "allow_users", acl.users, acl.n_users, 0, FT_CONFIG_MAX_IDS, check_id,            \
                 KEY_MARKS_SET, offsetof(T, acl.set), unset_text),                                    \
        LIST_KEY(T, "allow_groups", acl.groups, acl.n_groups, 0, FT_CONFIG_MAX_IDS, check_id,         \
                 KEY_MARKS_SET, offsetof(T, acl.set), unset_text)
/* A token file is a secret: never readable by others, never executable. */
#define SINK_KEYS(T)                                                                                 \
        STRING_KEY(T, "file", file.path, NULL, check_abs_path, 0, "no file is written"),            \
        MODE_KEY(T, "file_mode", file.mode, "0600", 0660),                                          \
        STRING_KEY(T, "file_group", file.group, NULL, check_id, 0, "the daemon's group"),           \
        ACL_KEYS(T, "[daemon] allow_users and allow_groups apply")

static const struct key_def daemon_keys[] = {
        STRING_KEY(struct ft_config_daemon, "socket", socket, "/run/fedtokend/fedtokend.sock", check_socket_path,
                   0, NULL),
        MODE_KEY(struct ft_config_daemon, "socket_mode", socket_mode, "0660", 0666),
        STRING_KEY(struct ft_config_daemon, "socket_group", socket_group, NULL, check_id, 0, "the daemon's group"),
        STRING_KEY(struct ft_config_daemon, "ca_file", ca_file, NULL, check_abs_path, 0, "the system trust store"),
        ENUM_KEY(struct ft_config_daemon, "log_level", log_level, "info", log_level_names, 0),
        ENUM_KEY(struct ft_config_daemon, "ready", ready, "listening", ready_names, 0),
        INT_KEY(struct ft_config_daemon, "min_remaining", min_remaining, "60", 0, 3600),
        INT_KEY(struct ft_config_daemon, "refresh_percent", refresh_percent, "50", 10, 90),
        INT_KEY(struct ft_config_daemon, "refresh_jitter_percent", refresh_jitter_percent, "10", 0, 25),
        INT_KEY(struct ft_config_daemon, "refresh_margin", refresh_margin, "120", 0, 1800),
        INT_KEY(struct ft_config_daemon, "backoff_initial", backoff_initial, "1", 1, 600),
        INT_KEY(struct ft_config_daemon, "backoff_max", backoff_max, "60", 1, 3600),
        INT_KEY(struct ft_config_daemon, "http_timeout", http_timeout, "10", 1, 120),
        INT_KEY(struct ft_config_daemon, "max_connections", max_connections, "1024", 1, 65536),
        ACL_KEYS(struct ft_config_daemon, NULL),
};

static const struct key_def aws_keys[] = {
        STRING_KEY(struct ft_config_aws, "region", region, NULL, check_region, 0, NULL),
        ENUM_KEY(struct ft_config_aws, "credentials", credentials, "auto", cred_provider_names, 0),
        STRING_KEY(struct ft_config_aws, "profile", profile, "default", check_profile, 0, NULL),
        STRING_KEY(struct ft_config_aws, "shared_credentials_file", shared_credentials_file, NULL, check_abs_path,
                   0, "~/.aws/credentials of the daemon's user"),
        STRING_KEY(struct ft_config_aws, "config_file", config_file, NULL, check_abs_path, 0,
                   "~/.aws/config of the daemon's user"),
        STRING_KEY(struct ft_config_aws, "sts_endpoint", sts_endpoint, NULL, check_https_url, 0,
                   "the regional endpoint of region"),
        BOOL_KEY(struct ft_config_aws, "use_fips_endpoint", use_fips_endpoint, "false"),
        BOOL_KEY(struct ft_config_aws, "use_dualstack_endpoint", use_dualstack_endpoint, "false"),
        STRING_KEY(struct ft_config_aws, "imds_endpoint", imds_endpoint, NULL, check_imds_url, KEY_TRIM_SLASH,
                   "http://169.254.169.254, or http://[fd00:ec2::254] in IPv6 mode"),
        ENUM_KEY(struct ft_config_aws, "imds_endpoint_mode", imds_ipv6, "IPv4", imds_mode_names, KEY_ENUM_BOOL),
        BOOL_KEY(struct ft_config_aws, "imds_disabled", imds_disabled, "false"),
        STRING_KEY(struct ft_config_aws, "web_identity_token_file", web_identity_token_file, NULL, check_abs_path,
                   0, NULL),
        STRING_KEY(struct ft_config_aws, "role_arn", role_arn, NULL, check_role_arn, 0, NULL),
        STRING_KEY(struct ft_config_aws, "role_session_name", role_session_name, "fedtokend", check_session_name,
                   0, NULL),
        STRING_KEY(struct ft_config_aws, "container_relative_uri", container_relative_uri, NULL,
                   check_relative_uri, 0, NULL),
        STRING_KEY(struct ft_config_aws, "container_full_uri", container_full_uri, NULL, check_container_url, 0,
                   NULL),
        STRING_KEY(struct ft_config_aws, "container_token_file", container_token_file, NULL, check_abs_path, 0,
                   NULL),
        INT_KEY(struct ft_config_aws, "credentials_refresh", credentials_refresh, "900", 60, 3600),
};

static const struct key_def jwt_keys[] = {
        LIST_KEY(struct ft_config_jwt, "audience", audiences, n_audiences, 1, 10, check_audience, KEY_REQUIRED, 0,
                 NULL),
        STRING_KEY(struct ft_config_jwt, "signing_algorithm", signing_algorithm, "RS256", check_signing_algorithm,
                   0, NULL),
        { .name = "duration", .type = VT_INT, .offset = offsetof(struct ft_config_jwt, duration), .def = "300",
          .min = 60, .max = 3600, .flags = KEY_MARKS_SET,
          .set_offset = offsetof(struct ft_config_jwt, duration_set) },
        BOOL_KEY(struct ft_config_jwt, "verify", verify, "false"),
        SINK_KEYS(struct ft_config_jwt),
};

static const struct key_def azure_keys[] = {
        STRING_KEY(struct ft_config_azure, "jwt", jwt, NULL, check_target_name, KEY_REQUIRED, NULL),
        STRING_KEY(struct ft_config_azure, "tenant_id", tenant_id, NULL, check_guid, KEY_REQUIRED, NULL),
        STRING_KEY(struct ft_config_azure, "client_id", client_id, NULL, check_guid, KEY_REQUIRED, NULL),
        STRING_KEY(struct ft_config_azure, "scope", scope, NULL, check_azure_scope, KEY_REQUIRED, NULL),
        STRING_KEY(struct ft_config_azure, "authority", authority, "https://login.microsoftonline.com",
                   check_https_url, KEY_TRIM_SLASH, NULL),
        SINK_KEYS(struct ft_config_azure),
};

static const struct key_def gcp_keys[] = {
        STRING_KEY(struct ft_config_gcp, "jwt", jwt, NULL, check_target_name, KEY_REQUIRED, NULL),
        STRING_KEY(struct ft_config_gcp, "audience", audience, NULL, check_gcp_audience, KEY_REQUIRED, NULL),
        STRING_KEY(struct ft_config_gcp, "scope", scope, "https://www.googleapis.com/auth/cloud-platform",
                   check_gcp_scope, 0, NULL),
        STRING_KEY(struct ft_config_gcp, "service_account", service_account, NULL, check_email, 0,
                   "the federated token is used without impersonation"),
        INT_KEY(struct ft_config_gcp, "lifetime", lifetime, "3600", 600, 43200),
        STRING_KEY(struct ft_config_gcp, "sts_endpoint", sts_endpoint, "https://sts.googleapis.com/v1/token",
                   check_https_url, 0, NULL),
        STRING_KEY(struct ft_config_gcp, "iam_endpoint", iam_endpoint, "https://iamcredentials.googleapis.com",
                   check_https_url, KEY_TRIM_SLASH, NULL),
        STRING_KEY(struct ft_config_gcp, "external_account_file", external_account_file, NULL, check_abs_path, 0,
                   "none is written"),
        SINK_KEYS(struct ft_config_gcp),
};

static const struct section_def sections[SECT_COUNT] = {
        [SECT_DAEMON] = { "daemon", false, daemon_keys, FT_ELEMENTSOF(daemon_keys) },
        [SECT_AWS] = { "aws", false, aws_keys, FT_ELEMENTSOF(aws_keys) },
        [SECT_JWT] = { "jwt", true, jwt_keys, FT_ELEMENTSOF(jwt_keys) },
        [SECT_AZURE] = { "azure", true, azure_keys, FT_ELEMENTSOF(azure_keys) },
        [SECT_GCP] = { "gcp", true, gcp_keys, FT_ELEMENTSOF(gcp_keys) },
};

_Static_assert(FT_ELEMENTSOF(daemon_keys) <= MAX_SECTION_KEYS, "too many [daemon] keys");
_Static_assert(FT_ELEMENTSOF(aws_keys) <= MAX_SECTION_KEYS, "too many [aws] keys");
_Static_assert(FT_ELEMENTSOF(jwt_keys) <= MAX_SECTION_KEYS, "too many [jwt] keys");
_Static_assert(FT_ELEMENTSOF(azure_keys) <= MAX_SECTION_KEYS, "too many [azure] keys");
_Static_assert(FT_ELEMENTSOF(gcp_keys) <= MAX_SECTION_KEYS, "too many [gcp] keys");
_Static_assert(sizeof(enum ft_log_level) == sizeof(int) && sizeof(enum ft_ready_mode) == sizeof(int) &&
                       sizeof(enum ft_cred_provider) == sizeof(int),
               "VT_ENUM fields are stored as int");
_Static_assert(FT_CONFIG_MAX_IDS >= 10, "MAX_LIST_ITEMS holds every list");

/*
 * The environment variables the AWS and Azure SDKs honour, in precedence
 * order: for each key the first variable that is set and not empty wins.
 * They override the file, except where `unless_in_file` says the file wins.
 */
struct env_override {
        const char *variable;
        enum section_kind kind;
        const char *key;
        bool unless_in_file;
};

static const struct env_override env_overrides[] = {
        { "AWS_REGION", SECT_AWS, "region", false },
        { "AWS_DEFAULT_REGION", SECT_AWS, "region", false },
        { "AWS_PROFILE", SECT_AWS, "profile", false },
        { "AWS_SHARED_CREDENTIALS_FILE", SECT_AWS, "shared_credentials_file", false },
        { "AWS_CONFIG_FILE", SECT_AWS, "config_file", false },
        { "AWS_ENDPOINT_URL_STS", SECT_AWS, "sts_endpoint", false },
        { "AWS_ENDPOINT_URL", SECT_AWS, "sts_endpoint", false },
        { "AWS_USE_FIPS_ENDPOINT", SECT_AWS, "use_fips_endpoint", false },
        { "AWS_USE_DUALSTACK_ENDPOINT", SECT_AWS, "use_dualstack_endpoint", false },
        { "AWS_EC2_METADATA_SERVICE_ENDPOINT", SECT_AWS, "imds_endpoint", false },
        { "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", SECT_AWS, "imds_endpoint_mode", false },
        { "AWS_EC2_METADATA_DISABLED", SECT_AWS, "imds_disabled", false },
        { "AWS_WEB_IDENTITY_TOKEN_FILE", SECT_AWS, "web_identity_token_file", false },
        { "AWS_ROLE_ARN", SECT_AWS, "role_arn", false },
        { "AWS_ROLE_SESSION_NAME", SECT_AWS, "role_session_name", false },
        { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", SECT_AWS, "container_relative_uri", false },
        { "AWS_CONTAINER_CREDENTIALS_FULL_URI", SECT_AWS, "container_full_uri", false },
        { "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", SECT_AWS, "container_token_file", false },
        /* The Azure SDKs' cloud setting; an authority written for one target is more specific. */
        { "AZURE_AUTHORITY_HOST", SECT_AZURE, "authority", true },
};

_Static_assert(FT_ELEMENTSOF(env_overrides) < 255, "origin env indexes fit a uint8_t");

/* ---- sections as a generic view ---- */

struct instance {
        enum section_kind kind;
        void *obj;
        const char *name;              /* NULL for [daemon] and [aws] */
        struct section_origin *origin;
};

static size_t instance_count(const struct ft_config *c, enum section_kind kind)
{
        switch (kind) {
        case SECT_JWT:
                return c->n_jwts;
        case SECT_AZURE:
                return c->n_azures;
        case SECT_GCP:
                return c->n_gcps;
        default:
                return 1;
        }
}

/*
 * A view of section `i` of a kind. It takes a const config because the dump
 * and the checks only read; the parser, which owns a mutable config, writes
 * through the same view.
 */
static struct instance instance_at(const struct ft_config *cc, enum section_kind kind, size_t i)
{
        struct ft_config *c = (struct ft_config *)cc;
        struct ft_config_origin *o = c->origin;

        switch (kind) {
        case SECT_DAEMON:
                return (struct instance){ kind, &c->daemon, NULL, &o->daemon };
        case SECT_AWS:
                return (struct instance){ kind, &c->aws, NULL, &o->aws };
        case SECT_JWT:
                return (struct instance){ kind, c->jwts[i], c->jwts[i]->name, &o->jwt[i] };
        case SECT_AZURE:
                return (struct instance){ kind, c->azures[i], c->azures[i]->name, &o->azure[i] };
        case SECT_GCP:
        default:
                return (struct instance){ kind, c->gcps[i], c->gcps[i]->name, &o->gcp[i] };
        }
}

/* "[jwt.NAME]" or "[aws]". */
static const char *instance_label(const struct instance *in, char *buf, size_t size)
{
        if (in->name)
                snprintf(buf, size, "[%s.%s]", sections[in->kind].kind, in->name);
        else
                snprintf(buf, size, "[%s]", sections[in->kind].kind);
        return buf;
}

static size_t key_index(const struct section_def *s, const char *name)
{
        for (size_t i = 0; i < s->n_keys; i++)
                if (strcmp(s->keys[i].name, name) == 0)
                        return i;
        return SIZE_MAX;
}

static void *field_at(void *obj, size_t offset)
{
        return (char *)obj + offset;
}

static const void *cfield_at(const void *obj, size_t offset)
{
        return (const char *)obj + offset;
}

/* ---- setting one value ---- */

/*
 * A value as messages quote it: at most SHOW_MAX bytes, cut on a character
 * boundary, control characters and invalid bytes shown as '?'. Values from
 * the environment reach here unchecked.
 */
static const char *show(const char *v, char buf[static SHOW_MAX + 4])
{
        return ft_text_show(buf, SHOW_MAX + 4, v, strlen(v), SHOW_MAX);
}

static int set_string(void *obj, const struct key_def *k, const char *value, const char *where,
                      struct ft_diag *diag)
{
        char **dst = field_at(obj, k->offset);
        const char *why = k->check ? k->check(value) : NULL;
        char shown[SHOW_MAX + 4], *copy;
        size_t n = strlen(value);

        if (why)
                return ft_diag_set(diag, "%s: \"%s\" is not valid: expected %s", where, show(value, shown), why);
        /* The checks above guarantee a host, so this never eats into "https://". */
        if (k->flags & KEY_TRIM_SLASH)
                while (n > 0 && value[n - 1] == '/')
                        n--;
        copy = ft_strndup(value, n);
        if (!copy)
                return -ENOMEM;
        free(*dst);
        *dst = copy;
        return 0;
}

static int parse_bool(const char *v, bool *ret)
{
        static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };

        for (size_t i = 0; i < FT_ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int set_bool(void *obj, const struct key_def *k, const char *value, const char *where,
                    struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4];
        bool b;

        if (parse_bool(value, &b) < 0)
                return ft_diag_set(diag, "%s: \"%s\" is not a boolean: use true or false (or yes/no, on/off, 1/0)",
                                   where, show(value, shown));
        *(bool *)field_at(obj, k->offset) = b;
        return 0;
}

static int set_int(void *obj, const struct key_def *k, const char *value, const char *where,
                   struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4];
        long long v = 0;
        size_t i;

        for (i = 0; ft_text_is_digit(value[i]); i++)
                if (v <= k->max)
                        v = v * 10 + (value[i] - '0');
        if (i == 0 || value[i] != '\0')
                return ft_diag_set(diag, "%s: \"%s\" is not a whole number: write one in %d-%d", where,
                                   show(value, shown), k->min, k->max);
        if (v < k->min || v > k->max)
                return ft_diag_set(diag, "%s: %s is out of range: allowed %d-%d", where, show(value, shown), k->min,
                                   k->max);
        *(int *)field_at(obj, k->offset) = (int)v;
        return 0;
}

static int set_mode(void *obj, const struct key_def *k, const char *value, const char *where,
                    struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4];
        unsigned mode = 0;
        size_t i;

        for (i = 0; value[i] >= '0' && value[i] <= '7' && i < 4; i++)
                mode = mode * 8 + (unsigned)(value[i] - '0');
        if (i == 0 || value[i] != '\0' || (mode & ~(unsigned)k->max))
                return ft_diag_set(diag,
                                   "%s: \"%s\" is not valid: expected an octal mode such as %s with no "
                                   "permission outside %04o",
                                   where, show(value, shown), k->def, (unsigned)k->max);
        *(unsigned *)field_at(obj, k->offset) = mode;
        return 0;
}

static int set_enum(void *obj, const struct key_def *k, const char *value, const char *where,
                    struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4], names[256] = "";

        for (const struct enum_name *e = k->names; e->name; e++) {
                if (strcasecmp(value, e->name) != 0)
                        continue;
                if (k->flags & KEY_ENUM_BOOL)
                        *(bool *)field_at(obj, k->offset) = e->value != 0;
                else
                        *(int *)field_at(obj, k->offset) = e->value;
                return 0;
        }
        for (const struct enum_name *e = k->names; e->name; e++) {
                strncat(names, e->name, sizeof(names) - strlen(names) - 1);
                if (e[1].name)
                        strncat(names, ", ", sizeof(names) - strlen(names) - 1);
        }
        return ft_diag_set(diag, "%s: \"%s\" is not one of: %s", where, show(value, shown), names);
}

static void free_items(char **items, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(items[i]);
                items[i] = NULL;
        }
}

/* One item of a list: checked, not a repeat of an earlier one. */
static int list_item(const struct key_def *k, char **items, size_t n, const char *where, struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4];
        const char *why = k->check(items[n]);

        if (why)
                return ft_diag_set(diag, "%s: \"%s\" is not valid: expected %s", where, show(items[n], shown), why);
        for (size_t i = 0; i < n; i++)
                if (strcmp(items[i], items[n]) == 0)
                        return ft_diag_set(diag, "%s: \"%s\" is listed twice", where, show(items[n], shown));
        return 0;
}

static int set_list(void *obj, const struct key_def *k, const char *value, const char *where,
                    struct ft_diag *diag)
{
        char **items = field_at(obj, k->offset);
        size_t *count = field_at(obj, k->count_offset);
        char *parsed[MAX_LIST_ITEMS] = { NULL };
        const char *p = value;
        size_t n = 0;
        int r;

        for (;;) {
                size_t len;

                while (is_blank(*p))
                        p++;
                if (*p == '\0')
                        break;
                if (n == (size_t)k->max) {
                        r = ft_diag_set(diag, "%s: more than %d values (the limit)", where, k->max);
                        goto fail;
                }
                len = strcspn(p, " \t");
                parsed[n] = ft_strndup(p, len);
                if (!parsed[n]) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = list_item(k, parsed, n, where, diag);
                n++;
                if (r < 0)
                        goto fail;
                p += len;
        }
        if (n < (size_t)k->min) {
                r = ft_diag_set(diag, "%s: needs at least %d value%s", where, k->min, k->min == 1 ? "" : "s");
                goto fail;
        }
        free_items(items, *count);
        memcpy(items, parsed, n * sizeof(*items));
        *count = n;
        return 0;
fail:
        free_items(parsed, n);
        return r;
}

/* Parses `value` into key `k` of `obj`. `where` names the key for messages ("[aws] region"). */
static int set_value(void *obj, const struct key_def *k, const char *value, const char *where,
                     struct ft_diag *diag)
{
        const char *why = check_clean(value);

        if (why)
                return ft_diag_set(diag, "%s: the value %s", where, why);
        if (value[0] == '\0' && k->type != VT_LIST)
                return ft_diag_set(diag, "%s: empty value; remove the line to %s", where,
                                   k->def ? "use the default" : "leave it unset");
        switch (k->type) {
        case VT_STRING:
                return set_string(obj, k, value, where, diag);
        case VT_BOOL:
                return set_bool(obj, k, value, where, diag);
        case VT_INT:
                return set_int(obj, k, value, where, diag);
        case VT_MODE:
                return set_mode(obj, k, value, where, diag);
        case VT_ENUM:
                return set_enum(obj, k, value, where, diag);
        case VT_LIST:
                return set_list(obj, k, value, where, diag);
        }
        return -EINVAL;
}

static int apply_defaults(const struct section_def *s, void *obj, struct ft_diag *diag)
{
        for (size_t i = 0; i < s->n_keys; i++) {
                int r;

                if (!s->keys[i].def)
                        continue;
                r = set_value(obj, &s->keys[i], s->keys[i].def, "default", diag);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void free_fields(const struct section_def *s, void *obj)
{
        for (size_t i = 0; i < s->n_keys; i++) {
                const struct key_def *k = &s->keys[i];

                if (k->type == VT_STRING) {
                        char **p = field_at(obj, k->offset);
                        free(*p);
                        *p = NULL;
                } else if (k->type == VT_LIST) {
                        size_t *n = field_at(obj, k->count_offset);
                        free_items(field_at(obj, k->offset), *n);
                        *n = 0;
                }
        }
}

/* ---- STS session tags: [jwt.NAME] tag.KEY = VALUE ---- */

/* The STS tag pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]; non-ASCII letters are left to STS to judge. */
static bool tag_text_ok(const char *s, bool allow_space)
{
        for (; *s; s++)
                if (!ft_text_is_alnum(*s) && !((unsigned char)*s >= 0x80) && !strchr("_.:/=+-@", *s) &&
                    !(allow_space && *s == ' '))
                        return false;
        return true;
}

static int set_tag(struct ft_config_jwt *j, const char *label, const char *tag, const char *value,
                   struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4];
        char *k, *v;

        if (tag[0] == '\0' || utf8_chars(tag) > MAX_TAG_KEY_CHARS || !tag_text_ok(tag, false))
                return ft_diag_set(diag,
                                   "%s tag.%s: a tag key is 1-128 characters of letters, digits and _ . : / + - @",
                                   label, show(tag, shown));
        if (strncasecmp(tag, "aws:", 4) == 0)
                return ft_diag_set(diag, "%s tag.%s: tag keys starting with aws: are reserved by AWS", label,
                                   show(tag, shown));
        if (utf8_chars(value) > MAX_TAG_VALUE_CHARS || !tag_text_ok(value, true))
                return ft_diag_set(diag,
                                   "%s tag.%s: a tag value is 0-256 characters of letters, digits, spaces and "
                                   "_ . : / = + - @",
                                   label, show(tag, shown));
        for (size_t i = 0; i < j->n_tags; i++)
                if (strcasecmp(j->tag_keys[i], tag) == 0)
                        return ft_diag_set(diag, "%s tag.%s: given twice (tag keys ignore case)", label,
                                           show(tag, shown));
        if (j->n_tags == FT_CONFIG_MAX_TAGS)
                return ft_diag_set(diag, "%s tag.%s: more than %d tags (the STS limit)", label, show(tag, shown),
                                   FT_CONFIG_MAX_TAGS);
        k = strdup(tag);
        v = strdup(value);
        if (!k || !v) {
                free(k);
                free(v);
                return -ENOMEM;
        }
        j->tag_keys[j->n_tags] = k;
        j->tag_values[j->n_tags] = v;
        j->n_tags++;
        return 0;
}

/* ---- named sections ---- */

static void jwt_free(struct ft_config_jwt *j)
{
        if (!j)
                return;
        free_fields(&sections[SECT_JWT], j);
        free_items(j->tag_keys, j->n_tags);
        free_items(j->tag_values, j->n_tags);
        free(j->name);
        free(j);
}

static void azure_free(struct ft_config_azure *a)
{
        if (!a)
                return;
        free_fields(&sections[SECT_AZURE], a);
        free(a->name);
        free(a);
}

static void gcp_free(struct ft_config_gcp *g)
{
        if (!g)
                return;
        free_fields(&sections[SECT_GCP], g);
        free(g->name);
        free(g);
}

/* Appends a new [KIND.NAME] with its defaults. */
static int instance_add(struct ft_config *c, enum section_kind kind, const char *name, unsigned line,
                        struct ft_diag *diag)
{
        struct ft_config_jwt *j = NULL;
        struct ft_config_azure *a = NULL;
        struct ft_config_gcp *g = NULL;
        void *obj;
        char *copy = strdup(name);
        int r;

        if (kind == SECT_JWT)
                obj = j = calloc(1, sizeof(*j));
        else if (kind == SECT_AZURE)
                obj = a = calloc(1, sizeof(*a));
        else
                obj = g = calloc(1, sizeof(*g));
        if (!obj || !copy) {
                free(obj);
                free(copy);
                return -ENOMEM;
        }
        r = apply_defaults(&sections[kind], obj, diag);
        if (kind == SECT_JWT) {
                j->name = copy;
                j->line = line;
                if (r < 0)
                        jwt_free(j);
                else
                        c->jwts[c->n_jwts++] = j;
        } else if (kind == SECT_AZURE) {
                a->name = copy;
                a->line = line;
                if (r < 0)
                        azure_free(a);
                else
                        c->azures[c->n_azures++] = a;
        } else {
                g->name = copy;
                g->line = line;
                if (r < 0)
                        gcp_free(g);
                else
                        c->gcps[c->n_gcps++] = g;
        }
        return r;
}

/* ---- reading the file ---- */

struct parser {
        struct ft_config *c;
        struct instance cur;     /* cur.obj is NULL before the first section */
        char label[96];          /* "[jwt.NAME]" */
};

static int open_named(struct parser *p, enum section_kind kind, const char *section, const char *name,
                      unsigned line, struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4];
        const char *why = check_target_name(name);
        size_t n = instance_count(p->c, kind);
        int r;

        if (why)
                return ft_diag_set(diag, "[%s]: the name is not valid: expected %s", show(section, shown), why);
        for (size_t i = 0; i < n; i++) {
                struct instance in = instance_at(p->c, kind, i);
                if (strcmp(in.name, name) == 0)
                        return ft_diag_set(diag, "[%s]: defined twice (first on line %u)", section,
                                           in.origin->line);
        }
        if (n == FT_CONFIG_MAX_TARGETS)
                return ft_diag_set(diag, "[%s]: more than %d [%s.NAME] sections (the limit)", section,
                                   FT_CONFIG_MAX_TARGETS, sections[kind].kind);
        r = instance_add(p->c, kind, name, line, diag);
        if (r < 0)
                return r;
        p->cur = instance_at(p->c, kind, n);
        return 0;
}

static int open_section(struct parser *p, const char *section, unsigned line, struct ft_diag *diag)
{
        char shown[SHOW_MAX + 4];
        const char *dot = strchr(section, '.');
        size_t kind_len = dot ? (size_t)(dot - section) : strlen(section);
        enum section_kind kind;
        int r;

        for (kind = 0; kind < SECT_COUNT; kind++)
                if (strlen(sections[kind].kind) == kind_len && strncmp(section, sections[kind].kind, kind_len) == 0)
                        break;
        if (kind == SECT_COUNT)
                return ft_diag_set(diag,
                                   "[%s]: unknown section; the sections are [daemon], [aws], [jwt.NAME], "
                                   "[azure.NAME] and [gcp.NAME]",
                                   show(section, shown));
        if (sections[kind].named) {
                if (!dot)
                        return ft_diag_set(diag, "[%s]: needs a name, as in [%s.NAME]", section, section);
                r = open_named(p, kind, section, dot + 1, line, diag);
                if (r < 0)
                        return r;
        } else {
                if (dot)
                        return ft_diag_set(diag, "[%s]: takes no name; write [%s]", show(section, shown),
                                           sections[kind].kind);
                p->cur = instance_at(p->c, kind, 0);
                if (p->cur.origin->line)
                        return ft_diag_set(diag, "[%s]: defined twice (first on line %u)", section,
                                           p->cur.origin->line);
        }
        p->cur.origin->line = line;
        instance_label(&p->cur, p->label, sizeof(p->label));
        return 0;
}

static int unknown_key(const struct parser *p, const char *key, struct ft_diag *diag)
{
        const struct section_def *s = &sections[p->cur.kind];
        char shown[SHOW_MAX + 4], names[512] = "";

        for (size_t i = 0; i < s->n_keys; i++) {
                if (i > 0)
                        strncat(names, ", ", sizeof(names) - strlen(names) - 1);
                strncat(names, s->keys[i].name, sizeof(names) - strlen(names) - 1);
        }
        if (p->cur.kind == SECT_JWT)
                strncat(names, ", tag.KEY", sizeof(names) - strlen(names) - 1);
        return ft_diag_set(diag, "%s %s: unknown key; the keys of [%s%s] are %s", p->label, show(key, shown),
                           s->kind, s->named ? ".NAME" : "", names);
}

static int set_key(struct parser *p, const char *key, const char *value, unsigned line, struct ft_diag *diag)
{
        const struct section_def *s = &sections[p->cur.kind];
        size_t i = key_index(s, key);
        char where[160];
        int r;

        if (i == SIZE_MAX)
                return unknown_key(p, key, diag);
        if (p->cur.origin->key_line[i])
                return ft_diag_set(diag, "%s %s: given twice in this section (first on line %u)", p->label, key,
                                   p->cur.origin->key_line[i]);
        snprintf(where, sizeof(where), "%s %s", p->label, key);
        r = set_value(p->cur.obj, &s->keys[i], value, where, diag);
        if (r < 0)
                return r;
        p->cur.origin->key_line[i] = line;
        if (s->keys[i].flags & KEY_MARKS_SET)
                *(bool *)field_at(p->cur.obj, s->keys[i].set_offset) = true;
        return 0;
}

static int on_ini(const char *section, const char *key, const char *value, unsigned line, void *userdata,
                  struct ft_diag *diag)
{
        struct parser *p = userdata;
        char shown[SHOW_MAX + 4];

        if (!key)
                return open_section(p, section, line, diag);
        if (!p->cur.obj)
                return ft_diag_set(diag, "%s: a key before any section header; put it under [daemon], [aws] or "
                                   "a target section", show(key, shown));
        if (p->cur.kind == SECT_JWT && starts_with(key, "tag."))
                return set_tag(p->cur.obj, p->label, key + 4, value, diag);
        return set_key(p, key, value, line, diag);
}

/* ---- after the file ---- */

static int fail_at(struct ft_diag *diag, const struct ft_config *c, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail_at(struct ft_diag *diag, const struct ft_config *c, unsigned line, const char *fmt, ...)
{
        char what[768];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        if (line)
                return ft_diag_set(diag, "%s:%u: %s", c->filename, line, what);
        return ft_diag_set(diag, "%s: %s", c->filename, what);
}

/* The line of a key, or of its section when the key was not written. */
static unsigned line_of(const struct instance *in, const char *key)
{
        size_t i = key_index(&sections[in->kind], key);

        if (i != SIZE_MAX && in->origin->key_line[i])
                return in->origin->key_line[i];
        return in->origin->line;
}

/* Required keys, and the duration default of a [jwt.NAME] that writes a file. */
static int finish_sections(struct ft_config *c, struct ft_diag *diag)
{
        for (enum section_kind kind = 0; kind < SECT_COUNT; kind++) {
                const struct section_def *s = &sections[kind];

                for (size_t i = 0; i < instance_count(c, kind); i++) {
                        struct instance in = instance_at(c, kind, i);
                        char label[96];

                        for (size_t k = 0; k < s->n_keys; k++)
                                if ((s->keys[k].flags & KEY_REQUIRED) && !in.origin->key_line[k])
                                        return fail_at(diag, c, in.origin->line,
                                                       "%s %s: missing; this key is required",
                                                       instance_label(&in, label, sizeof(label)),
                                                       s->keys[k].name);
                }
        }
        /* A file is read by SDKs that cache it: a long-lived token is rewritten less often. */
        for (size_t i = 0; i < c->n_jwts; i++)
                if (!c->jwts[i]->duration_set && c->jwts[i]->file.path)
                        c->jwts[i]->duration = 3600;
        return 0;
}

static int apply_env_to(struct ft_config *c, size_t e, const char *value, struct ft_diag *diag)
{
        const struct env_override *o = &env_overrides[e];
        const struct section_def *s = &sections[o->kind];
        size_t k = key_index(s, o->key);

        for (size_t i = 0; i < instance_count(c, o->kind); i++) {
                struct instance in = instance_at(c, o->kind, i);
                char label[96], where[192];
                int r;

                /* An earlier variable for the same key wins (AWS_REGION over AWS_DEFAULT_REGION). */
                if (in.origin->env[k])
                        continue;
                if (o->unless_in_file && in.origin->key_line[k])
                        continue;
                snprintf(where, sizeof(where), "environment variable %s (for %s %s)", o->variable,
                         instance_label(&in, label, sizeof(label)), o->key);
                r = set_value(in.obj, &s->keys[k], value, where, diag);
                if (r < 0)
                        return r;
                in.origin->env[k] = (uint8_t)(e + 1);
        }
        return 0;
}

static int apply_env(struct ft_config *c, ft_getenv_fn env, void *ud, struct ft_diag *diag)
{
        if (!env)
                return 0;
        for (size_t e = 0; e < FT_ELEMENTSOF(env_overrides); e++) {
                const char *value = env(env_overrides[e].variable, ud);
                int r;

                /* The SDKs treat an empty variable as unset. */
                if (!value || !*value)
                        continue;
                r = apply_env_to(c, e, value, diag);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_jwt_refs(const struct ft_config *c, enum section_kind kind, struct ft_diag *diag)
{
        for (size_t i = 0; i < instance_count(c, kind); i++) {
                struct instance in = instance_at(c, kind, i);
                const char *jwt = kind == SECT_AZURE ? c->azures[i]->jwt : c->gcps[i]->jwt;
                char label[96];

                const struct ft_config_jwt *src = ft_config_find_jwt(c, jwt);

                if (!src)
                        return fail_at(diag, c, line_of(&in, "jwt"),
                                       "%s jwt: there is no section [jwt.%s]; name one of the [jwt.NAME] sections",
                                       instance_label(&in, label, sizeof(label)), jwt);
                /* Google libraries read the JWT from a file: the configuration we write points at it. */
                if (kind == SECT_GCP && c->gcps[i]->external_account_file && !src->file.path)
                        return fail_at(diag, c, line_of(&in, "external_account_file"),
                                       "%s external_account_file: Google client libraries would read the JWT from "
                                       "a file, but [jwt.%s] has none: set file = PATH there",
                                       instance_label(&in, label, sizeof(label)), jwt);
        }
        return 0;
}

/* /v1/token/NAME serves [azure.NAME] and [gcp.NAME] alike: one name may not be both. */
static int check_target_names(const struct ft_config *c, struct ft_diag *diag)
{
        for (size_t i = 0; i < c->n_gcps; i++)
                for (size_t k = 0; k < c->n_azures; k++)
                        if (strcmp(c->gcps[i]->name, c->azures[k]->name) == 0) {
                                struct instance in = instance_at(c, SECT_GCP, i);
                                return fail_at(diag, c, in.origin->line,
                                               "[gcp.%s]: [azure.%s] has the same name, and /v1/token/%s could only "
                                               "serve one of them; rename one",
                                               c->gcps[i]->name, c->azures[k]->name, c->gcps[i]->name);
                        }
        return 0;
}

static int check_timing(const struct ft_config *c, struct ft_diag *diag)
{
        const struct ft_config_daemon *d = &c->daemon;
        struct instance daemon = instance_at(c, SECT_DAEMON, 0);

        if (d->backoff_initial > d->backoff_max) {
                unsigned a = line_of(&daemon, "backoff_initial"), b = line_of(&daemon, "backoff_max");
                return fail_at(diag, c, a > b ? a : b,
                               "[daemon] backoff_initial: %d s is more than backoff_max (%d s)",
                               d->backoff_initial, d->backoff_max);
        }
        for (size_t i = 0; i < c->n_jwts; i++) {
                struct instance in = instance_at(c, SECT_JWT, i);

                if (c->jwts[i]->duration <= d->min_remaining)
                        return fail_at(diag, c, line_of(&in, "duration"),
                                       "[jwt.%s] duration: %d s is not more than [daemon] min_remaining (%d s), "
                                       "so the token could never be served; raise duration or lower "
                                       "min_remaining",
                                       in.name, c->jwts[i]->duration, d->min_remaining);
        }
        return 0;
}

/* Every written file belongs to one target: two writers would overwrite each other's token. */
struct written_file {
        const char *path;
        char label[96];
        const char *key;
        unsigned line;
};

static const struct ft_file_sink *sink_of(const struct instance *in)
{
        switch (in->kind) {
        case SECT_JWT:
                return &((const struct ft_config_jwt *)in->obj)->file;
        case SECT_AZURE:
                return &((const struct ft_config_azure *)in->obj)->file;
        case SECT_GCP:
                return &((const struct ft_config_gcp *)in->obj)->file;
        default:
                return NULL;
        }
}

static void add_file(struct written_file *files, size_t *n, const struct instance *in, const char *key,
                     const char *path)
{
        struct written_file *f = &files[*n];

        if (!path)
                return;
        f->path = path;
        f->key = key;
        f->line = line_of(in, key);
        instance_label(in, f->label, sizeof(f->label));
        (*n)++;
}

/* At most one file per target plus one external_account_file per [gcp.NAME]. */
#define MAX_WRITTEN_FILES (4 * FT_CONFIG_MAX_TARGETS)

static size_t collect_files(const struct ft_config *c, struct written_file *files)
{
        size_t n = 0;

        for (enum section_kind kind = SECT_JWT; kind < SECT_COUNT; kind++) {
                for (size_t i = 0; i < instance_count(c, kind); i++) {
                        struct instance in = instance_at(c, kind, i);

                        add_file(files, &n, &in, "file", sink_of(&in)->path);
                        if (kind == SECT_GCP)
                                add_file(files, &n, &in, "external_account_file", c->gcps[i]->external_account_file);
                }
        }
        return n;
}

static int check_files(const struct ft_config *c, struct ft_diag *diag)
{
        struct written_file *files = calloc(MAX_WRITTEN_FILES, sizeof(*files));
        size_t n;
        int r = 0;

        if (!files)
                return -ENOMEM;
        n = collect_files(c, files);
        for (size_t i = 0; i < n && r == 0; i++) {
                if (strcmp(files[i].path, c->daemon.socket) == 0) {
                        r = fail_at(diag, c, files[i].line, "%s %s: %s is the daemon's socket", files[i].label,
                                    files[i].key, files[i].path);
                        break;
                }
                for (size_t j = 0; j < i; j++) {
                        if (strcmp(files[i].path, files[j].path) != 0)
                                continue;
                        r = fail_at(diag, c, files[i].line,
                                    "%s %s: %s is also written for %s %s (line %u); give each its own file",
                                    files[i].label, files[i].key, files[i].path, files[j].label, files[j].key,
                                    files[j].line);
                        break;
                }
        }
        free(files);
        return r;
}

/* A provider that was chosen explicitly must have what it needs, from the file or the environment. */
static int check_aws(const struct ft_config *c, struct ft_diag *diag)
{
        const struct ft_config_aws *a = &c->aws;
        struct instance in = instance_at(c, SECT_AWS, 0);
        unsigned line = line_of(&in, "credentials");

        switch (a->credentials) {
        case FT_CREDS_WEB_IDENTITY:
                if (!a->web_identity_token_file || !a->role_arn)
                        return fail_at(diag, c, line,
                                       "[aws] credentials: web-identity needs web_identity_token_file and "
                                       "role_arn (or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN)");
                break;
        case FT_CREDS_CONTAINER:
                if (!a->container_relative_uri && !a->container_full_uri)
                        return fail_at(diag, c, line,
                                       "[aws] credentials: container needs container_relative_uri or "
                                       "container_full_uri (or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or "
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI)");
                break;
        case FT_CREDS_IMDS:
                if (a->imds_disabled)
                        return fail_at(diag, c, line,
                                       "[aws] credentials: imds, but imds_disabled is true (or "
                                       "AWS_EC2_METADATA_DISABLED is set)");
                break;
        default:
                break;
        }
        return 0;
}

static int cross_check(const struct ft_config *c, struct ft_diag *diag)
{
        int r;

        if (c->n_jwts == 0)
                return fail_at(diag, c, 0,
                               "no [jwt.NAME] section, so there is no token to fetch; add one, for example "
                               "\"[jwt.azure]\" with \"audience = api://AzureADTokenExchange\"");
        r = check_jwt_refs(c, SECT_AZURE, diag);
        if (r < 0)
                return r;
        r = check_jwt_refs(c, SECT_GCP, diag);
        if (r < 0)
                return r;
        r = check_target_names(c, diag);
        if (r < 0)
                return r;
        r = check_timing(c, diag);
        if (r < 0)
                return r;
        r = check_files(c, diag);
        if (r < 0)
                return r;
        return check_aws(c, diag);
}

static int config_new(const char *filename, struct ft_config **ret, struct ft_diag *diag)
{
        struct ft_config *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->filename = strdup(filename ? filename : "(config)");
        c->origin = calloc(1, sizeof(*c->origin));
        if (!c->filename || !c->origin) {
                ft_config_free(c);
                return -ENOMEM;
        }
        r = apply_defaults(&sections[SECT_DAEMON], &c->daemon, diag);
        if (r == 0)
                r = apply_defaults(&sections[SECT_AWS], &c->aws, diag);
        if (r < 0) {
                ft_config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int ft_config_parse(const char *text, size_t len, const char *filename, ft_getenv_fn env, void *ud,
                    struct ft_config **ret, struct ft_diag *diag)
{
        struct ft_diag local = { 0 };
        struct parser p = { 0 };
        struct ft_config *c = NULL;
        int r;

        if (!diag)
                diag = &local;
        if (!ret || (!text && len))
                return -EINVAL;
        diag->msg[0] = '\0';
        r = config_new(filename, &c, diag);
        if (r < 0)
                return r;
        p.c = c;
        r = ft_ini_parse(text, len, c->filename, on_ini, &p, diag);
        if (r == 0)
                r = finish_sections(c, diag);
        if (r == 0)
                r = apply_env(c, env, ud, diag);
        if (r == 0)
                r = cross_check(c, diag);
        if (r < 0) {
                if (r == -ENOMEM && !diag->msg[0])
                        ft_diag_set(diag, "%s: out of memory", c->filename);
                ft_config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void ft_config_free(struct ft_config *c)
{
        if (!c)
                return;
        free_fields(&sections[SECT_DAEMON], &c->daemon);
        free_fields(&sections[SECT_AWS], &c->aws);
        for (size_t i = 0; i < c->n_jwts; i++)
                jwt_free(c->jwts[i]);
        for (size_t i = 0; i < c->n_azures; i++)
                azure_free(c->azures[i]);
        for (size_t i = 0; i < c->n_gcps; i++)
                gcp_free(c->gcps[i]);
        free(c->origin);
        free(c->filename);
        free(c);
}

/* ---- printing ---- */

/* Whether the INI reader would change the value unless it is quoted. */
static bool needs_quotes(const char *v)
{
        size_t n = strlen(v);

        if (n == 0)
                return false;
        if (is_blank(v[0]) || is_blank(v[n - 1]) || v[0] == ';' || v[0] == '#')
                return true;
        for (size_t i = 1; i < n; i++)
                if ((v[i] == ';' || v[i] == '#') && is_blank(v[i - 1]))
                        return true;
        return false;
}

/* " value" as the INI reader gives it back; nothing for an empty value. */
static void dump_text(struct ft_strbuf *b, const char *v)
{
        bool quote = needs_quotes(v);

        if (!*v)
                return;
        ft_strbuf_puts(b, quote ? " \"" : " ");
        ft_strbuf_puts(b, v);
        if (quote)
                ft_strbuf_puts(b, "\"");
}

/* Items joined by one space, quoted as a whole when needed ("audience = #a b" reads "#a" as an item). */
static void dump_list(struct ft_strbuf *b, char *const *items, size_t n)
{
        struct ft_strbuf joined = { .max = MAX_VALUE_LEN + 1 };

        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        ft_strbuf_puts(&joined, " ");
                ft_strbuf_puts(&joined, items[i]);
        }
        if (joined.oom) {
                b->oom = true;
        } else if (joined.p) {
                dump_text(b, joined.p);
        }
        ft_strbuf_done(&joined);
}

static const char *enum_name(const struct key_def *k, int value)
{
        for (const struct enum_name *e = k->names; e->name; e++)
                if (e->value == value)
                        return e->name;
        return "?";
}

static void dump_unset(struct ft_strbuf *b, const struct key_def *k)
{
        if (k->unset)
                ft_strbuf_printf(b, "# %s = (not set: %s)\n", k->name, k->unset);
        else
                ft_strbuf_printf(b, "# %s = (not set)\n", k->name);
}

static void dump_key(struct ft_strbuf *b, const struct key_def *k, const void *obj, uint8_t env)
{
        const void *f = cfield_at(obj, k->offset);

        if ((k->type == VT_STRING && !*(char *const *)f) ||
            ((k->flags & KEY_MARKS_SET) && k->type == VT_LIST && !*(const bool *)cfield_at(obj, k->set_offset))) {
                dump_unset(b, k);
                return;
        }
        ft_strbuf_printf(b, "%s =", k->name);
        switch (k->type) {
        case VT_STRING:
                dump_text(b, *(char *const *)f);
                break;
        case VT_BOOL:
                ft_strbuf_puts(b, *(const bool *)f ? " true" : " false");
                break;
        case VT_INT:
                ft_strbuf_printf(b, " %d", *(const int *)f);
                break;
        case VT_MODE:
                ft_strbuf_printf(b, " %04o", *(const unsigned *)f);
                break;
        case VT_ENUM:
                ft_strbuf_printf(b, " %s",
                                 enum_name(k, k->flags & KEY_ENUM_BOOL ? *(const bool *)f : *(const int *)f));
                break;
        case VT_LIST:
                dump_list(b, (char *const *)f, *(const size_t *)cfield_at(obj, k->count_offset));
                break;
        }
        if (env)
                ft_strbuf_printf(b, "  ; from %s", env_overrides[env - 1].variable);
        ft_strbuf_puts(b, "\n");
}

static void dump_instance(struct ft_strbuf *b, const struct instance *in)
{
        const struct section_def *s = &sections[in->kind];
        char label[96];

        ft_strbuf_printf(b, "\n%s\n", instance_label(in, label, sizeof(label)));
        for (size_t k = 0; k < s->n_keys; k++)
                dump_key(b, &s->keys[k], in->obj, in->origin->env[k]);
        if (in->kind == SECT_JWT) {
                const struct ft_config_jwt *j = in->obj;

                for (size_t t = 0; t < j->n_tags; t++) {
                        ft_strbuf_printf(b, "tag.%s =", j->tag_keys[t]);
                        dump_text(b, j->tag_values[t]);
                        ft_strbuf_puts(b, "\n");
                }
        }
}

int ft_config_dump(const struct ft_config *c, char **ret)
{
        struct ft_strbuf b = { .max = 4 * FT_INI_MAX_SIZE };
        char *text;

        if (!c || !c->origin || !ret)
                return -EINVAL;
        ft_strbuf_puts(&b, "# fedtokend: the effective configuration, every key (defaults included).\n"
                           "# \"; from VARIABLE\" marks a value taken from the environment.\n");
        for (enum section_kind kind = 0; kind < SECT_COUNT; kind++) {
                for (size_t i = 0; i < instance_count(c, kind); i++) {
                        struct instance in = instance_at(c, kind, i);
                        dump_instance(&b, &in);
                }
        }
        text = ft_strbuf_steal(&b);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* ---- lookups and comparisons ---- */

const char *ft_cred_provider_name(enum ft_cred_provider p)
{
        for (const struct enum_name *e = cred_provider_names; e->name; e++)
                if (e->value == (int)p)
                        return e->name;
        return "unknown";
}

const struct ft_config_jwt *ft_config_find_jwt(const struct ft_config *c, const char *name)
{
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_jwts; i++)
                if (strcmp(c->jwts[i]->name, name) == 0)
                        return c->jwts[i];
        return NULL;
}

static bool str_equal(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool field_equal(const struct key_def *k, const void *a, const void *b)
{
        const void *fa = cfield_at(a, k->offset), *fb = cfield_at(b, k->offset);
        size_t n;

        switch (k->type) {
        case VT_STRING:
                return str_equal(*(char *const *)fa, *(char *const *)fb);
        case VT_BOOL:
                return *(const bool *)fa == *(const bool *)fb;
        case VT_INT:
                return *(const int *)fa == *(const int *)fb;
        case VT_MODE:
                return *(const unsigned *)fa == *(const unsigned *)fb;
        case VT_ENUM:
                if (k->flags & KEY_ENUM_BOOL)
                        return *(const bool *)fa == *(const bool *)fb;
                return *(const int *)fa == *(const int *)fb;
        case VT_LIST:
                n = *(const size_t *)cfield_at(a, k->count_offset);
                if (n != *(const size_t *)cfield_at(b, k->count_offset))
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!str_equal(((char *const *)fa)[i], ((char *const *)fb)[i]))
                                return false;
                return true;
        }
        return false;
}

/* Tags are a set: their order does not change the token. */
static bool tags_equal(const struct ft_config_jwt *a, const struct ft_config_jwt *b)
{
        if (a->n_tags != b->n_tags)
                return false;
        for (size_t i = 0; i < a->n_tags; i++) {
                size_t j;

                for (j = 0; j < b->n_tags; j++)
                        if (str_equal(a->tag_keys[i], b->tag_keys[j]))
                                break;
                if (j == b->n_tags || !str_equal(a->tag_values[i], b->tag_values[j]))
                        return false;
        }
        return true;
}

bool ft_config_jwt_equal(const struct ft_config_jwt *a, const struct ft_config_jwt *b)
{
        const struct section_def *s = &sections[SECT_JWT];

        if (!a || !b)
                return a == b;
        /* Every key of the table; `line` and `duration_set` only say how the file was written. */
        for (size_t k = 0; k < s->n_keys; k++)
                if (!field_equal(&s->keys[k], a, b))
                        return false;
        return str_equal(a->name, b->name) && a->acl.set == b->acl.set && tags_equal(a, b);
}
