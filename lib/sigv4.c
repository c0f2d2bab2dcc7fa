/* SPDX-License-Identifier: MIT */
#include "sigv4.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "awscreds.h"
#include "crypto.h"
#include "text.h"
#include "timeutil.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_AMZ_DATE_LEN 16
#define SIGV4_DATE8_LEN 8
#define SIGV4_SCOPE_PART_MAX 63
#define SIGV4_ACCESS_KEY_ID_MAX 128
/* AWS secrets are 40 characters; anything near this bound is not one. */
#define SIGV4_SECRET_MAX 1024
/* Domain separation for the digest that identifies a secret in the cache. */
#define SIGV4_CACHE_TAG_LABEL "fedtokend sigv4 signing key cache"

struct ft_sigv4_cache {
        bool valid;
        char date8[SIGV4_DATE8_LEN + 1];
        char region[SIGV4_SCOPE_PART_MAX + 1];
        char service[SIGV4_SCOPE_PART_MAX + 1];
        /*
         * HMAC of a fixed label keyed with the secret: it tells a rotated
         * secret from the cached one without keeping the secret itself.
         */
        uint8_t secret_tag[FT_SHA256_LEN];
        uint8_t key[FT_SHA256_LEN];
};

/* One canonical header line in the making. */
struct canon_header {
        char *name;     /* lower-case */
        char *value;    /* trimmed, runs of white space collapsed to one space */
        size_t order;   /* position on the request: repeated headers keep their order */
};

/* One canonical query parameter, both halves re-encoded. */
struct query_pair {
        char *key;
        char *value;
};

static bool is_token(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!ft_text_is_tchar(*s))
                        return false;
        return true;
}

static bool all_digits(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* A region or service: it goes into the credential scope between slashes. */
static bool valid_scope_part(const char *s)
{
        size_t n;

        if (!s)
                return false;
        for (n = 0; s[n]; n++) {
                if (n >= SIGV4_SCOPE_PART_MAX)
                        return false;
                if (!ft_text_is_alnum(s[n]) && s[n] != '-' && s[n] != '_' && s[n] != '.')
                        return false;
        }
        return n > 0;
}

static bool valid_access_key_id(const char *s)
{
        size_t n;

        if (!s)
                return false;
        for (n = 0; s[n]; n++)
                if (n >= SIGV4_ACCESS_KEY_ID_MAX || !ft_text_is_alnum(s[n]))
                        return false;
        return n > 0;
}

static bool valid_date8(const char *s)
{
        return s && strnlen(s, SIGV4_DATE8_LEN + 1) == SIGV4_DATE8_LEN && all_digits(s, SIGV4_DATE8_LEN);
}

/* "YYYYMMDDTHHMMSSZ" */
static bool valid_amz_date(const char *s)
{
        return s && strnlen(s, SIGV4_AMZ_DATE_LEN + 1) == SIGV4_AMZ_DATE_LEN && all_digits(s, 8) &&
               s[8] == 'T' && all_digits(s + 9, 6) && s[15] == 'Z';
}

/*
 * Percent-decode n bytes into a new buffer. A '%' that is not followed by two
 * hex digits stays as it is, so it is re-encoded as %25 rather than refused.
 */
static char *percent_decode(const char *s, size_t n, size_t *ret_len)
{
        char *out = malloc(n + 1);
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] == '%' && i + 2 < n && (hi = ft_text_hex_value(s[i + 1])) >= 0 &&
                    (lo = ft_text_hex_value(s[i + 2])) >= 0) {
                        out[o++] = (char)(hi << 4 | lo);
                        i += 2;
                } else {
                        out[o++] = s[i];
                }
        }
        out[o] = '\0';
        *ret_len = o;
        return out;
}

/* Append a path that starts with '/', each segment percent-encoded, the slashes kept. */
static void append_encoded_path(struct ft_strbuf *b, const char *path, size_t len)
{
        size_t i = 0;

        while (i < len) {
                const char *slash = memchr(path + i, '/', len - i);
                size_t seg_end = slash ? (size_t)(slash - path) : len;

                ft_strbuf_urlencode(b, path + i, seg_end - i);
                if (slash)
                        ft_strbuf_append(b, "/", 1);
                i = seg_end + 1;
        }
}

