/* SPDX-License-Identifier: MIT */
/*
 * creds.h: AWS credentials from one provider, chosen at start (or pinned by
 * [aws] credentials). A creds_source performs one fetch at a time and hands
 * the outcome back; when to fetch (refresh ahead of expiry, backoff) is the
 * renewal engine's decision, not this module's.
 *
 * The default chain ("auto") takes the first provider that is configured on
 * this host: environment keys → shared credentials file profile → web
 * identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) → container endpoint
 * (AWS_CONTAINER_CREDENTIALS_*_URI) → IMDSv2 (unless disabled). A provider
 * that is configured but fails is reported as failing; the chain does not
 * fall through to IMDS, which would hide the real problem behind another.
 */
#ifndef FT_CREDS_H
#define FT_CREDS_H

#include <uv.h>

#include "awscreds.h"
#include "config.h"
#include "fetch.h"

struct creds_source;

/*
 * The outcome of one fetch: either `creds` (ownership passes to the
 * callback) or `diag` (borrowed for the call). Environment and profile
 * credentials are read synchronously, so the callback may run before
 * creds_fetch returns.
 */
typedef void (*creds_done_fn)(void *userdata, struct ft_aws_creds *creds, const struct ft_diag *diag);

/*
 * The STS endpoint: [aws] sts_endpoint (AWS_ENDPOINT_URL_STS) when set, else
 * the regional endpoint of [aws] region (FIPS and dual-stack as configured).
 * A diagnosis says what to set when there is no region or it is not one.
 */
int sts_endpoint_resolve(const struct ft_config *cfg, char **ret, struct ft_diag *diag);

/* Chooses the provider; -ENOENT with a diagnosis when none is configured. */
int creds_source_new(uv_loop_t *loop, struct fetcher *f, const struct ft_config *cfg, ft_getenv_fn env,
                     void *env_ud, struct creds_source **ret, struct ft_diag *diag);

/* Start one fetch; -EBUSY while one is under way. `done` runs exactly once unless cancelled. */
int creds_fetch(struct creds_source *s, creds_done_fn done, void *userdata);
/* Abandon the fetch under way (its callback never runs). */
void creds_fetch_cancel(struct creds_source *s);

/* The provider in use: "env", "profile", "web-identity", "container", "imds". */
const char *creds_source_kind(const struct creds_source *s);

void creds_source_free(struct creds_source *s);

#endif
