/* SPDX-License-Identifier: MIT */
/*
 * ini.h: a small strict INI tokenizer for fedtokend.conf and the AWS shared
 * credentials/config files.
 *
 * Why not libinih: Debian 12 builds it with a 200-byte line limit and cuts
 * longer lines silently, reading the tail as a new line. Audiences (up to
 * 1,000 characters each) and session tokens in ~/.aws/credentials are longer
 * than that. This tokenizer has no line limit below FT_INI_MAX_LINE and says
 * so plainly when it is exceeded.
 *
 * Grammar: "[section]" lines; "key = value" lines; blank lines; whole-line
 * comments starting with '#' or ';'; an inline comment starts at a ';' or '#'
 * preceded by white space. Keys and values are trimmed. A UTF-8 BOM is
 * skipped. NUL bytes, control characters and lines over FT_INI_MAX_LINE are
 * errors.
 */
#ifndef FT_INI_H
#define FT_INI_H

#include "ft.h"

#define FT_INI_MAX_LINE (16 * 1024)
#define FT_INI_MAX_SIZE (1024 * 1024)

/*
 * Called for every key. `section` is "" before the first section header.
 * Return 0 to go on; a negative errno (after filling diag->msg) stops the
 * parse, and ft_ini_parse prefixes the message with "file:line: ".
 * When `key` is NULL the call announces a new section (value NULL).
 */
typedef int (*ft_ini_fn)(const char *section, const char *key, const char *value, unsigned line,
                         void *userdata, struct ft_diag *diag);

int ft_ini_parse(const char *text, size_t len, const char *filename, ft_ini_fn fn, void *userdata,
                 struct ft_diag *diag);

#endif
