/* SPDX-License-Identifier: MIT */
/*
 * fuzz_url.c: URL splitting, the Host header made from it, and the SigV4
 * canonical request and signature of a request built from the input.
 *
 * Input: the URL on the first line; then "Name:value" header lines (those
 * ft_request_add_header refuses are skipped); after an empty line, the body.
 * Besides "no crash, no leak", it checks properties every canonical request
 * must have and aborts when one fails.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "awscreds.h"
#include "httpmsg.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_hex_upper(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* The canonical URI holds only unreserved characters, '/' and well-formed %XX. */
static void check_canonical_uri(const char *creq, bool normalized)
{
        const char *uri = strchr(creq, '\n');
        const char *end;

        if (!uri || uri[1] != '/')
                abort();
        uri++;
        end = strchr(uri, '\n');
        if (!end)
                abort();
        for (const char *p = uri; p < end; p++) {
                char c = *p;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == '~' || c == '/')
                        continue;
                if (c != '%' || end - p < 3 || !is_hex_upper(p[1]) || !is_hex_upper(p[2]))
                        abort();
                p += 2;
        }
        if (!normalized)
                return;
        /* Normalised: no empty, "." or ".." segment is left. */
        for (const char *p = uri; p < end; p++) {
                if (*p != '/' || p + 1 == end)
                        continue;
                if (p[1] == '/')
                        abort();
                if (p[1] == '.' && (p + 2 == end || p[2] == '/'))
                        abort();
                if (p[1] == '.' && p + 2 < end && p[2] == '.' && (p + 3 == end || p[3] == '/'))
                        abort();
        }
}

static struct ft_request *build_request(const char *text, size_t len)
{
        struct ft_request *req = NULL;
        const char *nl = memchr(text, '\n', len);
        size_t url_len = nl ? (size_t)(nl - text) : len;
        char *url = ft_strndup(text, url_len);
        const char *p;

        if (!url || ft_request_new(&req, "POST", url) < 0) {
                free(url);
                return NULL;
        }
        free(url);
        p = nl ? nl + 1 : text + len;
        while (p < text + len) {
                const char *eol = memchr(p, '\n', (size_t)(text + len - p));
                size_t n = eol ? (size_t)(eol - p) : (size_t)(text + len - p);
                const char *colon = memchr(p, ':', n);

                if (n == 0) {
                        p++;
                        (void)ft_request_set_body(req, p, (size_t)(text + len - p));
                        break;
                }
                if (colon) {
                        char *name = ft_strndup(p, (size_t)(colon - p));
                        char *value = ft_strndup(colon + 1, n - (size_t)(colon - p) - 1);
                        if (name && value)
                                (void)ft_request_add_header(req, name, value);
                        free(name);
                        free(value);
                }
                p += n + (eol != NULL);
        }
        return req;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const struct ft_aws_creds creds = {
                .access_key_id = (char *)"AKIDEXAMPLE",
                .secret_access_key = (char *)"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                .session_token = (char *)"FAKE-SESSION-TOKEN-EXAMPLE",
        };
        struct ft_sigv4_params params = {
                .region = "us-east-1", .service = "sts", .now = 1764590400, .normalize_path = true,
        };
        char *text, *host = NULL, *creq = NULL, *signed_headers = NULL;
        struct ft_request *req;
        struct ft_url u;

        if (size > 64 * 1024)
                return 0;
        text = ft_strndup((const char *)data, size);
        if (!text)
                return 0;

        /* The first line alone, as the URL parser sees it (NUL-terminated). */
        req = build_request(text, size);
        if (req && ft_url_split(req->url, &u) == 0) {
                if (u.path_len == 0 || u.path[0] != '/' || u.host_len == 0)
                        abort();
                if (ft_url_host_header(&u, &host) == 0 && strlen(host) < u.host_len)
                        abort();
                free(host);
        }

        for (int normalize = 0; req && normalize <= 1; normalize++) {
                if (ft_sigv4_canonical_request(req, normalize, &creq, &signed_headers) == 0) {
                        check_canonical_uri(creq, normalize);
                        for (const char *s = signed_headers; *s; s++)
                                if (*s >= 'A' && *s <= 'Z')
                                        abort();
                        ft_free_secret(creq);
                        free(signed_headers);
                }
        }

        if (req) {
                params.sign_body_hash = size > 0 && (data[0] & 1);
                params.omit_session_token = size > 0 && (data[0] & 2);
                if (ft_sigv4_sign(req, &creds, &params, NULL) == 0 &&
                    !ft_request_header(req, "Authorization"))
                        abort();
        }
        ft_request_free(req);
        free(text);
        return 0;
}
