/* SPDX-License-Identifier: MIT */
/*
 * fedtokend: obtains AWS-signed OIDC tokens (STS GetWebIdentityToken) with
 * whatever AWS credentials the host offers and keeps them renewed.
 *
 *   fedtokend [-c FILE]                 run, renewing every token
 *   fedtokend [-c FILE] --once          fetch everything once, print a summary
 *   fedtokend [-c FILE] --check-config  validate, print the effective config
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "ft-config.h"

#include "config.h"
#include "fetch.h"
#include "log.h"
#include "sdnotify.h"
#include "server.h"
#include "tokens.h"
#include "timeutil.h"
#include "util.h"

/* Exit codes, documented in fedtokend(8). */
enum {
        EXIT_OK = 0,
        EXIT_TOKENS_FAILED = 1,  /* --once: at least one token could not be obtained */
        EXIT_CONFIG = 2,         /* bad command line or configuration */
        EXIT_RUNTIME = 3,        /* could not start (loop, TLS library, out of memory) */
};

#define CONFIG_MAX_SIZE (1024 * 1024)

/* How often STATUS= is refreshed when nothing happens ("next renewal in N s" moves on). */
#define STATUS_INTERVAL_MS 10000

struct daemon {
        uv_loop_t loop;
        uv_signal_t sig_term, sig_int, sig_hup, sig_usr2;
        uv_timer_t status_timer;
        const char *config_path;
        struct ft_config *cfg;
        struct fetcher *fetcher;
        struct tokens *tokens;
        struct server *server;
        struct sdnotify *notify;
        bool once;
        bool stopping;
        bool ready_sent;
        bool level_set;
        bool test_hooks;           /* FEDTOKEND_TEST_HOOKS=1: SIGUSR2 stalls the loop (watchdog test) */
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: fedtokend [-c FILE] [--once | --check-config] [--log-level LEVEL]\n"
                "\n"
                "Obtains AWS-signed OIDC tokens (IAM outbound identity federation) and keeps them renewed.\n"
                "\n"
                "  -c, --config FILE    configuration file (default %s/fedtokend/fedtokend.conf)\n"
                "      --once           fetch every token once, print what was obtained, exit\n"
                "      --check-config   validate the configuration, print the effective one, exit\n"
                "      --log-level L    debug, info, notice, warning or error (overrides the file)\n"
                "  -h, --help           this text\n"
                "  -V, --version        the version\n"
                "\n"
                "Exit status: 0 success, 1 a token could not be obtained (--once), 2 bad configuration or\n"
                "usage, 3 could not start.\n",
                FT_SYSCONFDIR);
}

static int parse_log_level(const char *s, enum ft_log_level *ret)
{
        static const struct { const char *name; enum ft_log_level level; } levels[] = {
                { "debug", FT_LOG_DEBUG },     { "info", FT_LOG_INFO },   { "notice", FT_LOG_NOTICE },
                { "warning", FT_LOG_WARNING }, { "error", FT_LOG_ERR },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(levels); i++)
                if (strcmp(s, levels[i].name) == 0) {
                        *ret = levels[i].level;
                        return 0;
                }
        return -EINVAL;
}

/*
 * No region in the file or the environment: take the profile's region from
 * the shared config file ([aws] config_file, AWS_CONFIG_FILE, else
 * ~/.aws/config), as the AWS SDKs do.
 */
static void region_from_aws_config(struct ft_config *cfg)
{
        const char *home = secure_getenv("HOME");
        struct ft_diag diag = { 0 };
        char *path = NULL, *text = NULL, *region = NULL;
        size_t len = 0;

        if (cfg->aws.region)
                return;
        if (cfg->aws.config_file)
                path = strdup(cfg->aws.config_file);
        else if (home && home[0] == '/' && asprintf(&path, "%s/.aws/config", home) < 0)
                path = NULL;
        if (!path)
                return;
        if (read_file_capped(path, CONFIG_MAX_SIZE, &text, &len, &diag) == 0 &&
            ft_aws_config_region(text, len, cfg->aws.profile, &region) == 0)
                cfg->aws.region = region;
        free(text);
        free(path);
}

