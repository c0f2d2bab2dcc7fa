/* SPDX-License-Identifier: MIT */
/*
 * fedtoken: read tokens from fedtokend on the command line.
 *
 *   fedtoken [-s SOCKET] token NAME [--wait N]   the access token of [azure.NAME] / [gcp.NAME]
 *   fedtoken [-s SOCKET] jwt NAME [--wait N]     the AWS-signed JWT of [jwt.NAME]
 *   fedtoken [-s SOCKET] status [--json]         every token's state, as a table or fedtokend's JSON
 *
 * A token goes to stdout bare: without a newline when stdout is not a
 * terminal, so that `$(fedtoken token x)`, pipes and files get the exact
 * bytes, and with one when it is, so that the shell prompt does not run into
 * it. It is written with write(2), not stdio, so no copy stays in a buffer.
 *
 * Exit status (also in --help):
 *   0  success
 *   1  no valid token right now (fedtokend answered 503): retry later, or use --wait
 *   2  usage error (unknown command or option, bad NAME, --wait out of range)
 *   3  cannot connect to fedtokend's socket, or it did not answer in time
 *   4  no such token (404)
 *   5  permission denied (403, or the socket's permissions)
 *   6  protocol error: an answer this program does not understand (or out of memory)
 *
 * It is a separate program from the daemon and links only libfedtoken and,
 * for `status`, cJSON.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fedtoken_client.h"

enum {
        EXIT_OK = 0,
        EXIT_UNAVAILABLE = 1,
        EXIT_USAGE = 2,
        EXIT_CONNECT = 3,
        EXIT_NOT_FOUND = 4,
        EXIT_FORBIDDEN = 5,
        EXIT_PROTOCOL = 6,
};

/* The LAST ERROR column is cut to this many characters; `status --json` has it whole. */
#define ERROR_COLUMN_MAX 60
#define CELL_MAX 256

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: fedtoken [-s SOCKET] COMMAND [ARGS]\n"
                "\n"
                "Reads tokens from fedtokend over its Unix socket.\n"
                "\n"
                "Commands:\n"
                "  token NAME [--wait N]  print the access token of [azure.NAME] or [gcp.NAME]\n"
                "  jwt NAME [--wait N]    print the AWS-signed JWT of [jwt.NAME]\n"
                "  status [--json]        show every token's state (--json: fedtokend's JSON as is)\n"
                "\n"
                "Options:\n"
                "  -s, --socket PATH  fedtokend's socket (default: $FEDTOKEN_SOCKET, else %s)\n"
                "  -w, --wait N       when there is no token yet, wait up to N seconds (0-%d) for one\n"
                "      --json         status: print fedtokend's JSON\n"
                "  -h, --help         this text\n"
                "\n"
                "A token is printed bare: with no newline when stdout is not a terminal (exact bytes for\n"
                "$(...), pipes and files), with one when it is.\n"
                "\n"
                "Exit status:\n"
                "  0  success\n"
                "  1  no valid token right now (fedtokend answered 503): retry later, or use --wait\n"
                "  2  usage error\n"
                "  3  cannot connect to fedtokend's socket, or it did not answer in time\n"
                "  4  no such token\n"
                "  5  permission denied\n"
                "  6  protocol error (an answer fedtoken does not understand)\n",
                FEDTOKEN_DEFAULT_SOCKET, FEDTOKEN_WAIT_MAX);
}

static int exit_code(int r)
{
        switch (r) {
        case FEDTOKEN_OK:
                return EXIT_OK;
        case FEDTOKEN_E_UNAVAILABLE:
                return EXIT_UNAVAILABLE;
        case FEDTOKEN_E_INVALID:
                return EXIT_USAGE;
        case FEDTOKEN_E_CONNECT:
        case FEDTOKEN_E_TIMEOUT:
                return EXIT_CONNECT;
        case FEDTOKEN_E_NOT_FOUND:
                return EXIT_NOT_FOUND;
        case FEDTOKEN_E_FORBIDDEN:
                return EXIT_FORBIDDEN;
        default:
                return EXIT_PROTOCOL;
        }
}

