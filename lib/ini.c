/* SPDX-License-Identifier: MIT */
/*
 * ini.c: the strict INI tokenizer of ini.h.
 *
 * What a line may hold, beyond the grammar in ini.h:
 *
 *   - Section names are words of A-Z a-z 0-9 _ . - ; white space between
 *     words is passed on as one space, because the AWS config file names its
 *     sections "[profile NAME]". White space just inside the brackets is
 *     ignored.
 *   - Keys are A-Z a-z 0-9 _ . - plus : / + @ and UTF-8 letters, so that STS
 *     session tag keys ("tag.team/app", "tag.cost:center") can be written.
 *     A key holds no white space and no '='.
 *   - A value may be put in double quotes to keep leading or trailing white
 *     space, or a ';' or '#' after white space, that would otherwise be
 *     trimmed or read as a comment: key = "  a ; b". There are no escapes,
 *     so a '"' is allowed only as the first and the last character of a
 *     value; anywhere else it is an error rather than a guess.
 *   - Every line must be valid UTF-8 without control characters (C0, DEL,
 *     C1); a tab counts as white space. Lines end in LF or CRLF.
 *
 * Messages never quote the line: the same parser reads the AWS shared
 * credentials file, whose values are secret keys. They name the column
 * instead. The line buffer is wiped before it is freed for the same reason.
 */
#include "ini.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

struct ini_line {
        const char *filename;
        unsigned number;
        char *buf;              /* a NUL-terminated copy of the line, cut in place */
        size_t len;
};

