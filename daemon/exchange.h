/* SPDX-License-Identifier: MIT */
/*
 * exchange.h: one [azure.NAME] or [gcp.NAME] fetch: the AWS JWT exchanged
 * for an access token at Microsoft Entra ID (client credentials with a
 * federated assertion) or at Google STS (then, with a service account,
 * IAM generateAccessToken). When to fetch is the renewal engine's decision.
 */
#ifndef FT_EXCHANGE_H
#define FT_EXCHANGE_H

#include "config.h"
#include "fetch.h"
#include "jwt.h"
#include "oauth.h"

struct exchange;

/*
 * The outcome: `tok` (ownership passes) or `diag`. `jwt_stale` says the
 * upstream judged the assertion outside its validity window: mint a new JWT
 * before trying again.
 */
typedef void (*exchange_done_fn)(void *userdata, struct ft_access_token *tok, const struct ft_diag *diag,
                                 bool jwt_stale);

int exchange_new_azure(struct fetcher *f, const struct ft_config *cfg, const struct ft_config_azure *def,
                       int64_t started, struct exchange **ret);
int exchange_new_gcp(struct fetcher *f, const struct ft_config *cfg, const struct ft_config_gcp *def,
                     struct exchange **ret);

/*
 * Start one exchange of `jwt` (borrowed for this call only). -EBUSY while
 * one is under way. `done` runs exactly once unless cancelled, possibly
 * before this returns.
 */
int exchange_fetch(struct exchange *x, const char *jwt, exchange_done_fn done, void *userdata);
void exchange_cancel(struct exchange *x);
void exchange_free(struct exchange *x);

#endif