static int load_config(const char *path, struct ft_config **ret)
{
        struct ft_diag diag = { 0 };
        char *text = NULL;
        size_t len = 0;
        int r;

        r = read_file_capped(path, CONFIG_MAX_SIZE, &text, &len, &diag);
        if (r < 0) {
                fprintf(stderr, "fedtokend: %s\n", diag.msg);
                return r;
        }
        r = ft_config_parse(text, len, path, env_lookup, NULL, ret, &diag);
        free(text);
        if (r < 0) {
                fprintf(stderr, "fedtokend: %s\n", diag.msg);
                return r;
        }
        region_from_aws_config(*ret);
        if (!(*ret)->aws.region) {
                fprintf(stderr, "fedtokend: %s: no AWS region: set [aws] region, AWS_REGION, or a region for the "
                                "profile in the AWS config file (GetWebIdentityToken is served only by regional "
                                "STS endpoints)\n", path);
                ft_config_free(*ret);
                *ret = NULL;
                return -EINVAL;
        }
        return 0;
}

static void stop(struct daemon *d)
{
        if (d->stopping)
                return;
        d->stopping = true;
        sdnotify_stopping(d->notify);
        server_free(d->server);
        d->server = NULL;
        /* Nobody renews the tokens once we are gone: no SDK may read them from a file. */
        tokens_remove_files(d->tokens, NULL);
        tokens_free(d->tokens);
        d->tokens = NULL;
        fetcher_free(d->fetcher);
        d->fetcher = NULL;
        sdnotify_free(d->notify);
        d->notify = NULL;
        uv_close((uv_handle_t *)&d->sig_term, NULL);
        uv_close((uv_handle_t *)&d->sig_int, NULL);
        uv_close((uv_handle_t *)&d->sig_hup, NULL);
        uv_close((uv_handle_t *)&d->sig_usr2, NULL);
        if (d->status_timer.loop)
                uv_close((uv_handle_t *)&d->status_timer, NULL);
}

static void update_status(struct daemon *d);
static void reload(struct daemon *d);

static void on_signal(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;

        switch (signum) {
        case SIGHUP:
                reload(d);
                break;
        case SIGUSR2:
                if (d->test_hooks) {
                        /* Test hook only: a stuck loop must stop the watchdog pings. */
                        log_warning("test hook: stalling the event loop for 6 s");
                        sleep(6);
                }
                break;
        default:
                log_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
                stop(d);
                break;
        }
}

static bool all_settled(const struct daemon *d)
{
        for (size_t i = 0; i < tokens_count(d->tokens); i++)
                if (!tokens_settled(d->tokens, (int)i))
                        return false;
        return true;
}

/* True when every token (not the AWS credentials) can be served. */
static bool all_servable(const struct daemon *d)
{
        int64_t now = now_wall_ms();

        for (size_t i = 1; i < tokens_count(d->tokens); i++)
                if (!tokens_servable(d->tokens, (int)i, now))
                        return false;
        return true;
}

static void send_ready(struct daemon *d)
{
        if (d->ready_sent)
                return;
        d->ready_sent = true;
        sdnotify_ready(d->notify);
        log_notice("ready: %zu token(s), credentials from %s", tokens_count(d->tokens) - 1,
                   tokens_creds_kind(d->tokens));
}

/*
 * STATUS=: "3/3 tokens fresh, next renewal in 41 s", or the first failing
 * token and why ("azure.storage failing: AADSTS70021 ...").
 */