static int line_error(struct ft_diag *diag, const struct ini_line *l, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int line_error(struct ft_diag *diag, const struct ini_line *l, const char *fmt, ...)
{
        char what[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return ft_diag_set(diag, "%s:%u: %s", l->filename, l->number, what);
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

static bool is_name_char(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '.' || c == '-';
}

static bool is_key_char(unsigned char c)
{
        /* Bytes >= 0x80 belong to UTF-8 sequences the line check has already validated. */
        return is_name_char(c) || c == ':' || c == '/' || c == '+' || c == '@' || c >= 0x80;
}

static int check_bytes(const struct ini_line *l, struct ft_diag *diag)
{
        const unsigned char *p = (const unsigned char *)l->buf;
        size_t i = 0;

        while (i < l->len) {
                size_t n;

                if (p[i] == '\0')
                        return line_error(diag, l, "NUL byte at column %zu", i + 1);
                if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
                        return line_error(diag, l, "control character 0x%02x at column %zu", p[i], i + 1);
                n = ft_text_utf8_len_no_c1(p + i, l->len - i);
                if (n == 0)
                        return line_error(diag, l, "invalid UTF-8 (or a C1 control character) at column %zu",
                                          i + 1);
                i += n;
        }
        return 0;
}

/* True when p starts an inline comment: a ';' or '#' right after white space. */
static bool at_comment(const struct ini_line *l, const char *p)
{
        return (*p == ';' || *p == '#') && p > l->buf && is_blank(p[-1]);
}

static size_t column(const struct ini_line *l, const char *p)
{
        return (size_t)(p - l->buf) + 1;
}

/* "[ word  word ]": checks the name and rewrites it in place as "word word". */
static int parse_section(struct ini_line *l, char *open, char **ret_name, struct ft_diag *diag)
{
        char *close = strchr(open, ']');
        char *p, *w;

        if (!close)
                return line_error(diag, l, "'[' without a closing ']' (a section header is \"[name]\")");
        for (p = close + 1; is_blank(*p); p++)
                ;
        if (*p != '\0' && !at_comment(l, p))
                return line_error(diag, l,
                                  "unexpected text after ']' at column %zu (a comment needs white space before "
                                  "';' or '#')",
                                  column(l, p));
        *close = '\0';
        for (p = open + 1; is_blank(*p); p++)
                ;
        if (*p == '\0')
                return line_error(diag, l, "empty section name in '[]'");
        w = open + 1;
        while (*p) {
                if (is_blank(*p)) {
                        while (is_blank(*p))
                                p++;
                        if (*p)
                                *w++ = ' ';
                        continue;
                }
                if (!is_name_char((unsigned char)*p))
                        return line_error(diag, l,
                                          "section name has a character that is not allowed at column %zu "
                                          "(use A-Z a-z 0-9 _ . -)",
                                          column(l, p));
                *w++ = *p++;
        }
        *w = '\0';
        *ret_name = open + 1;
        return 0;
}

/* The value after '=' (p points past it): unquoted up to a comment, or "quoted". */
static int parse_value(struct ini_line *l, char *p, char **ret_value, struct ft_diag *diag)
{
        char *start, *end, *q;

        while (is_blank(*p))
                p++;
        if (*p == '"') {
                start = p + 1;
                end = strchr(start, '"');
                if (!end)
                        return line_error(diag, l, "value has an opening '\"' at column %zu but no closing one",
                                          column(l, p));
                for (q = end + 1; is_blank(*q); q++)
                        ;
                if (*q != '\0' && !at_comment(l, q))
                        return line_error(diag, l,
                                          "unexpected text after the closing '\"' at column %zu (a '\"' is "
                                          "allowed only around the whole value, and a comment needs white "
                                          "space before it)",
                                          column(l, q));
                *end = '\0';
                *ret_value = start;
                return 0;
        }
        start = p;
        for (q = p; *q && !at_comment(l, q); q++)
                if (*q == '"')
                        return line_error(diag, l,
                                          "'\"' at column %zu: quotes are allowed only around the whole value",
                                          column(l, q));
        end = q;
        while (end > start && is_blank(end[-1]))
                end--;
        *end = '\0';
        *ret_value = start;
        return 0;
}

static int parse_key_value(struct ini_line *l, char *p, char **ret_key, char **ret_value, struct ft_diag *diag)
{
        char *key = p, *key_end;

        if (*p == '=')
                return line_error(diag, l, "empty key before '=' (expected \"key = value\")");
        while (*p && *p != '=' && !is_blank(*p)) {
                if (!is_key_char((unsigned char)*p))
                        return line_error(diag, l,
                                          "key has a character that is not allowed at column %zu (use A-Z a-z "
                                          "0-9 _ . - : / + @)",
                                          column(l, p));
                p++;
        }
        key_end = p;
        while (is_blank(*p))
                p++;
        if (*p != '=') {
                if (*p == '\0' || at_comment(l, p))
                        return line_error(diag, l, "missing '=' (expected \"key = value\")");
                return line_error(diag, l,
                                  "white space inside the key at column %zu, or a missing '=' (expected \"key = "
                                  "value\")",
                                  column(l, key_end));
        }
        *key_end = '\0';
        *ret_key = key;
        return parse_value(l, p + 1, ret_value, diag);
}

/* Prefixes what the callback wrote with "file:line: ". */
static int callback_failed(int r, const struct ini_line *l, struct ft_diag *diag)
{
        char what[sizeof(diag->msg)];

        if (diag->msg[0])
                memcpy(what, diag->msg, sizeof(what));
        else
                snprintf(what, sizeof(what), "%s", r == -ENOMEM ? "out of memory" : "rejected");
        what[sizeof(what) - 1] = '\0';
        ft_diag_set(diag, "%s:%u: %s", l->filename, l->number, what);
        return r;
}

/*
 * One line. `section` is the current section; a header line sets
 * *ret_section to the new name (inside l->buf), other lines leave it alone.
 */
static int parse_line(struct ini_line *l, const char *section, char **ret_section, ft_ini_fn fn, void *userdata,
                      struct ft_diag *diag)
{
        char *p = l->buf, *key = NULL, *value = NULL, *name = NULL;
        int r;

        r = check_bytes(l, diag);
        if (r < 0)
                return r;
        while (is_blank(*p))
                p++;
        if (*p == '\0' || *p == ';' || *p == '#')
                return 0;
        diag->msg[0] = '\0';
        if (*p == '[') {
                r = parse_section(l, p, &name, diag);
                if (r < 0)
                        return r;
                *ret_section = name;
                r = fn(name, NULL, NULL, l->number, userdata, diag);
        } else {
                r = parse_key_value(l, p, &key, &value, diag);
                if (r < 0)
                        return r;
                r = fn(section, key, value, l->number, userdata, diag);
        }
        return r < 0 ? callback_failed(r, l, diag) : 0;
}

int ft_ini_parse(const char *text, size_t len, const char *filename, ft_ini_fn fn, void *userdata,
                 struct ft_diag *diag)
{
        struct ft_diag local = { 0 };
        struct ini_line l = { .filename = filename ? filename : "(input)" };
        char *section_buf = NULL;
        const char *section = "";
        size_t pos = 0, cap;
        int r = 0;

        if (!diag)
                diag = &local;
        if ((!text && len) || !fn)
                return -EINVAL;
        if (len > FT_INI_MAX_SIZE)
                return ft_diag_set(diag, "%s: the file is %zu bytes, more than the limit of %d", l.filename, len,
                                   FT_INI_MAX_SIZE);
        if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                pos = 3;
        cap = (len < FT_INI_MAX_LINE ? len : FT_INI_MAX_LINE) + 1;
        l.buf = malloc(cap);
        /* The current section name outlives its line, so it gets a buffer of its own. */
        section_buf = malloc(cap);
        if (!l.buf || !section_buf) {
                r = -ENOMEM;
                goto out;
        }
        while (pos < len) {
                const char *start = text + pos, *nl = memchr(start, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - start) : len - pos;
                char *new_section = NULL;

                pos += n + (nl ? 1 : 0);
                l.number++;
                if (n > 0 && start[n - 1] == '\r')
                        n--;
                if (n > FT_INI_MAX_LINE) {
                        r = line_error(diag, &l, "line is longer than the limit of %d bytes", FT_INI_MAX_LINE);
                        goto out;
                }
                memcpy(l.buf, start, n);
                l.buf[n] = '\0';
                l.len = n;
                r = parse_line(&l, section, &new_section, fn, userdata, diag);
                if (r < 0)
                        goto out;
                if (new_section) {
                        strcpy(section_buf, new_section);
                        section = section_buf;
                }
        }
out:
        if (l.buf) {
                ft_wipe(l.buf, cap);
                free(l.buf);
        }
        free(section_buf);
        return r;
}
