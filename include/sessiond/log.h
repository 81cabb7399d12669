/* One line per event of interest, on stderr, in logfmt:
 *   2026-11-21T05:56:12.123Z level=info component=pipeline msg="batch applied" events=500
 * Callers pass the key=value fields; values with spaces are quoted by
 * sd_log_kv().  Secrets never reach it: see sd_log_mask_url(). */
#ifndef SESSIOND_LOG_H
#define SESSIOND_LOG_H

#include <stddef.h>

typedef enum sd_log_level {
    SD_LOG_DEBUG,
    SD_LOG_INFO,
    SD_LOG_WARN,
    SD_LOG_ERROR,
} sd_log_level_t;

void sd_log_set_level(sd_log_level_t level);
/* Parses "debug", "info", "warn" or "error"; returns 0 on success. */
int sd_log_level_from_name(const char *name, sd_log_level_t *out);

/* fields: already formatted "key=value key2=value2" (may be empty). */
void sd_log(sd_log_level_t level, const char *component, const char *msg,
            const char *fields_fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes ` key=value` into buf at *used, quoting value when needed. */
void sd_log_kv(char *buf, size_t cap, size_t *used, const char *key, const char *value);

/* A value quoted and escaped for logfmt, for use as key=%s; returns buf. */
const char *sd_log_quote(const char *value, char *buf, size_t cap);
/* The same with a buffer that lives until the end of the statement's block. */
#define SD_LOG_Q(value) sd_log_quote((value), (char[768]){0}, 768)

/* Copies a URI or connection string with any password replaced by "***"
 * (user:pass@host, password=… and sasl.password style values). */
void sd_log_mask_url(const char *in, char *out, size_t cap);

#endif
