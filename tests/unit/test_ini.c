/* SPDX-License-Identifier: MIT */
/*
 * test_ini.c: the strict INI tokenizer: what it passes on, line numbers, the
 * long lines libinih cuts, and every error with its file:line.
 */
#include <errno.h>

#include "ini.h"
#include "test.h"

/* Every event as text: "S name|" for a header, "K section/key=value@line|" for a key. */
struct record {
        char log[64 * 1024];
        unsigned calls;
        int fail_at_call;        /* 1-based; 0: never */
        const char *fail_msg;    /* NULL: fail without a message */
};

static int record_fn(const char *section, const char *key, const char *value, unsigned line, void *userdata,
                     struct ft_diag *diag)
{
        struct record *r = userdata;
        size_t used = strlen(r->log);

        r->calls++;
        if (key)
                snprintf(r->log + used, sizeof(r->log) - used, "K %s/%s=%s@%u|", section, key, value, line);
        else
                snprintf(r->log + used, sizeof(r->log) - used, "S %s%s@%u|", section, value ? "(value!)" : "",
                         line);
        if (r->fail_at_call && r->calls == (unsigned)r->fail_at_call) {
                if (r->fail_msg)
                        return ft_diag_set(diag, "%s", r->fail_msg);
                return -EPERM;
        }
        return 0;
}

static int parse(const char *text, size_t len, struct record *rec, struct ft_diag *diag)
{
        memset(rec, 0, sizeof(*rec));
        ft_diag_clear(diag);
        return ft_ini_parse(text, len, "f.ini", record_fn, rec, diag);
}

static int parse_str(const char *text, struct record *rec, struct ft_diag *diag)
{
        return parse(text, strlen(text), rec, diag);
}

static void expect_ok(const char *text, const char *want)
{
        static struct record rec;
        struct ft_diag diag;
        int r = parse_str(text, &rec, &diag);

        CHECK_INT(r, 0);
        if (r < 0)
                fprintf(stderr, "  diag: %s\n", diag.msg);
        CHECK_STR(rec.log, want);
}

static void expect_error(const char *text, const char *want_msg)
{
        static struct record rec;
        struct ft_diag diag;
        int r = parse_str(text, &rec, &diag);

        CHECK(r < 0);
        CHECK_CONTAINS(diag.msg, want_msg);
}

static void test_grammar(void)
{
        expect_ok("", "");
        expect_ok("\n\n   \n\t\n", "");
        expect_ok("# comment\n; comment\n   # indented comment\n", "");
        expect_ok("[daemon]\nsocket = /run/x.sock\n", "S daemon@1|K daemon/socket=/run/x.sock@2|");
        /* Keys before any header come with section "". */
        expect_ok("a=b\n[s]\n", "K /a=b@1|S s@2|");
        /* Trimming around key and value, tabs included. */
        expect_ok("[s]\n \t key \t=\t  value with  inner  spaces \t \n", "S s@1|K s/key=value with  inner  spaces@2|");
        expect_ok("[s]\nempty =\nempty2 =   \n", "S s@1|K s/empty=@2|K s/empty2=@3|");
        /* The first '=' separates; later ones belong to the value. */
        expect_ok("[s]\nk = a=b==c\n", "S s@1|K s/k=a=b==c@2|");
        /* Inline comments need white space before them. */
        expect_ok("[s]\nk = v ; comment\nk2 = v # comment\nk3 = a#b;c\nk4 = x\t#tab comment\n",
                  "S s@1|K s/k=v@2|K s/k2=v@3|K s/k3=a#b;c@4|K s/k4=x@5|");
        expect_ok("[s]\nk = ; only a comment\n", "S s@1|K s/k=@2|");
        expect_ok("[s]\nk=;not a comment\nk2 =#x\n", "S s@1|K s/k=;not a comment@2|K s/k2=#x@3|");
        expect_ok("[s] ; header comment\n[t]\t# another\n", "S s@1|S t@2|");
        /* Quotes keep white space, ';' and '#'; nothing is unescaped. */
        expect_ok("[s]\nk = \"  a ; b # c  \"\n", "S s@1|K s/k=  a ; b # c  @2|");
        expect_ok("[s]\nk = \"\"\nk2 = \"x\" ; comment\n", "S s@1|K s/k=@2|K s/k2=x@3|");
        expect_ok("[s]\nk = \"back\\slash\"\n", "S s@1|K s/k=back\\slash@2|");
        /* Keys: the STS tag characters and UTF-8. */
        expect_ok("[jwt.a]\ntag.team/app:x+y@z = v\ntag.gr\xc3\xb6\xc3\x9f" "e = \xe2\x82\xac 5\n",
                  "S jwt.a@1|K jwt.a/tag.team/app:x+y@z=v@2|K jwt.a/tag.gr\xc3\xb6\xc3\x9f" "e=\xe2\x82\xac 5@3|");
        /* Section names: white space inside is one space, next to the brackets none. */
        expect_ok("[ profile \t  dev ]\n[default]\n", "S profile dev@1|S default@2|");
}