static int fail(int r, const char *err)
{
        fprintf(stderr, "fedtoken: %s\n", err && *err ? err : fedtoken_strerror(r));
        return exit_code(r);
}

static int write_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t w = write(fd, p, len);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

static int cmd_token(const char *socket_path, bool jwt, const char *name, int wait_s)
{
        char err[512] = "";
        char *token = NULL;
        int r;

        if (jwt)
                r = fedtoken_get_jwt_wait(socket_path, name, wait_s, &token, err, sizeof(err));
        else
                r = fedtoken_get_wait(socket_path, name, wait_s, &token, err, sizeof(err));
        if (r < 0)
                return fail(r, err);
        r = write_all(STDOUT_FILENO, token, strlen(token));
        if (r == 0 && isatty(STDOUT_FILENO))
                r = write_all(STDOUT_FILENO, "\n", 1);
        fedtoken_free(token);
        if (r < 0) {
                fprintf(stderr, "fedtoken: cannot write the token to stdout: %s\n", strerror(-r));
                return EXIT_PROTOCOL;
        }
        return EXIT_OK;
}

/* ---- status --------------------------------------------------------------- */

/* "2025-12-01T12:05:00Z", with optional fractional seconds and a numeric offset. */
static bool parse_rfc3339(const char *s, time_t *ret)
{
        int f[6], k = 0, off = 0;
        struct tm tm = { 0 };
        const char *p = s;
        static const char seps[] = "--T::";
        time_t t;

        for (k = 0; k < 6; k++) {
                int width = k == 0 ? 4 : 2, v = 0;

                for (int i = 0; i < width; i++, p++) {
                        if (*p < '0' || *p > '9')
                                return false;
                        v = v * 10 + (*p - '0');
                }
                f[k] = v;
                if (k < 5) {
                        if (*p != seps[k] && !(k == 2 && *p == 't'))
                                return false;
                        p++;
                }
        }
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        ;
        if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
                off = 0;
        } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
                   strspn(p + 1, "0123456789") == 2 && strspn(p + 4, "0123456789") == 2) {
                int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
                off = (*p == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
        } else {
                return false;
        }
        tm.tm_year = f[0] - 1900;
        tm.tm_mon = f[1] - 1;
        tm.tm_mday = f[2];
        tm.tm_hour = f[3];
        tm.tm_min = f[4];
        tm.tm_sec = f[5];
        t = timegm(&tm);
        if (t == (time_t)-1)
                return false;
        *ret = t - off;
        return true;
}

/* A span for people: "45s", "12m", "3h05m", "2d04h". */
static void format_span(long long s, char *out, size_t outlen)
{
        if (s < 60)
                snprintf(out, outlen, "%llds", s);
        else if (s < 3600)
                snprintf(out, outlen, "%lldm", s / 60);
        else if (s < 86400)
                snprintf(out, outlen, "%lldh%02lldm", s / 3600, s % 3600 / 60);
        else
                snprintf(out, outlen, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

/*
 * A string field, made safe for a terminal: control characters become '?',
 * at most `max` characters (UTF-8 sequences count as one) with "..." when cut.
 */
static void cell_string(const cJSON *obj, const char *key, size_t max, char out[CELL_MAX])
{
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
        const unsigned char *s;
        size_t o = 0, chars = 0;

        if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0]) {
                snprintf(out, CELL_MAX, "-");
                return;
        }
        for (s = (const unsigned char *)it->valuestring; *s; s++) {
                bool cont = (*s & 0xc0) == 0x80;

                /* Room for a whole character and the ellipsis, else stop at a character boundary. */
                if (o + (cont ? 1 : 5) >= CELL_MAX)
                        break;

                if (!cont && chars == max) {
                        /* Replace the last three characters with the ellipsis. */
                        for (int k = 0; k < 3 && o > 0; k++) {
                                do
                                        o--;
                                while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80);
                        }
                        memcpy(out + o, "...", 3);
                        o += 3;
                        break;
                }
                if (!cont)
                        chars++;
                out[o++] = *s < 0x20 || *s == 0x7f ? '?' : (char)*s;
        }
        out[o] = '\0';
}