/*
 * The path with empty and "." segments dropped and each ".." dropping the
 * segment before it, the way the AWS SDKs normalise: a trailing '/' survives
 * unless nothing is left, and nothing left is "/".
 */
static char *normalize_path(const char *path, size_t len)
{
        struct ft_strbuf b = { 0 };
        size_t i = 0;

        while (i < len) {
                const char *slash = memchr(path + i, '/', len - i);
                size_t seg_end = slash ? (size_t)(slash - path) : len;
                size_t seg_len = seg_end - i;

                if (seg_len == 2 && path[i] == '.' && path[i + 1] == '.') {
                        /* The buffer is "" or "/seg/…/seg": cut back to the last '/'. */
                        while (b.len > 0 && b.p[--b.len] != '/')
                                ;
                        if (b.p)
                                b.p[b.len] = '\0';
                } else if (seg_len > 0 && !(seg_len == 1 && path[i] == '.')) {
                        ft_strbuf_append(&b, "/", 1);
                        ft_strbuf_append(&b, path + i, seg_len);
                }
                i = seg_end + 1;
        }
        if (b.len == 0 || (len > 0 && path[len - 1] == '/'))
                ft_strbuf_append(&b, "/", 1);
        return ft_strbuf_steal(&b);
}

static int append_canonical_uri(struct ft_strbuf *b, const char *path, size_t len, bool normalize)
{
        char *norm;

        if (!normalize) {
                append_encoded_path(b, path, len);
                return 0;
        }
        norm = normalize_path(path, len);
        if (!norm)
                return -ENOMEM;
        append_encoded_path(b, norm, strlen(norm));
        free(norm);
        return 0;
}

/* One query key or value: decoded, then encoded again the one canonical way. */
static char *canonical_query_component(const char *s, size_t n)
{
        struct ft_strbuf b = { 0 };
        size_t decoded_len;
        char *decoded = percent_decode(s, n, &decoded_len);

        if (!decoded)
                return NULL;
        ft_strbuf_urlencode(&b, decoded, decoded_len);
        free(decoded);
        return ft_strbuf_steal(&b);
}

static int compare_query_pairs(const void *a, const void *b)
{
        const struct query_pair *x = a, *y = b;
        int r = strcmp(x->key, y->key);

        return r != 0 ? r : strcmp(x->value, y->value);
}

/*
 * Split on '&' (empty pieces skipped), "key" alone meaning an empty value,
 * and sort by key, then value. Sorting the pairs rather than the joined
 * "key=value" strings matters: "Param" sorts before "Param-3".
 */
