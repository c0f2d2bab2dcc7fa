/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "crypto.h"
#include "test.h"

static void hex_of(const uint8_t *d, size_t n, char *out)
{
        ft_hex_encode(d, n, out);
}

static void check_sha256(const void *data, size_t len, const char *want_hex)
{
        uint8_t d[FT_SHA256_LEN];
        char hex[2 * FT_SHA256_LEN + 1];

        CHECK_INT(ft_sha256(data, len, d), 0);
        hex_of(d, sizeof(d), hex);
        CHECK_STR(hex, want_hex);
}

static void test_sha256(void)
{
        uint8_t d[FT_SHA256_LEN];
        static uint8_t million_a[1000000];

        /* FIPS 180-2 appendix B. */
        check_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        check_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check_sha256(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        memset(million_a, 'a', sizeof(million_a));
        check_sha256(million_a, sizeof(million_a),
                     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        CHECK_INT(ft_sha256(NULL, 1, d), -EINVAL);
}

static void check_hmac(const uint8_t *key, size_t key_len, const void *data, size_t len, const char *want_hex)
{
        uint8_t mac[FT_SHA256_LEN];
        char hex[2 * FT_SHA256_LEN + 1];

        CHECK_INT(ft_hmac_sha256(key, key_len, data, len, mac), 0);
        hex_of(mac, sizeof(mac), hex);
        CHECK_STR(hex, want_hex);
}

/* RFC 4231 test cases 1-4, 6 and 7 (case 5 is a truncated MAC). */
static void test_hmac_rfc4231(void)
{
        uint8_t key[131], data[50], mac[FT_SHA256_LEN];

        memset(key, 0x0b, 20);
        check_hmac(key, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

        check_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
                   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

        memset(key, 0xaa, 20);
        memset(data, 0xdd, 50);
        check_hmac(key, 20, data, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

        for (int i = 0; i < 25; i++)
                key[i] = (uint8_t)(i + 1);
        memset(data, 0xcd, 50);
        check_hmac(key, 25, data, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

        /* A key longer than the block is hashed first. */
        memset(key, 0xaa, 131);
        check_hmac(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
                   "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
        check_hmac(key, 131,
                   "This is a test using a larger than block-size key and a larger than block-size data. "
                   "The key needs to be hashed before being used by the HMAC algorithm.", 152,
                   "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");

        CHECK_INT(ft_hmac_sha256(NULL, 1, "x", 1, mac), -EINVAL);
        CHECK_INT(ft_hmac_sha256(key, 1, NULL, 1, mac), -EINVAL);
}

static void test_hex(void)
{
        const uint8_t in[] = { 0x00, 0x0f, 0xa5, 0xff };
        char out[9];

        ft_hex_encode(in, sizeof(in), out);
        CHECK_STR(out, "000fa5ff");
        ft_hex_encode(in, 0, out);
        CHECK_STR(out, "");
}

static void check_b64_encode(const char *in, const char *want_std, const char *want_url)
{
        char *s = NULL;

        CHECK_INT(ft_base64_encode(in, strlen(in), &s), 0);
        CHECK_STR(s, want_std);
        free(s);
        s = NULL;
        CHECK_INT(ft_base64url_encode(in, strlen(in), &s), 0);
        CHECK_STR(s, want_url);
        free(s);
}

static void check_b64_decode(bool url, const char *in, const char *want)
{
        uint8_t *out = NULL;
        size_t len = 99;
        int r = url ? ft_base64url_decode(in, strlen(in), &out, &len) : ft_base64_decode(in, strlen(in), &out, &len);

        CHECK_INT(r, 0);
        CHECK_INT(len, strlen(want));
        CHECK(out && memcmp(out, want, strlen(want)) == 0);
        CHECK(out && out[len] == '\0');
        free(out);
}

static void check_b64_rejects(bool url, const char *in)
{
        uint8_t *out = (uint8_t *)"untouched";
        size_t len = 7;
        int r = url ? ft_base64url_decode(in, strlen(in), &out, &len) : ft_base64_decode(in, strlen(in), &out, &len);

        if (r != -EINVAL)
                fprintf(stderr, "  base64%s accepted \"%s\"\n", url ? "url" : "", in);
        CHECK_INT(r, -EINVAL);
        /* ret_* are written only on success. */
        CHECK_STR((const char *)out, "untouched");
        CHECK_INT(len, 7);
}

static void test_base64_vectors(void)
{
        /* RFC 4648 section 10. */
        check_b64_encode("", "", "");
        check_b64_encode("f", "Zg==", "Zg");
        check_b64_encode("fo", "Zm8=", "Zm8");
        check_b64_encode("foo", "Zm9v", "Zm9v");
        check_b64_encode("foob", "Zm9vYg==", "Zm9vYg");
        check_b64_encode("fooba", "Zm9vYmE=", "Zm9vYmE");
        check_b64_encode("foobar", "Zm9vYmFy", "Zm9vYmFy");
        /* The two alphabets differ exactly in 62 and 63. */
        check_b64_encode("\xfb\xff\xfe", "+//+", "-__-");

        check_b64_decode(false, "Zm9vYg==", "foob");
        check_b64_decode(false, "Zm9vYg", "foob");
        check_b64_decode(false, "Zm9vYmE=", "fooba");
        check_b64_decode(false, "", "");
        check_b64_decode(false, "+//+", "\xfb\xff\xfe");
        check_b64_decode(true, "-__-", "\xfb\xff\xfe");
        check_b64_decode(true, "Zm9vYmE", "fooba");
        check_b64_decode(true, "Zm9vYmE=", "fooba");
}

static void test_base64_round_trip(void)
{
        uint8_t in[130];

        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)(i * 37 + 11);
        for (size_t n = 0; n <= sizeof(in); n++) {
                for (int url = 0; url <= 1; url++) {
                        char *enc = NULL;
                        uint8_t *dec = NULL;
                        size_t dec_len = 0;

                        CHECK_INT(url ? ft_base64url_encode(in, n, &enc) : ft_base64_encode(in, n, &enc), 0);
                        if (!enc)
                                continue;
                        CHECK_INT(strlen(enc), url ? (n * 4 + 2) / 3 : (n + 2) / 3 * 4);
                        CHECK(url ? strpbrk(enc, "+/=") == NULL : strpbrk(enc, "-_") == NULL);
                        CHECK_INT(url ? ft_base64url_decode(enc, strlen(enc), &dec, &dec_len)
                                      : ft_base64_decode(enc, strlen(enc), &dec, &dec_len), 0);
                        CHECK_INT(dec_len, n);
                        CHECK(dec && memcmp(dec, in, n) == 0);
                        free(enc);
                        free(dec);
                }
        }
}

static void test_base64_rejects(void)
{
        for (int url = 0; url <= 1; url++) {
                check_b64_rejects(url, "Zm9v!");
                check_b64_rejects(url, "Zm9v YmFy");
                check_b64_rejects(url, "Zm9v\nYmFy");
                check_b64_rejects(url, "Zm9vYmFy\n");
                check_b64_rejects(url, " Zm9v");
                check_b64_rejects(url, "Zm9v\tYg==");
                check_b64_rejects(url, "Z");             /* length % 4 == 1 */
                check_b64_rejects(url, "Zm9vY");
                check_b64_rejects(url, "Zm9vY===");
                check_b64_rejects(url, "Zg===");         /* three pads */
                check_b64_rejects(url, "Zg=");           /* incomplete padding */
                check_b64_rejects(url, "Zm9v=");         /* padding after a full quantum */
                check_b64_rejects(url, "Zm9v====");
                check_b64_rejects(url, "Zg==Zg==");      /* padding in the middle */
                check_b64_rejects(url, "=Zg=");
                check_b64_rejects(url, "====");
                check_b64_rejects(url, "Zm9v\xc3\xa9");
        }
        /* Each alphabet refuses the other's two characters. */
        check_b64_rejects(false, "-__-");
        check_b64_rejects(true, "+//+");
        check_b64_rejects(true, "ab+c");
        check_b64_rejects(false, "ab_c");
        {
                uint8_t *out = NULL;
                size_t len = 0;
                /* A NUL inside the counted bytes is not base64 either. */
                CHECK_INT(ft_base64_decode("Zm\0v", 4, &out, &len), -EINVAL);
                CHECK_INT(ft_base64_decode(NULL, 4, &out, &len), -EINVAL);
        }
}

static void test_fingerprint(void)
{
        char fp[FT_FINGERPRINT_LEN];
        char other[FT_FINGERPRINT_LEN];

        memset(fp, 'x', sizeof(fp));
        ft_fingerprint("abc", 3, fp);
        /* "sha256:" + the first 12 hex digits of SHA-256("abc"), NUL-terminated within the buffer. */
        CHECK_STR(fp, "sha256:ba7816bf8f01");
        CHECK_INT(strlen(fp), FT_FINGERPRINT_LEN - 1);
        ft_fingerprint("", 0, other);
        CHECK_STR(other, "sha256:e3b0c44298fc");
        ft_fingerprint("abd", 3, other);
        CHECK(strcmp(fp, other) != 0);
}

int main(void)
{
        test_sha256();
        test_hmac_rfc4231();
        test_hex();
        test_base64_vectors();
        test_base64_round_trip();
        test_base64_rejects();
        test_fingerprint();
        return test_summary();
}
