/* SPDX-License-Identifier: MIT */
/*
 * fuzz_client.c: libfedtoken's response parser and error-body reader on any
 * bytes. The first byte picks how the input is cut into recv() pieces, so the
 * incremental head/body framing runs at every split; the body of a complete
 * answer then goes through the "detail"/"error" extraction and the token
 * check. The parser is static in the library (its only interface is a socket
 * call), so the harness includes the source: one translation unit, no export.
 *
 * Promises checked: an error always says why; a complete answer's head and
 * body lie inside the bytes received; a stream at its end never waits for
 * more; the error text always fits its buffer, however small.
 */
#include <stddef.h>
#include <stdint.h>

#include "fedtoken_client.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct response resp = { 0 };
        const char *why = NULL;
        size_t step, len = 0, body_len = 0;
        char *buf, err[64], small[5];
        int r = 0;

        if (size < 1)
                return 0;
        step = (size_t)data[0] % 16 + 1;
        data++;
        size--;
        buf = malloc(size ? size : 1);
        if (!buf)
                abort();
        memcpy(buf, data, size);
        while (r == 0) {
                bool eof = len == size;

                r = response_check(buf, len, eof, &resp, &body_len, &why);
                if (r < 0 && !why)
                        abort();
                if (r == 1 && (resp.head_len > len || body_len > len - resp.head_len))
                        abort();
                if (r == 0 && eof)
                        abort(); /* would wait forever */
                len = len + step > size ? size : len + step;
        }
        if (r == 1) {
                set_status_err(err, sizeof(err), resp.status, buf + resp.head_len, body_len);
                if (strlen(err) >= sizeof(err))
                        abort();
                set_status_err(small, sizeof(small), resp.status, buf + resp.head_len, body_len);
                if (strlen(small) >= sizeof(small))
                        abort();
                (void)token_valid(buf + resp.head_len, body_len);
        }
        /* The whole input as an error body too. */
        set_status_err(err, sizeof(err), 503, (const char *)data, size);
        if (strlen(err) >= sizeof(err))
                abort();
        free(buf);
        return 0;
}
