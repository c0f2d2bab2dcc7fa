/* SPDX-License-Identifier: MIT */
/*
 * config.h: fedtokend.conf, parsed strictly from a table of keys.
 *
 * Unknown sections and keys, bad values and missing required keys are errors
 * that name file:line and the key. Environment variables the AWS and Azure
 * SDKs already honour override the matching keys (AWS_REGION, then
 * AWS_DEFAULT_REGION, overrides [aws] region, and so on: see the table in
 * config.c and fedtokend.conf(5)).
 */
#ifndef FT_CONFIG_H
#define FT_CONFIG_H

#include "ft.h"
#include "awscreds.h"
#include "httpmsg.h"

#define FT_CONFIG_MAX_TARGETS 64
#define FT_CONFIG_MAX_IDS 32

enum ft_log_level { FT_LOG_ERR = 3, FT_LOG_WARNING = 4, FT_LOG_NOTICE = 5, FT_LOG_INFO = 6, FT_LOG_DEBUG = 7 };

enum ft_cred_provider {
        FT_CREDS_AUTO = 0,    /* env → profile (if it has keys) → web-identity → container → imds */
        FT_CREDS_ENV,
        FT_CREDS_PROFILE,
        FT_CREDS_WEB_IDENTITY,
        FT_CREDS_CONTAINER,
        FT_CREDS_IMDS,
};
const char *ft_cred_provider_name(enum ft_cred_provider p);

enum ft_ready_mode { FT_READY_LISTENING = 0, FT_READY_TOKENS };

/* Who may read a token: numeric ids, names resolved by daemon/ at load. */
struct ft_acl {
        bool set;                          /* the key was given in this section */
        char *users[FT_CONFIG_MAX_IDS];
        size_t n_users;
        char *groups[FT_CONFIG_MAX_IDS];
        size_t n_groups;
};

/* Where and how a token is written for unmodified SDKs. */
struct ft_file_sink {
        char *path;                        /* NULL: no file */
        unsigned mode;                     /* default 0600 */
        char *group;                       /* NULL: the daemon's group */
};

struct ft_config_daemon {
        char *socket;                      /* /run/fedtokend/fedtokend.sock */
        unsigned socket_mode;              /* 0660 */
        char *socket_group;
        char *ca_file;                     /* NULL: the system trust store */
        enum ft_log_level log_level;       /* info */
        enum ft_ready_mode ready;          /* listening */
        int min_remaining;                 /* 60 s: never serve a token with less left */
        int refresh_percent;               /* 50: refresh at this share of the lifetime */
        int refresh_jitter_percent;        /* 10 */
        int refresh_margin;                /* 120 s: refresh no later than this before expiry */
        int backoff_initial;               /* 1 s */
        int backoff_max;                   /* 60 s */
        int http_timeout;                  /* 10 s per upstream request */
        int max_connections;               /* 1024 */
        struct ft_acl acl;                 /* default for every token */
};

struct ft_config_aws {
        char *region;                      /* AWS_REGION, AWS_DEFAULT_REGION */
        enum ft_cred_provider credentials; /* auto */
        char *profile;                     /* AWS_PROFILE; "default" */
        char *shared_credentials_file;     /* AWS_SHARED_CREDENTIALS_FILE; ~/.aws/credentials */
        char *config_file;                 /* AWS_CONFIG_FILE; ~/.aws/config */
        char *sts_endpoint;                /* AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL */
        bool use_fips_endpoint;            /* AWS_USE_FIPS_ENDPOINT */
        bool use_dualstack_endpoint;       /* AWS_USE_DUALSTACK_ENDPOINT */
        char *imds_endpoint;               /* AWS_EC2_METADATA_SERVICE_ENDPOINT */
        bool imds_ipv6;                    /* AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6 */
        bool imds_disabled;                /* AWS_EC2_METADATA_DISABLED */
        char *web_identity_token_file;     /* AWS_WEB_IDENTITY_TOKEN_FILE */
        char *role_arn;                    /* AWS_ROLE_ARN */
        char *role_session_name;           /* AWS_ROLE_SESSION_NAME; "fedtokend" */
        char *container_relative_uri;      /* AWS_CONTAINER_CREDENTIALS_RELATIVE_URI */
        char *container_full_uri;          /* AWS_CONTAINER_CREDENTIALS_FULL_URI */
        char *container_token_file;        /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE */
        int credentials_refresh;           /* 900 s: refresh credentials this long before expiry */
};

#define FT_CONFIG_MAX_TAGS 50

struct ft_config_jwt {
        char *name;                        /* NAME of [jwt.NAME] */
        unsigned line;                     /* where the section starts */
        char *audiences[10];
        size_t n_audiences;
        char *signing_algorithm;           /* RS256 (default) | ES384 */
        int duration;                      /* 300; 3600 when `file` is set and duration not given */
        bool duration_set;
        char *tag_keys[FT_CONFIG_MAX_TAGS];   /* tag.KEY = VALUE */
        char *tag_values[FT_CONFIG_MAX_TAGS];
        size_t n_tags;
        bool verify;                       /* verify the signature against the issuer's JWKS */
        struct ft_file_sink file;
        struct ft_acl acl;
};

struct ft_config_azure {
        char *name;
        unsigned line;
        char *jwt;                         /* NAME of a [jwt.NAME] */
        char *tenant_id;
        char *client_id;
        char *scope;                       /* one resource "/.default" */
        char *authority;                   /* AZURE_AUTHORITY_HOST; https://login.microsoftonline.com */
        struct ft_file_sink file;
        struct ft_acl acl;
};

struct ft_config_gcp {
        char *name;
        unsigned line;
        char *jwt;
        char *audience;                    /* //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X */
        char *scope;                       /* https://www.googleapis.com/auth/cloud-platform */
        char *service_account;             /* optional: impersonate with generateAccessToken */
        int lifetime;                      /* 3600 s, for generateAccessToken */
        char *sts_endpoint;                /* https://sts.googleapis.com/v1/token */
        char *iam_endpoint;                /* https://iamcredentials.googleapis.com */
        char *external_account_file;       /* optional: write a Google external_account config */
        struct ft_file_sink file;
        struct ft_acl acl;
};

struct ft_config_origin;

struct ft_config {
        char *filename;
        /* Internal to config.c: the line of every key and which environment variable set a value. */
        struct ft_config_origin *origin;
        struct ft_config_daemon daemon;
        struct ft_config_aws aws;
        struct ft_config_jwt *jwts[FT_CONFIG_MAX_TARGETS];
        size_t n_jwts;
        struct ft_config_azure *azures[FT_CONFIG_MAX_TARGETS];
        size_t n_azures;
        struct ft_config_gcp *gcps[FT_CONFIG_MAX_TARGETS];
        size_t n_gcps;
};

/*
 * Parse `text` (the file's bytes; `filename` for messages). `env` may be NULL
 * (no overrides). On error diag->msg reads "FILE:LINE: [section] key: what is
 * wrong" (or "FILE: ..." for whole-file problems such as a missing section).
 */
int ft_config_parse(const char *text, size_t len, const char *filename, ft_getenv_fn env, void *ud,
                    struct ft_config **ret, struct ft_diag *diag);
void ft_config_free(struct ft_config *c);

/* The effective configuration as INI text (for --check-config); never a secret. */
int ft_config_dump(const struct ft_config *c, char **ret);

const struct ft_config_jwt *ft_config_find_jwt(const struct ft_config *c, const char *name);

/* True when two definitions would fetch the same token (for keeping tokens across reloads). */
bool ft_config_jwt_equal(const struct ft_config_jwt *a, const struct ft_config_jwt *b);

#endif
