/* SPDX-License-Identifier: MIT */
#include "text.h"

#include <errno.h>
#include <string.h>

#include "httpmsg.h"

/* A run of token characters this long, mixing cases and digits, is taken for a credential. */
#define TOKEN_RUN_MIN 32

/* ------------------------------------------------------------------------ */
/* ASCII classes                                                            */

bool ft_text_is_alpha(int c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool ft_text_is_digit(int c)
{
        return c >= '0' && c <= '9';
}

bool ft_text_is_alnum(int c)
{
        return ft_text_is_alpha(c) || ft_text_is_digit(c);
}

bool ft_text_is_hex(int c)
{
        return ft_text_hex_value(c) >= 0;
}

int ft_text_hex_value(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

bool ft_text_is_base64url(int c)
{
        return ft_text_is_alnum(c) || c == '-' || c == '_';
}

bool ft_text_is_tchar(int c)
{
        /* A table: the request parser asks this of every byte of every header name. */
        static const bool tchar[256] = {
                ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true,
                ['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true, ['\''] = true,
                ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true, ['^'] = true, ['_'] = true,
                ['`'] = true, ['|'] = true, ['~'] = true,
        };

        return c >= 0 && c < 256 && tchar[c];
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                    */

int ft_text_utf8_next(const unsigned char *p, size_t avail, uint32_t *ret_cp)
{
        static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        uint32_t cp;
        int len;

        if (avail == 0)
                return -EILSEQ;
        if (p[0] < 0x80) {
                *ret_cp = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0) {
                cp = p[0] & 0x1f;
                len = 2;
        } else if ((p[0] & 0xf0) == 0xe0) {
                cp = p[0] & 0x0f;
                len = 3;
        } else if ((p[0] & 0xf8) == 0xf0) {
                cp = p[0] & 0x07;
                len = 4;
        } else {
                return -EILSEQ;
        }
        if ((size_t)len > avail)
                return -EILSEQ;
        for (int i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return -EILSEQ;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return -EILSEQ;
        *ret_cp = cp;
        return len;
}

bool ft_text_is_control(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

size_t ft_text_utf8_len_no_c1(const unsigned char *p, size_t avail)
{
        uint32_t cp;
        int len = ft_text_utf8_next(p, avail, &cp);

        if (len < 0 || (cp >= 0x80 && cp <= 0x9f))
                return 0;
        return (size_t)len;
}

int ft_text_chars(const char *s, size_t *ret_chars)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t avail = strlen(s), n = 0;

        while (avail > 0) {
                uint32_t cp;
                int len = ft_text_utf8_next(p, avail, &cp);

                if (len < 0 || ft_text_is_control(cp))
                        return -EILSEQ;
                p += len;
                avail -= (size_t)len;
                n++;
        }
        *ret_chars = n;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Quoting                                                                  */

/* The alphabet of JWTs and of opaque access tokens such as Google's ya29.*. */
static bool is_token_char(unsigned char c)
{
        return ft_text_is_base64url(c) || c == '.';
}

/*
 * The length of the run of token characters at p, and whether it looks like
 * a credential: long, with upper case, lower case and digits. Resource names,
 * emails and the words upstreams write in their messages do not mix all three.
 */
static size_t token_run(const unsigned char *p, size_t avail, bool *ret_secret)
{
        bool upper = false, lower = false, digit = false;
        size_t n = 0;

        for (; n < avail && is_token_char(p[n]); n++) {
                upper = upper || (p[n] >= 'A' && p[n] <= 'Z');
                lower = lower || (p[n] >= 'a' && p[n] <= 'z');
                digit = digit || ft_text_is_digit(p[n]);
        }
        *ret_secret = n >= TOKEN_RUN_MIN && upper && lower && digit;
        return n;
}

static const char *show(char *buf, size_t size, const char *s, size_t len, size_t max, bool redact)
{
        static const char removed[] = "[token removed]";
        /* "..." and the NUL, and with redact the space that may precede them. */
        const size_t reserve = redact ? 5 : 4;
        const unsigned char *p = (const unsigned char *)s;
        size_t o = 0, i = 0;

        if (size < reserve) {
                if (size > 0)
                        buf[0] = '\0';
                return size > 0 ? buf : "";
        }
        if (max > size - reserve)
                max = size - reserve;
        while (i < len) {
                const void *piece = p + i;
                size_t consumed, piece_len;

                if (redact && is_token_char(p[i])) {
                        bool secret;

                        consumed = token_run(p + i, len - i, &secret);
                        if (secret) {
                                piece = removed;
                                piece_len = sizeof(removed) - 1;
                        } else {
                                /* ASCII: a run may be cut anywhere. */
                                consumed = piece_len = consumed < max - o ? consumed : max - o;
                                if (piece_len == 0)
                                        break;
                        }
                } else {
                        uint32_t cp;
                        int n = ft_text_utf8_next(p + i, len - i, &cp);

                        if (n < 0 || ft_text_is_control(cp)) {
                                piece = "?";
                                piece_len = 1;
                                consumed = n < 0 ? 1 : (size_t)n;
                        } else {
                                consumed = piece_len = (size_t)n;
                        }
                }
                if (o + piece_len > max)
                        break;
                memcpy(buf + o, piece, piece_len);
                o += piece_len;
                i += consumed;
        }
        if (i < len) {
                /* Dots are token characters: kept apart, they cannot make a cut word look like a token. */
                if (redact && o > 0 && is_token_char((unsigned char)buf[o - 1]))
                        buf[o++] = ' ';
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

const char *ft_text_show(char *buf, size_t size, const char *s, size_t len, size_t max)
{
        return show(buf, size, s, len, max, false);
}

const char *ft_text_show_redacted(char *buf, size_t size, const char *s, size_t len, size_t max)
{
        return show(buf, size, s, len, max, true);
}

const char *ft_text_ascii(char *buf, size_t size, const char *s, size_t len)
{
        size_t o = 0;

        if (size == 0)
                return "";
        for (size_t i = 0; i < len && o + 1 < size; i++) {
                unsigned char c = (unsigned char)s[i];

                buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        buf[o] = '\0';
        if (o < len && o >= 3)
                memcpy(buf + o - 3, "...", 3);
        return buf;
}

/* ------------------------------------------------------------------------ */
/* Templates                                                                */

void ft_text_expand(struct ft_strbuf *b, const char *tpl, ft_text_put_fn *put, const void *arg)
{
        while (*tpl) {
                const char *open = strchr(tpl, '{'), *close;

                if (!open || !(close = strchr(open, '}'))) {
                        ft_strbuf_puts(b, tpl);
                        return;
                }
                ft_strbuf_append(b, tpl, (size_t)(open - tpl));
                put(b, open + 1, (size_t)(close - open - 1), arg);
                tpl = close + 1;
        }
}
