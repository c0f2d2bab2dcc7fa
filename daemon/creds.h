/* SPDX-License-Identifier: MIT */
/*
 * creds.h: AWS credentials for signing, from one provider chosen at start
 * (or pinned by [aws] credentials), cached with their expiry, refreshed
 * `credentials_refresh` seconds ahead of it, and kept through a failed
 * refresh until they really expire.
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
struct creds_wait;

/* `creds` and `diag` are borrowed for the call; exactly one is non-NULL. */
typedef void (*creds_done_fn)(void *userdata, const struct ft_aws_creds *creds, const struct ft_diag *diag);

/*
 * The STS endpoint: [aws] sts_endpoint (AWS_ENDPOINT_URL_STS) when set, else
 * the regional endpoint of [aws] region (FIPS and dual-stack as configured).
 * A diagnosis says what to set when there is no region or it is not one.
 */
int sts_endpoint_resolve(const struct ft_config *cfg, char **ret, struct ft_diag *diag);

/* Chooses the provider; -ENOENT with a diagnosis when none is configured. */
int creds_source_new(uv_loop_t *loop, struct fetcher *f, const struct ft_config *cfg, ft_getenv_fn env,
                     void *env_ud, struct creds_source **ret, struct ft_diag *diag);

/*
 * Credentials with at least `min_valid_s` seconds left.
 * Returns 0 with *ret_creds set (borrowed until control returns to the loop)
 * when the cache qualifies; returns 1 when a fetch is under way and `done`
 * will be called once (unless the wait is cancelled); negative on failure to
 * start, with `done` never called.
 */
int creds_get(struct creds_source *s, int64_t min_valid_s, creds_done_fn done, void *userdata,
              struct creds_wait **ret_wait, const struct ft_aws_creds **ret_creds);
void creds_wait_cancel(struct creds_wait *w);

/* The cached credentials, whatever their expiry, or NULL; never fetches. */
const struct ft_aws_creds *creds_peek(const struct creds_source *s);

/* Drop the cached credentials (STS said they expired or are invalid). */
void creds_invalidate(struct creds_source *s);

/* The provider in use: "env", "profile", "web-identity", "container", "imds". */
const char *creds_source_kind(const struct creds_source *s);

void creds_source_free(struct creds_source *s);

#endif
