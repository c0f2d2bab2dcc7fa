/* SPDX-License-Identifier: MIT */
#include "exchange.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "entra.h"
#include "gcp.h"
#include "util.h"

/* A new federated credential takes minutes to propagate: AADSTS70021 soon after start may be that. */
#define PROPAGATION_WINDOW_S 600

enum exchange_kind { EXCHANGE_AZURE, EXCHANGE_GCP };
enum gcp_step { GCP_STS, GCP_IAM };

struct exchange {
        enum exchange_kind kind;
        struct fetcher *fetcher;
        const struct ft_config *cfg;
        const struct ft_config_azure *azure;
        const struct ft_config_gcp *gcp;
        int64_t started;

        bool busy;
        struct fetch *inflight;
        exchange_done_fn done;
        void *done_ud;
        struct ft_jwt *claims;        /* of the JWT being exchanged, for explanations */
        enum gcp_step step;
};

static int exchange_new(enum exchange_kind kind, struct fetcher *f, const struct ft_config *cfg,
                        struct exchange **ret)
{
        struct exchange *x = calloc(1, sizeof(*x));

        if (!x)
                return -ENOMEM;
        x->kind = kind;
        x->fetcher = f;
        x->cfg = cfg;
        *ret = x;
        return 0;
}

int exchange_new_azure(struct fetcher *f, const struct ft_config *cfg, const struct ft_config_azure *def,
                       int64_t started, struct exchange **ret)
{
        int r = exchange_new(EXCHANGE_AZURE, f, cfg, ret);

        if (r < 0)
                return r;
        (*ret)->azure = def;
        (*ret)->started = started;
        return 0;
}

int exchange_new_gcp(struct fetcher *f, const struct ft_config *cfg, const struct ft_config_gcp *def,
                     struct exchange **ret)
{
        int r = exchange_new(EXCHANGE_GCP, f, cfg, ret);

        if (r < 0)
                return r;
        (*ret)->gcp = def;
        return 0;
}

static void clear_fetch(struct exchange *x)
{
        ft_jwt_free(x->claims);
        x->claims = NULL;
        x->busy = false;
        x->inflight = NULL;
        x->done = NULL;
        x->done_ud = NULL;
}

static void finish(struct exchange *x, struct ft_access_token *tok, const struct ft_diag *diag, bool jwt_stale)
{
        exchange_done_fn done = x->done;
        void *ud = x->done_ud;

        clear_fetch(x);
        done(ud, tok, tok ? NULL : diag, jwt_stale);
}

static void fail_msg(struct exchange *x, enum ft_retry retry, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_msg(struct exchange *x, enum ft_retry retry, const char *fmt, ...)
{
        struct ft_diag diag = { .retry = retry };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(diag.msg, sizeof(diag.msg), fmt, ap);
        va_end(ap);
        finish(x, NULL, &diag, false);
}

static bool allow_http(const char *url)
{
        /* Only the tests' loopback fakes are plain http; lib/ refuses anything else before we get here. */
        return strncmp(url, "http://127.", 11) == 0 || strncmp(url, "http://localhost", 16) == 0 ||
               strncmp(url, "http://[::1]", 12) == 0;
}

static int start(struct exchange *x, struct ft_request *req, size_t max_body, fetch_done_fn done)
{
        struct fetch_opts opts = { .timeout_ms = x->cfg->daemon.http_timeout * 1000L, .max_body = max_body };

        opts.allow_http = allow_http(req->url);
        return fetcher_start(x->fetcher, req, &opts, done, x, &x->inflight);
}

/* --- Microsoft Entra ID --- */

static void on_entra_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct exchange *x = ud;
        struct ft_access_token *tok = NULL;
        struct ft_diag diag = { 0 };
        int64_t now = now_wall_ms() / 1000;

        x->inflight = NULL;
        if (error < 0) {
                fail_msg(x, FT_RETRY_BACKOFF, "Entra ID token endpoint at %s: %s", x->azure->authority, errmsg);
                return;
        }
        if (resp->status != 200) {
                struct ft_entra_context ctx = {
                        .tenant_id = x->azure->tenant_id,
                        .client_id = x->azure->client_id,
                        .scope = x->azure->scope,
                        .authority = x->azure->authority,
                        .assertion = x->claims,
                        .now = now,
                        .recently_created = now - x->started < PROPAGATION_WINDOW_S,
                };
                ft_entra_explain_error(resp->status, resp->body, resp->body_len, &ctx, &diag);
                /* The explanation may ask for a minimum wait (propagation, loop detection): keep the longer. */
                if (resp->retry_after > diag.retry_after)
                        diag.retry_after = resp->retry_after;
                finish(x, NULL, &diag, strcmp(diag.code, "AADSTS700024") == 0);
                return;
        }
        /* expires_in counts from when Entra answered: a second of slack covers the time in flight. */
        if (ft_entra_parse(resp->body, resp->body_len, now - 1, &tok, &diag) < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                finish(x, NULL, &diag, false);
                return;
        }
        finish(x, tok, NULL, false);
}

