/* SPDX-License-Identifier: MIT */
/*
 * test_awscreds.c: the credential providers' sans-I/O half: environment,
 * shared files, the IMDS/container JSON, the IMDSv2 and container requests
 * (compared with what the AWS SDK sent, in vectors/captured/) and the
 * plain-http rule.
 */
#include <errno.h>
#include <strings.h>

#include "awscreds.h"
#include "test.h"

/* 2025-12-01T18:00:00Z, the Expiration of every captured credentials answer. */
#define EXPIRATION INT64_C(1764612000)
/* Where the capture harness ran its fake IMDS and container endpoints. */
#define CAPTURE_ENDPOINT "http://127.0.0.1:8081"

/* ---- environment ---- */

struct fake_env {
        const char *access_key_id, *secret_access_key, *session_token, *expiration;
};

static const char *fake_getenv(const char *name, void *userdata)
{
        const struct fake_env *e = userdata;

        if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
                return e->access_key_id;
        if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
                return e->secret_access_key;
        if (strcmp(name, "AWS_SESSION_TOKEN") == 0)
                return e->session_token;
        if (strcmp(name, "AWS_CREDENTIAL_EXPIRATION") == 0)
                return e->expiration;
        return NULL;
}

static void test_env(void)
{
        static const struct {
                struct fake_env env;
                int want;
                const char *want_msg;
                int64_t want_expiration;
        } cases[] = {
                { { NULL, NULL, NULL, NULL }, -ENOENT, NULL, 0 },
                { { "", "", "token", NULL }, -ENOENT, NULL, 0 },
                { { "AKIDEXAMPLE", NULL, NULL, NULL }, -EINVAL,
                  "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not", 0 },
                { { "", "wJalrXUtnFEMI", NULL, NULL }, -EINVAL,
                  "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not", 0 },
                { { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE", NULL, NULL }, 0, NULL, 0 },
                { { "AKIDEXAMPLE", "wJalrXUtnFEMI", "FAKE-SESSION-TOKEN", "2025-12-01T18:00:00Z" }, 0, NULL,
                  EXPIRATION },
                { { "AKIDEXAMPLE", "wJalrXUtnFEMI", "FAKE-SESSION-TOKEN", "2025-12-01T20:00:00+02:00" }, 0, NULL,
                  EXPIRATION },
                { { "AKIDEXAMPLE", "wJalrXUtnFEMI", "", "" }, 0, NULL, 0 },
                { { "AKIDEXAMPLE", "wJalrXUtnFEMI", NULL, "tomorrow" }, -EINVAL,
                  "AWS_CREDENTIAL_EXPIRATION \"tomorrow\" is not an ISO 8601 time", 0 },
                { { "AKIDEXAMPLE", "wJalrXUtnFEMI", NULL, "1970-01-01T00:00:00Z" }, -EINVAL,
                  "AWS_CREDENTIAL_EXPIRATION", 0 },
                { { "AKIDEXAMPLE", "SECRET-WITH-NEWLINE\n", NULL, NULL }, -EINVAL,
                  "AWS_SECRET_ACCESS_KEY is empty or holds white space", 0 },
                { { "AKID EXAMPLE", "wJalrXUtnFEMI", NULL, NULL }, -EINVAL, "AWS_ACCESS_KEY_ID is empty", 0 },
                { { "AKIDEXAMPLE", "wJalrXUtnFEMI", "TOKEN\r", NULL }, -EINVAL, "AWS_SESSION_TOKEN", 0 },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                struct ft_diag diag = { 0 };
                struct ft_aws_creds *c = NULL;
                const struct fake_env *e = &cases[i].env;
                int r = ft_aws_creds_from_env(fake_getenv, (void *)e, &c, &diag);

                CHECK_INT(r, cases[i].want);
                if (cases[i].want_msg)
                        CHECK_CONTAINS(diag.msg, cases[i].want_msg);
                /* A secret never appears in a diagnosis. */
                if (e->secret_access_key && *e->secret_access_key)
                        CHECK(!strstr(diag.msg, e->secret_access_key));
                if (r < 0) {
                        CHECK(c == NULL);
                        continue;
                }
                CHECK(c != NULL);
                if (!c)
                        continue;
                CHECK_STR(c->access_key_id, e->access_key_id);
                CHECK_STR(c->secret_access_key, e->secret_access_key);
                if (e->session_token && *e->session_token)
                        CHECK_STR(c->session_token, e->session_token);
                else
                        CHECK(c->session_token == NULL);
                CHECK_INT(c->expiration, cases[i].want_expiration);
                CHECK(c->role_arn == NULL && c->account_id == NULL);
                ft_aws_creds_free(c);
        }
        CHECK_INT(ft_aws_creds_from_env(NULL, NULL, &(struct ft_aws_creds *){ NULL }, NULL), -EINVAL);
}

/* ---- shared credentials and config files ---- */

static char long_token[1201];

static char *credentials_text(void)
{
        static const char head[] =
                "# ~/.aws/credentials\n"
                "[default]\n"
                "aws_access_key_id = AKIDDEFAULT\n"
                "aws_secret_access_key = secretdefault\n"
                "\n"
                "[work]\r\n"
                "aws_access_key_id=AKIDWORK\r\n"
                "aws_secret_access_key=secretwork\r\n"
                "region = us-west-2\r\n"
                "aws_session_token = ";
        static const char tail[] =
                "\n"
                "; a profile that forgot its secret\n"
                "[partial]\n"
                "aws_access_key_id = AKIDPARTIAL\n"
                "[onlysecret]\n"
                "aws_secret_access_key = secretonly\n"
                "[assume]\n"
                "role_arn = arn:aws:iam::111122223333:role/x\n"
                "source_profile = default\n"
                "[assume-with-keys]\n"
                "aws_access_key_id = AKIDASSUME\n"
                "aws_secret_access_key = secretassume\n"
                "role_arn = arn:aws:iam::111122223333:role/x\n"
                "[process]\n"
                "credential_process = /usr/local/bin/get-creds\n"
                "[process-with-keys]\n"
                "credential_process = /usr/local/bin/get-creds\n"
                "aws_access_key_id = AKIDPROC\n"
                "aws_secret_access_key = secretproc\n"
                "[sso]\n"
                "sso_session = my-sso\n"
                "[twice]\n"
                "aws_access_key_id = AKIDFIRST\n"
                "aws_secret_access_key = secretfirst\n"
                "aws_access_key_id = AKIDSECOND\n"
                "[empty]\n"
                "[profile configform]\n"
                "aws_access_key_id = AKIDCFG\n"
                "aws_secret_access_key = secretcfg\n";
        size_t n = sizeof(head) - 1 + sizeof(long_token) - 1 + sizeof(tail) - 1;
        char *t = malloc(n + 1);

        /* 1,200 characters: libinih as Debian builds it would cut this line at 200. */
        for (size_t i = 0; i < sizeof(long_token) - 1; i++)
                long_token[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
        long_token[sizeof(long_token) - 1] = '\0';
        snprintf(t, n + 1, "%s%s%s", head, long_token, tail);
        return t;
}

static int from_profile(const char *text, const char *profile, struct ft_aws_creds **c, struct ft_diag *diag)
{
        ft_diag_clear(diag);
        *c = NULL;
        return ft_aws_creds_from_profile(text, strlen(text), "/home/u/.aws/credentials", profile, c, diag);
}

static void test_profile(void)
{
        struct ft_diag diag = { 0 };
        struct ft_aws_creds *c = NULL;
        char *text = credentials_text();

        CHECK_INT(from_profile(text, "default", &c, &diag), 0);
        if (c) {
                CHECK_STR(c->access_key_id, "AKIDDEFAULT");
                CHECK_STR(c->secret_access_key, "secretdefault");
                CHECK(c->session_token == NULL);
                CHECK_INT(c->expiration, 0);
                ft_aws_creds_free(c);
        }
        CHECK_INT(from_profile(text, "work", &c, &diag), 0);
        if (c) {
                CHECK_STR(c->access_key_id, "AKIDWORK");
                CHECK_STR(c->secret_access_key, "secretwork");
                CHECK_INT(c->session_token ? strlen(c->session_token) : 0, 1200);
                CHECK_STR(c->session_token, long_token);
                ft_aws_creds_free(c);
        }
        CHECK_INT(from_profile(text, "partial", &c, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "/home/u/.aws/credentials: profile [partial] has no aws_secret_access_key");
        CHECK(!strstr(diag.msg, "AKIDPARTIAL"));
        CHECK_INT(from_profile(text, "onlysecret", &c, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "profile [onlysecret] has no aws_access_key_id");
        CHECK_INT(from_profile(text, "empty", &c, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "profile [empty] has no aws_access_key_id");
        CHECK_INT(from_profile(text, "assume", &c, &diag), -EOPNOTSUPP);
        CHECK_CONTAINS(diag.msg, "profile [assume] gets its credentials through role_arn");
        CHECK_CONTAINS(diag.msg, "static keys");
        /* The SDKs would assume the role here; the keys alone are another identity. */
        CHECK_INT(from_profile(text, "assume-with-keys", &c, &diag), -EOPNOTSUPP);
        CHECK_INT(from_profile(text, "process", &c, &diag), -EOPNOTSUPP);
        CHECK_CONTAINS(diag.msg, "credential_process, which fedtokend does not support");
        CHECK_INT(from_profile(text, "sso", &c, &diag), -EOPNOTSUPP);
        CHECK_CONTAINS(diag.msg, "sso_session");
        /* Static keys win over credential_process, as in the SDKs. */
        CHECK_INT(from_profile(text, "process-with-keys", &c, &diag), 0);
        if (c) {
                CHECK_STR(c->access_key_id, "AKIDPROC");
                ft_aws_creds_free(c);
        }
        CHECK_INT(from_profile(text, "twice", &c, &diag), 0);
        if (c) {
                CHECK_STR(c->access_key_id, "AKIDSECOND");
                ft_aws_creds_free(c);
        }
        CHECK_INT(from_profile(text, "missing", &c, &diag), -ENOENT);
        CHECK_CONTAINS(diag.msg, "/home/u/.aws/credentials has no profile [missing]");
        CHECK_INT(from_profile(text, "configform", &c, &diag), -ENOENT);
        CHECK_CONTAINS(diag.msg, "config file's form");
        CHECK_INT(from_profile("", "default", &c, &diag), -ENOENT);
        free(text);

        /* Malformed text: the tokenizer's file:line diagnosis comes through. */
        CHECK(from_profile("[default]\naws_access_key_id = A\naws_secret_access_key\n", "default", &c, &diag) < 0);
        CHECK_CONTAINS(diag.msg, "/home/u/.aws/credentials:3");
        CHECK(from_profile("[default\n", "default", &c, &diag) < 0);
        CHECK_CONTAINS(diag.msg, "/home/u/.aws/credentials:1");
        CHECK(c == NULL);
        /* A value the tokenizer keeps but that cannot go into a header. */
        CHECK_INT(from_profile("[default]\naws_access_key_id = AKID EXAMPLE\naws_secret_access_key = s\n", "default",
                               &c, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "profile [default]: aws_access_key_id is empty or holds white space");
}

static void test_config_region(void)
{
        static const char config[] =
                "[default]\n"
                "region = eu-west-1\n"
                "[profile work]\n"
                "output = json\n"
                "region=us-west-2\n"
                "[profile   spaced]\n"
                "region = ap-southeast-2\n"
                "[profile bad]\n"
                "region = us-east-1.evil.example\n"
                "[profile upper]\n"
                "region = US-EAST-1\n"
                "[profile blank]\n"
                "region =\n"
                "[credform]\n"
                "region = us-east-2\n"
                "[profile noregion]\n"
                "output = text\n";
        char *region = NULL;

        CHECK_INT(ft_aws_config_region(config, strlen(config), "default", &region), 0);
        CHECK_STR(region, "eu-west-1");
        free(region);
        region = NULL;
        CHECK_INT(ft_aws_config_region(config, strlen(config), "work", &region), 0);
        CHECK_STR(region, "us-west-2");
        free(region);
        region = NULL;
        CHECK_INT(ft_aws_config_region(config, strlen(config), "spaced", &region), 0);
        CHECK_STR(region, "ap-southeast-2");
        free(region);
        region = NULL;
        CHECK_INT(ft_aws_config_region(config, strlen(config), "bad", &region), -EINVAL);
        CHECK_INT(ft_aws_config_region(config, strlen(config), "upper", &region), -EINVAL);
        CHECK_INT(ft_aws_config_region(config, strlen(config), "blank", &region), -ENOENT);
        /* The config file names profiles "[profile X]"; a bare "[X]" is not profile X. */
        CHECK_INT(ft_aws_config_region(config, strlen(config), "credform", &region), -ENOENT);
        CHECK_INT(ft_aws_config_region(config, strlen(config), "noregion", &region), -ENOENT);
        CHECK_INT(ft_aws_config_region(config, strlen(config), "absent", &region), -ENOENT);
        CHECK_INT(ft_aws_config_region("[profile default]\nregion = sa-east-1\n", 37, "default", &region), 0);
        CHECK_STR(region, "sa-east-1");
        free(region);
        region = NULL;
        CHECK(ft_aws_config_region("[default\nregion = x\n", 20, "default", &region) < 0);
        CHECK(region == NULL);
}

/* ---- credentials JSON ---- */

static int parse_json(const char *text, struct ft_aws_creds **c, struct ft_diag *diag)
{
        ft_diag_clear(diag);
        *c = NULL;
        return ft_aws_creds_parse_json(text, strlen(text), c, diag);
}

static void test_json_captured(void)
{
        static const struct {
                const char *file, *access_key_id, *secret, *token, *role_arn, *account_id;
        } cases[] = {
                { "imds-credentials.json", "ASIAEXAMPLEIMDS00001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEIMDS",
                  "IQoJb3JpZ2luX2VjEXAMPLE-FAKE-SESSION-TOKEN-IMDS", NULL, NULL },
                { "container-credentials.json", "ASIAEXAMPLECONT00001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLECONT",
                  "IQoJb3JpZ2luX2VjEXAMPLE-FAKE-SESSION-TOKEN-CONTAINER",
                  "arn:aws:iam::111122223333:role/example-task-role", NULL },
                { "eks-pod-identity-credentials.json", "ASIAEXAMPLEPODID0001",
                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEPODI", "IQoJb3JpZ2luX2VjEXAMPLE-FAKE-SESSION-TOKEN-PODIDENTITY",
                  NULL, "111122223333" },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                char rel[256];
                struct ft_diag diag = { 0 };
                struct ft_aws_creds *c = NULL;
                size_t len;
                char *body;

                snprintf(rel, sizeof(rel), "vectors/captured/%s", cases[i].file);
                body = test_read_shared(rel, &len);
                CHECK(body != NULL);
                if (!body)
                        continue;
                CHECK_INT(ft_aws_creds_parse_json(body, len, &c, &diag), 0);
                free(body);
                if (!c)
                        continue;
                CHECK_STR(c->access_key_id, cases[i].access_key_id);
                CHECK_STR(c->secret_access_key, cases[i].secret);
                CHECK_STR(c->session_token, cases[i].token);
                CHECK_INT(c->expiration, EXPIRATION);
                if (cases[i].role_arn)
                        CHECK_STR(c->role_arn, cases[i].role_arn);
                else
                        CHECK(c->role_arn == NULL);
                if (cases[i].account_id)
                        CHECK_STR(c->account_id, cases[i].account_id);
                else
                        CHECK(c->account_id == NULL);
                ft_aws_creds_free(c);
        }
}

static void test_json_errors(void)
{
#define GOOD_KEYS "\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\",\"Token\":\"t\""
        static const struct {
                const char *body;
                int want;
                const char *want_msg;
        } cases[] = {
                { "{" GOOD_KEYS ",\"Expiration\":\"2025-12-01T18:00:00Z\"}", 0, NULL },
                { "{\"Code\":\"Success\"," GOOD_KEYS ",\"Expiration\":\"2025-12-01T18:00:00.000Z\"}", 0, NULL },
                { "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot assume the role "
                  "example-role.\",\"LastUpdated\":\"2025-12-01T11:55:00Z\"}", -EACCES,
                  "answered Code \"AssumeRoleUnauthorizedAccess\": EC2 cannot assume the role example-role." },
                /* Keys next to a failure Code are not trusted. */
                { "{\"Code\":\"InternalError\"," GOOD_KEYS ",\"Expiration\":\"2025-12-01T18:00:00Z\"}", -EACCES,
                  "Code \"InternalError\"" },
                { "{\"Code\":\"InvalidToken\",\"Message\":\"The authorization token is not valid\"}", -EACCES,
                  "Code \"InvalidToken\": The authorization token is not valid" },
                { "{\"Message\":\"Unauthorized\"}", -EACCES, "without credentials: Unauthorized" },
                { "{\"Code\":\"Bad\\u0007\\nCode\"}", -EACCES, "Code \"Bad??Code\"" },
                { "{\"Code\":42," GOOD_KEYS ",\"Expiration\":\"2025-12-01T18:00:00Z\"}", -EBADMSG,
                  "Code is not a string" },
                { "{" GOOD_KEYS "}", -EBADMSG, "no Expiration string" },
                { "{\"AccessKeyId\":\"ASIA1\",\"Token\":\"t\",\"Expiration\":\"2025-12-01T18:00:00Z\"}", -EBADMSG,
                  "no SecretAccessKey string" },
                { "{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"x\"}", -EBADMSG,
                  "no AccessKeyId string" },
                { "{" GOOD_KEYS ",\"Expiration\":\"Mon, 01 Dec 2025 18:00:00 GMT\"}", -EBADMSG,
                  "Expiration \"Mon, 01 Dec 2025 18:00:00 GMT\" is not an RFC 3339 time" },
                { "{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s s\",\"Token\":\"t\","
                  "\"Expiration\":\"2025-12-01T18:00:00Z\"}", -EBADMSG, "SecretAccessKey is empty or holds" },
                { "{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                  "\"Expiration\":\"2025-12-01T18:00:00Z\"}", -EBADMSG, "AccessKeyId is empty" },
                { "{" GOOD_KEYS ",\"Expiration\":\"2025-12-01T18:00:00Z\"} {}", -EBADMSG, "not a JSON object" },
                { "{" GOOD_KEYS ",\"Expiration\":\"2025-12-01T18:00:00Z\"", -EBADMSG, "not a JSON object" },
                { "[]", -EBADMSG, "not a JSON object" },
                { "null", -EBADMSG, "not a JSON object" },
                { "", -EBADMSG, "not a JSON object" },
                { "<html>503 Service Unavailable</html>", -EBADMSG, "not a JSON object" },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                struct ft_diag diag = { 0 };
                struct ft_aws_creds *c = NULL;
                int r = parse_json(cases[i].body, &c, &diag);

                CHECK_INT(r, cases[i].want);
                if (r != cases[i].want)
                        fprintf(stderr, "  case %zu: %s\n", i, diag.msg);
                if (cases[i].want_msg)
                        CHECK_CONTAINS(diag.msg, cases[i].want_msg);
                CHECK(r == 0 ? c != NULL : c == NULL);
                ft_aws_creds_free(c);
        }
        {
                struct ft_diag diag = { 0 };
                struct ft_aws_creds *c = NULL;

                parse_json("{\"Code\":\"AssumeRoleUnauthorizedAccess\"}", &c, &diag);
                CHECK_STR(diag.code, "AssumeRoleUnauthorizedAccess");
                CHECK_INT(diag.retry, FT_RETRY_SLOW);
        }
        /* Over 64 KiB is refused before parsing, even when it is valid JSON. */
        {
                size_t n = 64 * 1024 + 1;
                char *big = malloc(n + 1);
                struct ft_diag diag = { 0 };
                struct ft_aws_creds *c = NULL;
                int o = snprintf(big, n + 1, "{" GOOD_KEYS ",\"Expiration\":\"2025-12-01T18:00:00Z\"}");

                memset(big + o, ' ', n - (size_t)o);
                big[n] = '\0';
                CHECK_INT(ft_aws_creds_parse_json(big, n, &c, &diag), -EBADMSG);
                CHECK_CONTAINS(diag.msg, "65537 bytes");
                CHECK_INT(ft_aws_creds_parse_json(big, n - 1, &c, &diag), 0);
                ft_aws_creds_free(c);
                free(big);
        }
#undef GOOD_KEYS
}

/* ---- IMDSv2 requests against the SDK's ---- */

/* The value of header `name` in a captured raw request, or NULL; static buffer. */
static const char *captured_header(const char *raw, const char *name)
{
        static char value[1024];
        const char *p = strstr(raw, "\r\n");

        while (p && strncmp(p, "\r\n\r\n", 4) != 0) {
                const char *line = p + 2, *end = strstr(line, "\r\n"), *colon = memchr(line, ':', (size_t)(end - line));

                if (colon && (size_t)(colon - line) == strlen(name) && strncasecmp(line, name, strlen(name)) == 0) {
                        const char *v = colon + 1;
                        while (*v == ' ')
                                v++;
                        snprintf(value, sizeof(value), "%.*s", (int)(end - v), v);
                        return value;
                }
                p = end;
        }
        return NULL;
}

/*
 * The built request must have the captured method and path, every captured
 * header except those curl adds itself (Host, Connection, Content-Length), no
 * header the SDK did not send, and a body exactly when Content-Length was sent.
 */
static void check_against_capture(const struct ft_request *req, const char *capture)
{
        static const char *const transport[] = { "host", "connection", "content-length" };
        char method[16], target[512], url[600];
        size_t len, n_captured = 0;
        char *raw = test_read_shared(capture, &len);
        const char *p;

        CHECK(raw != NULL && req != NULL);
        if (!raw || !req) {
                free(raw);
                return;
        }
        CHECK_INT(sscanf(raw, "%15s %511s HTTP/1.1\r\n", method, target), 2);
        CHECK_STR(req->method, method);
        snprintf(url, sizeof(url), "http://%s%s", captured_header(raw, "Host"), target);
        CHECK_STR(req->url, url);
        for (p = strstr(raw, "\r\n") + 2; strncmp(p, "\r\n", 2) != 0; p = strstr(p, "\r\n") + 2) {
                char name[128];
                bool skip = false;

                if (sscanf(p, "%127[^:]:", name) != 1)
                        break;
                for (size_t i = 0; i < FT_ELEMENTSOF(transport); i++)
                        skip |= strcasecmp(name, transport[i]) == 0;
                if (skip)
                        continue;
                n_captured++;
                CHECK_STR(ft_request_header(req, name), captured_header(raw, name));
        }
        CHECK_INT(req->n_headers, n_captured);
        if (captured_header(raw, "Content-Length")) {
                CHECK(req->body != NULL);
                CHECK_INT(req->body_len, atoi(captured_header(raw, "Content-Length")));
        } else {
                CHECK(req->body == NULL);
        }
        free(raw);
}

static void test_imds_requests(void)
{
        const char *ep = CAPTURE_ENDPOINT;
        struct ft_request *req = NULL;
        size_t len;
        char *token_body = test_read_shared("vectors/captured/imds-token.txt", &len);
        char *role_body = test_read_shared("vectors/captured/imds-role-name.txt", NULL);
        char *token = NULL, *role = NULL;
        struct ft_diag diag = { 0 };

        CHECK(token_body && role_body);
        if (!token_body || !role_body)
                goto out;
        CHECK_INT(ft_imds_parse_token(token_body, len, &token, &diag), 0);
        CHECK_STR(token, "AQAEAFAKE-IMDSv2-SESSION-TOKEN-EXAMPLE==");
        CHECK_INT(ft_imds_parse_role(role_body, strlen(role_body), &role, &diag), 0);
        CHECK_STR(role, "example-workload-role");
        if (!token || !role)
                goto out;

        CHECK_INT(ft_imds_build_token(ep, FT_IMDS_TOKEN_TTL, &req), 0);
        check_against_capture(req, "vectors/captured/imds-token-put.http");
        ft_request_free(req);
        req = NULL;
        CHECK_INT(ft_imds_build_role(ep, token, &req), 0);
        check_against_capture(req, "vectors/captured/imds-role-name-get.http");
        ft_request_free(req);
        req = NULL;
        CHECK_INT(ft_imds_build_creds(CAPTURE_ENDPOINT "/", token, role, &req), 0);
        check_against_capture(req, "vectors/captured/imds-credentials-get.http");
        ft_request_free(req);
        req = NULL;

        /* The default endpoints, IPv4 and IPv6. */
        CHECK_INT(ft_imds_build_token(FT_IMDS_DEFAULT_ENDPOINT, 60, &req), 0);
        CHECK_STR(req ? req->url : NULL, "http://169.254.169.254/latest/api/token");
        CHECK_STR(ft_request_header(req, "x-aws-ec2-metadata-token-ttl-seconds"), "60");
        ft_request_free(req);
        req = NULL;
        CHECK_INT(ft_imds_build_role(FT_IMDS_DEFAULT_ENDPOINT_V6 "/", token, &req), 0);
        CHECK_STR(req ? req->url : NULL, "http://[fd00:ec2::254]/latest/meta-data/iam/security-credentials/");
        ft_request_free(req);
        req = NULL;
        /* Role names are one path segment: IAM's own characters stay, the rest is escaped. */
        CHECK_INT(ft_imds_build_creds(FT_IMDS_DEFAULT_ENDPOINT, token, "a+b=c,d.e@f-g_h", &req), 0);
        CHECK_STR(req ? req->url : NULL, "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
                                         "a+b=c,d.e@f-g_h");
        ft_request_free(req);
        req = NULL;
        CHECK_INT(ft_imds_build_creds(FT_IMDS_DEFAULT_ENDPOINT, token, "a b?c#d%e", &req), 0);
        CHECK_STR(req ? req->url : NULL, "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
                                         "a%20b%3Fc%23d%25e");
        ft_request_free(req);
        req = NULL;

        /* Refusals: nothing is built. */
        CHECK_INT(ft_imds_build_token(ep, 0, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token(ep, 21601, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token("http://169.254.169.254/latest", 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token("http://169.254.169.254?x=1", 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token("http://169.254.169.254//", 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token("ftp://169.254.169.254", 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token("169.254.169.254", 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token("http://u@169.254.169.254", 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token("http://169.254.169.254 ", 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_token(NULL, 60, &req), -EINVAL);
        CHECK_INT(ft_imds_build_role(ep, "", &req), -EINVAL);
        CHECK_INT(ft_imds_build_role(ep, "tok\r\nX-Injected: 1", &req), -EINVAL);
        CHECK_INT(ft_imds_build_role(ep, NULL, &req), -EINVAL);
        CHECK_INT(ft_imds_build_creds(ep, token, "a/b", &req), -EINVAL);
        CHECK_INT(ft_imds_build_creds(ep, token, "..", &req), -EINVAL);
        CHECK_INT(ft_imds_build_creds(ep, token, ".", &req), -EINVAL);
        CHECK_INT(ft_imds_build_creds(ep, token, "role\n", &req), -EINVAL);
        CHECK_INT(ft_imds_build_creds(ep, token, "", &req), -EINVAL);
        CHECK(req == NULL);
out:
        free(token);
        free(role);
        free(token_body);
        free(role_body);
}

static void test_imds_parsers(void)
{
        struct ft_diag diag = { 0 };
        char name128[129], *s = NULL;

        CHECK_INT(ft_imds_parse_role("\n\n  role-a \r\nrole-b\n", 21, &s, &diag), 0);
        CHECK_STR(s, "role-a");
        free(s);
        s = NULL;
        CHECK_INT(ft_imds_parse_role("", 0, &s, &diag), -ENOENT);
        CHECK_CONTAINS(diag.msg, "attach an instance profile");
        CHECK_INT(ft_imds_parse_role(" \r\n\t\n", 5, &s, &diag), -ENOENT);
        CHECK_INT(ft_imds_parse_role("bad/role\n", 9, &s, &diag), -EBADMSG);
        CHECK_CONTAINS(diag.msg, "\"bad/role\"");
        CHECK_INT(ft_imds_parse_role("role a\n", 7, &s, &diag), -EBADMSG);
        CHECK_INT(ft_imds_parse_role("role\0x\n", 7, &s, &diag), -EBADMSG);
        CHECK_INT(ft_imds_parse_role("<html>", 6, &s, &diag), -EBADMSG);
        memset(name128, 'r', 128);
        name128[128] = '\0';
        CHECK_INT(ft_imds_parse_role(name128, 128, &s, &diag), 0);
        CHECK_INT(s ? strlen(s) : 0, 128);
        free(s);
        s = NULL;
        CHECK_INT(ft_imds_parse_role("rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"
                                     "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr", 129, &s, &diag), -EBADMSG);
        CHECK(s == NULL);

        CHECK_INT(ft_imds_parse_token("  AQAE-token==\n", 15, &s, &diag), 0);
        CHECK_STR(s, "AQAE-token==");
        free(s);
        s = NULL;
        CHECK_INT(ft_imds_parse_token("", 0, &s, &diag), -EBADMSG);
        CHECK_INT(ft_imds_parse_token("\r\n", 2, &s, &diag), -EBADMSG);
        CHECK_INT(ft_imds_parse_token("two words", 9, &s, &diag), -EBADMSG);
        CHECK(!strstr(diag.msg, "two words"));
        CHECK_INT(ft_imds_parse_token("tok\0en", 6, &s, &diag), -EBADMSG);
        {
                char big[4098];

                memset(big, 'A', sizeof(big));
                CHECK_INT(ft_imds_parse_token(big, sizeof(big), &s, &diag), -EBADMSG);
                CHECK_INT(ft_imds_parse_token(big, 4096, &s, &diag), 0);
                free(s);
                s = NULL;
        }
}

static void test_imds_status(void)
{
        static const struct {
                long status;
                const char *step;
                enum ft_retry retry;
                const char *want;
        } cases[] = {
                { 400, "token", FT_RETRY_SLOW, "malformed" },
                { 401, "credentials", FT_RETRY_NOW, "token is missing, invalid or expired" },
                { 401, "role", FT_RETRY_NOW, "401 to the role request" },
                { 403, "token", FT_RETRY_SLOW, "raise the instance's HttpPutResponseHopLimit to 2" },
                { 403, "token", FT_RETRY_SLOW, "X-Forwarded-For" },
                { 403, "role", FT_RETRY_SLOW, "disabled" },
                { 404, "role", FT_RETRY_SLOW, "no IAM instance profile is attached" },
                { 404, "credentials", FT_RETRY_SLOW, "404 to the credentials request" },
                { 404, "token", FT_RETRY_SLOW, "IMDSv2" },
                { 405, "token", FT_RETRY_SLOW, "405" },
                { 429, "credentials", FT_RETRY_BACKOFF, "throttles" },
                { 500, "token", FT_RETRY_BACKOFF, "500" },
                { 503, "role", FT_RETRY_BACKOFF, "503" },
                { 302, "role", FT_RETRY_BACKOFF, "unexpected HTTP status 302" },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                struct ft_diag diag = { .code = "stale" };

                ft_imds_explain_status(cases[i].status, cases[i].step, &diag);
                CHECK_INT(diag.retry, cases[i].retry);
                CHECK_INT(diag.http_status, cases[i].status);
                CHECK_CONTAINS(diag.msg, cases[i].want);
                CHECK_STR(diag.code, "");
        }
        ft_imds_explain_status(500, NULL, NULL);
}

/* ---- container provider and the plain-http rule ---- */

static void test_container_url(void)
{
        static const char *const allowed[] = {
                "https://example.com/creds",
                "https://169.254.170.3/creds",
                "HTTPS://EXAMPLE.COM/x",
                "http://127.0.0.1:8081/v1/credentials",
                "http://127.0.0.1",
                "http://127.255.255.254/x",
                "http://localhost/x",
                "http://LOCALHOST:8080/x",
                "http://[::1]:8080/x",
                "http://[0:0:0:0:0:0:0:1]/x",
                "http://169.254.170.2/v2/credentials/abc",
                "http://169.254.170.23/v1/credentials",
                "http://[fd00:ec2::23]/v1/credentials",
                "http://[fd00:0ec2:0:0:0:0:0:23]/v1/credentials",
        };
        static const struct {
                const char *url, *host;   /* host: the one the diagnosis names, or NULL */
        } refused[] = {
                { "http://169.254.170.3/", "169.254.170.3" },
                { "http://example.com/", "example.com" },
                { "http://127.0.0.1.evil.com/", "127.0.0.1.evil.com" },
                { "http://[::2]/", "::2" },
                { "http://localhost.evil.com/", "localhost.evil.com" },
                { "http://169.254.169.254/latest/meta-data/", "169.254.169.254" },
                { "http://[fd00:ec2::254]/", "fd00:ec2::254" },
                { "http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1" },
                { "http://[127.0.0.1]/", "127.0.0.1" },
                { "http://127.1/", "127.1" },
                { "http://0x7f000001/", "0x7f000001" },
                { "http://2130706433/", "2130706433" },
                { "http://0177.0.0.1/", "0177.0.0.1" },
                { "http://[fe80::1%25eth0]/", NULL },
                { "http://127.0.0.1@evil.com/", NULL },
                { "http://127.0.0.1:80@evil.com/", NULL },
                { "http://user:pass@127.0.0.1/", NULL },
                { "http://127.0.0.1\\@evil.com/", NULL },
                { "http://127.0.0.1 /", NULL },
                { "http://127.0.0.1/\n", NULL },
                { "ftp://127.0.0.1/", NULL },
                { "file:///etc/passwd", NULL },
                { "127.0.0.1/creds", NULL },
                { "http://", NULL },
        };
        struct ft_diag diag = { 0 };
        char *url = NULL;

        for (size_t i = 0; i < FT_ELEMENTSOF(allowed); i++) {
                url = NULL;
                CHECK_INT(ft_container_url(NULL, allowed[i], &url, &diag), 0);
                CHECK_STR(url, allowed[i]);
                CHECK(ft_aws_http_allowed(allowed[i]));
                free(url);
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(refused); i++) {
                url = NULL;
                ft_diag_clear(&diag);
                CHECK_INT(ft_container_url("", refused[i].url, &url, &diag), -EINVAL);
                CHECK(url == NULL);
                CHECK_CONTAINS(diag.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
                if (refused[i].host) {
                        char want[128];

                        snprintf(want, sizeof(want), "host \"%s\" is none of these", refused[i].host);
                        CHECK_CONTAINS(diag.msg, want);
                        CHECK_CONTAINS(diag.msg, "plain http is allowed only to loopback");
                }
        }

        /* RELATIVE_URI wins, and must be a path. */
        CHECK_INT(ft_container_url("/v2/credentials/abc", "http://example.com/", &url, &diag), 0);
        CHECK_STR(url, "http://169.254.170.2/v2/credentials/abc");
        free(url);
        url = NULL;
        CHECK_INT(ft_container_url("v2/credentials", NULL, &url, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \"v2/credentials\" must be a path");
        CHECK_INT(ft_container_url("@evil.com/x", NULL, &url, &diag), -EINVAL);
        CHECK_INT(ft_container_url("/a b", NULL, &url, &diag), -EINVAL);
        CHECK_INT(ft_container_url(NULL, NULL, &url, &diag), -ENOENT);
        CHECK_INT(ft_container_url("", "", &url, &diag), -ENOENT);
        CHECK(url == NULL);
}

static void test_http_allowed(void)
{
        CHECK(ft_aws_http_allowed("http://169.254.169.254/latest/api/token"));
        CHECK(ft_aws_http_allowed("http://[fd00:ec2::254]/latest/api/token"));
        CHECK(ft_aws_http_allowed("HTTP://127.0.0.1:8081/"));
        CHECK(ft_aws_http_allowed("https://sts.us-east-2.amazonaws.com/"));
        CHECK(!ft_aws_http_allowed("http://sts.us-east-2.amazonaws.com/"));
        CHECK(!ft_aws_http_allowed("http://169.254.169.253/"));
        CHECK(!ft_aws_http_allowed("http://169.254.169.254.evil.com/"));
        CHECK(!ft_aws_http_allowed("http://[fd00:ec2::255]/"));
        CHECK(!ft_aws_http_allowed("http://127.0.0.1@evil.com/"));
        CHECK(!ft_aws_http_allowed("ftp://127.0.0.1/"));
        CHECK(!ft_aws_http_allowed("httpx://127.0.0.1/"));
        CHECK(!ft_aws_http_allowed(""));
        CHECK(!ft_aws_http_allowed(NULL));
}

static void test_container_build(void)
{
        static const struct {
                const char *url, *capture;
        } cases[] = {
                { "http://127.0.0.1:8081/v1/credentials", "vectors/captured/container-credentials-get.http" },
                { "http://127.0.0.1:8081/v1/pod-identity", "vectors/captured/eks-pod-identity-credentials-get.http" },
        };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        char *auth = test_read_shared("vectors/captured/container-authorization-token.txt", NULL);

        CHECK(auth != NULL);
        if (!auth)
                return;
        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                req = NULL;
                CHECK_INT(ft_container_build(cases[i].url, auth, &req, &diag), 0);
                check_against_capture(req, cases[i].capture);
                ft_request_free(req);
        }
        req = NULL;
        CHECK_INT(ft_container_build("http://169.254.170.23/v1/credentials", NULL, &req, &diag), 0);
        CHECK_INT(req ? req->n_headers : 99, 0);
        CHECK_STR(req ? req->method : NULL, "GET");
        ft_request_free(req);
        req = NULL;
        CHECK_INT(ft_container_build("http://169.254.170.23/v1/credentials", "", &req, &diag), 0);
        CHECK_INT(req ? req->n_headers : 99, 0);
        ft_request_free(req);
        req = NULL;
        /* A token file with a trailing newline is refused, as the SDKs do, and never printed. */
        CHECK_INT(ft_container_build("http://169.254.170.23/v1/credentials", "SECRET-TOKEN\n", &req, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
        CHECK(!strstr(diag.msg, "SECRET-TOKEN"));
        CHECK_INT(ft_container_build("http://169.254.170.23/v1/credentials", "a\rb", &req, &diag), -EINVAL);
        CHECK_INT(ft_container_build("http://example.com/v1/credentials", auth, &req, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "host \"example.com\"");
        CHECK(req == NULL);
        free(auth);
}

int main(void)
{
        test_env();
        test_profile();
        test_config_region();
        test_json_captured();
        test_json_errors();
        test_imds_requests();
        test_imds_parsers();
        test_imds_status();
        test_container_url();
        test_http_allowed();
        test_container_build();
        return test_summary();
}
