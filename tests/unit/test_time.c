#define _DEFAULT_SOURCE
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fixtures.h"
#include "sessiond/timefmt.h"

typedef struct good_case {
    const char *text;
    const char *canonical; /* sd_time_format of the parsed value */
} good_case_t;

static const good_case_t good[] = {
    {"2026-03-01T12:00:00Z", "2026-03-01T12:00:00.000Z"},
    {"2026-03-01t12:00:00z", "2026-03-01T12:00:00.000Z"},
    {"2026-03-01T12:00:00.5Z", "2026-03-01T12:00:00.500Z"},
    {"2026-03-01T12:00:00.123456789Z", "2026-03-01T12:00:00.123Z"},
    {"2026-03-01T12:00:00.9999Z", "2026-03-01T12:00:00.999Z"},
    {"2026-03-01T14:30:00+02:30", "2026-03-01T12:00:00.000Z"},
    {"2026-03-01T00:15:00-01:00", "2026-03-01T01:15:00.000Z"},
    {"2026-03-01T00:15:00-00:00", "2026-03-01T00:15:00.000Z"},
    {"2026-03-01T01:00:00+02:00", "2026-02-28T23:00:00.000Z"},
    {"2024-02-29T23:59:59.999Z", "2024-02-29T23:59:59.999Z"},
    {"2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z"},
    {"2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999Z"},
    {"1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"},
    {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"},
    {"0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000Z"},
    {"9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"},
    {"0001-01-01T00:30:00+00:30", "0001-01-01T00:00:00.000Z"},
};

typedef struct bad_case {
    const char *text;
    const char *reason; /* substring of the message */
} bad_case_t;

static const bad_case_t bad[] = {
    {"", "expected YYYY-MM-DD"},
    {"2026-03-01", "expected YYYY-MM-DD"},
    {"2026-03-01 12:00:00Z", "expected YYYY-MM-DD"},
    {"2026-03-01T12:00Z", "expected YYYY-MM-DD"},
    {"2026-3-01T12:00:00Z", "expected YYYY-MM-DD"},
    {"26-03-01T12:00:00Z", "expected YYYY-MM-DD"},
    {"2026-03-01T12:00:00", "expected YYYY-MM-DD"},
    {"2026-03-01T12:00:00.Z", "no digits after '.'"},
    {"2026-03-01T12:00:00+0100", "offset must be"},
    {"2026-03-01T12:00:00+01", "offset must be"},
    {"2026-03-01T12:00:00ZZ", "unexpected text"},
    {"2026-03-01T12:00:00Z ", "unexpected text"},
    {"2026-13-01T12:00:00Z", "month 13 out of range"},
    {"2026-00-01T12:00:00Z", "month 00 out of range"},
    {"2026-02-29T12:00:00Z", "day 29 out of range for 2026-02"},
    {"1900-02-29T12:00:00Z", "day 29 out of range for 1900-02"},
    {"2026-04-31T12:00:00Z", "day 31 out of range"},
    {"2026-01-00T12:00:00Z", "day 00 out of range"},
    {"2026-01-01T24:00:00Z", "hour 24 out of range"},
    {"2026-01-01T12:60:00Z", "minute 60 out of range"},
    {"2026-01-01T12:00:61Z", "second 61 out of range"},
    {"2026-01-01T12:00:00+24:00", "offset hour 24 out of range"},
    {"2026-01-01T12:00:00+01:60", "offset minute 60 out of range"},
    {"0000-01-01T00:30:00+01:00", "outside years 0000-9999"},
    {"9999-12-31T23:30:00-01:00", "outside years 0000-9999"},
    {"２026-01-01T12:00:00Z", "expected YYYY-MM-DD"},
};

START_TEST(parses_valid_timestamps)
{
    const good_case_t *c = &good[_i];
    int64_t ms = 0;
    sd_error_t err;
    sd_err_t rc = sd_time_parse_rfc3339(c->text, strlen(c->text), &ms, &err);
    ck_assert_msg(rc == SD_OK, "%s: %s", c->text, err.message);
    char buf[SD_TIME_BUFSZ];
    sd_time_format(ms, buf);
    ck_assert_str_eq(buf, c->canonical);
}
END_TEST

START_TEST(rejects_invalid_timestamps)
{
    const bad_case_t *c = &bad[_i];
    int64_t ms = 42;
    sd_error_t err;
    sd_err_t rc = sd_time_parse_rfc3339(c->text, strlen(c->text), &ms, &err);
    ck_assert_msg(rc == SD_ERR_INVALID, "'%s' was accepted", c->text);
    ck_assert_msg(strstr(err.message, c->reason) != NULL,
                  "'%s': message '%s' lacks '%s'", c->text, err.message, c->reason);
    ck_assert_int_eq(ms, 42);
}
END_TEST

START_TEST(known_epoch_values)
{
    int64_t ms;
    const char *t = "2001-09-09T01:46:40.250Z";
    ck_assert_int_eq(sd_time_parse_rfc3339(t, strlen(t), &ms, NULL), SD_OK);
    ck_assert_int_eq(ms, INT64_C(1000000000250));
    t = "1969-12-31T23:59:59.999Z";
    ck_assert_int_eq(sd_time_parse_rfc3339(t, strlen(t), &ms, NULL), SD_OK);
    ck_assert_int_eq(ms, -1);
}
END_TEST

START_TEST(length_bounds_the_input)
{
    /* The parser must not read past len even when the buffer goes on. */
    const char *t = "2026-03-01T12:00:00Z trailing";
    int64_t ms;
    ck_assert_int_eq(sd_time_parse_rfc3339(t, 20, &ms, NULL), SD_OK);
    ck_assert_int_eq(sd_time_parse_rfc3339(t, 19, &ms, NULL), SD_ERR_INVALID);
}
END_TEST

START_TEST(format_round_trips_every_day_of_a_leap_cycle)
{
    /* 1600-03-01 .. 2000-03-01 covers every calendar rule once. */
    char buf[SD_TIME_BUFSZ];
    for (int64_t day = -135080; day < 11017; day += 7) {
        int64_t ms = day * 86400000 + 12345;
        sd_time_format(ms, buf);
        int64_t back;
        ck_assert_int_eq(sd_time_parse_rfc3339(buf, strlen(buf), &back, NULL), SD_OK);
        ck_assert_int_eq(back, ms);
    }
}
END_TEST

/* The calendar arithmetic is our own; the C library's is the reference.
 * Every 97th day from 0000-01-01 to 9999-12-31 (primes walk all weekdays,
 * months and leap rules) with a time of day that moves too. */
START_TEST(format_agrees_with_gmtime_over_years_0000_to_9999)
{
    char ours[SD_TIME_BUFSZ], libc[64];
    for (int64_t day = -719528; day < 2932897; day += 97) {
        int64_t ms = day * 86400000 + (day * 7919 % 86400000 + 86400000) % 86400000;
        sd_time_format(ms, ours);
        int64_t frac = (ms % 1000 + 1000) % 1000;
        time_t secs = (time_t)((ms - frac) / 1000);
        struct tm tm;
        ck_assert_ptr_nonnull(gmtime_r(&secs, &tm));
        snprintf(libc, sizeof libc, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
        ck_assert_str_eq(ours, libc);
        int64_t back;
        ck_assert_int_eq(sd_time_parse_rfc3339(libc, strlen(libc), &back, NULL), SD_OK);
        ck_assert_int_eq(back, ms);
    }
}
END_TEST

START_TEST(durations)
{
    int64_t ms;
    sd_error_t err;
    ck_assert_int_eq(sd_duration_parse("7d", &ms, &err), SD_OK);
    ck_assert_int_eq(ms, INT64_C(604800000));
    ck_assert_int_eq(sd_duration_parse("36h", &ms, &err), SD_OK);
    ck_assert_int_eq(ms, INT64_C(129600000));
    ck_assert_int_eq(sd_duration_parse("90m", &ms, &err), SD_OK);
    ck_assert_int_eq(ms, 5400000);
    ck_assert_int_eq(sd_duration_parse("30s", &ms, &err), SD_OK);
    ck_assert_int_eq(ms, 30000);
    ck_assert_int_eq(sd_duration_parse("250ms", &ms, &err), SD_OK);
    ck_assert_int_eq(ms, 250);
    ck_assert_int_eq(sd_duration_parse("60", &ms, &err), SD_OK);
    ck_assert_int_eq(ms, 60000);
    const char *wrong[] = {"", "d", "0s", "-5m", "7x", "7 d", "99999999999999999d"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        ck_assert_msg(sd_duration_parse(wrong[i], &ms, &err) == SD_ERR_INVALID, "'%s'", wrong[i]);
        ck_assert_ptr_nonnull(strstr(err.message, "not a positive duration"));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("rfc3339");
    tcase_add_loop_test(tc, parses_valid_timestamps, 0, sizeof good / sizeof good[0]);
    tcase_add_loop_test(tc, rejects_invalid_timestamps, 0, sizeof bad / sizeof bad[0]);
    tcase_add_test(tc, known_epoch_values);
    tcase_add_test(tc, length_bounds_the_input);
    tcase_add_test(tc, format_round_trips_every_day_of_a_leap_cycle);
    tcase_add_test(tc, format_agrees_with_gmtime_over_years_0000_to_9999);
    tcase_add_test(tc, durations);
    suite_add_tcase(s, tc);
    return fx_run(s);
}
