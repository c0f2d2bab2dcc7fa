/* SPDX-License-Identifier: MIT */
/*
 * test_config.c: fedtokend.conf: defaults, every error class with its
 * file:line and key, the long values libinih cuts, every environment
 * override, the example file, and dump → parse round trips.
 */
#include <errno.h>

#include "config.h"
#include "ini.h"
#include "test.h"

#define MIN_JWT "[jwt.a]\naudience = api://AzureADTokenExchange\n"
#define GUID1 "8b7c6f3e-0d4a-4c1e-9f2b-3a5d6e7f8091"
#define GUID2 "72F988BF-86F1-41AF-91AB-2D7CD011DB47"
#define GCP_AUD "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/p/providers/x"

/* A fixed environment: NULL-terminated name/value pairs. */
struct fake_env {
        const char *vars[16][2];
};

static const char *fake_getenv(const char *name, void *userdata)
{
        const struct fake_env *e = userdata;

        for (size_t i = 0; i < FT_ELEMENTSOF(e->vars) && e->vars[i][0]; i++)
                if (strcmp(e->vars[i][0], name) == 0)
                        return e->vars[i][1];
        return NULL;
}

static struct ft_config *parse_env(const char *text, const struct fake_env *env)
{
        struct ft_config *c = NULL;
        struct ft_diag diag = { 0 };
        int r = ft_config_parse(text, strlen(text), "t.conf", env ? fake_getenv : NULL, (void *)env, &c, &diag);

        CHECK_INT(r, 0);
        if (r < 0)
                fprintf(stderr, "  unexpected error: %s\n", diag.msg);
        return c;
}

static struct ft_config *parse_ok(const char *text)
{
        return parse_env(text, NULL);
}

/* The parse must fail and the message start with `want` (file:line and key first). */
static void expect_error_env(const char *text, const struct fake_env *env, const char *want)
{
        struct ft_config *c = NULL;
        struct ft_diag diag = { 0 };
        int r = ft_config_parse(text, strlen(text), "t.conf", env ? fake_getenv : NULL, (void *)env, &c, &diag);

        CHECK(r < 0);
        CHECK(c == NULL);
        if (strncmp(diag.msg, want, strlen(want)) == 0) {
                CHECK(true);
        } else {
                CHECK_STR(diag.msg, want);
        }
        ft_config_free(c);
}

static void expect_error(const char *text, const char *want)
{
        expect_error_env(text, NULL, want);
}

/* An error must also say what is allowed. */
static void expect_error_says(const char *text, const char *want, const char *also)
{
        struct ft_config *c = NULL;
        struct ft_diag diag = { 0 };

        CHECK(ft_config_parse(text, strlen(text), "t.conf", NULL, NULL, &c, &diag) < 0);
        CHECK_CONTAINS(diag.msg, want);
        CHECK_CONTAINS(diag.msg, also);
}

static void test_defaults(void)
{
        struct ft_config *c = parse_ok(MIN_JWT "[azure.z]\njwt = a\ntenant_id = " GUID1 "\nclient_id = " GUID2
                                       "\nscope = https://management.azure.com/.default\n"
                                       "[gcp.g]\njwt = a\naudience = " GCP_AUD "\n");
        const struct ft_config_jwt *j;

        if (!c)
                return;
        CHECK_STR(c->filename, "t.conf");
        CHECK_STR(c->daemon.socket, "/run/fedtokend/fedtokend.sock");
        CHECK_INT(c->daemon.socket_mode, 0660);
        CHECK(c->daemon.socket_group == NULL);
        CHECK(c->daemon.ca_file == NULL);
        CHECK_INT(c->daemon.log_level, FT_LOG_INFO);
        CHECK_INT(c->daemon.ready, FT_READY_LISTENING);
        CHECK_INT(c->daemon.min_remaining, 60);
        CHECK_INT(c->daemon.refresh_percent, 50);
        CHECK_INT(c->daemon.refresh_jitter_percent, 10);
        CHECK_INT(c->daemon.refresh_margin, 120);
        CHECK_INT(c->daemon.backoff_initial, 1);
        CHECK_INT(c->daemon.backoff_max, 60);
        CHECK_INT(c->daemon.http_timeout, 10);
        CHECK_INT(c->daemon.max_connections, 1024);
        CHECK(!c->daemon.acl.set);
        CHECK_INT(c->daemon.acl.n_users + c->daemon.acl.n_groups, 0);

        CHECK(c->aws.region == NULL);
        CHECK_INT(c->aws.credentials, FT_CREDS_AUTO);
        CHECK_STR(c->aws.profile, "default");
        CHECK(c->aws.shared_credentials_file == NULL && c->aws.config_file == NULL);
        CHECK(c->aws.sts_endpoint == NULL && c->aws.imds_endpoint == NULL);
        CHECK(!c->aws.use_fips_endpoint && !c->aws.use_dualstack_endpoint);
        CHECK(!c->aws.imds_ipv6 && !c->aws.imds_disabled);
        CHECK(c->aws.web_identity_token_file == NULL && c->aws.role_arn == NULL);
        CHECK_STR(c->aws.role_session_name, "fedtokend");
        CHECK(c->aws.container_relative_uri == NULL && c->aws.container_full_uri == NULL);
        CHECK(c->aws.container_token_file == NULL);
        CHECK_INT(c->aws.credentials_refresh, 900);

        CHECK_INT(c->n_jwts, 1);
        j = c->jwts[0];
        CHECK_STR(j->name, "a");
        CHECK_INT(j->line, 1);
        CHECK_INT(j->n_audiences, 1);
        CHECK_STR(j->audiences[0], "api://AzureADTokenExchange");
        CHECK_STR(j->signing_algorithm, "RS256");
        CHECK_INT(j->duration, 300);
        CHECK(!j->duration_set);
        CHECK_INT(j->n_tags, 0);
        CHECK(!j->verify);
        CHECK(j->file.path == NULL && j->file.group == NULL);
        CHECK_INT(j->file.mode, 0600);
        CHECK(!j->acl.set);
        CHECK(ft_config_find_jwt(c, "a") == j);
        CHECK(ft_config_find_jwt(c, "b") == NULL);
        CHECK(ft_config_find_jwt(c, NULL) == NULL);

        CHECK_INT(c->n_azures, 1);
        CHECK_STR(c->azures[0]->name, "z");
        CHECK_INT(c->azures[0]->line, 3);
        CHECK_STR(c->azures[0]->jwt, "a");
        CHECK_STR(c->azures[0]->tenant_id, GUID1);
        CHECK_STR(c->azures[0]->client_id, GUID2);
        CHECK_STR(c->azures[0]->authority, "https://login.microsoftonline.com");
        CHECK_INT(c->azures[0]->file.mode, 0600);

        CHECK_INT(c->n_gcps, 1);
        CHECK_STR(c->gcps[0]->audience, GCP_AUD);
        CHECK_STR(c->gcps[0]->scope, "https://www.googleapis.com/auth/cloud-platform");
        CHECK(c->gcps[0]->service_account == NULL && c->gcps[0]->external_account_file == NULL);
        CHECK_INT(c->gcps[0]->lifetime, 3600);
        CHECK_STR(c->gcps[0]->sts_endpoint, "https://sts.googleapis.com/v1/token");
        CHECK_STR(c->gcps[0]->iam_endpoint, "https://iamcredentials.googleapis.com");
        ft_config_free(c);

        CHECK_STR(ft_cred_provider_name(FT_CREDS_WEB_IDENTITY), "web-identity");
        CHECK_STR(ft_cred_provider_name(FT_CREDS_IMDS), "imds");
        CHECK_STR(ft_cred_provider_name((enum ft_cred_provider)99), "unknown");
}