static void test_line_endings(void)
{
        /* CRLF, a UTF-8 BOM, and no newline at the end. */
        expect_ok("\xef\xbb\xbf[s]\r\nk = v\r\n\r\nlast = 1", "S s@1|K s/k=v@2|K s/last=1@4|");
        /* Line numbers count comment and blank lines. */
        expect_ok("# 1\n\n[s]\n; 4\nk = v\n", "S s@3|K s/k=v@5|");
        /* A BOM is only skipped at the start. */
        expect_error("[s]\n\xef\xbb\xbf[t]\n", "f.ini:2: key has a character that is not allowed at column 4");
}

/* The libinih problem: a long line is one line, however long, up to the limit. */
static void test_long_lines(void)
{
        static struct record rec;
        struct ft_diag diag;
        size_t head = strlen("[s]\nk = "), n;
        char *text = malloc(FT_INI_MAX_LINE + 64);
        int r;

        /* A 1,000-character audience and a 4 KiB line. */
        for (size_t value_len = 1000; value_len <= 4096; value_len += 3096) {
                memcpy(text, "[s]\nk = ", head);
                memset(text + head, 'a', value_len);
                memcpy(text + head + value_len, "\nnext = 1\n", 11);
                r = parse_str(text, &rec, &diag);
                CHECK_INT(r, 0);
                CHECK_INT(rec.calls, 3);
                CHECK(strstr(rec.log, "@2|K s/next=1@3|") != NULL);
                n = strlen("S s@1|K s/k=");
                CHECK(strspn(rec.log + n, "a") == value_len);
        }
        /* Exactly FT_INI_MAX_LINE bytes is allowed; one more is an error naming the limit. */
        memcpy(text, "[s]\nk = ", head);
        memset(text + head, 'b', FT_INI_MAX_LINE - 4);
        strcpy(text + head + FT_INI_MAX_LINE - 4, "\n");
        CHECK_INT(parse_str(text, &rec, &diag), 0);
        memcpy(text, "[s]\nk = ", head);
        memset(text + head, 'b', FT_INI_MAX_LINE - 3);
        strcpy(text + head + FT_INI_MAX_LINE - 3, "\n");
        CHECK(parse_str(text, &rec, &diag) < 0);
        CHECK_STR(diag.msg, "f.ini:2: line is longer than the limit of 16384 bytes");
        CHECK_INT(rec.calls, 1);
        /* The CR of a CRLF does not count. */
        memset(text + head, 'b', FT_INI_MAX_LINE - 4);
        strcpy(text + head + FT_INI_MAX_LINE - 4, "\r\n");
        CHECK_INT(parse_str(text, &rec, &diag), 0);
        free(text);
}

