/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "json.h"
#include "test.h"

#define SECRET "S3cretV4lueThatMustNotLinger"

/*
 * cJSON's allocator, with each block's size kept in front of it, so the free
 * hook can see what a block still held when cJSON gave it back.
 */
union block_header {
        size_t size;
        max_align_t align;
};

static unsigned freed_with_secret;

static void *sized_malloc(size_t n)
{
        union block_header *h = malloc(sizeof(*h) + n);

        if (!h)
                return NULL;
        h->size = n;
        return h + 1;
}

static void sized_free(void *p)
{
        union block_header *h;

        if (!p)
                return;
        h = (union block_header *)p - 1;
        if (memmem(p, h->size, SECRET, strlen(SECRET)))
                freed_with_secret++;
        free(h);
}

/* The text as an exact-size heap copy without a NUL, so ASan sees a read past `len`. */
static int parse(const char *text, size_t len, cJSON **ret_root)
{
        char *copy = malloc(len ? len : 1);
        int r;

        if (!copy)
                abort();
        memcpy(copy, text, len);
        r = ft_json_parse_object(copy, len, ret_root);
        free(copy);
        return r;
}

static int parse_str(const char *text, cJSON **ret_root)
{
        return parse(text, strlen(text), ret_root);
}

static void test_accepts_one_object(void)
{
        cJSON *root = NULL;

        CHECK_INT(parse_str("{\"a\":\"b\",\"n\":1}", &root), 0);
        CHECK(cJSON_IsObject(root));
        CHECK_STR(ft_json_string(root, "a"), "b");
        cJSON_Delete(root);

        /* Space, tab, CR and LF after the object are fine. */
        root = NULL;
        CHECK_INT(parse_str(" {} \t\r\n", &root), 0);
        CHECK(cJSON_IsObject(root));
        cJSON_Delete(root);
}

static void test_refuses_other_shapes(void)
{
        static const char *const bad[] = {
                "",                  /* empty */
                "[]",                /* not an object */
                "\"text\"",
                "42",
                "null",
                "{\"a\":1",          /* truncated */
                "{} {}",             /* a second document */
                "{}x",               /* anything else after it */
                "{}\f",              /* white space JSON does not know */
                "{}\v",
        };
        cJSON *root = (cJSON *)&root;  /* a marker: written only on success */

        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                CHECK_INT(parse_str(bad[i], &root), -EBADMSG);
                CHECK(root == (cJSON *)&root);
        }
        CHECK_INT(ft_json_parse_object(NULL, 0, &root), -EBADMSG);
        CHECK(root == (cJSON *)&root);
}

/* cJSON would end a string at a NUL, so the value we read and the one another reader sees could differ. */
static void test_refuses_nul(void)
{
        static const char inside[] = "{\"sub\":\"admin\0x\"}";
        static const char after[] = "{\"a\":1}\0";
        static const char before[] = "\0{\"a\":1}";
        cJSON *root = NULL;

        CHECK_INT(parse(inside, sizeof(inside) - 1, &root), -EBADMSG);
        /* A trailing NUL is no white space. */
        CHECK_INT(parse(after, sizeof(after) - 1, &root), -EBADMSG);
        CHECK_INT(parse(before, sizeof(before) - 1, &root), -EBADMSG);
        CHECK(root == NULL);
}

static void test_string_member(void)
{
        cJSON *root = NULL;

        CHECK_INT(parse_str("{\"s\":\"v\",\"n\":1,\"o\":{},\"z\":null,\"e\":\"\"}", &root), 0);
        CHECK_STR(ft_json_string(root, "s"), "v");
        CHECK_STR(ft_json_string(root, "e"), "");
        CHECK(ft_json_string(root, "n") == NULL);
        CHECK(ft_json_string(root, "o") == NULL);
        CHECK(ft_json_string(root, "z") == NULL);
        CHECK(ft_json_string(root, "missing") == NULL);
        /* Member names are compared exactly. */
        CHECK(ft_json_string(root, "S") == NULL);
        cJSON_Delete(root);
}

static void test_free_wipes_named_secrets(void)
{
        static const char *const names[] = { "token", "other" };
        cJSON *root = NULL;

        /* Control: cJSON_Delete alone gives the secret back to the allocator intact. */
        freed_with_secret = 0;
        CHECK_INT(parse_str("{\"token\":\"" SECRET "\"}", &root), 0);
        cJSON_Delete(root);
        CHECK_INT(freed_with_secret, 1);

        freed_with_secret = 0;
        root = NULL;
        CHECK_INT(parse_str("{\"a\":1,\"token\":\"" SECRET "\",\"keep\":\"x\"}", &root), 0);
        CHECK_STR(ft_json_string(root, "token"), SECRET);
        ft_json_free_secrets(root, names, FT_ELEMENTSOF(names));
        CHECK_INT(freed_with_secret, 0);

        /* A member not named is not wiped. */
        freed_with_secret = 0;
        root = NULL;
        CHECK_INT(parse_str("{\"plain\":\"" SECRET "\"}", &root), 0);
        ft_json_free_secrets(root, names, FT_ELEMENTSOF(names));
        CHECK_INT(freed_with_secret, 1);

        ft_json_free_secrets(NULL, names, FT_ELEMENTSOF(names));
}

/* A document parsed, then refused, is freed with its top-level strings wiped. */
static void test_refused_document_wiped(void)
{
        static const char *const bad[] = {
                "{\"token\":\"" SECRET "\"} trailing",
                "[\"" SECRET "\"]",
                "\"" SECRET "\"",
        };
        cJSON *root = NULL;

        for (size_t i = 0; i < FT_ELEMENTSOF(bad); i++) {
                freed_with_secret = 0;
                CHECK_INT(parse_str(bad[i], &root), -EBADMSG);
                CHECK_INT(freed_with_secret, 0);
        }
}

int main(void)
{
        cJSON_InitHooks(&(cJSON_Hooks){ .malloc_fn = sized_malloc, .free_fn = sized_free });
        test_accepts_one_object();
        test_refuses_other_shapes();
        test_refuses_nul();
        test_string_member();
        test_free_wipes_named_secrets();
        test_refused_document_wiped();
        return test_summary();
}
