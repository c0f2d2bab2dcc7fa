/* SPDX-License-Identifier: MIT */
/*
 * jwtfetch.h: one [jwt.NAME]'s fetch: STS GetWebIdentityToken signed with
 * the given AWS credentials, the answer checked (and, with verify = true,
 * the signature verified through the issuer's discovery document and
 * JWKS), the outcome handed back. When to fetch is the renewal engine's
 * decision.
 */
#ifndef FT_JWTFETCH_H
#define FT_JWTFETCH_H

#include <uv.h>

#include "awscreds.h"
#include "config.h"
#include "fetch.h"
#include "jwt.h"

struct jwt_fetcher;

/*
 * A token's DurationSeconds stays this far from the signing credentials'
 * expiry, and is at least STS's minimum (60 s): credentials with less than
 * the sum left cannot sign for any token.
 */
#define JWT_CREDS_MARGIN_S 60
#define JWT_CREDS_MIN_VALID_S (JWT_CREDS_MARGIN_S + 60)

/* A token obtained; the string is a secret. */
struct jwt_token {
        char *token;
        size_t len;
        struct ft_jwt *claims;
        int64_t issued, expires;   /* epoch s on the local clock (corrected for a known skew) */
        bool verified;
        int duration;              /* DurationSeconds requested */
};
void jwt_token_free(struct jwt_token *t);   /* wipes; accepts NULL */

/*
 * The outcome: `tok` (ownership passes) or `diag`. `creds_stale` says STS
 * rejected the credentials as expired, or they expire too soon to sign for
 * a token: fetch new credentials before trying again.
 */
typedef void (*jwt_done_fn)(void *userdata, struct jwt_token *tok, const struct ft_diag *diag, bool creds_stale);

/* -EINVAL with a diagnosis when the region or endpoint is unusable. */
int jwt_fetcher_new(struct fetcher *f, const struct ft_config *cfg, const struct ft_config_jwt *def,
                    struct jwt_fetcher **ret, struct ft_diag *diag);

/*
 * Start one fetch signed with `creds` (borrowed for this call only);
 * `creds_source` names the provider in messages. -EBUSY while one is under
 * way. `done` runs exactly once unless cancelled, possibly before jwt_fetch
 * returns (a request that cannot even be built fails at once).
 */
int jwt_fetch(struct jwt_fetcher *j, const struct ft_aws_creds *creds, const char *creds_source,
              jwt_done_fn done, void *userdata);
void jwt_fetch_cancel(struct jwt_fetcher *j);
void jwt_fetcher_free(struct jwt_fetcher *j);

#endif