static void test_values(void)
{
        struct ft_config *c = parse_ok(
                "[daemon]\nsocket = /tmp/s.sock\nsocket_mode = 660\nsocket_group = 998\nlog_level = DEBUG\n"
                "ready = tokens\nmin_remaining = 0\nrefresh_percent = 90\nrefresh_jitter_percent = 25\n"
                "refresh_margin = 1800\nbackoff_initial = 600\nbackoff_max = 600\nhttp_timeout = 120\n"
                "max_connections = 65536\nallow_users = root  1000\tsvc-app\nallow_groups =\n"
                "[aws]\ncredentials = Web-Identity\nweb_identity_token_file = /t\nrole_arn = "
                "arn:aws-us-gov:iam::123456789012:role/path/to/r.x\nimds_endpoint_mode = ipv6\n"
                "imds_endpoint = http://[fd00:ec2::254]/\nuse_fips_endpoint = yes\nuse_dualstack_endpoint = ON\n"
                "imds_disabled = 0\n"
                "[jwt.a]\naudience = a  b\tc\nsigning_algorithm = ES384\nduration = 3600\nverify = true\n"
                "file = /run/t/a.jwt\nfile_mode = 0\nfile_group = tokens\nallow_groups = g1\n"
                "tag.team/app = web 01\ntag.cost:center = \"  x=y+z@w.  \"\n");

        if (!c)
                return;
        CHECK_INT(c->daemon.socket_mode, 0660);
        CHECK_STR(c->daemon.socket_group, "998");
        CHECK_INT(c->daemon.log_level, FT_LOG_DEBUG);
        CHECK_INT(c->daemon.ready, FT_READY_TOKENS);
        CHECK_INT(c->daemon.max_connections, 65536);
        CHECK(c->daemon.acl.set);
        CHECK_INT(c->daemon.acl.n_users, 3);
        CHECK_STR(c->daemon.acl.users[2], "svc-app");
        CHECK_INT(c->daemon.acl.n_groups, 0);
        CHECK_INT(c->aws.credentials, FT_CREDS_WEB_IDENTITY);
        CHECK(c->aws.imds_ipv6 && c->aws.use_fips_endpoint && c->aws.use_dualstack_endpoint);
        CHECK(!c->aws.imds_disabled);
        /* A base URL loses its trailing '/' so paths can be appended. */
        CHECK_STR(c->aws.imds_endpoint, "http://[fd00:ec2::254]");
        CHECK_INT(c->jwts[0]->n_audiences, 3);
        CHECK_STR(c->jwts[0]->audiences[1], "b");
        CHECK_STR(c->jwts[0]->signing_algorithm, "ES384");
        CHECK(c->jwts[0]->duration_set && c->jwts[0]->verify);
        CHECK_INT(c->jwts[0]->file.mode, 0);
        CHECK(c->jwts[0]->acl.set);
        CHECK_INT(c->jwts[0]->acl.n_users, 0);
        CHECK_INT(c->jwts[0]->n_tags, 2);
        CHECK_STR(c->jwts[0]->tag_keys[0], "team/app");
        CHECK_STR(c->jwts[0]->tag_values[0], "web 01");
        CHECK_STR(c->jwts[0]->tag_values[1], "  x=y+z@w.  ");
        ft_config_free(c);
}

/* The token-file default: 3600 s when the token goes to a file and no duration is given. */
static void test_duration_rule(void)
{
        struct ft_config *c = parse_ok("[jwt.f]\naudience = x\nfile = /run/f.jwt\n"
                                       "[jwt.g]\naudience = x\nfile = /run/g.jwt\nduration = 600\n"
                                       "[jwt.h]\naudience = x\n"
                                       "[jwt.i]\nduration = 300\naudience = x\nfile = /run/i.jwt\n");

        if (!c)
                return;
        CHECK_INT(c->jwts[0]->duration, 3600);
        CHECK(!c->jwts[0]->duration_set);
        CHECK_INT(c->jwts[1]->duration, 600);
        CHECK(c->jwts[1]->duration_set);
        CHECK_INT(c->jwts[2]->duration, 300);
        CHECK(!c->jwts[2]->duration_set);
        /* An explicit 300 stays 300, whatever order the keys come in. */
        CHECK_INT(c->jwts[3]->duration, 300);
        CHECK(c->jwts[3]->duration_set);
        ft_config_free(c);
}

static void test_structure_errors(void)
{
        expect_error("", "t.conf: no [jwt.NAME] section, so there is no token to fetch; add one, for example "
                         "\"[jwt.azure]\" with \"audience = api://AzureADTokenExchange\"");
        expect_error("# only comments\n[daemon]\n[aws]\n", "t.conf: no [jwt.NAME] section");
        expect_error("socket = /x\n" MIN_JWT, "t.conf:1: socket: a key before any section header");
        expect_error(MIN_JWT "[jwtx.b]\n", "t.conf:3: [jwtx.b]: unknown section; the sections are [daemon], "
                                           "[aws], [jwt.NAME], [azure.NAME] and [gcp.NAME]");
        expect_error(MIN_JWT "[profile dev]\n", "t.conf:3: [profile dev]: unknown section");
        expect_error(MIN_JWT "[jwt]\n", "t.conf:3: [jwt]: needs a name, as in [jwt.NAME]");
        expect_error(MIN_JWT "[jwt.]\n", "t.conf:3: [jwt.]: the name is not valid");
        expect_error(MIN_JWT "[jwt.a.b]\n", "t.conf:3: [jwt.a.b]: the name is not valid: expected a "
                                            "section name of 1-64 characters A-Z a-z 0-9 _ -");
        expect_error(MIN_JWT "[azure.two words]\n", "t.conf:3: [azure.two words]: the name is not valid");
        expect_error(MIN_JWT "[daemon.x]\n", "t.conf:3: [daemon.x]: takes no name; write [daemon]");
        expect_error(MIN_JWT "\n" MIN_JWT, "t.conf:4: [jwt.a]: defined twice (first on line 1)");
        expect_error("[daemon]\n" MIN_JWT "[daemon]\n", "t.conf:4: [daemon]: defined twice (first on line 1)");
        expect_error(MIN_JWT "[aws]\n[aws]\n", "t.conf:4: [aws]: defined twice (first on line 3)");
        expect_error("[daemon]\nsockett = /x\n", "t.conf:2: [daemon] sockett: unknown key; the keys of [daemon] "
                                                 "are socket, socket_mode, socket_group, ca_file, log_level");
        expect_error(MIN_JWT "audiences = x\n", "t.conf:3: [jwt.a] audiences: unknown key; the keys of "
                                                "[jwt.NAME] are audience, signing_algorithm");
        expect_error_says(MIN_JWT "x = 1\n", "t.conf:3: [jwt.a] x: unknown key", "allow_groups, tag.KEY");
        expect_error("[daemon]\nlog_level = info\n\nlog_level = debug\n",
                     "t.conf:4: [daemon] log_level: given twice in this section (first on line 2)");
        expect_error(MIN_JWT "audience = b\n", "t.conf:3: [jwt.a] audience: given twice in this section (first on "
                                              "line 2)");
        /* Keys are case-sensitive. */
        expect_error("[daemon]\nSocket = /x\n", "t.conf:2: [daemon] Socket: unknown key");
        /* ini.c's errors come through with the file name. */
        expect_error(MIN_JWT "verify\n", "t.conf:3: missing '='");
        expect_error(MIN_JWT "verify = \"true\n", "t.conf:3: value has an opening '\"'");
}