static int append_canonical_query(struct ft_strbuf *b, const char *query, size_t len)
{
        struct query_pair *pairs;
        size_t n_max = 1, n = 0, i = 0;
        int r = 0;

        if (len == 0)
                return 0;
        for (size_t k = 0; k < len; k++)
                if (query[k] == '&')
                        n_max++;
        pairs = calloc(n_max, sizeof(*pairs));
        if (!pairs)
                return -ENOMEM;
        while (i <= len) {
                const char *piece = query + i, *eq;
                struct query_pair *pair;
                size_t piece_len = 0;

                while (i + piece_len < len && piece[piece_len] != '&')
                        piece_len++;
                i += piece_len + 1;
                if (piece_len == 0)
                        continue;
                pair = &pairs[n++];
                eq = memchr(piece, '=', piece_len);
                if (eq) {
                        pair->key = canonical_query_component(piece, (size_t)(eq - piece));
                        pair->value = canonical_query_component(eq + 1, piece_len - (size_t)(eq - piece) - 1);
                } else {
                        pair->key = canonical_query_component(piece, piece_len);
                        pair->value = strdup("");
                }
                if (!pair->key || !pair->value) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        qsort(pairs, n, sizeof(*pairs), compare_query_pairs);
        for (size_t k = 0; k < n; k++) {
                if (k > 0)
                        ft_strbuf_append(b, "&", 1);
                ft_strbuf_puts(b, pairs[k].key);
                ft_strbuf_append(b, "=", 1);
                ft_strbuf_puts(b, pairs[k].value);
        }
out:
        for (size_t k = 0; k < n; k++) {
                free(pairs[k].key);
                free(pairs[k].value);
        }
        free(pairs);
        return r;
}

static char *lower_dup(const char *s)
{
        size_t n = strlen(s);
        char *out = malloc(n + 1);

        if (!out)
                return NULL;
        for (size_t i = 0; i <= n; i++)
                out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
        return out;
}

/*
 * Trim leading and trailing white space and collapse inner runs to one
 * space. The value may be the session token, so the copy is freed with
 * ft_free_secret. -EINVAL for CR or LF, which would forge canonical lines.
 */
static int canonical_header_value(const char *v, char **ret)
{
        size_t o = 0;
        bool pending_space = false;
        char *out;

        if (strpbrk(v, "\r\n"))
                return -EINVAL;
        out = malloc(strlen(v) + 1);
        if (!out)
                return -ENOMEM;
        for (; *v; v++) {
                if (*v == ' ' || *v == '\t') {
                        pending_space = o > 0;
                        continue;
                }
                if (pending_space)
                        out[o++] = ' ';
                pending_space = false;
                out[o++] = *v;
        }
        out[o] = '\0';
        *ret = out;
        return 0;
}

static int compare_canon_headers(const void *a, const void *b)
{
        const struct canon_header *x = a, *y = b;
        int r = strcmp(x->name, y->name);

        if (r != 0)
                return r;
        return x->order < y->order ? -1 : x->order > y->order;
}

static bool header_is_signed(const char *name, bool skip_token)
{
        /* A request signed before (a retry) carries its old Authorization. */
        if (strcasecmp(name, "authorization") == 0)
                return false;
        return !(skip_token && strcasecmp(name, "x-amz-security-token") == 0);
}

/*
 * Append "name:value\n" per distinct lower-case name, sorted by name, the
 * values of a repeated header joined with ',' in request order; return the
 * ';'-joined names in *ret_signed.
 */
static int append_canonical_headers(struct ft_strbuf *b, const struct ft_request *req, bool skip_token,
                                    char **ret_signed)
{
        struct canon_header hs[FT_MAX_HEADERS] = { 0 };
        struct ft_strbuf names = { 0 };
        size_t n = 0;
        char *signed_headers;
        int r = 0;

        if (req->n_headers > FT_MAX_HEADERS)
                return -EINVAL;
        for (size_t i = 0; i < req->n_headers; i++) {
                const struct ft_header *h = &req->headers[i];
                struct canon_header *ch;

                if (!is_token(h->name) || !h->value) {
                        r = -EINVAL;
                        goto out;
                }
                if (!header_is_signed(h->name, skip_token))
                        continue;
                ch = &hs[n++];
                ch->order = i;
                ch->name = lower_dup(h->name);
                if (!ch->name) {
                        r = -ENOMEM;
                        goto out;
                }
                r = canonical_header_value(h->value, &ch->value);
                if (r < 0)
                        goto out;
        }
        qsort(hs, n, sizeof(hs[0]), compare_canon_headers);
        for (size_t i = 0; i < n; i++) {
                bool first = i == 0 || strcmp(hs[i].name, hs[i - 1].name) != 0;
                bool last = i + 1 == n || strcmp(hs[i].name, hs[i + 1].name) != 0;

                if (first) {
                        ft_strbuf_puts(b, hs[i].name);
                        ft_strbuf_append(b, ":", 1);
                        if (names.len > 0)
                                ft_strbuf_append(&names, ";", 1);
                        ft_strbuf_puts(&names, hs[i].name);
                } else {
                        ft_strbuf_append(b, ",", 1);
                }
                ft_strbuf_puts(b, hs[i].value);
                if (last)
                        ft_strbuf_append(b, "\n", 1);
        }
        signed_headers = ft_strbuf_steal(&names);
        if (!signed_headers) {
                r = -ENOMEM;
                goto out;
        }
        *ret_signed = signed_headers;
out:
        for (size_t i = 0; i < n; i++) {
                free(hs[i].name);
                ft_free_secret(hs[i].value);
        }
        ft_strbuf_done(&names);
        return r;
}

static int payload_hash_hex(const struct ft_request *req, char out[2 * FT_SHA256_LEN + 1])
{
        uint8_t digest[FT_SHA256_LEN];
        int r;

        r = ft_sha256(req->body, req->body_len, digest);
        if (r < 0)
                return r;
        ft_hex_encode(digest, sizeof(digest), out);
        return 0;
}

static int build_canonical_request(const struct ft_request *req, bool normalize_path, bool skip_token,
                                   char **ret_creq, char **ret_signed_headers)
{
        struct ft_strbuf b = { 0 };
        struct ft_url u;
        char payload_hex[2 * FT_SHA256_LEN + 1];
        char *signed_headers = NULL, *creq;
        int r;

        if (!req || !req->url || !is_token(req->method) || !ret_creq)
                return -EINVAL;
        r = ft_url_split(req->url, &u);
        if (r < 0)
                return r;
        r = payload_hash_hex(req, payload_hex);
        if (r < 0)
                return r;

        ft_strbuf_puts(&b, req->method);
        ft_strbuf_append(&b, "\n", 1);
        r = append_canonical_uri(&b, u.path, u.path_len, normalize_path);
        if (r < 0)
                goto fail;
        ft_strbuf_append(&b, "\n", 1);
        r = append_canonical_query(&b, u.query, u.query_len);
        if (r < 0)
                goto fail;
        ft_strbuf_append(&b, "\n", 1);
        r = append_canonical_headers(&b, req, skip_token, &signed_headers);
        if (r < 0)
                goto fail;
        ft_strbuf_append(&b, "\n", 1);
        ft_strbuf_puts(&b, signed_headers);
        ft_strbuf_append(&b, "\n", 1);
        ft_strbuf_puts(&b, payload_hex);

        /* On overflow or allocation failure the buffer is wiped and NULL returned. */
        creq = ft_strbuf_steal(&b);
        if (!creq) {
                free(signed_headers);
                return -ENOMEM;
        }
        *ret_creq = creq;
        if (ret_signed_headers)
                *ret_signed_headers = signed_headers;
        else
                free(signed_headers);
        return 0;
fail:
        ft_strbuf_done(&b);
        free(signed_headers);
        return r;
}

int ft_sigv4_canonical_request(const struct ft_request *req, bool normalize_path,
                               char **ret_creq, char **ret_signed_headers)
{
        return build_canonical_request(req, normalize_path, false, ret_creq, ret_signed_headers);
}

int ft_sigv4_string_to_sign(const char *creq, const char *amz_date, const char *region,
                            const char *service, char **ret_sts)
{
        struct ft_strbuf b = { 0 };
        uint8_t digest[FT_SHA256_LEN];
        char creq_hex[2 * FT_SHA256_LEN + 1];
        char *sts;
        int r;

        if (!creq || !valid_amz_date(amz_date) || !valid_scope_part(region) || !valid_scope_part(service) ||
            !ret_sts)
                return -EINVAL;
        r = ft_sha256(creq, strlen(creq), digest);
        if (r < 0)
                return r;
        ft_hex_encode(digest, sizeof(digest), creq_hex);
        ft_strbuf_printf(&b, SIGV4_ALGORITHM "\n%s\n%.8s/%s/%s/" SIGV4_TERMINATOR "\n%s", amz_date, amz_date,
                         region, service, creq_hex);
        sts = ft_strbuf_steal(&b);
        if (!sts)
                return -ENOMEM;
        *ret_sts = sts;
        return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static int derive_signing_key(const char *secret, const char *date8, const char *region, const char *service,
                              uint8_t ret_key[FT_SHA256_LEN])
{
        const char *const steps[] = { region, service, SIGV4_TERMINATOR };
        char k_secret[4 + SIGV4_SECRET_MAX];
        uint8_t k[FT_SHA256_LEN], next[FT_SHA256_LEN];
        size_t secret_len = strnlen(secret, SIGV4_SECRET_MAX + 1);
        int r;

        if (secret_len == 0 || secret_len > SIGV4_SECRET_MAX)
                return -EINVAL;
        memcpy(k_secret, "AWS4", 4);
        memcpy(k_secret + 4, secret, secret_len);
        r = ft_hmac_sha256(k_secret, 4 + secret_len, date8, strlen(date8), k);
        ft_wipe(k_secret, 4 + secret_len);
        for (size_t i = 0; r == 0 && i < FT_ELEMENTSOF(steps); i++) {
                r = ft_hmac_sha256(k, sizeof(k), steps[i], strlen(steps[i]), next);
                memcpy(k, next, sizeof(k));
        }
        if (r == 0)
                memcpy(ret_key, k, sizeof(k));
        ft_wipe(k, sizeof(k));
        ft_wipe(next, sizeof(next));
        return r;
}

static int secret_tag(const char *secret, uint8_t ret_tag[FT_SHA256_LEN])
{
        size_t secret_len = strnlen(secret, SIGV4_SECRET_MAX + 1);

        if (secret_len == 0 || secret_len > SIGV4_SECRET_MAX)
                return -EINVAL;
        return ft_hmac_sha256(secret, secret_len, SIGV4_CACHE_TAG_LABEL, strlen(SIGV4_CACHE_TAG_LABEL), ret_tag);
}

static bool tags_equal(const uint8_t *a, const uint8_t *b)
{
        uint8_t diff = 0;

        for (size_t i = 0; i < FT_SHA256_LEN; i++)
                diff |= a[i] ^ b[i];
        return diff == 0;
}

/* The signing key from the cache when it matches, else derived (and cached). */
static int signing_key(struct ft_sigv4_cache *c, const char *secret, const char *date8, const char *region,
                       const char *service, uint8_t ret_key[FT_SHA256_LEN])
{
        uint8_t tag[FT_SHA256_LEN];
        int r;

        if (!c)
                return derive_signing_key(secret, date8, region, service, ret_key);
        r = secret_tag(secret, tag);
        if (r < 0)
                return r;
        if (c->valid && strcmp(c->date8, date8) == 0 && strcmp(c->region, region) == 0 &&
            strcmp(c->service, service) == 0 && tags_equal(c->secret_tag, tag)) {
                memcpy(ret_key, c->key, FT_SHA256_LEN);
                return 0;
        }
        r = derive_signing_key(secret, date8, region, service, ret_key);
        if (r < 0)
                return r;
        /* The callers validated the lengths; a part too long to cache is just not cached. */
        ft_wipe(c, sizeof(*c));
        if (strlen(region) > SIGV4_SCOPE_PART_MAX || strlen(service) > SIGV4_SCOPE_PART_MAX)
                return 0;
        memcpy(c->date8, date8, SIGV4_DATE8_LEN + 1);
        memcpy(c->region, region, strlen(region) + 1);
        memcpy(c->service, service, strlen(service) + 1);
        memcpy(c->secret_tag, tag, FT_SHA256_LEN);
        memcpy(c->key, ret_key, FT_SHA256_LEN);
        c->valid = true;
        return 0;
}

static int sign_string(const uint8_t key[FT_SHA256_LEN], const char *sts, char ret_hex[65])
{
        uint8_t mac[FT_SHA256_LEN];
        int r;

        r = ft_hmac_sha256(key, FT_SHA256_LEN, sts, strlen(sts), mac);
        if (r < 0)
                return r;
        ft_hex_encode(mac, sizeof(mac), ret_hex);
        return 0;
}

int ft_sigv4_signature(const char *secret, const char *date8, const char *region,
                       const char *service, const char *sts, char ret_hex[65])
{
        uint8_t key[FT_SHA256_LEN];
        int r;

        if (!secret || !valid_date8(date8) || !valid_scope_part(region) || !valid_scope_part(service) || !sts ||
            !ret_hex)
                return -EINVAL;
        r = derive_signing_key(secret, date8, region, service, key);
        if (r == 0)
                r = sign_string(key, sts, ret_hex);
        ft_wipe(key, sizeof(key));
        return r;
}

int ft_sigv4_cache_new(struct ft_sigv4_cache **ret)
{
        struct ft_sigv4_cache *c;

        if (!ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

void ft_sigv4_cache_free(struct ft_sigv4_cache *c)
{
        if (!c)
                return;
        ft_wipe(c, sizeof(*c));
        free(c);
}

/* curl sends a Host header made from the URL; sign exactly that when the caller set none. */
static int add_host_header(struct ft_request *req)
{
        struct ft_url u;
        char *host;
        int r;

        if (ft_request_header(req, "Host"))
                return 0;
        r = ft_url_split(req->url, &u);
        if (r < 0)
                return r;
        r = ft_url_host_header(&u, &host);
        if (r < 0)
                return r;
        r = ft_request_add_header(req, "Host", host);
        free(host);
        return r;
}

static int set_authorization(struct ft_request *req, const char *access_key_id, const char *date8,
                             const struct ft_sigv4_params *p, const char *signed_headers, const char *signature)
{
        struct ft_strbuf b = { 0 };
        char *authz;
        int r;

        ft_strbuf_printf(&b, SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/" SIGV4_TERMINATOR
                         ", SignedHeaders=%s, Signature=%s",
                         access_key_id, date8, p->region, p->service, signed_headers, signature);
        authz = ft_strbuf_steal(&b);
        if (!authz)
                return -ENOMEM;
        r = ft_request_set_header(req, "Authorization", authz);
        free(authz);
        return r;
}

int ft_sigv4_sign(struct ft_request *req, const struct ft_aws_creds *creds,
                  const struct ft_sigv4_params *p, struct ft_sigv4_cache *cache)
{
        char amz_date[SIGV4_AMZ_DATE_LEN + 1], date8[SIGV4_DATE8_LEN + 1];
        char payload_hex[2 * FT_SHA256_LEN + 1], signature[2 * FT_SHA256_LEN + 1];
        uint8_t key[FT_SHA256_LEN];
        char *creq = NULL, *sts = NULL, *signed_headers = NULL;
        const char *token;
        bool token_unsigned;
        int r;

        if (!req || !req->url || !creds || !creds->secret_access_key || !p ||
            !valid_access_key_id(creds->access_key_id) || !valid_scope_part(p->region) ||
            !valid_scope_part(p->service))
                return -EINVAL;
        /* An empty AWS_SESSION_TOKEN means long-term keys, not an empty token. */
        token = creds->session_token && *creds->session_token ? creds->session_token : NULL;
        token_unsigned = token && p->omit_session_token;

        r = add_host_header(req);
        if (r < 0)
                return r;
        ft_time_format_amz(p->now, amz_date);
        memcpy(date8, amz_date, SIGV4_DATE8_LEN);
        date8[SIGV4_DATE8_LEN] = '\0';
        r = ft_request_set_header(req, "X-Amz-Date", amz_date);
        if (r < 0)
                return r;
        if (token && !token_unsigned) {
                r = ft_request_set_header(req, "X-Amz-Security-Token", token);
                if (r < 0)
                        return r;
        }
        if (p->sign_body_hash) {
                r = payload_hash_hex(req, payload_hex);
                if (r < 0)
                        return r;
                r = ft_request_set_header(req, "x-amz-content-sha256", payload_hex);
                if (r < 0)
                        return r;
        }

        r = build_canonical_request(req, p->normalize_path, token_unsigned, &creq, &signed_headers);
        if (r < 0)
                goto out;
        r = ft_sigv4_string_to_sign(creq, amz_date, p->region, p->service, &sts);
        if (r < 0)
                goto out;
        r = signing_key(cache, creds->secret_access_key, date8, p->region, p->service, key);
        if (r < 0)
                goto out;
        r = sign_string(key, sts, signature);
        if (r < 0)
                goto out;
        r = set_authorization(req, creds->access_key_id, date8, p, signed_headers, signature);
        if (r < 0)
                goto out;
        /* After signing, so it stays out of SignedHeaders, as the caller asked. */
        if (token_unsigned)
                r = ft_request_set_header(req, "X-Amz-Security-Token", token);
out:
        ft_wipe(key, sizeof(key));
        ft_free_secret(creq);
        free(sts);
        free(signed_headers);
        return r;
}
