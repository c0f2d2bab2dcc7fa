/* SPDX-License-Identifier: MIT */
#include "crypto.h"

#include <errno.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

int ft_sha256(const void *data, size_t len, uint8_t out[FT_SHA256_LEN])
{
        if (!data && len)
                return -EINVAL;
        return mbedtls_sha256_ret(data, len, out, 0) == 0 ? 0 : -EIO;
}

int ft_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                   uint8_t out[FT_SHA256_LEN])
{
        const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

        if (!md || (!key && key_len) || (!data && len))
                return -EINVAL;
        return mbedtls_md_hmac(md, key, key_len, data, len, out) == 0 ? 0 : -EIO;
}

void ft_hex_encode(const uint8_t *in, size_t len, char *out)
{
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = hex[in[i] >> 4];
                out[2 * i + 1] = hex[in[i] & 15];
        }
        out[2 * len] = '\0';
}

int ft_base64_encode(const void *in, size_t len, char **ret)
{
        size_t olen = 0;
        char *out;

        if (len > SIZE_MAX / 2)
                return -E2BIG;
        (void)mbedtls_base64_encode(NULL, 0, &olen, in, len);
        out = malloc(olen + 1);
        if (!out)
                return -ENOMEM;
        if (mbedtls_base64_encode((unsigned char *)out, olen + 1, &olen, in, len) != 0) {
                free(out);
                return -EIO;
        }
        out[olen] = '\0';
        *ret = out;
        return 0;
}

int ft_base64url_encode(const void *in, size_t len, char **ret)
{
        char *s;
        size_t n;
        int r;

        r = ft_base64_encode(in, len, &s);
        if (r < 0)
                return r;
        n = strlen(s);
        while (n > 0 && s[n - 1] == '=')
                s[--n] = '\0';
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '+')
                        s[i] = '-';
                else if (s[i] == '/')
                        s[i] = '_';
        }
        *ret = s;
        return 0;
}

/* Decode after the caller has mapped the alphabet to standard base64 and padded. */
static int b64_decode_std(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
        size_t olen = 0;
        uint8_t *out;
        int r;

        r = mbedtls_base64_decode(NULL, 0, &olen, (const unsigned char *)in, len);
        if (r == MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
                return -EINVAL;
        out = malloc(olen + 1);
        if (!out)
                return -ENOMEM;
        if (mbedtls_base64_decode(out, olen + 1, &olen, (const unsigned char *)in, len) != 0) {
                free(out);
                return -EINVAL;
        }
        out[olen] = '\0';
        *ret = out;
        *ret_len = olen;
        return 0;
}

/*
 * mbedTLS accepts white space inside base64 and needs padding; JWTs and
 * JWKs must have neither white space nor '+' '/' (base64url), so map and pad
 * into a copy, refusing anything outside the alphabet.
 */
static int b64_decode_mapped(const char *in, size_t len, bool url, uint8_t **ret, size_t *ret_len)
{
        size_t n = len, padded;
        char *tmp;
        int r;

        if (!in && len)
                return -EINVAL;
        if (len > SIZE_MAX / 2)
                return -E2BIG;
        while (n > 0 && in[n - 1] == '=')
                n--;
        /* Padding is optional, but when present it must complete the last quantum. */
        if (len - n > 2 || n % 4 == 1 || (len != n && len % 4 != 0))
                return -EINVAL;
        padded = (n + 3) / 4 * 4;
        tmp = malloc(padded + 1);
        if (!tmp)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                        tmp[i] = c;
                } else if (url && (c == '-' || c == '_')) {
                        tmp[i] = c == '-' ? '+' : '/';
                } else if (!url && (c == '+' || c == '/')) {
                        tmp[i] = c;
                } else {
                        free(tmp);
                        return -EINVAL;
                }
        }
        for (size_t i = n; i < padded; i++)
                tmp[i] = '=';
        tmp[padded] = '\0';
        r = b64_decode_std(tmp, padded, ret, ret_len);
        ft_wipe(tmp, padded);
        free(tmp);
        return r;
}

int ft_base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
        return b64_decode_mapped(in, len, false, ret, ret_len);
}

int ft_base64url_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
        return b64_decode_mapped(in, len, true, ret, ret_len);
}

void ft_fingerprint(const void *secret, size_t len, char out[FT_FINGERPRINT_LEN])
{
        uint8_t digest[FT_SHA256_LEN];
        char hex[2 * FT_SHA256_LEN + 1];

        if (ft_sha256(secret, len, digest) < 0) {
                memcpy(out, "sha256:?", sizeof("sha256:?"));
                return;
        }
        ft_hex_encode(digest, 6, hex);
        memcpy(out, "sha256:", 7);
        memcpy(out + 7, hex, 12);
        out[19] = '\0';
}