static void test_required(void)
{
        expect_error(MIN_JWT "[jwt.b]\nduration = 60\n", "t.conf:3: [jwt.b] audience: missing; this key is required");
        expect_error(MIN_JWT "\n[azure.z]\njwt = a\ntenant_id = " GUID1 "\nscope = https://x/.default\n",
                     "t.conf:4: [azure.z] client_id: missing; this key is required");
        expect_error(MIN_JWT "[azure.z]\ntenant_id = " GUID1 "\nclient_id = " GUID1 "\nscope = https://x/.default\n",
                     "t.conf:3: [azure.z] jwt: missing");
        expect_error(MIN_JWT "[azure.z]\njwt = a\nclient_id = " GUID1 "\nscope = https://x/.default\n",
                     "t.conf:3: [azure.z] tenant_id: missing");
        expect_error(MIN_JWT "[azure.z]\njwt = a\nclient_id = " GUID1 "\ntenant_id = " GUID1 "\n",
                     "t.conf:3: [azure.z] scope: missing");
        expect_error(MIN_JWT "[gcp.g]\njwt = a\n", "t.conf:3: [gcp.g] audience: missing");
        expect_error(MIN_JWT "[gcp.g]\naudience = " GCP_AUD "\n", "t.conf:3: [gcp.g] jwt: missing");
}

static void test_value_errors(void)
{
        expect_error("[daemon]\nlog_level = loud\n" MIN_JWT,
                     "t.conf:2: [daemon] log_level: \"loud\" is not one of: debug, info, notice, warning, error");
        expect_error("[daemon]\nready = soon\n", "t.conf:2: [daemon] ready: \"soon\" is not one of: listening, tokens");
        expect_error("[aws]\ncredentials = sso\n",
                     "t.conf:2: [aws] credentials: \"sso\" is not one of: auto, env, profile, web-identity, "
                     "container, imds");
        expect_error("[aws]\nimds_endpoint_mode = IPv5\n", "t.conf:2: [aws] imds_endpoint_mode: \"IPv5\" is not one "
                                                          "of: IPv4, IPv6");
        expect_error("[daemon]\nmin_remaining = 3601\n", "t.conf:2: [daemon] min_remaining: 3601 is out of range: "
                                                        "allowed 0-3600");
        expect_error("[daemon]\nmin_remaining = 99999999999999999999999\n",
                     "t.conf:2: [daemon] min_remaining: 99999999999999999999999 is out of range: allowed 0-3600");
        expect_error("[daemon]\nmin_remaining = -1\n", "t.conf:2: [daemon] min_remaining: \"-1\" is not a whole "
                                                      "number: write one in 0-3600");
        expect_error("[daemon]\nhttp_timeout = 10s\n",
                     "t.conf:2: [daemon] http_timeout: \"10s\" is not a whole number");
        expect_error("[daemon]\nrefresh_percent = 9\n", "t.conf:2: [daemon] refresh_percent: 9 is out of range: "
                                                       "allowed 10-90");
        expect_error("[daemon]\nrefresh_percent = 91\n", "t.conf:2: [daemon] refresh_percent: 91 is out of range");
        expect_error("[daemon]\nrefresh_jitter_percent = 26\n", "t.conf:2: [daemon] refresh_jitter_percent: 26 is "
                                                               "out of range: allowed 0-25");
        expect_error("[daemon]\nrefresh_margin = 1801\n", "t.conf:2: [daemon] refresh_margin: 1801 is out of range");
        expect_error("[daemon]\nbackoff_initial = 0\n", "t.conf:2: [daemon] backoff_initial: 0 is out of range: "
                                                       "allowed 1-600");
        expect_error("[daemon]\nbackoff_max = 3601\n", "t.conf:2: [daemon] backoff_max: 3601 is out of range");
        expect_error("[daemon]\nhttp_timeout = 121\n", "t.conf:2: [daemon] http_timeout: 121 is out of range");
        expect_error("[daemon]\nmax_connections = 0\n", "t.conf:2: [daemon] max_connections: 0 is out of range: "
                                                       "allowed 1-65536");
        expect_error("[aws]\ncredentials_refresh = 59\n", "t.conf:2: [aws] credentials_refresh: 59 is out of range: "
                                                         "allowed 60-3600");
        expect_error(MIN_JWT "duration = 59\n", "t.conf:3: [jwt.a] duration: 59 is out of range: allowed 60-3600");
        expect_error(MIN_JWT "duration = 3601\n", "t.conf:3: [jwt.a] duration: 3601 is out of range");
        expect_error(MIN_JWT "[gcp.g]\njwt = a\naudience = " GCP_AUD "\nlifetime = 599\n",
                     "t.conf:6: [gcp.g] lifetime: 599 is out of range: allowed 600-43200");
        expect_error(MIN_JWT "verify = maybe\n", "t.conf:3: [jwt.a] verify: \"maybe\" is not a boolean: use true or "
                                                "false");
        expect_error("[daemon]\nsocket_mode = 0777\n", "t.conf:2: [daemon] socket_mode: \"0777\" is not valid: "
                                                      "expected an octal mode such as 0660 with no permission "
                                                      "outside 0666");
        expect_error(MIN_JWT "file_mode = 0644\n", "t.conf:3: [jwt.a] file_mode: \"0644\" is not valid: expected an "
                                                  "octal mode such as 0600 with no permission outside 0660");
        expect_error(MIN_JWT "file_mode = 0680\n", "t.conf:3: [jwt.a] file_mode: \"0680\" is not valid");
        expect_error(MIN_JWT "file_mode = 00600\n", "t.conf:3: [jwt.a] file_mode: \"00600\" is not valid");
        expect_error("[daemon]\nca_file = certs.pem\n", "t.conf:2: [daemon] ca_file: \"certs.pem\" is not valid: "
                                                       "expected an absolute path");
        expect_error("[daemon]\nca_file =\n", "t.conf:2: [daemon] ca_file: empty value; remove the line to leave it "
                                             "unset");
        expect_error("[daemon]\nsocket = \"\"\n", "t.conf:2: [daemon] socket: empty value; remove the line to use "
                                                 "the default");
        expect_error("[daemon]\nsocket = \" /x\"\n", "t.conf:2: [daemon] socket: the value has white space at the "
                                                    "start or the end");
        expect_error("[daemon]\nsocket = /run/fedtokend/a-socket-path-that-is-much-too-long-for-sun-path-of-a-"
                     "unix-domain-socket-address-in-the-file-system.sock\n",
                     "t.conf:2: [daemon] socket: "
                     "\"/run/fedtokend/a-socket-path-that-is-much-too-long-for-sun-path-...\" "
                     "is not valid: expected an absolute path of at most 107 bytes");
        expect_error(MIN_JWT "file = run/a.jwt\n", "t.conf:3: [jwt.a] file: \"run/a.jwt\" is not valid: expected an "
                                                  "absolute path");
        expect_error(MIN_JWT "file = /run/\n", "t.conf:3: [jwt.a] file: \"/run/\" is not valid: expected an absolute "
                                               "path of a file");
        expect_error("[daemon]\nsocket = /\n", "t.conf:2: [daemon] socket: \"/\" is not valid");
        expect_error(MIN_JWT "signing_algorithm = HS256\n", "t.conf:3: [jwt.a] signing_algorithm: \"HS256\" is not "
                                                           "valid: expected RS256 or ES384");
        expect_error(MIN_JWT "signing_algorithm = rs256\n", "t.conf:3: [jwt.a] signing_algorithm: \"rs256\"");
        expect_error("[aws]\nregion = US-EAST-1\n", "t.conf:2: [aws] region: \"US-EAST-1\" is not valid: expected an "
                                                   "AWS region name such as us-east-1");
        expect_error("[aws]\nprofile = a/b\n", "t.conf:2: [aws] profile: \"a/b\" is not valid");
        expect_error("[aws]\nrole_arn = arn:aws:iam::12345:role/x\n", "t.conf:2: [aws] role_arn: \"arn:aws:iam::12345:"
                                                                     "role/x\" is not valid: expected an IAM role ARN");
        expect_error("[aws]\nrole_arn = arn:aws:iam::123456789012:user/x\n", "t.conf:2: [aws] role_arn:");
        expect_error("[aws]\nrole_session_name = a\n", "t.conf:2: [aws] role_session_name: \"a\" is not valid: "
                                                      "expected 2-64 characters");
        expect_error("[aws]\ncontainer_relative_uri = v2/x\n", "t.conf:2: [aws] container_relative_uri:");
        expect_error("[aws]\nsts_endpoint = http://sts.amazonaws.com\n", "t.conf:2: [aws] sts_endpoint: "
                                                                        "\"http://sts.amazonaws.com\" is not valid: "
                                                                        "expected an https:// URL");
        expect_error("[aws]\nsts_endpoint = https://user@sts.amazonaws.com\n", "t.conf:2: [aws] sts_endpoint:");
        expect_error("[aws]\nsts_endpoint = https://sts.amazonaws.com/?x=1\n", "t.conf:2: [aws] sts_endpoint:");
        expect_error("[aws]\nsts_endpoint = https://\n", "t.conf:2: [aws] sts_endpoint:");
        expect_error("[aws]\nsts_endpoint = https://sts.amazonaws.com/a b\n", "t.conf:2: [aws] sts_endpoint:");
        expect_error("[aws]\nsts_endpoint = https://sts.amazonaws.com/\xc3\xa9\n", "t.conf:2: [aws] sts_endpoint:");
        expect_error("[aws]\nsts_endpoint = https://sts.amazonaws.com/a<b\n", "t.conf:2: [aws] sts_endpoint:");
        expect_error("[aws]\nimds_endpoint = 169.254.169.254\n", "t.conf:2: [aws] imds_endpoint: \"169.254.169.254\" "
                                                                "is not valid: expected an https:// or http:// URL");
        expect_error("[aws]\ncontainer_full_uri = http://example.com/creds\n",
                     "t.conf:2: [aws] container_full_uri: \"http://example.com/creds\" is not valid: expected an "
                     "https:// URL, or http:// only to a loopback address");
        expect_error("[daemon]\nsocket_group = -wheel\n", "t.conf:2: [daemon] socket_group: \"-wheel\" is not valid: "
                                                         "expected a user or group name");
        expect_error("[daemon]\nallow_users = 4294967295\n", "t.conf:2: [daemon] allow_users: \"4294967295\" is not "
                                                            "valid");
        expect_error("[daemon]\nallow_users = 123456789012\n", "t.conf:2: [daemon] allow_users: \"123456789012\"");
        expect_error("[daemon]\nallow_users = a b a\n", "t.conf:2: [daemon] allow_users: \"a\" is listed twice");
        expect_error("[daemon]\nallow_groups = wheel adm! x\n", "t.conf:2: [daemon] allow_groups: \"adm!\" is not "
                                                               "valid");
        expect_error(MIN_JWT "[azure.z]\njwt = a\ntenant_id = contoso.onmicrosoft.com\n",
                     "t.conf:5: [azure.z] tenant_id: \"contoso.onmicrosoft.com\" is not valid: expected a GUID");
        expect_error(MIN_JWT "[azure.z]\njwt = a\nclient_id = " GUID1 "0\n", "t.conf:5: [azure.z] client_id:");
        expect_error(MIN_JWT "[azure.z]\njwt = a\nclient_id = 8b7c6f3e-0d4a-4c1e-9f2b-3a5d6e7f809\n",
                     "t.conf:5: [azure.z] client_id:");
        expect_error(MIN_JWT "[azure.z]\njwt = a\nclient_id = 8b7c6f3e-0d4a-4c1e-9f2b-3a5d6e7f809g\n",
                     "t.conf:5: [azure.z] client_id:");
        expect_error(MIN_JWT "[azure.z]\nscope = https://management.azure.com\n",
                     "t.conf:4: [azure.z] scope: \"https://management.azure.com\" is not valid: expected one "
                     "resource followed by /.default");
        expect_error(MIN_JWT "[azure.z]\nscope = https://a/.default https://b/.default\n", "t.conf:4: [azure.z] "
                                                                                         "scope:");
        expect_error(MIN_JWT "[azure.z]\nscope = /.default\n", "t.conf:4: [azure.z] scope:");
        expect_error(MIN_JWT "[azure.z]\nauthority = http://login.microsoftonline.com\n",
                     "t.conf:4: [azure.z] authority:");
        expect_error(MIN_JWT "[azure.z]\njwt = a.b\n", "t.conf:4: [azure.z] jwt: \"a.b\" is not valid");
        expect_error(MIN_JWT "[gcp.g]\naudience = https://iam.googleapis.com/projects/1\n",
                     "t.conf:4: [gcp.g] audience: \"https://iam.googleapis.com/projects/1\" is not valid: expected "
                     "//iam.googleapis.com/");
        expect_error(MIN_JWT "[gcp.g]\nscope = https://a  https://b\n", "t.conf:4: [gcp.g] scope:");
        expect_error(MIN_JWT "[gcp.g]\nscope = cloud-platform\n", "t.conf:4: [gcp.g] scope:");
        expect_error(MIN_JWT "[gcp.g]\nservice_account = not-an-email\n", "t.conf:4: [gcp.g] service_account: "
                                                                         "\"not-an-email\" is not valid: expected a "
                                                                         "service account email");
        expect_error(MIN_JWT "[gcp.g]\nservice_account = a@b@c.com\n", "t.conf:4: [gcp.g] service_account:");
        expect_error(MIN_JWT "[gcp.g]\niam_endpoint = https://x#y\n", "t.conf:4: [gcp.g] iam_endpoint:");
}