static void cell_expires_in(const cJSON *obj, char out[CELL_MAX])
{
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "expires_in");

        if (!cJSON_IsNumber(it))
                snprintf(out, CELL_MAX, "-");
        else if (it->valuedouble <= 0)
                snprintf(out, CELL_MAX, "expired");
        else  /* clamped to ~31 years: converting a larger double to an integer is undefined */
                format_span(it->valuedouble < 1e9 ? (long long)it->valuedouble : 1000000000LL, out, CELL_MAX);
}

static void cell_next_refresh(const cJSON *obj, time_t now, char out[CELL_MAX])
{
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "next_refresh_at");
        char span[64];
        time_t t;

        if (!cJSON_IsString(it) || !parse_rfc3339(it->valuestring, &t)) {
                snprintf(out, CELL_MAX, "-");
        } else if (t <= now) {
                snprintf(out, CELL_MAX, "now");
        } else {
                format_span((long long)(t - now), span, sizeof(span));
                snprintf(out, CELL_MAX, "in %s", span);
        }
}

enum { COL_NAME, COL_KIND, COL_STATE, COL_EXPIRES, COL_REFRESH, COL_ERROR, COLS };

static const char *const col_titles[COLS] = {
        "NAME", "KIND", "STATE", "EXPIRES IN", "NEXT REFRESH", "LAST ERROR",
};

static void fill_row(const cJSON *tok, time_t now, char row[COLS][CELL_MAX])
{
        cell_string(tok, "name", 64, row[COL_NAME]);
        cell_string(tok, "kind", 16, row[COL_KIND]);
        cell_string(tok, "state", 16, row[COL_STATE]);
        cell_expires_in(tok, row[COL_EXPIRES]);
        cell_next_refresh(tok, now, row[COL_REFRESH]);
        cell_string(tok, "last_error", ERROR_COLUMN_MAX, row[COL_ERROR]);
}

static void print_row(char row[COLS][CELL_MAX], const int width[COLS])
{
        for (int c = 0; c < COLS - 1; c++)
                printf("%-*s  ", width[c], row[c]);
        printf("%s\n", row[COLS - 1]);
}

static int print_status_table(const char *body, size_t len)
{
        char row[COLS][CELL_MAX], cell[CELL_MAX];
        int width[COLS];
        const cJSON *tokens, *tok;
        cJSON *root;
        time_t now = time(NULL);

        root = cJSON_ParseWithLengthOpts(body, len, NULL, 0);
        tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
        if (!cJSON_IsObject(root) || !cJSON_IsArray(tokens)) {
                cJSON_Delete(root);
                fprintf(stderr, "fedtoken: fedtokend's status is not the expected JSON (try --json)\n");
                return EXIT_PROTOCOL;
        }

        cell_string(root, "version", 32, cell);
        printf("fedtokend %s", cell);
        cell_string(root, "credentials", 120, cell);
        printf(", AWS credentials: %s\n\n", cell);

        if (cJSON_GetArraySize(tokens) == 0) {
                printf("no tokens configured\n");
                cJSON_Delete(root);
                return EXIT_OK;
        }
        /* Widths in bytes: every column but the last (free text) is ASCII. */
        for (int c = 0; c < COLS; c++)
                width[c] = (int)strlen(col_titles[c]);
        cJSON_ArrayForEach(tok, tokens) {
                fill_row(tok, now, row);
                for (int c = 0; c < COLS; c++)
                        if ((int)strlen(row[c]) > width[c])
                                width[c] = (int)strlen(row[c]);
        }
        for (int c = 0; c < COLS; c++)
                snprintf(row[c], CELL_MAX, "%s", col_titles[c]);
        print_row(row, width);
        cJSON_ArrayForEach(tok, tokens) {
                fill_row(tok, now, row);
                print_row(row, width);
        }
        cJSON_Delete(root);
        return EXIT_OK;
}