static void update_status(struct daemon *d)
{
        int64_t now = now_wall_ms(), next = 0;
        size_t total = 0, fresh = 0;
        char line[512] = "";

        if (!d->tokens || !d->notify)
                return;
        for (size_t i = 0; i < tokens_count(d->tokens); i++) {
                struct token_view v;

                tokens_view(d->tokens, (int)i, &v);
                if (v.kind != FT_NODE_AWS_CREDS)
                        total++;
                if (v.status.state == FT_NODE_FRESH && v.kind != FT_NODE_AWS_CREDS)
                        fresh++;
                if (v.status.last_error && !line[0])
                        snprintf(line, sizeof(line), "%.64s %s: %.96s%s%.300s", v.name,
                                 v.status.state == FT_NODE_STALE ? "failing (still serving)" : "failing",
                                 v.status.last_error->code[0] ? v.status.last_error->code : "",
                                 v.status.last_error->code[0] ? " " : "", v.status.last_error->msg);
                if (v.status.next_fetch_wall_ms && (!next || v.status.next_fetch_wall_ms < next))
                        next = v.status.next_fetch_wall_ms;
        }
        if (!line[0]) {
                if (next && next > now)
                        snprintf(line, sizeof(line), "%zu/%zu tokens fresh, next renewal in %lld s", fresh, total,
                                 (long long)((next - now + 999) / 1000));
                else
                        snprintf(line, sizeof(line), "%zu/%zu tokens fresh", fresh, total);
        }
        sdnotify_status(d->notify, line);
}

static void on_status_timer(uv_timer_t *t)
{
        update_status(t->data);
}

static void on_token_update(void *userdata, struct tokens *t, int id)
{
        struct daemon *d = userdata;

        if (d->server)
                server_token_changed(d->server, id);
        if (d->once && all_settled(d)) {
                uv_stop(&d->loop);
                return;
        }
        if (!d->once && !d->ready_sent && d->cfg->daemon.ready == FT_READY_TOKENS && all_servable(d))
                send_ready(d);
        update_status(d);
}

static void print_expiry(const char *label, int64_t t)
{
        char when[21];
        int64_t left = t - now_wall_ms() / 1000;

        ft_time_format_rfc3339(t, when);
        printf("  %-12s %s (in %lld s)\n", label, when, (long long)left);
}

static void print_jwt(const struct token_view *v)
{
        const struct ft_jwt *c = v->claims;

        printf("  %-12s %s\n", "issuer:", c->iss ? c->iss : "-");
        printf("  %-12s %s\n", "subject:", c->sub ? c->sub : "-");
        printf("  %-12s", "audience:");
        for (size_t k = 0; k < c->n_aud; k++)
                printf(" %s", c->aud[k]);
        printf("\n");
        if (c->aws_account)
                printf("  %-12s %s\n", "account:", c->aws_account);
        print_expiry("expires:", v->expires);
        printf("  %-12s %s, %s\n", "signature:", c->alg ? c->alg : "-",
               v->verified ? "verified against the issuer's JWKS" : "not verified (verify = false)");
}

static void print_access_token(const struct daemon *d, const struct token_view *v)
{
        const char *dot = strchr(v->name, '.');

        if (v->kind == FT_NODE_AZURE) {
                for (size_t i = 0; i < d->cfg->n_azures; i++) {
                        const struct ft_config_azure *a = d->cfg->azures[i];
                        if (dot && strcmp(a->name, dot + 1) == 0) {
                                printf("  %-12s %s\n", "tenant:", a->tenant_id);
                                printf("  %-12s %s\n", "client:", a->client_id);
                                printf("  %-12s %s\n", "scope:", a->scope);
                        }
                }
        } else {
                for (size_t i = 0; i < d->cfg->n_gcps; i++) {
                        const struct ft_config_gcp *g = d->cfg->gcps[i];
                        if (dot && strcmp(g->name, dot + 1) == 0) {
                                printf("  %-12s %s\n", "provider:", g->audience);
                                if (g->service_account)
                                        printf("  %-12s %s\n", "account:", g->service_account);
                                printf("  %-12s %s\n", "scope:", g->scope);
                        }
                }
        }
        printf("  %-12s %s\n", "type:", v->token_type);
        print_expiry("expires:", v->expires);
}

