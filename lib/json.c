/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <errno.h>
#include <string.h>

/*
 * A document refused after parsing has not been seen by the caller, who
 * alone knows which members are secret: wipe every string at the top level.
 */
static void free_rejected(cJSON *root)
{
        if (cJSON_IsString(root) && root->valuestring)
                ft_wipe(root->valuestring, strlen(root->valuestring));
        for (cJSON *it = root->child; it; it = it->next)
                if (cJSON_IsString(it) && it->valuestring)
                        ft_wipe(it->valuestring, strlen(it->valuestring));
        cJSON_Delete(root);
}

int ft_json_parse_object(const char *text, size_t len, cJSON **ret_root)
{
        const char *end = NULL;
        cJSON *root;

        if (!text || len == 0 || memchr(text, '\0', len))
                return -EBADMSG;
        root = cJSON_ParseWithLengthOpts(text, len, &end, false);
        if (!root)
                return -EBADMSG;
        for (size_t i = (size_t)(end - text); i < len; i++) {
                if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n') {
                        free_rejected(root);
                        return -EBADMSG;
                }
        }
        if (!cJSON_IsObject(root)) {
                free_rejected(root);
                return -EBADMSG;
        }
        *ret_root = root;
        return 0;
}

const char *ft_json_string(const cJSON *obj, const char *name)
{
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

        return cJSON_IsString(it) && it->valuestring ? it->valuestring : NULL;
}

void ft_json_free_secrets(cJSON *root, const char *const *secret_names, size_t n_names)
{
        for (cJSON *it = root ? root->child : NULL; it; it = it->next) {
                if (!it->string || !cJSON_IsString(it) || !it->valuestring)
                        continue;
                for (size_t i = 0; i < n_names; i++)
                        if (strcmp(it->string, secret_names[i]) == 0)
                                ft_wipe(it->valuestring, strlen(it->valuestring));
        }
        cJSON_Delete(root);
}
