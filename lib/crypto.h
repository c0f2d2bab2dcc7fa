/* SPDX-License-Identifier: MIT */
/*
 * crypto.h: SHA-256, HMAC-SHA256, hex and base64/base64url over mbedTLS.
 * Intermediate key material is wiped with mbedtls_platform_zeroize.
 */
#ifndef FT_CRYPTO_H
#define FT_CRYPTO_H

#include "ft.h"

#define FT_SHA256_LEN 32

int ft_sha256(const void *data, size_t len, uint8_t out[FT_SHA256_LEN]);
int ft_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                   uint8_t out[FT_SHA256_LEN]);

/* Lower-case hex; `out` must hold 2*len+1 bytes. */
void ft_hex_encode(const uint8_t *in, size_t len, char *out);

/* Standard base64 with padding. Returns a malloc'd NUL-terminated string. */
int ft_base64_encode(const void *in, size_t len, char **ret);
/* base64url without padding (JWT form). */
int ft_base64url_encode(const void *in, size_t len, char **ret);
/* Decode standard base64 (padding optional). ret is malloc'd, NUL-terminated. */
int ft_base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);
/* Decode base64url (padding optional; '+' and '/' refused). */
int ft_base64url_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);

/*
 * A short fingerprint of a secret for logs and summaries: "sha256:" and the
 * first 12 hex digits of its SHA-256. Reveals nothing usable, yet lets an
 * operator tell two tokens apart. `out` holds at least FT_FINGERPRINT_LEN.
 */
#define FT_FINGERPRINT_LEN 20
void ft_fingerprint(const void *secret, size_t len, char out[FT_FINGERPRINT_LEN]);

#endif