/* What --once obtained, for a person. Never a token: a fingerprint identifies it. */
static int print_summary(const struct daemon *d)
{
        int failed = 0;

        printf("AWS credentials: %s; region %s\n", tokens_creds_kind(d->tokens),
               d->cfg->aws.region ? d->cfg->aws.region : "(none)");
        for (size_t i = 0; i < tokens_count(d->tokens); i++) {
                struct token_view v;

                tokens_view(d->tokens, (int)i, &v);
                if (v.kind == FT_NODE_AWS_CREDS) {
                        if (v.status.last_error) {
                                failed++;
                                printf("aws: FAILED\n  %-12s %s\n", "reason:", v.status.last_error->msg);
                        }
                        continue;
                }
                if (!v.value) {
                        failed++;
                        printf("%s: FAILED\n", v.name);
                        printf("  %-12s %s\n", "reason:",
                               v.status.last_error ? v.status.last_error->msg : "no token was obtained");
                        if (v.status.last_error && v.status.last_error->code[0])
                                printf("  %-12s %s\n", "code:", v.status.last_error->code);
                        continue;
                }
                printf("%s: OK\n", v.name);
                if (v.kind == FT_NODE_JWT)
                        print_jwt(&v);
                else
                        print_access_token(d, &v);
                printf("  %-12s %s (%zu bytes)\n", "token:", v.fingerprint, v.len);
        }
        return failed ? EXIT_TOKENS_FAILED : EXIT_OK;
}

static int start(struct daemon *d)
{
        struct ft_diag diag = { 0 };
        int r;

        r = fetcher_new(&d->loop, d->cfg->daemon.ca_file, &d->fetcher);
        if (r < 0) {
                log_error("cannot set up HTTP transfers: %s", strerror(-r));
                return EXIT_RUNTIME;
        }
        r = tokens_new(&d->loop, d->fetcher, d->cfg, env_lookup, NULL, !d->once, on_token_update, d, &d->tokens,
                       &diag);
        if (r < 0) {
                /* A diagnosis means the configuration is at fault; a bare errno, the machine. */
                log_error("%s", diag.msg[0] ? diag.msg : strerror(-r));
                return diag.msg[0] ? EXIT_CONFIG : EXIT_RUNTIME;
        }
        log_info("AWS credentials from %s", tokens_creds_kind(d->tokens));
        if (!d->once) {
                int fd = sdnotify_listen_fd();

                r = server_new(&d->loop, d->cfg, d->tokens, &d->server, &diag);
                if (r >= 0)
                        r = server_listen(d->server, fd, &diag);
                if (r < 0) {
                        log_error("%s", diag.msg[0] ? diag.msg : strerror(-r));
                        return diag.msg[0] ? EXIT_CONFIG : EXIT_RUNTIME;
                }
                log_info("listening on %s%s", d->cfg->daemon.socket, fd >= 0 ? " (socket activation)" : "");
                r = sdnotify_watchdog_start(d->notify);
                if (r >= 0)
                        r = uv_timer_init(&d->loop, &d->status_timer);
                if (r >= 0) {
                        d->status_timer.data = d;
                        r = uv_timer_start(&d->status_timer, on_status_timer, STATUS_INTERVAL_MS, STATUS_INTERVAL_MS);
                }
                if (r < 0) {
                        log_error("cannot start timers: %s", uv_strerror(r));
                        return EXIT_RUNTIME;
                }
        }
        tokens_start(d->tokens);
        /* READY=1 once the socket listens and the configuration is loaded, unless `ready = tokens`. */
        if (!d->once && d->cfg->daemon.ready == FT_READY_LISTENING)
                send_ready(d);
        update_status(d);
        return EXIT_OK;
}