static void test_audiences(void)
{
        char *text = malloc(16 * 1024), *p;
        struct ft_config *c;

        /* Exactly ten; an eleventh is an error naming the limit. */
        c = parse_ok("[jwt.a]\naudience = a1 a2 a3 a4 a5 a6 a7 a8 a9 a10\n");
        if (c)
                CHECK_INT(c->jwts[0]->n_audiences, 10);
        ft_config_free(c);
        expect_error("[jwt.a]\naudience = a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11\n",
                     "t.conf:2: [jwt.a] audience: more than 10 values (the limit)");
        expect_error("[jwt.a]\naudience =\n", "t.conf:2: [jwt.a] audience: needs at least 1 value");
        expect_error("[jwt.a]\naudience = x y x\n", "t.conf:2: [jwt.a] audience: \"x\" is listed twice");

        /* A 1,000-character audience parses; 1,001 does not. */
        p = text + sprintf(text, "[jwt.long]\naudience = ");
        memset(p, 'x', 1000);
        strcpy(p + 1000, "\n");
        c = parse_ok(text);
        if (c) {
                CHECK_INT(strlen(c->jwts[0]->audiences[0]), 1000);
                CHECK_STR(c->jwts[0]->name, "long");
        }
        ft_config_free(c);
        memset(p, 'x', 1001);
        strcpy(p + 1001, "\n");
        expect_error(text, "t.conf:2: [jwt.long] audience: \"xxxxxxxx");
        expect_error_says(text, "[jwt.long] audience:", "expected audiences of at most 1000 characters each");

        /* Ten audiences of 1,000 characters: a 10 KiB line, the tail of it a valid key after. */
        p = text + sprintf(text, "[jwt.wide]\naudience =");
        for (int i = 0; i < 10; i++) {
                *p++ = ' ';
                memset(p, 'a' + i, 1000);
                p += 1000;
        }
        strcpy(p, "\nduration = 900\n");
        c = parse_ok(text);
        if (c) {
                CHECK_INT(c->jwts[0]->n_audiences, 10);
                CHECK_INT(strlen(c->jwts[0]->audiences[9]), 1000);
                CHECK_INT(c->jwts[0]->audiences[9][999], 'j');
                CHECK_INT(c->jwts[0]->duration, 900);
        }
        ft_config_free(c);

        /* A 4 KiB line of many audiences. */
        p = text + sprintf(text, "[jwt.four]\naudience =");
        for (int i = 0; i < 10; i++)
                p += sprintf(p, " https://audience-%d.example.com/%0385d", i, 0);
        strcpy(p, "\n");
        CHECK(strlen(text) > 4096 + 20);
        c = parse_ok(text);
        if (c)
                CHECK_INT(c->jwts[0]->n_audiences, 10);
        ft_config_free(c);
        free(text);
}