static void test_size_limit(void)
{
        static struct record rec;
        struct ft_diag diag;
        size_t len = FT_INI_MAX_SIZE + 1;
        char *text = malloc(len);

        memset(text, '\n', len);
        CHECK_INT(parse(text, len, &rec, &diag), -EINVAL);
        CHECK_STR(diag.msg, "f.ini: the file is 1048577 bytes, more than the limit of 1048576");
        CHECK_INT(rec.calls, 0);
        CHECK_INT(parse(text, len - 1, &rec, &diag), 0);
        free(text);
}

static void test_errors(void)
{
        expect_error("[s]\nk v\n", "f.ini:2: white space inside the key at column 2, or a missing '='");
        expect_error("[s]\n\njustakey\n", "f.ini:3: missing '=' (expected \"key = value\")");
        expect_error("[s]\nkey ; = v\n", "f.ini:2: missing '='");
        expect_error("[s]\n= v\n", "f.ini:2: empty key before '='");
        expect_error("[s]\n  = v\n", "f.ini:2: empty key before '='");
        expect_error("[s]\nk!ey = v\n", "f.ini:2: key has a character that is not allowed at column 2");
        expect_error("[s]\n\"k\" = v\n", "f.ini:2: key has a character that is not allowed at column 1");
        expect_error("[s\nk = v\n", "f.ini:1: '[' without a closing ']'");
        expect_error("[]\n", "f.ini:1: empty section name in '[]'");
        expect_error("[  ]\n", "f.ini:1: empty section name");
        expect_error("[a/b]\n", "f.ini:1: section name has a character that is not allowed at column 3");
        expect_error("[a]]\n", "f.ini:1: unexpected text after ']' at column 4");
        expect_error("[a]#c\n", "f.ini:1: unexpected text after ']' at column 4");
        expect_error("[a] x\n", "f.ini:1: unexpected text after ']' at column 5");
        expect_error("[s]\nk = \"abc\n", "f.ini:2: value has an opening '\"' at column 5 but no closing one");
        expect_error("[s]\nk = \"a\"b\"\n", "f.ini:2: unexpected text after the closing '\"' at column 8");
        expect_error("[s]\nk = \"a\";c\n", "f.ini:2: unexpected text after the closing '\"' at column 8");
        expect_error("[s]\nk = a\"b\n", "f.ini:2: '\"' at column 6: quotes are allowed only around the whole value");
        expect_error("[s]\nk = ab\"\n", "f.ini:2: '\"' at column 7");
        /* Bytes that have no place in a text file. */
        expect_error("[s]\nk = a\x01z\n", "f.ini:2: control character 0x01 at column 6");
        expect_error("[s]\nk = a\rz\n", "f.ini:2: control character 0x0d at column 6");
        expect_error("[s]\nk = a\x7f\n", "f.ini:2: control character 0x7f at column 6");
        expect_error("[s]\nk = \x1b[31m\n", "f.ini:2: control character 0x1b at column 5");
        expect_error("[s]\nk = \xff\n", "f.ini:2: invalid UTF-8 (or a C1 control character) at column 5");
        expect_error("[s]\nk = \xc0\xaf\n", "f.ini:2: invalid UTF-8");           /* overlong '/' */
        expect_error("[s]\nk = \xe0\x80\xaf\n", "f.ini:2: invalid UTF-8");       /* overlong '/' */
        expect_error("[s]\nk = \xed\xa0\x80\n", "f.ini:2: invalid UTF-8");       /* a surrogate */
        expect_error("[s]\nk = \xf4\x90\x80\x80\n", "f.ini:2: invalid UTF-8");   /* past U+10FFFF */
        expect_error("[s]\nk = \xc2\x85\n", "f.ini:2: invalid UTF-8 (or a C1 control character)");
        expect_error("[s]\nk = \xe2\x82\n", "f.ini:2: invalid UTF-8");           /* cut short at the end */
}