/*
 * SIGHUP: parse the new file fully, build the new token set beside the old
 * one, let it take over every token whose definition did not change, then
 * swap. Any failure leaves the running configuration untouched. Clients
 * stay connected throughout.
 */
static void reload(struct daemon *d)
{
        struct ft_config *cfg = NULL;
        struct fetcher *fetcher = d->fetcher, *old_fetcher = NULL;
        struct tokens *t = NULL;
        struct ft_diag diag = { 0 };
        size_t kept;
        int r;

        if (d->once || d->stopping)
                return;
        sdnotify_reloading(d->notify);
        log_notice("SIGHUP: reloading %s", d->config_path);
        if (load_config(d->config_path, &cfg) < 0) {
                log_error("reload failed, keeping the running configuration");
                sdnotify_status(d->notify, "reload failed: configuration invalid (see the log)");
                sdnotify_ready(d->notify);
                return;
        }
        if (strcmp(cfg->daemon.socket, d->cfg->daemon.socket) != 0 ||
            cfg->daemon.socket_mode != d->cfg->daemon.socket_mode ||
            !((!cfg->daemon.socket_group && !d->cfg->daemon.socket_group) ||
              (cfg->daemon.socket_group && d->cfg->daemon.socket_group &&
               !strcmp(cfg->daemon.socket_group, d->cfg->daemon.socket_group))))
                log_warning("reload: socket, socket_mode and socket_group take effect at the next restart");
        if (!((!cfg->daemon.ca_file && !d->cfg->daemon.ca_file) ||
              (cfg->daemon.ca_file && d->cfg->daemon.ca_file && !strcmp(cfg->daemon.ca_file, d->cfg->daemon.ca_file)))) {
                r = fetcher_new(&d->loop, cfg->daemon.ca_file, &fetcher);
                if (r < 0) {
                        log_error("reload failed: cannot set up HTTP transfers: %s", strerror(-r));
                        goto fail;
                }
                old_fetcher = d->fetcher;
        }
        r = tokens_new(&d->loop, fetcher, cfg, env_lookup, NULL, true, on_token_update, d, &t, &diag);
        if (r < 0) {
                log_error("reload failed, keeping the running configuration: %s", diag.msg[0] ? diag.msg : strerror(-r));
                goto fail;
        }
        r = server_reload(d->server, cfg, t, &diag);
        if (r < 0) {
                log_error("reload failed, keeping the running configuration: %s", diag.msg[0] ? diag.msg : strerror(-r));
                goto fail;
        }
        kept = tokens_adopt(t, d->tokens);
        tokens_remove_files(d->tokens, t);
        tokens_free(d->tokens);
        fetcher_free(old_fetcher);
        ft_config_free(d->cfg);
        d->cfg = cfg;
        d->tokens = t;
        d->fetcher = fetcher;
        if (!d->level_set)
                log_set_level(cfg->daemon.log_level);
        tokens_start(t);
        log_notice("reloaded: %zu token(s), %zu kept unchanged", tokens_count(t) - 1, kept ? kept - 1 : 0);
        sdnotify_ready(d->notify);
        update_status(d);
        return;
fail:
        tokens_free(t);
        if (fetcher != d->fetcher)
                fetcher_free(fetcher);
        ft_config_free(cfg);
        sdnotify_status(d->notify, "reload failed (see the log); running with the previous configuration");
        sdnotify_ready(d->notify);
}