static void test_tags(void)
{
        char text[2048], *p;
        struct ft_config *c;

        c = parse_ok(MIN_JWT "tag.k1 = v\ntag.gr\xc3\xb6\xc3\x9f" "e = \xe2\x82\xac\ntag.empty =\n"
                     "tag.app.kubernetes.io/name = web\n");
        if (c) {
                CHECK_INT(c->jwts[0]->n_tags, 4);
                CHECK_STR(c->jwts[0]->tag_keys[1], "gr\xc3\xb6\xc3\x9f" "e");
                CHECK_STR(c->jwts[0]->tag_values[2], "");
        }
        ft_config_free(c);
        expect_error(MIN_JWT "tag.Env = a\ntag.env = b\n", "t.conf:4: [jwt.a] tag.env: given twice (tag keys ignore "
                                                          "case)");
        expect_error(MIN_JWT "tag. = a\n", "t.conf:3: [jwt.a] tag.: a tag key is 1-128 characters");
        expect_error(MIN_JWT "tag.aws:x = a\n",
                     "t.conf:3: [jwt.a] tag.aws:x: tag keys starting with aws: are reserved");
        expect_error(MIN_JWT "tag.k = a!b\n", "t.conf:3: [jwt.a] tag.k: a tag value is 0-256 characters");
        expect_error(MIN_JWT "tag.k = a\tb\n", "t.conf:3: [jwt.a] tag.k: a tag value");
        /* A tag key is only valid in a [jwt.NAME]. */
        expect_error(MIN_JWT "[azure.z]\ntag.k = v\n", "t.conf:4: [azure.z] tag.k: unknown key");

        /* Key 128 characters, value 256: fine; one more of either is not. */
        p = text + sprintf(text, MIN_JWT "tag.");
        memset(p, 'k', 128);
        p += 128;
        p += sprintf(p, " = ");
        memset(p, 'v', 256);
        strcpy(p + 256, "\n");
        c = parse_ok(text);
        ft_config_free(c);
        p[256] = 'v';
        strcpy(p + 257, "\n");
        expect_error(text, "t.conf:3: [jwt.a] tag.kkkk");
        expect_error_says(text, "tag.kkk", "a tag value is 0-256 characters");
        p = text + sprintf(text, MIN_JWT "tag.");
        memset(p, 'k', 129);
        strcpy(p + 129, " = v\n");
        expect_error_says(text, "t.conf:3: [jwt.a] tag.kkkk", "a tag key is 1-128 characters");

        /* Fifty tags; the fifty-first is an error. */
        p = text + sprintf(text, MIN_JWT);
        for (int i = 0; i < 50; i++)
                p += sprintf(p, "tag.t%d = %d\n", i, i);
        c = parse_ok(text);
        if (c)
                CHECK_INT(c->jwts[0]->n_tags, 50);
        ft_config_free(c);
        strcpy(p, "tag.one-more = x\n");
        expect_error(text, "t.conf:53: [jwt.a] tag.one-more: more than 50 tags (the STS limit)");
}

static void test_cross_checks(void)
{
        expect_error(MIN_JWT "[azure.z]\ntenant_id = " GUID1 "\nclient_id = " GUID1 "\n\njwt = nope\n"
                     "scope = https://x/.default\n",
                     "t.conf:7: [azure.z] jwt: there is no section [jwt.nope]; name one of the [jwt.NAME] sections");
        expect_error(MIN_JWT "[gcp.g]\naudience = " GCP_AUD "\njwt = b\n", "t.conf:5: [gcp.g] jwt: there is no "
                                                                          "section [jwt.b]");
        /* A reference may come before the section it names. */
        ft_config_free(parse_ok("[gcp.g]\naudience = " GCP_AUD "\njwt = later\n[jwt.later]\naudience = x\n"));

        expect_error("[daemon]\nbackoff_initial = 100\nbackoff_max = 50\n" MIN_JWT,
                     "t.conf:3: [daemon] backoff_initial: 100 s is more than backoff_max (50 s)");
        expect_error("[daemon]\nbackoff_max = 50\n\nbackoff_initial = 100\n" MIN_JWT,
                     "t.conf:4: [daemon] backoff_initial: 100 s is more than backoff_max (50 s)");
        expect_error("[daemon]\nbackoff_initial = 61\n" MIN_JWT, "t.conf:2: [daemon] backoff_initial: 61 s is more "
                                                                "than backoff_max (60 s)");
        /* min_remaining must leave room in the shortest token. */
        expect_error("[daemon]\nmin_remaining = 300\n" MIN_JWT,
                     "t.conf:3: [jwt.a] duration: 300 s is not more than [daemon] min_remaining (300 s)");
        expect_error("[daemon]\nmin_remaining = 120\n" MIN_JWT "[jwt.b]\naudience = x\n\nduration = 120\n",
                     "t.conf:8: [jwt.b] duration: 120 s is not more than [daemon] min_remaining (120 s)");
        ft_config_free(parse_ok("[daemon]\nmin_remaining = 299\n" MIN_JWT));
        ft_config_free(parse_ok("[daemon]\nmin_remaining = 3599\n" MIN_JWT "file = /run/a\n"));

        /* Every written file has one writer. */
        expect_error(MIN_JWT "file = /run/t\n[jwt.b]\naudience = x\nfile = /run/t\n",
                     "t.conf:6: [jwt.b] file: /run/t is also written for [jwt.a] file (line 3); give each its own "
                     "file");
        expect_error(MIN_JWT "file = /run/t\n[gcp.g]\njwt = a\naudience = " GCP_AUD
                             "\nexternal_account_file = /run/t\n",
                     "t.conf:7: [gcp.g] external_account_file: /run/t is also written for [jwt.a] file (line 3)");
        expect_error(MIN_JWT "file = /run/fedtokend/fedtokend.sock\n",
                     "t.conf:3: [jwt.a] file: /run/fedtokend/fedtokend.sock is the daemon's socket");

        /* An explicit credential provider needs its settings. */
        expect_error("[aws]\ncredentials = web-identity\nrole_arn = arn:aws:iam::123456789012:role/r\n" MIN_JWT,
                     "t.conf:2: [aws] credentials: web-identity needs web_identity_token_file and role_arn");
        expect_error("[aws]\n\ncredentials = container\n" MIN_JWT,
                     "t.conf:3: [aws] credentials: container needs container_relative_uri or container_full_uri");
        expect_error("[aws]\ncredentials = imds\nimds_disabled = true\n" MIN_JWT,
                     "t.conf:2: [aws] credentials: imds, but imds_disabled is true");
        ft_config_free(parse_ok("[aws]\ncredentials = container\ncontainer_full_uri = "
                                "http://169.254.170.23/v1/credentials\n" MIN_JWT));
        ft_config_free(parse_ok("[aws]\ncredentials = container\ncontainer_full_uri = "
                                "https://creds.example.com/v1?role=x\n" MIN_JWT));
}

