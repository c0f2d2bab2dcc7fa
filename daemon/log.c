/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

/* The process has one stderr and one log level: this is daemon state, not lib/ state. */
static enum ft_log_level log_level = FT_LOG_INFO;
static bool log_to_journal;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",  [LOG_ERR] = "error",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "dev:ino" of the stream journald gave us; trust it only if it is still our stderr. */
static bool stderr_is_journal(void)
{
        const char *e = secure_getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(enum ft_log_level level)
{
        log_level = level;
        log_to_journal = stderr_is_journal();
}

void log_set_level(enum ft_log_level level)
{
        log_level = level;
}

bool log_enabled(int priority)
{
        return priority <= (int)log_level;
}

void log_full(int priority, const struct log_ctx *ctx, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;

        if (!log_enabled(priority))
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* A message is one line: an upstream's text must not forge a second log entry. */
        for (char *p = msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';

        if (log_to_journal) {
                sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority,
                                "SYSLOG_IDENTIFIER=fedtokend",
                                "FEDTOKEND_TOKEN=%s", ctx && ctx->token ? ctx->token : "",
                                "FEDTOKEND_UPSTREAM=%s", ctx && ctx->upstream ? ctx->upstream : "",
                                "FEDTOKEND_ERROR_CODE=%s", ctx && ctx->code ? ctx->code : "",
                                "FEDTOKEND_FINGERPRINT=%s", ctx && ctx->fingerprint ? ctx->fingerprint : "",
                                NULL);
                return;
        }
        if (ctx && ctx->token)
                fprintf(stderr, "fedtokend: %s: %s: %s\n", level_names[priority & 7], ctx->token, msg);
        else
                fprintf(stderr, "fedtokend: %s: %s\n", level_names[priority & 7], msg);
}
