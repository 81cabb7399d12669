/* RFC 3339 parsing is written out rather than delegated to strptime(3):
 * strptime is locale-dependent, lenient about digit counts and knows
 * neither fractional seconds nor "+hh:mm".  The calendar arithmetic is
 * left to timegm(3), after every field has been range-checked so that it
 * never silently normalises an impossible date. */
#define _DEFAULT_SOURCE
#include "sessiond/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS_PER_MIN INT64_C(60000)
/* 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z */
#define MIN_MS (INT64_C(-62167219200) * 1000)
#define END_MS (INT64_C(253402300800) * 1000)

static int read_digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
            return -1;
        v = v * 10 + (s[(*pos)++] - '0');
    }
    *out = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *pos, const char *any_of)
{
    if (*pos >= len)
        return -1;
    for (const char *c = any_of; *c; c++)
        if (s[*pos] == *c) {
            (*pos)++;
            return 0;
        }
    return -1;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

#define SHAPE "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"

static sd_err_t bad(sd_error_t *err, const char *what, int value)
{
    return sd_error_set(err, SD_ERR_INVALID, "",
                        "not an RFC 3339 timestamp: %s %02d out of range",
                        what, value);
}

sd_err_t sd_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ms,
                               sd_error_t *err)
{
    size_t p = 0;
    int year, month, day, hour, minute, second, millis = 0;
    int off_sign = 0, off_hour = 0, off_min = 0;

    if (read_digits(s, len, &p, 4, &year) || expect(s, len, &p, "-") ||
        read_digits(s, len, &p, 2, &month) || expect(s, len, &p, "-") ||
        read_digits(s, len, &p, 2, &day) || expect(s, len, &p, "Tt") ||
        read_digits(s, len, &p, 2, &hour) || expect(s, len, &p, ":") ||
        read_digits(s, len, &p, 2, &minute) || expect(s, len, &p, ":") ||
        read_digits(s, len, &p, 2, &second))
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "not an RFC 3339 timestamp: " SHAPE);
    if (p < len && s[p] == '.') {
        p++;
        size_t first = p;
        int scale = 100;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            millis += (s[p++] - '0') * scale; /* digits past ms truncate */
            scale /= 10;
        }
        if (p == first)
            return sd_error_set(err, SD_ERR_INVALID, "",
                                "not an RFC 3339 timestamp: no digits after '.'");
    }
    if (expect(s, len, &p, "Zz") == 0) {
        off_sign = 0;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        off_sign = s[p++] == '+' ? 1 : -1;
        if (read_digits(s, len, &p, 2, &off_hour) || expect(s, len, &p, ":") ||
            read_digits(s, len, &p, 2, &off_min))
            return sd_error_set(err, SD_ERR_INVALID, "",
                                "not an RFC 3339 timestamp: offset must be +hh:mm or -hh:mm");
    } else {
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "not an RFC 3339 timestamp: " SHAPE);
    }
    if (p != len)
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "not an RFC 3339 timestamp: unexpected text after the offset");

    if (month < 1 || month > 12)
        return bad(err, "month", month);
    if (day < 1 || day > days_in_month(year, month))
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "not an RFC 3339 timestamp: day %02d out of range for %04d-%02d",
                            day, year, month);
    if (hour > 23)
        return bad(err, "hour", hour);
    if (minute > 59)
        return bad(err, "minute", minute);
    if (second > 60)
        return bad(err, "second", second);
    if (off_hour > 23)
        return bad(err, "offset hour", off_hour);
    if (off_min > 59)
        return bad(err, "offset minute", off_min);
    if (second == 60) { /* leap second: the last millisecond of the minute */
        second = 59;
        millis = 999;
    }

    struct tm tm = {
        .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
        .tm_hour = hour, .tm_min = minute, .tm_sec = second,
    };
    int64_t ms = (int64_t)timegm(&tm) * 1000 + millis -
                 off_sign * (off_hour * 60 + off_min) * MS_PER_MIN;
    if (ms < MIN_MS || ms >= END_MS)
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "not an RFC 3339 timestamp: outside years 0000-9999 in UTC");
    *out_ms = ms;
    return SD_OK;
}

size_t sd_time_format(int64_t ms, char buf[SD_TIME_BUFSZ])
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    int n = snprintf(buf, SD_TIME_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)frac);
    return n < 0 ? 0 : (size_t)n;
}

sd_err_t sd_duration_parse(const char *s, int64_t *out_ms, sd_error_t *err)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1000}};
    char *end;
    long long n = strtoll(s, &end, 10);
    if (end == s || n <= 0)
        return sd_error_set(err, SD_ERR_INVALID, "", "\"%s\" is not a positive duration "
                            "(examples: 7d, 36h, 90m, 30s, 250ms)", s);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0) {
            if (n > INT64_MAX / units[i].ms)
                break;
            *out_ms = n * units[i].ms;
            return SD_OK;
        }
    return sd_error_set(err, SD_ERR_INVALID, "", "\"%s\" is not a positive duration "
                        "(examples: 7d, 36h, 90m, 30s, 250ms)", s);
}
