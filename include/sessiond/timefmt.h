/* RFC 3339 timestamps <-> UTC milliseconds since the Unix epoch. */
#ifndef SESSIOND_TIMEFMT_H
#define SESSIOND_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/error.h"

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" plus NUL. */
#define SD_TIME_BUFSZ 25

/* Strict RFC 3339 (section 5.6): 'T' or 't' between date and time, optional
 * fraction of any length (truncated to milliseconds), 'Z', 'z' or a
 * +hh:mm / -hh:mm offset.  A leap second (:60) counts as the last
 * millisecond of its minute.  The result, in UTC, must fall within years
 * 0000-9999.  On error, err->message says which part is wrong. */
sd_err_t sd_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ms,
                               sd_error_t *err);

/* Writes the canonical UTC form ("2026-01-02T03:04:05.006Z"); returns its
 * length.  ms must lie within years 0000-9999. */
size_t sd_time_format(int64_t ms, char buf[SD_TIME_BUFSZ]);

/* A duration such as "7d", "36h", "90m", "30s" or "250ms" (a bare number
 * is seconds) -> milliseconds.  Must be positive. */
sd_err_t sd_duration_parse(const char *s, int64_t *out_ms, sd_error_t *err);

#endif
