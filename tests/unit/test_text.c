/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "httpmsg.h"
#include "test.h"
#include "text.h"

/*
 * The helpers take a length and must not read past it: every input is given
 * as an exact-size heap copy, so ASan reports a read one byte too far.
 */
static char *copy_of(const char *s, size_t len)
{
        char *copy = malloc(len ? len : 1);

        if (!copy)
                abort();
        memcpy(copy, s, len);
        return copy;
}

static int utf8_next(const char *s, size_t len, uint32_t *ret_cp)
{
        char *copy = copy_of(s, len);
        int r = ft_text_utf8_next((const unsigned char *)copy, len, ret_cp);

        free(copy);
        return r;
}

static size_t len_no_c1(const char *s, size_t len)
{
        char *copy = copy_of(s, len);
        size_t r = ft_text_utf8_len_no_c1((const unsigned char *)copy, len);

        free(copy);
        return r;
}

static void check_utf8(const char *s, size_t len, int want_len, uint32_t want_cp)
{
        uint32_t cp = 0xdeadbeef;

        CHECK_INT(utf8_next(s, len, &cp), want_len);
        /* ret_cp is written only on success. */
        CHECK_INT(cp, want_len < 0 ? 0xdeadbeef : want_cp);
}

static void test_classes(void)
{
        CHECK(ft_text_is_alpha('a') && ft_text_is_alpha('Z'));
        CHECK(!ft_text_is_alpha('0') && !ft_text_is_alpha('@') && !ft_text_is_alpha('['));
        CHECK(ft_text_is_digit('0') && ft_text_is_digit('9'));
        CHECK(!ft_text_is_digit('a') && !ft_text_is_digit('/') && !ft_text_is_digit(':'));
        CHECK(ft_text_is_alnum('a') && ft_text_is_alnum('Z') && ft_text_is_alnum('5'));
        CHECK(!ft_text_is_alnum('-') && !ft_text_is_alnum('_') && !ft_text_is_alnum('\0'));
        CHECK(ft_text_is_hex('0') && ft_text_is_hex('f') && ft_text_is_hex('F'));
        CHECK(!ft_text_is_hex('g') && !ft_text_is_hex('G') && !ft_text_is_hex('x'));
        CHECK(ft_text_is_base64url('-') && ft_text_is_base64url('_') && ft_text_is_base64url('q'));
        CHECK(!ft_text_is_base64url('+') && !ft_text_is_base64url('/') && !ft_text_is_base64url('=') &&
              !ft_text_is_base64url('.'));

        /* Every RFC 9110 tchar punctuation mark, and separators that are not. */
        for (const char *p = "!#$%&'*+-.^_`|~"; *p; p++)
                CHECK(ft_text_is_tchar(*p));
        for (const char *p = "()<>@,;:\\\"/[]?={} \t"; *p; p++)
                CHECK(!ft_text_is_tchar(*p));
        CHECK(ft_text_is_tchar('A') && ft_text_is_tchar('z') && ft_text_is_tchar('7'));
        CHECK(!ft_text_is_tchar('\0'));

        /* Bytes of 0x80 and above are in no class, as char (negative) or as unsigned char. */
        for (int c = 0x80; c <= 0xff; c++) {
                char sc = (char)c;

                CHECK(!ft_text_is_alnum(c) && !ft_text_is_alnum(sc));
                CHECK(!ft_text_is_base64url(c) && !ft_text_is_base64url(sc));
                CHECK(!ft_text_is_tchar(c) && !ft_text_is_tchar(sc));
                CHECK(ft_text_hex_value(c) == -1 && ft_text_hex_value(sc) == -1);
        }
}

static void test_hex_value(void)
{
        CHECK_INT(ft_text_hex_value('0'), 0);
        CHECK_INT(ft_text_hex_value('9'), 9);
        CHECK_INT(ft_text_hex_value('a'), 10);
        CHECK_INT(ft_text_hex_value('F'), 15);
        CHECK_INT(ft_text_hex_value('g'), -1);
        CHECK_INT(ft_text_hex_value('@'), -1);
        CHECK_INT(ft_text_hex_value('`'), -1);
        CHECK_INT(ft_text_hex_value('\0'), -1);
}