static void fetch_azure(struct exchange *x, const char *jwt)
{
        struct ft_entra_params p = {
                .authority = x->azure->authority,
                .tenant_id = x->azure->tenant_id,
                .client_id = x->azure->client_id,
                .scope = x->azure->scope,
                .assertion = jwt,
        };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        int r;

        r = ft_entra_build(&p, &req, &diag);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                finish(x, NULL, &diag, false);
                return;
        }
        r = start(x, req, FT_ENTRA_MAX_BODY, on_entra_done);
        if (r < 0)
                fail_msg(x, FT_RETRY_BACKOFF, "cannot start the Entra ID request: %s", strerror(-r));
}

/* --- Google Cloud --- */

static void gcp_explain(struct exchange *x, const struct ft_response *resp, const char *step)
{
        struct ft_gcp_context ctx = {
                .step = step,
                .audience = x->gcp->audience,
                .service_account = x->gcp->service_account,
                .subject = x->claims,
                .now = now_wall_ms() / 1000,
        };
        struct ft_diag diag = { 0 };

        ft_gcp_explain_error(resp->status, resp->body, resp->body_len, &ctx, &diag);
        if (resp->retry_after > diag.retry_after)
                diag.retry_after = resp->retry_after;
        finish(x, NULL, &diag, false);
}

static void on_gcp_iam_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct exchange *x = ud;
        struct ft_access_token *tok = NULL;
        struct ft_diag diag = { 0 };

        x->inflight = NULL;
        if (error < 0) {
                fail_msg(x, FT_RETRY_BACKOFF, "Google IAM credentials at %s: %s", x->gcp->iam_endpoint, errmsg);
                return;
        }
        if (resp->status != 200) {
                gcp_explain(x, resp, "iam");
                return;
        }
        if (ft_gcp_parse_generate(resp->body, resp->body_len, &tok, &diag) < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                finish(x, NULL, &diag, false);
                return;
        }
        finish(x, tok, NULL, false);
}

static void on_gcp_sts_done(void *ud, int error, const char *errmsg, const struct ft_response *resp)
{
        struct exchange *x = ud;
        struct ft_access_token *federated = NULL;
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        int r;

        x->inflight = NULL;
        if (error < 0) {
                fail_msg(x, FT_RETRY_BACKOFF, "Google STS at %s: %s", x->gcp->sts_endpoint, errmsg);
                return;
        }
        if (resp->status != 200) {
                gcp_explain(x, resp, "sts");
                return;
        }
        /* As for Entra: expires_in counts from Google's answer, a second before we read it. */
        if (ft_gcp_parse_sts(resp->body, resp->body_len, now_wall_ms() / 1000 - 1, &federated, &diag) < 0) {
                diag.retry = FT_RETRY_BACKOFF;
                finish(x, NULL, &diag, false);
                return;
        }
        if (!x->gcp->service_account) {
                finish(x, federated, NULL, false);
                return;
        }
        /* Impersonation: the federated token only ever buys the service account's token. */
        x->step = GCP_IAM;
        r = ft_gcp_build_generate(x->gcp->iam_endpoint, x->gcp->service_account, federated->access_token,
                                  x->gcp->scope, x->gcp->lifetime, &req, &diag);
        ft_access_token_free(federated);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                finish(x, NULL, &diag, false);
                return;
        }
        r = start(x, req, FT_GCP_MAX_BODY, on_gcp_iam_done);
        if (r < 0)
                fail_msg(x, FT_RETRY_BACKOFF, "cannot start the IAM credentials request: %s", strerror(-r));
}

static void fetch_gcp(struct exchange *x, const char *jwt)
{
        struct ft_gcp_sts_params p = {
                .endpoint = x->gcp->sts_endpoint,
                .audience = x->gcp->audience,
                .scope = x->gcp->scope,
                .impersonate = x->gcp->service_account != NULL,
                .subject_token = jwt,
        };
        struct ft_diag diag = { 0 };
        struct ft_request *req = NULL;
        int r;

        x->step = GCP_STS;
        r = ft_gcp_build_sts(&p, &req, &diag);
        if (r < 0) {
                diag.retry = FT_RETRY_SLOW;
                finish(x, NULL, &diag, false);
                return;
        }
        r = start(x, req, FT_GCP_MAX_BODY, on_gcp_sts_done);
        if (r < 0)
                fail_msg(x, FT_RETRY_BACKOFF, "cannot start the Google STS request: %s", strerror(-r));
}

int exchange_fetch(struct exchange *x, const char *jwt, exchange_done_fn done, void *userdata)
{
        struct ft_diag diag = { 0 };

        if (!jwt || !done)
                return -EINVAL;
        if (x->busy)
                return -EBUSY;
        x->busy = true;
        x->done = done;
        x->done_ud = userdata;
        /* Our own decoded copy names the assertion's claims in explanations, whatever the caller does meanwhile. */
        if (ft_jwt_decode(jwt, strlen(jwt), &x->claims, &diag) < 0)
                x->claims = NULL;
        if (x->kind == EXCHANGE_AZURE)
                fetch_azure(x, jwt);
        else
                fetch_gcp(x, jwt);
        return 0;
}

void exchange_cancel(struct exchange *x)
{
        if (!x || !x->busy)
                return;
        if (x->inflight)
                fetch_cancel(x->inflight);
        clear_fetch(x);
}

void exchange_free(struct exchange *x)
{
        if (!x)
                return;
        exchange_cancel(x);
        free(x);
}