static void test_nul_byte(void)
{
        static struct record rec;
        struct ft_diag diag;
        static const char text[] = "[s]\nk = a\0b\n";

        CHECK(parse(text, sizeof(text) - 1, &rec, &diag) < 0);
        CHECK_STR(diag.msg, "f.ini:2: NUL byte at column 6");
        CHECK_STR(rec.log, "S s@1|");
}

/* The AWS credentials file goes through this parser: an error never shows the line. */
static void test_no_secret_in_errors(void)
{
        static struct record rec;
        struct ft_diag diag;
        static const char *const texts[] = {
                "[default]\naws_secret_access_key: wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEY\n",
                "[default]\naws_secret_access_key = \"wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEY\n",
                "[default]\naws_secret_access_key = wJalrXUtnFEMIK7MDENG\001bPxRfiCYSECRETKEY\n",
                "[default]\naws_secret_access_key = wJalrXUtnFEMIK7MDENG\"bPxRfiCYSECRETKEY\n",
        };

        for (size_t i = 0; i < FT_ELEMENTSOF(texts); i++) {
                CHECK(parse_str(texts[i], &rec, &diag) < 0);
                CHECK_CONTAINS(diag.msg, "f.ini:2: ");
                CHECK(strstr(diag.msg, "SECRETKEY") == NULL);
                CHECK(strstr(diag.msg, "wJalr") == NULL);
        }
}

static void test_callback(void)
{
        static struct record rec;
        struct ft_diag diag;
        const char *text;
        int r;

        /* The callback's message gets "file:line: " in front; nothing is called after it fails. */
        memset(&rec, 0, sizeof(rec));
        rec.fail_at_call = 2;
        rec.fail_msg = "[s] k: not allowed here";
        ft_diag_clear(&diag);
        text = "[s]\n\nk = v\nk2 = v\n";
        r = ft_ini_parse(text, strlen(text), "dir/x.conf", record_fn, &rec, &diag);
        CHECK_INT(r, -EINVAL);
        CHECK_STR(diag.msg, "dir/x.conf:3: [s] k: not allowed here");
        CHECK_INT(rec.calls, 2);

        /* A section header can be refused too; an error without a message still names the line. */
        memset(&rec, 0, sizeof(rec));
        rec.fail_at_call = 1;
        ft_diag_clear(&diag);
        r = ft_ini_parse("\n[s]\nk = v\n", 11, NULL, record_fn, &rec, &diag);
        CHECK_INT(r, -EPERM);
        CHECK_STR(diag.msg, "(input):2: rejected");
        CHECK_INT(rec.calls, 1);

        /* Without a diag, errors are still returned. */
        memset(&rec, 0, sizeof(rec));
        CHECK_INT(ft_ini_parse("[s]\nk\n", 6, "f", record_fn, &rec, NULL), -EINVAL);
        CHECK_INT(ft_ini_parse(NULL, 0, "f", record_fn, &rec, NULL), 0);
        CHECK_INT(ft_ini_parse(NULL, 1, "f", record_fn, &rec, NULL), -EINVAL);
        CHECK_INT(ft_ini_parse("", 0, "f", NULL, &rec, NULL), -EINVAL);
}

/* The section name given with a key survives the header line's buffer being reused. */
static void test_section_outlives_line(void)
{
        expect_ok("[a-very-long-section-name.with.dots]\nshort = 1\nlonger_key_name_here = 2\n",
                  "S a-very-long-section-name.with.dots@1|K a-very-long-section-name.with.dots/short=1@2|"
                  "K a-very-long-section-name.with.dots/longer_key_name_here=2@3|");
}

int main(void)
{
        test_grammar();
        test_line_endings();
        test_long_lines();
        test_size_limit();
        test_errors();
        test_nul_byte();
        test_no_secret_in_errors();
        test_callback();
        test_section_outlives_line();
        return test_summary();
}
