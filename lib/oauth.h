/* SPDX-License-Identifier: MIT */
/*
 * oauth.h: an access token obtained by an exchange (Entra ID, Google STS,
 * Google IAM credentials), as data. The token is a secret: wiped on free.
 */
#ifndef FT_OAUTH_H
#define FT_OAUTH_H

#include "ft.h"

struct ft_access_token {
        char *access_token;     /* secret */
        size_t access_token_len;
        char *token_type;       /* "Bearer" */
        int64_t expires_at;     /* epoch seconds */
        int64_t refresh_at;     /* epoch seconds from Entra's refresh_in; 0 when not given */
};

void ft_access_token_free(struct ft_access_token *t);   /* wipes; accepts NULL */

#endif