static void test_limits(void)
{
        char *text = malloc(8192), *p = text;

        for (int i = 0; i < FT_CONFIG_MAX_TARGETS; i++)
                p += sprintf(p, "[jwt.t%d]\naudience = x\n", i);
        ft_config_free(parse_ok(text));
        strcpy(p, "[jwt.last]\n");
        expect_error(text, "t.conf:129: [jwt.last]: more than 64 [jwt.NAME] sections (the limit)");

        p = text + sprintf(text, "[daemon]\nallow_users =");
        for (int i = 0; i < FT_CONFIG_MAX_IDS; i++)
                p += sprintf(p, " u%d", i);
        strcpy(p, "\n" MIN_JWT);
        ft_config_free(parse_ok(text));
        strcpy(p, " one-more\n" MIN_JWT);
        expect_error(text, "t.conf:2: [daemon] allow_users: more than 32 values (the limit)");
        free(text);

        CHECK_INT(ft_config_parse("x", 1, "t", NULL, NULL, NULL, NULL), -EINVAL);
        {
                struct ft_config *c = NULL;
                CHECK_INT(ft_config_parse(NULL, 1, "t", NULL, NULL, &c, NULL), -EINVAL);
                /* Without a diag the error is still returned. */
                CHECK_INT(ft_config_parse("[x]\n", 4, "t", NULL, NULL, &c, NULL), -EINVAL);
                CHECK(c == NULL);
        }
        ft_config_free(NULL);
}

static void check_round_trip(const struct ft_config *c);

/* ---- environment ---- */

struct env_case {
        const char *variable;
        const char *good;
        const char *bad;
        const char *key;         /* "[aws] region" as the dump and messages write it */
        const char *dumped;      /* the dump line the good value gives */
};

static const struct env_case env_cases[] = {
        { "AWS_REGION", "eu-west-3", "eu west 3", "[aws] region", "region = eu-west-3" },
        { "AWS_DEFAULT_REGION", "ap-south-1", "AP-SOUTH-1", "[aws] region", "region = ap-south-1" },
        { "AWS_PROFILE", "dev", "my profile", "[aws] profile", "profile = dev" },
        { "AWS_SHARED_CREDENTIALS_FILE", "/etc/aws/credentials", "aws/credentials", "[aws] shared_credentials_file",
          "shared_credentials_file = /etc/aws/credentials" },
        { "AWS_CONFIG_FILE", "/etc/aws/config", "~/.aws/config", "[aws] config_file",
          "config_file = /etc/aws/config" },
        { "AWS_ENDPOINT_URL_STS", "https://sts.eu-west-3.amazonaws.com", "http://sts.eu-west-3.amazonaws.com",
          "[aws] sts_endpoint", "sts_endpoint = https://sts.eu-west-3.amazonaws.com" },
        { "AWS_ENDPOINT_URL", "https://localhost:4566", "ftp://localhost", "[aws] sts_endpoint",
          "sts_endpoint = https://localhost:4566" },
        { "AWS_USE_FIPS_ENDPOINT", "true", "maybe", "[aws] use_fips_endpoint", "use_fips_endpoint = true" },
        { "AWS_USE_DUALSTACK_ENDPOINT", "TRUE", "2", "[aws] use_dualstack_endpoint", "use_dualstack_endpoint = true" },
        { "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://[fd00:ec2::254]/", "169.254.169.254", "[aws] imds_endpoint",
          "imds_endpoint = http://[fd00:ec2::254]" },
        { "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv6", "v6", "[aws] imds_endpoint_mode",
          "imds_endpoint_mode = IPv6" },
        { "AWS_EC2_METADATA_DISABLED", "true", "disabled", "[aws] imds_disabled", "imds_disabled = true" },
        { "AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token", "token", "[aws] web_identity_token_file",
          "web_identity_token_file = /var/run/secrets/token" },
        { "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app", "app", "[aws] role_arn",
          "role_arn = arn:aws:iam::123456789012:role/app" },
        { "AWS_ROLE_SESSION_NAME", "host-1", "a b", "[aws] role_session_name", "role_session_name = host-1" },
        { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", "v2/credentials",
          "[aws] container_relative_uri", "container_relative_uri = /v2/credentials/abc" },
        { "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", "http://10.0.0.1/creds",
          "[aws] container_full_uri", "container_full_uri = http://169.254.170.23/v1/credentials" },
        { "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pod-token", "pod-token",
          "[aws] container_token_file", "container_token_file = /var/run/secrets/pod-token" },
        { "AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/", "login.microsoftonline.us",
          "[azure.z] authority", "authority = https://login.microsoftonline.us" },
};

#define AZURE_Z "[azure.z]\njwt = a\ntenant_id = " GUID1 "\nclient_id = " GUID2 "\nscope = https://x/.default\n"

static void test_env_overrides(void)
{
        for (size_t i = 0; i < FT_ELEMENTSOF(env_cases); i++) {
                const struct env_case *e = &env_cases[i];
                struct fake_env good = { { { e->variable, e->good } } }, bad = { { { e->variable, e->bad } } };
                struct ft_config *c = parse_env(MIN_JWT AZURE_Z "[aws]\nregion = us-east-1\nprofile = p\n", &good);
                char want[256], *dump = NULL;

                if (!c)
                        continue;
                CHECK_INT(ft_config_dump(c, &dump), 0);
                snprintf(want, sizeof(want), "\n%s  ; from %s\n", e->dumped, e->variable);
                CHECK_CONTAINS(dump, want);
                free(dump);
                check_round_trip(c);
                ft_config_free(c);

                snprintf(want, sizeof(want), "environment variable %s (for %s): \"%s\" is not ", e->variable, e->key,
                         e->bad);
                expect_error_env(MIN_JWT AZURE_Z, &bad, want);
        }
}

static void test_env_rules(void)
{
        struct fake_env both = { { { "AWS_DEFAULT_REGION", "eu-west-1" }, { "AWS_REGION", "eu-west-2" },
                                   { "AWS_ENDPOINT_URL", "https://a.example" },
                                   { "AWS_ENDPOINT_URL_STS", "https://b.example" } } };
        struct fake_env empty = { { { "AWS_REGION", "" }, { "AWS_DEFAULT_REGION", "ca-central-1" },
                                    { "AWS_PROFILE", "" } } };
        struct fake_env azure = { { { "AZURE_AUTHORITY_HOST", "https://login.chinacloudapi.cn" } } };
        struct fake_env ctl = { { { "AWS_ROLE_SESSION_NAME", "evil\nname" } } };
        struct fake_env quote = { { { "AWS_CONFIG_FILE", "/etc/\"x\"" } } };
        struct fake_env provider = { { { "AWS_WEB_IDENTITY_TOKEN_FILE", "/t" },
                                       { "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r" } } };
        struct ft_diag diag = { 0 };
        struct ft_config *c;

        /* AWS_REGION wins over AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_STS over AWS_ENDPOINT_URL; both over the file. */
        c = parse_env("[aws]\nregion = us-east-1\nsts_endpoint = https://file.example\n" MIN_JWT, &both);
        if (c) {
                CHECK_STR(c->aws.region, "eu-west-2");
                CHECK_STR(c->aws.sts_endpoint, "https://b.example");
        }
        ft_config_free(c);
        /* An empty variable is unset. */
        c = parse_env("[aws]\nprofile = file\n" MIN_JWT, &empty);
        if (c) {
                CHECK_STR(c->aws.region, "ca-central-1");
                CHECK_STR(c->aws.profile, "file");
        }
        ft_config_free(c);
        /* AZURE_AUTHORITY_HOST only where the file did not set authority. */
        c = parse_env(MIN_JWT AZURE_Z "[azure.y]\njwt = a\ntenant_id = " GUID1 "\nclient_id = " GUID1
                      "\nscope = https://y/.default\nauthority = https://login.microsoftonline.us\n", &azure);
        if (c) {
                CHECK_STR(c->azures[0]->authority, "https://login.chinacloudapi.cn");
                CHECK_STR(c->azures[1]->authority, "https://login.microsoftonline.us");
        }
        ft_config_free(c);
        /* Without an [azure.NAME], the variable is not even read. */
        ft_config_free(parse_env(MIN_JWT, &(struct fake_env){ { { "AZURE_AUTHORITY_HOST", "bad" } } }));
        /* A control character is refused without echoing the value. */
        CHECK(ft_config_parse(MIN_JWT, strlen(MIN_JWT), "t.conf", fake_getenv, &ctl, &c, &diag) < 0);
        CHECK_STR(diag.msg, "environment variable AWS_ROLE_SESSION_NAME (for [aws] role_session_name): the value "
                            "contains a control character");
        CHECK(ft_config_parse(MIN_JWT, strlen(MIN_JWT), "t.conf", fake_getenv, &quote, &c, &diag) < 0);
        CHECK_STR(diag.msg, "environment variable AWS_CONFIG_FILE (for [aws] config_file): the value contains a '\"'");
        /* Settings for an explicit provider may come from the environment. */
        c = parse_env("[aws]\ncredentials = web-identity\n" MIN_JWT, &provider);
        if (c)
                CHECK_STR(c->aws.web_identity_token_file, "/t");
        ft_config_free(c);
        /* And the provider check sees the environment. */
        expect_error_env("[aws]\ncredentials = imds\n" MIN_JWT,
                         &(struct fake_env){ { { "AWS_EC2_METADATA_DISABLED", "true" } } },
                         "t.conf:2: [aws] credentials: imds, but imds_disabled is true");
}

