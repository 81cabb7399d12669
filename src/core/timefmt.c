/* RFC 3339 parsing is written out rather than delegated to strptime(3):
 * strptime is locale-dependent, lenient about digit counts and knows
 * neither fractional seconds nor "+hh:mm".  Days are counted with the
 * proleptic Gregorian formulas below instead of timegm(3)/gmtime_r(3) and
 * snprintf: every event and every change converts a timestamp, and those
 * calls were a tenth of the core's time.  Every field is range-checked
 * before the arithmetic, so an impossible date is never normalised. */
#include "sessiond/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Days since 1970-01-01 of a valid proleptic Gregorian date, and back
 * (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *year, int *month, int *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
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

    int64_t secs = days_from_civil(year, month, day) * 86400 +
                   hour * 3600 + minute * 60 + second;
    int64_t ms = secs * 1000 + millis -
                 off_sign * (off_hour * 60 + off_min) * MS_PER_MIN;
    if (ms < MIN_MS || ms >= END_MS)
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "not an RFC 3339 timestamp: outside years 0000-9999 in UTC");
    *out_ms = ms;
    return SD_OK;
}

static char *digits(char *at, int value, int width)
{
    for (int i = width - 1; i >= 0; i--, value /= 10)
        at[i] = (char)('0' + value % 10);
    return at + width;
}

size_t sd_time_format(int64_t ms, char buf[SD_TIME_BUFSZ])
{
    int64_t days = ms / 86400000, in_day = ms % 86400000;
    if (in_day < 0) {
        in_day += 86400000;
        days -= 1;
    }
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    int secs = (int)(in_day / 1000);
    char *p = digits(buf, year, 4);
    *p++ = '-';
    p = digits(p, month, 2);
    *p++ = '-';
    p = digits(p, day, 2);
    *p++ = 'T';
    p = digits(p, secs / 3600, 2);
    *p++ = ':';
    p = digits(p, secs / 60 % 60, 2);
    *p++ = ':';
    p = digits(p, secs % 60, 2);
    *p++ = '.';
    p = digits(p, (int)(in_day % 1000), 3);
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - buf);
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
