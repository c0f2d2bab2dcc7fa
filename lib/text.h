/* SPDX-License-Identifier: MIT */
/*
 * text.h: the byte and character checks every parser shares, and the one way
 * untrusted text is quoted in a diagnosis.
 *
 * Upstream answers and configuration files are hostile until checked. A
 * diagnosis ends up in logs and in front of an operator, so a value quoted in
 * one must be valid UTF-8 on one line, short, and never a token. These
 * helpers are the single place those rules live; the modules call them
 * rather than keep copies that could drift apart.
 *
 * Character classes take a byte as an int: a `char` (negative for bytes of
 * 0x80 and above where char is signed) or an `unsigned char` gives the same
 * answer, and bytes of 0x80 and above belong to no ASCII class.
 */
#ifndef FT_TEXT_H
#define FT_TEXT_H

#include "ft.h"

/* ---- ASCII classes ---- */

bool ft_text_is_alpha(int c);
bool ft_text_is_digit(int c);
bool ft_text_is_alnum(int c);
bool ft_text_is_hex(int c);

/* The value 0..15 of a hex digit of either case, or -1 for any other byte. */
int ft_text_hex_value(int c);

/* The base64url alphabet of RFC 4648 section 5 (A-Z a-z 0-9 - _), without '='. */
bool ft_text_is_base64url(int c);

/*
 * RFC 9110 section 5.6.2 tchar: what HTTP methods and header names are made
 * of. Anything else in one would let a value smuggle a second field or
 * confuse a signature's canonical form.
 */
bool ft_text_is_tchar(int c);

/* ---- UTF-8 ---- */

/*
 * The length (1..4) of the UTF-8 sequence at p, reading at most `avail`
 * bytes, and its code point in *ret_cp; -EILSEQ for an invalid, overlong or
 * truncated sequence, a surrogate or a code point past U+10FFFF, which no
 * honest peer sends and some parsers decode differently.
 */
int ft_text_utf8_next(const unsigned char *p, size_t avail, uint32_t *ret_cp);

/* C0 controls, DEL and the C1 controls U+0080..U+009F: what may not stand in a one-line quote. */
bool ft_text_is_control(uint32_t cp);

/*
 * The length of the well-formed UTF-8 sequence at p (at most `avail` bytes)
 * when it is not a C1 control, or 0. This is the rule for configuration
 * files: U+0080..U+009F would be invisible in an editor yet change a value.
 * ASCII controls are accepted here; callers refuse them with their own
 * message.
 */
size_t ft_text_utf8_len_no_c1(const unsigned char *p, size_t avail);

/*
 * The number of characters in `s` when it is valid UTF-8 without control
 * characters; -EILSEQ otherwise. For limits an upstream counts in
 * characters rather than bytes (AWS STS does).
 */
int ft_text_chars(const char *s, size_t *ret_chars);

/* ---- Quoting untrusted text in a diagnosis ---- */

/*
 * Quote untrusted upstream or configured text safely in a diagnosis: copy
 * the `len` bytes of `s` into buf as valid UTF-8 only, each control
 * character or invalid byte replaced by '?', at most `max` bytes and never
 * cut inside a character, with "..." appended when shortened. `size` should
 * be at least max + 4 ("..." and the NUL); a smaller buffer lowers `max`.
 * Returns buf, always NUL-terminated.
 */
const char *ft_text_show(char *buf, size_t size, const char *s, size_t len, size_t max);

/*
 * As ft_text_show, and also replaces anything that looks like a credential
 * (a run of at least 32 base64url or '.' characters mixing upper case, lower
 * case and digits) with "[token removed]". For an upstream's free text,
 * which is not known to echo tokens but ends up in logs, where it must never
 * carry one. `size` should be at least max + 5: a cut that would end on a
 * token character gets a space before the "...", so that a cut word cannot
 * be taken for a token.
 */
const char *ft_text_show_redacted(char *buf, size_t size, const char *s, size_t len, size_t max);

/*
 * The strictest quote, for text that has no reason to hold anything but
 * ASCII (AWS codes and messages, claims and key ids we compare): the `len`
 * bytes of `s`, each byte outside printable ASCII shown as '?', cut to
 * size - 1 bytes with the last three made "..." when shortened. Returns buf,
 * always NUL-terminated ("" when size is 0).
 */
const char *ft_text_ascii(char *buf, size_t size, const char *s, size_t len);

/* ---- Filling a sentence template ---- */

struct ft_strbuf;

/* Appends to b what stands for the placeholder named by the `len` bytes at `name`. */
typedef void ft_text_put_fn(struct ft_strbuf *b, const char *name, size_t len, const void *arg);

/*
 * Append the template `tpl` to b with each "{name}" replaced by what
 * put(b, name, len, arg) appends; the text from a '{' without a closing
 * '}' is copied as it is. The upstreams' error tables are written this way,
 * so each entry reads as the sentence the operator will see.
 */
void ft_text_expand(struct ft_strbuf *b, const char *tpl, ft_text_put_fn *put, const void *arg);

#endif
