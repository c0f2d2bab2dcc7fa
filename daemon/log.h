/* SPDX-License-Identifier: MIT */
/*
 * log.h: the daemon's one logging module. Under journald (JOURNAL_STREAM
 * names our stderr) lines go to the journal with a priority and structured
 * fields; otherwise they are plain "fedtokend: level: message" lines on
 * stderr. lib/ never logs: it returns a diagnosis and daemon/ logs it once,
 * where the decision is made. Nothing passed here may contain a secret: pass
 * a fingerprint (ft_fingerprint) to identify a token.
 */
#ifndef FT_LOG_H
#define FT_LOG_H

#include <syslog.h>

#include "config.h"

void log_init(enum ft_log_level level);
void log_set_level(enum ft_log_level level);
bool log_enabled(int priority);

/* Structured context, every field optional (NULL). */
struct log_ctx {
        const char *token;        /* "jwt.azure", "azure.storage" */
        const char *upstream;     /* "sts", "imds", "entra" */
        const char *code;         /* upstream error code */
        const char *fingerprint;  /* of the token concerned */
};

void log_full(int priority, const struct log_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define log_error(...)   log_full(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)   log_full(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