static void test_utf8_next(void)
{
        check_utf8("A", 1, 1, 0x41);
        check_utf8("\x7f", 1, 1, 0x7f);
        check_utf8("\xc3\xa9", 2, 2, 0xe9);
        check_utf8("\xe2\x82\xac", 3, 3, 0x20ac);
        check_utf8("\xf0\x9f\x98\x80", 4, 4, 0x1f600);
        check_utf8("\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff);
        /* Only the first character is decoded. */
        check_utf8("\xc3\xa9xyz", 5, 2, 0xe9);

        check_utf8("", 0, -EILSEQ, 0);
        check_utf8("\x80", 1, -EILSEQ, 0);                  /* lone continuation byte */
        check_utf8("\xc3(", 2, -EILSEQ, 0);                 /* missing continuation */
        check_utf8("\xc0\xaf", 2, -EILSEQ, 0);              /* overlong '/' */
        check_utf8("\xc1\xbf", 2, -EILSEQ, 0);
        check_utf8("\xe0\x80\xaf", 3, -EILSEQ, 0);
        check_utf8("\xe0\x9f\xbf", 3, -EILSEQ, 0);          /* U+07FF in three bytes */
        check_utf8("\xf0\x80\x80\xaf", 4, -EILSEQ, 0);
        check_utf8("\xf0\x8f\xbf\xbf", 4, -EILSEQ, 0);      /* U+FFFF in four bytes */
        check_utf8("\xed\xa0\x80", 3, -EILSEQ, 0);          /* surrogate U+D800 */
        check_utf8("\xed\xbf\xbf", 3, -EILSEQ, 0);          /* surrogate U+DFFF */
        check_utf8("\xf4\x90\x80\x80", 4, -EILSEQ, 0);      /* U+110000 */
        check_utf8("\xf5\x80\x80\x80", 4, -EILSEQ, 0);
        check_utf8("\xf8\x88\x80\x80\x80", 5, -EILSEQ, 0);  /* five-byte form */
        check_utf8("\xff", 1, -EILSEQ, 0);
        /* A sequence longer than what is left is truncated, not read past. */
        check_utf8("\xe2\x82", 2, -EILSEQ, 0);
        check_utf8("\xf0\x9f\x98", 3, -EILSEQ, 0);
        check_utf8("\xc3", 1, -EILSEQ, 0);
        /* U+D7FF and U+E000 on either side of the surrogates are fine. */
        check_utf8("\xed\x9f\xbf", 3, 3, 0xd7ff);
        check_utf8("\xee\x80\x80", 3, 3, 0xe000);
}

static void test_is_control(void)
{
        CHECK(ft_text_is_control(0x00));
        CHECK(ft_text_is_control(0x09));
        CHECK(ft_text_is_control(0x1f));
        CHECK(!ft_text_is_control(0x20));
        CHECK(!ft_text_is_control(0x7e));
        CHECK(ft_text_is_control(0x7f));
        CHECK(ft_text_is_control(0x80));
        CHECK(ft_text_is_control(0x9f));
        CHECK(!ft_text_is_control(0xa0));
        CHECK(!ft_text_is_control(0x20ac));
}

static void test_utf8_len_no_c1(void)
{
        CHECK_INT(len_no_c1("a", 1), 1);
        /* ASCII controls are the caller's to refuse, with its own message. */
        CHECK_INT(len_no_c1("\t", 1), 1);
        CHECK_INT(len_no_c1("\x01", 1), 1);
        CHECK_INT(len_no_c1("\xc2\xa0", 2), 2);
        CHECK_INT(len_no_c1("\xe2\x82\xac", 3), 3);
        CHECK_INT(len_no_c1("\xf0\x9f\x98\x80", 4), 4);
        CHECK_INT(len_no_c1("\xc2\x80", 2), 0);
        CHECK_INT(len_no_c1("\xc2\x85", 2), 0);
        CHECK_INT(len_no_c1("\xc2\x9f", 2), 0);
        CHECK_INT(len_no_c1("\xc0\x80", 2), 0);
        CHECK_INT(len_no_c1("\xed\xa0\x80", 3), 0);
        CHECK_INT(len_no_c1("\xf4\x90\x80\x80", 4), 0);
        CHECK_INT(len_no_c1("\xe2\x82", 2), 0);
        CHECK_INT(len_no_c1("\xff", 1), 0);
}

static void test_chars(void)
{
        size_t n = 42;

        CHECK_INT(ft_text_chars("", &n), 0);
        CHECK_INT(n, 0);
        CHECK_INT(ft_text_chars("abc", &n), 0);
        CHECK_INT(n, 3);
        /* Characters, not bytes: "héllo €" is 7 characters in 10 bytes. */
        CHECK_INT(ft_text_chars("h\xc3\xa9llo \xe2\x82\xac", &n), 0);
        CHECK_INT(n, 7);
        CHECK_INT(ft_text_chars("\xf0\x9f\x98\x80", &n), 0);
        CHECK_INT(n, 1);

        n = 42;
        CHECK_INT(ft_text_chars("a\tb", &n), -EILSEQ);
        CHECK_INT(ft_text_chars("a\nb", &n), -EILSEQ);
        CHECK_INT(ft_text_chars("a\x7f", &n), -EILSEQ);
        CHECK_INT(ft_text_chars("\xc2\x85", &n), -EILSEQ);
        CHECK_INT(ft_text_chars("ab\xff", &n), -EILSEQ);
        CHECK_INT(ft_text_chars("\xc0\xaf", &n), -EILSEQ);
        CHECK_INT(ft_text_chars("\xe2\x82", &n), -EILSEQ);
        /* Written only on success. */
        CHECK_INT(n, 42);
}

static const char *show(char *buf, size_t size, const char *s, size_t len, size_t max)
{
        char *copy = copy_of(s, len);

        ft_text_show(buf, size, copy, len, max);
        free(copy);
        return buf;
}

static const char *show_redacted(char *buf, size_t size, const char *s, size_t len, size_t max)
{
        char *copy = copy_of(s, len);

        ft_text_show_redacted(buf, size, copy, len, max);
        free(copy);
        return buf;
}

static void test_show(void)
{
        char buf[84], small[8], tiny[3] = "xy";

        CHECK_STR(show(buf, sizeof(buf), "abc", 3, 80), "abc");
        CHECK_STR(show(buf, sizeof(buf), "", 0, 80), "");
        /* Only the `len` bytes given, whatever follows them. */
        CHECK_STR(show(buf, sizeof(buf), "abcXYZ", 3, 80), "abc");
        /* Valid UTF-8 is kept as it is. */
        CHECK_STR(show(buf, sizeof(buf), "caf\xc3\xa9 \xe2\x82\xac", 9, 80), "caf\xc3\xa9 \xe2\x82\xac");
        /* Controls, C1 controls and invalid bytes become '?', one per character or bad byte. */
        CHECK_STR(show(buf, sizeof(buf), "a\nb\x7f\t", 5, 80), "a?b??");
        CHECK_STR(show(buf, sizeof(buf), "\xc2\x85x", 3, 80), "?x");
        CHECK_STR(show(buf, sizeof(buf), "\xff\xc3(", 3, 80), "?" "?(");
        CHECK_STR(show(buf, sizeof(buf), "\xed\xa0\x80", 3, 80), "???");
        CHECK_STR(show(buf, sizeof(buf), "a\0b", 3, 80), "a?b");
        /* Cut at `max` bytes with "...". */
        CHECK_STR(show(buf, sizeof(buf), "abcdef", 6, 4), "abcd...");
        CHECK_STR(show(buf, sizeof(buf), "abcd", 4, 4), "abcd");
        CHECK_STR(show(buf, sizeof(buf), "abcde", 5, 0), "...");
        /* Never inside a character: "abé" cut at 3 bytes keeps "ab". */
        CHECK_STR(show(buf, sizeof(buf), "ab\xc3\xa9", 4, 3), "ab...");
        CHECK_STR(show(buf, sizeof(buf), "ab\xc3\xa9", 4, 4), "ab\xc3\xa9");
        CHECK_STR(show(buf, sizeof(buf), "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 8, 7), "\xf0\x9f\x98\x80...");
        /* A buffer smaller than max + 4 lowers max rather than overflowing. */
        CHECK_STR(show(small, sizeof(small), "abcdefghij", 10, 80), "abcd...");
        CHECK_INT(strlen(small), sizeof(small) - 1);
        /* A buffer too small for "..." gets nothing. */
        CHECK_STR(ft_text_show(tiny, sizeof(tiny), "abcdef", 6, 80), "");
        CHECK_STR(ft_text_show(NULL, 0, "abcdef", 6, 80), "");
}

static void test_show_redacted(void)
{
        static const char token[] = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
        static const char jwt[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2J5dGVz";
        char buf[300], small[13], in[200];

        /* A credential-looking run goes, the words around it stay. */
        snprintf(in, sizeof(in), "bad token ya29.%s here", token);
        CHECK_STR(show_redacted(buf, sizeof(buf), in, strlen(in), 200), "bad token [token removed] here");
        snprintf(in, sizeof(in), "jwt=%s", jwt);
        CHECK_STR(show_redacted(buf, sizeof(buf), in, strlen(in), 200), "jwt=[token removed]");
        /* Google's resource names and long words do not mix cases and digits: kept. */
        snprintf(in, sizeof(in), "projects/123456789012/locations/global/workloadIdentityPools/abcdefghijklmnopqrstuvwxyz");
        CHECK_STR(show_redacted(buf, sizeof(buf), in, strlen(in), 200), in);
        /* 31 characters mixing all three are below the threshold. */
        CHECK_STR(show_redacted(buf, sizeof(buf), token, 31, 200), "AbCdEfGhIjKlMnOpQrStUvWxYz01234");
        CHECK_STR(show_redacted(buf, sizeof(buf), token, 32, 200), "[token removed]");
        /* Unredacted, the same text is quoted as it is. */
        CHECK_STR(show(buf, sizeof(buf), token, 32, 200), "AbCdEfGhIjKlMnOpQrStUvWxYz012345");
        /* Controls are still replaced. */
        CHECK_STR(show_redacted(buf, sizeof(buf), "a\nb", 3, 200), "a?b");
        /* A cut after a token character gets a space, so the cut word cannot pass for a token. */
        CHECK_STR(show_redacted(small, sizeof(small), "hello world", 11, 8), "hello wo ...");
        CHECK_STR(show(buf, sizeof(buf), "hello world", 11, 8), "hello wo...");
        CHECK_STR(show_redacted(small, sizeof(small), "hello, world", 12, 6), "hello,...");
        /* The removal marker is not cut: what does not fit ends the excerpt. */
        snprintf(in, sizeof(in), "x %s", token);
        CHECK_STR(show_redacted(buf, sizeof(buf), in, strlen(in), 10), "x ...");
        /* A buffer smaller than max + 5 lowers max. */
        CHECK_STR(show_redacted(small, sizeof(small), "abcdefghijklmnop", 16, 80), "abcdefgh ...");
        CHECK_INT(strlen(small), sizeof(small) - 1);
}

static void test_ascii(void)
{
        char buf[16], eight[8], three[3];
        char *copy;

        CHECK_STR(ft_text_ascii(buf, sizeof(buf), "AccessDenied", 12), "AccessDenied");
        /* Every byte outside printable ASCII is one '?', even inside valid UTF-8. */
        copy = copy_of("h\xc3\xa9llo\n\x7f", 8);
        CHECK_STR(ft_text_ascii(buf, sizeof(buf), copy, 8), "h??llo??");
        free(copy);
        CHECK_STR(ft_text_ascii(buf, sizeof(buf), "abcXYZ", 3), "abc");
        /* Cut to size - 1 bytes, the last three made "...". */
        copy = copy_of("abcdefghij", 10);
        CHECK_STR(ft_text_ascii(eight, sizeof(eight), copy, 10), "abcd...");
        CHECK_STR(ft_text_ascii(eight, sizeof(eight), copy, 7), "abcdefg");
        /* Too small for "...": cut without it. */
        CHECK_STR(ft_text_ascii(three, sizeof(three), copy, 10), "ab");
        free(copy);
        CHECK_STR(ft_text_ascii(NULL, 0, "abc", 3), "");
}

static void test_diag(void)
{
        struct ft_diag d = { 0 };
        char *long_text;
        size_t n;

        CHECK_INT(ft_diag_fail(NULL, -EINVAL, FT_RETRY_SLOW, "x %d", 1), -EINVAL);
        CHECK_INT(ft_diag_fail(&d, -EBADMSG, FT_RETRY_NOW, "answer %d is %s", 7, "bad"), -EBADMSG);
        CHECK_STR(d.msg, "answer 7 is bad");
        CHECK_INT(d.retry, FT_RETRY_NOW);
        CHECK_INT(ft_diag_fail(&d, 0, FT_RETRY_SLOW, "ok"), 0);
        CHECK_INT(d.retry, FT_RETRY_SLOW);

        ft_diag_put(&d, "a finished sentence", 19);
        CHECK_STR(d.msg, "a finished sentence");
        ft_diag_put(&d, "only this part", 4);
        CHECK_STR(d.msg, "only");
        ft_diag_put(NULL, "ignored", 7);

        /* 1000 two-byte characters: cut to 1022 bytes, not inside the 512th character. */
        long_text = malloc(2000);
        if (!long_text)
                abort();
        for (size_t i = 0; i < 2000; i += 2)
                memcpy(long_text + i, "\xc3\xa9", 2);
        ft_diag_put(&d, long_text, 2000);
        CHECK_INT(strlen(d.msg), 1022);
        CHECK_INT(ft_text_chars(d.msg, &n), 0);
        CHECK_INT(n, 511);
        /* ASCII fills the buffer to its last byte. */
        memset(long_text, 'x', 2000);
        ft_diag_put(&d, long_text, 2000);
        CHECK_INT(strlen(d.msg), sizeof(d.msg) - 1);
        free(long_text);
}

static void put_upper(struct ft_strbuf *b, const char *name, size_t len, const void *arg)
{
        const char *prefix = arg;

        ft_strbuf_puts(b, prefix);
        for (size_t i = 0; i < len; i++) {
                char c = name[i];
                ft_strbuf_append(b, &(char){ c >= 'a' && c <= 'z' ? (char)(c - 32) : c }, 1);
        }
}

/* Templates: every {name} goes through the callback; an unclosed '{' is copied as it is. */
static void test_expand(void)
{
        static const struct { const char *tpl, *want; } cases[] = {
                { "", "" },
                { "plain text", "plain text" },
                { "{a}", "=A" },
                { "x {issuer} and {sub}.", "x =ISSUER and =SUB." },
                { "{}", "=" },
                { "open { brace", "open { brace" },
                { "end {", "end {" },
                { "{a}{b}", "=A=B" },
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(cases); i++) {
                struct ft_strbuf b = { 0 };
                char *got;

                ft_text_expand(&b, cases[i].tpl, put_upper, "=");
                got = ft_strbuf_steal(&b);
                CHECK_STR(got, cases[i].want);
                free(got);
        }
}

int main(void)
{
        test_classes();
        test_expand();
        test_hex_value();
        test_utf8_next();
        test_is_control();
        test_utf8_len_no_c1();
        test_chars();
        test_show();
        test_show_redacted();
        test_ascii();
        test_diag();
        return test_summary();
}