/*
 * A tab passes the control-character check (the INI grammar allows it inside
 * a value), so a bad value from the environment can carry one into the
 * message that quotes it: it must arrive there as '?', on one line.
 */
static void test_env_bad_value_quoted_safely(void)
{
        struct fake_env tab = { { { "AWS_REGION", "us\teast-1" } } };
        struct ft_config *c = NULL;
        struct ft_diag diag = { 0 };

        CHECK(ft_config_parse(MIN_JWT, strlen(MIN_JWT), "t.conf", fake_getenv, &tab, &c, &diag) < 0);
        CHECK(c == NULL);
        CHECK_CONTAINS(diag.msg, "environment variable AWS_REGION (for [aws] region): \"us?east-1\" is not ");
        CHECK(strchr(diag.msg, '\t') == NULL);
        ft_config_free(c);
}

/* ---- dump ---- */

/*
 * The start of a trailing "  ; from VARIABLE" in the n bytes at line, or
 * NULL. A value never ends like that: one with " ;" in it is quoted.
 */
static const char *env_comment(const char *line, size_t n)
{
        const char *last = NULL;

        for (const char *p = line; (p = memmem(p, n - (size_t)(p - line), "  ; from ", 9)); p++)
                last = p;
        if (!last || last + 9 == line + n ||
            strspn(last + 9, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n - (size_t)(last + 9 - line))
                return NULL;
        return last;
}

/* The dump without the "; from VARIABLE" comments, as a re-parse without the environment prints it. */
static char *strip_env_comments(const char *dump)
{
        char *out = strdup(dump), *w = out;

        for (const char *p = dump; *p;) {
                size_t n = strcspn(p, "\n");
                const char *mark = env_comment(p, n);

                memcpy(w, p, mark ? (size_t)(mark - p) : n);
                w += mark ? (size_t)(mark - p) : n;
                p += n;
                if (*p == '\n')
                        *w++ = *p++;
        }
        *w = '\0';
        return out;
}

/* dump → parse (no environment) → dump gives the same text and equal tokens. */
static void check_round_trip(const struct ft_config *c)
{
        struct ft_config *again = NULL;
        struct ft_diag diag = { 0 };
        char *first = NULL, *second = NULL, *stripped;
        int r;

        CHECK_INT(ft_config_dump(c, &first), 0);
        if (!first)
                return;
        r = ft_config_parse(first, strlen(first), "dump", NULL, NULL, &again, &diag);
        CHECK_INT(r, 0);
        if (r < 0) {
                fprintf(stderr, "  the dump does not parse: %s\n%s", diag.msg, first);
                free(first);
                return;
        }
        CHECK_INT(ft_config_dump(again, &second), 0);
        stripped = strip_env_comments(first);
        CHECK_STR(second, stripped);
        CHECK_INT(again->n_jwts, c->n_jwts);
        for (size_t i = 0; i < c->n_jwts && i < again->n_jwts; i++)
                CHECK(ft_config_jwt_equal(c->jwts[i], again->jwts[i]));
        CHECK_INT(again->n_azures, c->n_azures);
        CHECK_INT(again->n_gcps, c->n_gcps);
        free(stripped);
        free(first);
        free(second);
        ft_config_free(again);
}

static void test_dump(void)
{
        struct fake_env env = { { { "AWS_REGION", "eu-north-1" }, { "AZURE_AUTHORITY_HOST", "https://login.x.us" } } };
        struct ft_config *c = parse_env(
                "[daemon]\nallow_groups = readers\nca_file = \"/etc/ssl/my certs ;x #y.pem\"\n"
                "[aws]\nregion = us-east-1\ncredentials = Container\ncontainer_relative_uri = /v2/x\n"
                "[jwt.a]\naudience = x  y\nfile = /run/a\nallow_users = 0\n"
                "tag.k = \" leading and trailing \"\ntag.semi = a:b\ntag.empty =\n"
                "[jwt.b]\naudience = z\nduration = 900\n" AZURE_Z
                "[gcp.g]\njwt = b\naudience = " GCP_AUD "\nscope = https://a https://b\n",
                &env);
        char *dump = NULL;

        if (!c)
                return;
        CHECK_INT(ft_config_dump(c, &dump), 0);
        CHECK_CONTAINS(dump, "\n[daemon]\nsocket = /run/fedtokend/fedtokend.sock\nsocket_mode = 0660\n"
                             "# socket_group = (not set: the daemon's group)\n"
                             "ca_file = \"/etc/ssl/my certs ;x #y.pem\"\nlog_level = info\n");
        CHECK_CONTAINS(dump, "\nallow_users =\nallow_groups = readers\n");
        CHECK_CONTAINS(dump, "\nregion = eu-north-1  ; from AWS_REGION\ncredentials = container\n");
        CHECK_CONTAINS(dump, "\n[jwt.a]\naudience = x y\nsigning_algorithm = RS256\nduration = 3600\nverify = false\n"
                             "file = /run/a\nfile_mode = 0600\n");
        CHECK_CONTAINS(dump, "\nallow_users = 0\nallow_groups =\ntag.k = \" leading and trailing \"\n"
                             "tag.semi = a:b\ntag.empty =\n");
        CHECK_CONTAINS(dump, "\n[jwt.b]\naudience = z\n");
        CHECK_CONTAINS(dump, "# allow_users = (not set: [daemon] allow_users and allow_groups apply)\n");
        CHECK_CONTAINS(dump, "\nauthority = https://login.x.us  ; from AZURE_AUTHORITY_HOST\n");
        CHECK_CONTAINS(dump, "\n[gcp.g]\njwt = b\naudience = " GCP_AUD "\nscope = https://a https://b\n");
        free(dump);
        check_round_trip(c);
        ft_config_free(c);

        /* A quoted value may hold what looks like the environment comment (a fuzzer find, in the check). */
        c = parse_env("[jwt.a]\naudience = x\nfile = \"/run/a ;b  ; from  #c\"\n", &env);
        if (c) {
                CHECK_STR(c->jwts[0]->file.path, "/run/a ;b  ; from  #c");
                check_round_trip(c);
        }
        ft_config_free(c);

        /* '#' and ';' right after '=' are values, and the dump must keep them so (a fuzzer find). */
        c = parse_ok("[jwt.a]\naudience =# x\n[jwt.b]\naudience =;y z ;comment\n");
        if (c) {
                CHECK_STR(c->jwts[0]->audiences[0], "#");
                CHECK_STR(c->jwts[1]->audiences[0], ";y");
                CHECK_INT(ft_config_dump(c, &dump), 0);
                CHECK_CONTAINS(dump, "\naudience = \"# x\"\n");
                CHECK_CONTAINS(dump, "\naudience = \";y z\"\n");
                free(dump);
                check_round_trip(c);
        }
        ft_config_free(c);

        CHECK_INT(ft_config_dump(NULL, &dump), -EINVAL);
}

static void test_jwt_equal(void)
{
        static const char *const variants[] = {
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\n",
                "[jwt.b]\naudience = x y\ntag.k = v\ntag.l = w\n",
                "[jwt.a]\naudience = y x\ntag.k = v\ntag.l = w\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = W\n",
                "[jwt.a]\naudience = x y\ntag.k = v\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.m = w\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nsigning_algorithm = ES384\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nduration = 301\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nverify = true\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nfile = /f\nduration = 300\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nfile_mode = 0640\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nfile_group = g\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nallow_users =\n",
                "[jwt.a]\naudience = x y\ntag.k = v\ntag.l = w\nallow_groups = g\n",
        };
        struct ft_config *c[FT_ELEMENTSOF(variants)], *same;

        for (size_t i = 0; i < FT_ELEMENTSOF(variants); i++)
                c[i] = parse_ok(variants[i]);
        for (size_t i = 0; i < FT_ELEMENTSOF(variants); i++)
                for (size_t j = 0; j < FT_ELEMENTSOF(variants); j++)
                        if (c[i] && c[j])
                                CHECK(ft_config_jwt_equal(c[i]->jwts[0], c[j]->jwts[0]) == (i == j));
        /* Tag order, the line and whether duration was written do not change the token. */
        same = parse_ok("\n\n[jwt.a]\ntag.l = w\nduration = 300\naudience = x y\ntag.k = v\n");
        if (same && c[0])
                CHECK(ft_config_jwt_equal(c[0]->jwts[0], same->jwts[0]));
        ft_config_free(same);
        CHECK(ft_config_jwt_equal(NULL, NULL));
        if (c[0])
                CHECK(!ft_config_jwt_equal(c[0]->jwts[0], NULL));
        for (size_t i = 0; i < FT_ELEMENTSOF(variants); i++)
                ft_config_free(c[i]);
}

/* ---- the example file ---- */

static char *read_example(size_t *len)
{
        const char *dir = getenv("FT_TESTS_DIR");
        char path[4096];

        snprintf(path, sizeof(path), "%s/../conf/fedtokend.conf", dir && *dir ? dir : "tests");
        return test_read_file(path, len);
}

/* The example with every "#key = value" and "#[section]" line switched on. */
static char *uncomment(const char *text)
{
        char *out = malloc(strlen(text) + 1), *w = out;

        for (const char *p = text; *p;) {
                if (*p == '#' && p[1] != ' ' && p[1] != '#' && p[1] != '\n')
                        p++;
                while (*p && *p != '\n')
                        *w++ = *p++;
                if (*p)
                        *w++ = *p++;
        }
        *w = '\0';
        return out;
}

/* The text of section `header` ("\n[daemon]\n") in a dump, up to the next section. */
static char *dump_section(const char *dump, const char *header)
{
        const char *start = strstr(dump, header), *end;

        if (!start)
                return strdup("");
        end = strstr(start + strlen(header), "\n[");
        return ft_strndup(start, end ? (size_t)(end - start) : strlen(start));
}

static void test_example(void)
{
        static const char *const sections[] = { "\n[daemon]\n", "\n[aws]\n", "\n[jwt.azure]\n", "\n[jwt.gcp]\n",
                                                "\n[azure.arm]\n", "\n[gcp.main]\n" };
        /* The example's targets with only what is required, so that the rest is at its default. */
        static const char minimal[] =
                "[jwt.azure]\naudience = api://AzureADTokenExchange\n"
                "[jwt.gcp]\naudience = https://iam.googleapis.com/projects/123456789012/locations/global/"
                "workloadIdentityPools/aws-pool/providers/aws-outbound\n"
                /* [gcp.main] has an external_account_file, which needs the JWT in a file. */
                "file = /run/fedtokend/gcp.jwt\n"
                "[azure.arm]\njwt = azure\ntenant_id = 00000000-0000-0000-0000-000000000000\n"
                "client_id = 11111111-2222-3333-4444-555555555555\nscope = https://management.azure.com/.default\n"
                "[gcp.main]\njwt = gcp\naudience = //iam.googleapis.com/projects/123456789012/locations/global/"
                "workloadIdentityPools/aws-pool/providers/aws-outbound\n";
        size_t len;
        char *text = read_example(&len), *all, *defaults_dump = NULL, *all_dump = NULL;
        struct ft_config *c, *all_c, *defaults;
        struct ft_diag diag = { 0 };

        CHECK(text != NULL);
        if (!text)
                return;
        CHECK_INT(ft_config_parse(text, len, "fedtokend.conf", NULL, NULL, &c, &diag), 0);
        CHECK_STR(diag.msg, "");
        if (c) {
                CHECK(ft_config_find_jwt(c, "azure") != NULL);
                check_round_trip(c);
        }
        ft_config_free(c);

        /* Every commented-out key is valid, and shows the real default where there is one. */
        all = uncomment(text);
        all_c = parse_ok(all);
        defaults = parse_ok(minimal);
        if (all_c && defaults) {
                CHECK_INT(all_c->n_jwts, 2);
                CHECK_INT(all_c->n_azures, 1);
                CHECK_INT(all_c->n_gcps, 1);
                CHECK_INT(ft_config_dump(all_c, &all_dump), 0);
                CHECK_INT(ft_config_dump(defaults, &defaults_dump), 0);
                check_round_trip(all_c);
        }
        for (size_t s = 0; all_dump && defaults_dump && s < FT_ELEMENTSOF(sections); s++) {
                char *want = dump_section(defaults_dump, sections[s]), *got = dump_section(all_dump, sections[s]);

                CHECK(*want != '\0');
                for (char *line = strtok(want + strlen(sections[s]), "\n"); line; line = strtok(NULL, "\n")) {
                        char needle[4200], key[64];

                        /* The key is in the example file... */
                        sscanf(line[0] == '#' ? line + 2 : line, "%63[^ =]", key);
                        snprintf(needle, sizeof(needle), "\n#%s = ", key);
                        if (!strstr(text, needle)) {
                                snprintf(needle, sizeof(needle), "\n%s = ", key);
                                CHECK_CONTAINS(text, needle);
                        }
                        /* ...and where it has a default, the example shows that default. */
                        if (line[0] != '#') {
                                snprintf(needle, sizeof(needle), "\n%s\n", line);
                                CHECK_CONTAINS(got, needle);
                        }
                }
                free(want);
                free(got);
        }
        /* Every environment variable is documented. */
        for (size_t i = 0; i < FT_ELEMENTSOF(env_cases); i++)
                CHECK_CONTAINS(text, env_cases[i].variable);
        free(all_dump);
        free(defaults_dump);
        ft_config_free(all_c);
        ft_config_free(defaults);
        free(all);
        free(text);
}

int main(void)
{
        test_defaults();
        test_values();
        test_duration_rule();
        test_structure_errors();
        test_required();
        test_value_errors();
        test_audiences();
        test_tags();
        test_cross_checks();
        test_limits();
        test_env_overrides();
        test_env_rules();
        test_env_bad_value_quoted_safely();
        test_dump();
        test_jwt_equal();
        test_example();
        return test_summary();
}
