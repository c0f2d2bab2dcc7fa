/* SPDX-License-Identifier: MIT */
/*
 * json.h: the one way lib/ reads an upstream's JSON answer with cJSON.
 *
 * Token endpoints, credential endpoints and JWT parts all answer with one
 * JSON object whose string members may be secrets. The rules for accepting
 * such a document, and for freeing it without leaving a secret in freed
 * memory, live here so the modules cannot drift apart. Callers cap the size
 * of the text before parsing, with their own message.
 */
#ifndef FT_JSON_H
#define FT_JSON_H

#include <cjson/cJSON.h>

#include "ft.h"

/*
 * The `len` bytes of `text` as one JSON object with nothing after it but
 * space, tab, CR or LF: a second document is refused, not ignored. A NUL
 * byte anywhere is refused too: JSON text has none, and cJSON would end a
 * string at it, so two readers could see two values. -EBADMSG for empty
 * text or any other shape. Free the tree with ft_json_free_secrets() or
 * cJSON_Delete().
 */
int ft_json_parse_object(const char *text, size_t len, cJSON **ret_root);

/* The string value of member `name` of `obj`, or NULL when it is absent or not a string. */
const char *ft_json_string(const cJSON *obj, const char *name);

/*
 * Wipes the string values of the members of `root` named in secret_names,
 * then frees the tree. Accepts NULL. Only the top level is searched: that
 * is where every answer we read keeps its secrets.
 */
void ft_json_free_secrets(cJSON *root, const char *const *secret_names, size_t n_names);

#endif