static int setup_signals(struct daemon *d)
{
        uv_signal_t *sigs[] = { &d->sig_term, &d->sig_int, &d->sig_hup, &d->sig_usr2 };
        int nums[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR2 };

        for (size_t i = 0; i < FT_ELEMENTSOF(sigs); i++) {
                int r = uv_signal_init(&d->loop, sigs[i]);
                if (r < 0)
                        return r;
                sigs[i]->data = d;
                r = uv_signal_start(sigs[i], on_signal, nums[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int run(struct daemon *d)
{
        int rc, r;

        r = uv_loop_init(&d->loop);
        if (r < 0) {
                fprintf(stderr, "fedtokend: cannot create the event loop: %s\n", uv_strerror(r));
                return EXIT_RUNTIME;
        }
        r = sdnotify_new(&d->loop, &d->notify);
        if (r >= 0)
                r = setup_signals(d);
        if (r < 0) {
                log_error("cannot install signal handlers: %s", uv_strerror(r));
                rc = EXIT_RUNTIME;
        } else {
                rc = start(d);
        }
        if (rc == EXIT_OK) {
                uv_run(&d->loop, UV_RUN_DEFAULT);
                if (d->once)
                        rc = print_summary(d);
        }
        stop(d);
        /* Let the close callbacks run, then the loop must close cleanly: nothing leaked. */
        uv_run(&d->loop, UV_RUN_DEFAULT);
        r = uv_loop_close(&d->loop);
        if (r < 0) {
                log_error("event loop did not close cleanly: %s", uv_strerror(r));
                if (rc == EXIT_OK)
                        rc = EXIT_RUNTIME;
        }
        return rc;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "once", no_argument, NULL, 'o' },
                { "check-config", no_argument, NULL, 'n' },
                { "log-level", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        const char *config_path = FT_SYSCONFDIR "/fedtokend/fedtokend.conf";
        struct daemon d = { 0 };
        enum ft_log_level level = FT_LOG_INFO;
        bool check = false, level_set = false;
        struct rlimit no_core = { 0, 0 };
        int c, rc;

        while ((c = getopt_long(argc, argv, "c:hV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'o':
                        d.once = true;
                        break;
                case 'n':
                        check = true;
                        break;
                case 'l':
                        if (parse_log_level(optarg, &level) < 0) {
                                fprintf(stderr, "fedtokend: unknown log level \"%s\"\n", optarg);
                                return EXIT_CONFIG;
                        }
                        level_set = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                case 'V':
                        printf("fedtokend %s\n", FT_VERSION);
                        return EXIT_OK;
                default:
                        usage(stderr);
                        return EXIT_CONFIG;
                }
        }
        if (optind < argc || (check && d.once)) {
                usage(stderr);
                return EXIT_CONFIG;
        }
        /*
         * A client that goes away while its answer is being written must cost
         * an EPIPE, not the process (systemd ignores SIGPIPE for us; a shell
         * or a container runtime may not).
         */
        signal(SIGPIPE, SIG_IGN);
        /*
         * A core dump would hold every token and key in memory: never write
         * one, and keep other processes of our user from reading our memory.
         */
        (void)setrlimit(RLIMIT_CORE, &no_core);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

        d.config_path = config_path;
        d.level_set = level_set;
        d.test_hooks = secure_getenv("FEDTOKEND_TEST_HOOKS") && !strcmp(secure_getenv("FEDTOKEND_TEST_HOOKS"), "1");
        if (load_config(config_path, &d.cfg) < 0)
                return EXIT_CONFIG;
        if (check) {
                char *dump = NULL;
                if (ft_config_dump(d.cfg, &dump) == 0)
                        fputs(dump, stdout);
                free(dump);
                fprintf(stderr, "%s: configuration OK\n", config_path);
                ft_config_free(d.cfg);
                return EXIT_OK;
        }
        /* --once speaks through its summary; its log shows only what went wrong, unless asked. */
        if (!level_set)
                level = d.once && d.cfg->daemon.log_level > FT_LOG_WARNING ? FT_LOG_WARNING : d.cfg->daemon.log_level;
        log_init(level);
        if (fetch_global_init() < 0) {
                log_error("cannot initialise libcurl");
                ft_config_free(d.cfg);
                return EXIT_RUNTIME;
        }
        rc = run(&d);
        curl_global_cleanup();
        ft_config_free(d.cfg);
        return rc;
}
