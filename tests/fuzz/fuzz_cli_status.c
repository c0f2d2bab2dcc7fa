/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cli_status.c: the fedtoken CLI's readers of daemon answers on any
 * bytes: the `fedtoken status` table printer (a /v1/status body) and the
 * error-detail extraction of an error body. Both are static in the CLI, so
 * the harness includes its source (main renamed) and the client library's.
 * Promise checked: the detail always fits its buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fedtoken_client.c"
int fedtoken_cli_main(int argc, char **argv);
#define main fedtoken_cli_main
#include "../../daemon/fedtoken.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool quiet;
        char out[512], tiny[4];

        if (!quiet) {
                /*
                 * The CLI prints its table to stdout and a complaint about
                 * each malformed answer to stderr: both to /dev/null. stderr
                 * is swapped as a stream, not as descriptor 2, which the
                 * sanitizers' reports still reach.
                 */
                FILE *devnull = fopen("/dev/null", "w");

                if (!devnull || !freopen("/dev/null", "w", stdout))
                        abort();
                stderr = devnull;
                quiet = true;
        }
        (void)print_status_table((const char *)data, size);
        error_detail((const char *)data, size, 503, out, sizeof(out));
        if (strlen(out) >= sizeof(out))
                abort();
        error_detail((const char *)data, size, 403, tiny, sizeof(tiny));
        if (strlen(tiny) >= sizeof(tiny))
                abort();
        return 0;
}
