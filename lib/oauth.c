/* SPDX-License-Identifier: MIT */
#include "oauth.h"

#include <string.h>

void ft_access_token_free(struct ft_access_token *t)
{
        if (!t)
                return;
        if (t->access_token) {
                /*
                 * Wipe the larger of the recorded length and the string
                 * length: a parser that forgot to set access_token_len must
                 * not leave the token behind.
                 */
                size_t n = strlen(t->access_token);

                ft_wipe(t->access_token, n > t->access_token_len ? n : t->access_token_len);
                free(t->access_token);
        }
        free(t->token_type);
        ft_wipe(t, sizeof(*t));
        free(t);
}