/* The detail of fedtokend's JSON error, for the status command's non-200 answers. */
static void error_detail(const char *body, size_t len, int status, char *out, size_t outlen)
{
        cJSON *root = cJSON_ParseWithLengthOpts(body, len, NULL, 0);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "detail");
        char cell[CELL_MAX];

        if (cJSON_IsString(d) && d->valuestring && d->valuestring[0]) {
                cell_string(root, "detail", 200, cell);
                snprintf(out, outlen, "%s", cell);
        } else {
                snprintf(out, outlen, "fedtokend answered HTTP %d", status);
        }
        cJSON_Delete(root);
}

static int cmd_status(const char *socket_path, bool json)
{
        char err[512] = "";
        char *body = NULL;
        size_t len = 0;
        int status = 0, r;

        r = fedtoken_request_timeout(socket_path, "/v1/status", "application/json", 10 * 1000, &status, &body, &len,
                                     err, sizeof(err));
        if (r < 0)
                return fail(r, err);
        if (status != 200) {
                error_detail(body, len, status, err, sizeof(err));
                fedtoken_free(body);
                switch (status) {
                case 403:
                        return fail(FEDTOKEN_E_FORBIDDEN, err);
                case 503:
                        return fail(FEDTOKEN_E_UNAVAILABLE, err);
                default:
                        return fail(FEDTOKEN_E_PROTOCOL, err);
                }
        }
        if (json) {
                r = write_all(STDOUT_FILENO, body, len);
                if (r == 0 && (len == 0 || body[len - 1] != '\n'))
                        r = write_all(STDOUT_FILENO, "\n", 1);
        } else {
                r = print_status_table(body, len);
                if (fflush(stdout) != 0 && r == EXIT_OK) {
                        fprintf(stderr, "fedtoken: cannot write to stdout: %s\n", strerror(errno));
                        r = EXIT_PROTOCOL;
                }
        }
        fedtoken_free(body);
        if (r < 0) {
                fprintf(stderr, "fedtoken: cannot write to stdout: %s\n", strerror(-r));
                return EXIT_PROTOCOL;
        }
        return r;
}

/* ---- main ----------------------------------------------------------------- */

static int parse_wait(const char *s, int *ret)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 0 || v > FEDTOKEN_WAIT_MAX)
                return -1;
        *ret = (int)v;
        return 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "fedtoken: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see fedtoken --help)\n");
        return EXIT_USAGE;
}

int main(int argc, char **argv)
{
        enum { OPT_JSON = 0x100 };
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "wait", required_argument, NULL, 'w' },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        const char *socket_path = NULL, *cmd, *wait_arg = NULL;
        bool json = false;
        int wait_s = 0, c;

        while ((c = getopt_long(argc, argv, "s:w:h", options, NULL)) != -1) {
                switch (c) {
                case 's':
                        socket_path = optarg;
                        break;
                case 'w':
                        wait_arg = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                default:
                        return usage_error("%s", "invalid option");
                }
        }
        if (optind >= argc)
                return usage_error("%s", "no command given");
        cmd = argv[optind++];

        if (strcmp(cmd, "token") == 0 || strcmp(cmd, "jwt") == 0) {
                if (json)
                        return usage_error("%s", "--json is an option of status");
                if (argc - optind != 1)
                        return usage_error("%s takes exactly one NAME", cmd);
                if (wait_arg && parse_wait(wait_arg, &wait_s) < 0)
                        return usage_error("--wait takes 0 to %d seconds, not '%s'", FEDTOKEN_WAIT_MAX, wait_arg);
                return cmd_token(socket_path, cmd[0] == 'j', argv[optind], wait_s);
        }
        if (strcmp(cmd, "status") == 0) {
                if (wait_arg)
                        return usage_error("%s", "--wait is an option of token and jwt");
                if (argc - optind != 0)
                        return usage_error("%s", "status takes no arguments");
                return cmd_status(socket_path, json);
        }
        return usage_error("unknown command '%s'", cmd);
}
