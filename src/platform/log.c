#define _POSIX_C_SOURCE 200809L
#include "sessiond/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sessiond/timefmt.h"

static sd_log_level_t min_level = SD_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sd_log_set_level(sd_log_level_t level) { min_level = level; }

int sd_log_level_from_name(const char *name, sd_log_level_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (sd_log_level_t)i;
            return 0;
        }
    return -1;
}

void sd_log(sd_log_level_t level, const char *component, const char *msg,
            const char *fields_fmt, ...)
{
    if (level < min_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[SD_TIME_BUFSZ];
    sd_time_format((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, when);
    char fields[2048] = "";
    if (fields_fmt && *fields_fmt) {
        va_list ap;
        va_start(ap, fields_fmt);
        vsnprintf(fields, sizeof fields, fields_fmt, ap);
        va_end(ap);
    }
    char quoted[1024];
    size_t used = 0;
    quoted[0] = '\0';
    sd_log_kv(quoted, sizeof quoted, &used, "msg", msg);
    /* one write, so lines from threads do not interleave */
    fprintf(stderr, "%s level=%s component=%s%s%s%s\n", when, level_names[level], component,
            quoted, fields[0] ? " " : "", fields);
}

void sd_log_kv(char *buf, size_t cap, size_t *used, const char *key, const char *value)
{
    if (*used >= cap)
        return;
    int needs_quotes = !value || !*value || strpbrk(value, " =\"\t\n") != NULL;
    int n = snprintf(buf + *used, cap - *used, " %s=%s", key, needs_quotes ? "\"" : "");
    if (n < 0)
        return;
    *used += (size_t)n;
    for (const char *p = value ? value : ""; *p && *used + 3 < cap; p++) {
        if (*p == '"' || *p == '\\')
            buf[(*used)++] = '\\';
        buf[(*used)++] = *p == '\n' ? ' ' : *p;
    }
    if (needs_quotes && *used + 1 < cap)
        buf[(*used)++] = '"';
    buf[*used < cap ? *used : cap - 1] = '\0';
}

const char *sd_log_quote(const char *value, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    sd_log_kv(buf, cap, &used, "", value);
    /* sd_log_kv wrote " =…": keep what follows the '=' */
    return used >= 2 ? buf + 2 : buf;
}

void sd_log_mask_url(const char *in, char *out, size_t cap)
{
    /* scheme://user:password@host → scheme://user:***@host */
    const char *scheme = strstr(in, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon)
        snprintf(out, cap, "%.*s:***%s", (int)(colon - in), in, at);
    else
        snprintf(out, cap, "%s", in);
}
