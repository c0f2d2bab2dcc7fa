/* SPDX-License-Identifier: MIT */
/*
 * jwtsrc.h: one [jwt.NAME]: fetch an AWS-signed OIDC token with STS
 * GetWebIdentityToken, keep it, renew it ahead of expiry, back off on
 * failure, and say what went wrong in plain words.
 */
#ifndef FT_JWTSRC_H
#define FT_JWTSRC_H

#include <uv.h>

#include "config.h"
#include "creds.h"
#include "crypto.h"
#include "fetch.h"
#include "jwt.h"

struct jwt_source;

enum jwt_state {
        JWT_PENDING = 0,   /* no token yet, first fetch under way */
        JWT_FRESH,         /* the last fetch succeeded */
        JWT_STALE,         /* the last fetch failed; the previous token is still servable */
        JWT_FAILING,       /* the last fetch failed and there is nothing servable */
};

struct jwt_status {
        enum jwt_state state;
        const char *token;            /* NULL unless servable now; borrowed */
        size_t token_len;
        const struct ft_jwt *claims;  /* of the current token, or NULL */
        int64_t expires;              /* epoch s, 0 if none */
        int64_t issued;
        char fingerprint[FT_FINGERPRINT_LEN];
        bool verified;                /* signature checked against the issuer's JWKS */
        const struct ft_diag *last_error; /* NULL when the last fetch succeeded */
        int64_t failing_since;        /* epoch s of the first failure of the current run, 0 if none */
        int64_t next_attempt;         /* epoch s */
        unsigned ok_count, fail_count;
        int duration;                 /* DurationSeconds requested last */
};

/* Called after every fetch, good or bad. */
typedef void (*jwt_update_fn)(void *userdata, struct jwt_source *src);

int jwt_source_new(uv_loop_t *loop, struct fetcher *f, struct creds_source *creds, const struct ft_config *cfg,
                   const struct ft_config_jwt *def, jwt_update_fn update, void *userdata,
                   struct jwt_source **ret, struct ft_diag *diag);
/* First fetch now; renewals follow by themselves. */
void jwt_source_start(struct jwt_source *s);
/* --once: stop after the first outcome (immediate "retry now" answers still retried once). */
void jwt_source_set_once(struct jwt_source *s, bool once);
/* True once the source has a final outcome in --once mode. */
bool jwt_source_settled(const struct jwt_source *s);
const char *jwt_source_name(const struct jwt_source *s);
void jwt_source_status(const struct jwt_source *s, struct jwt_status *ret);
void jwt_source_free(struct jwt_source *s);

#endif
