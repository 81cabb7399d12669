#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "sessiond/event.h"
#include "sessiond/expiry_event.h"

#define BASE "\"event_id\":\"e1\",\"occurred_at\":\"2026-03-01T12:00:00Z\""

static void expect_invalid(const char *json, const char *field, const char *reason)
{
    sd_event_t ev;
    sd_error_t err;
    sd_err_t rc = sd_event_parse(json, strlen(json), &ev, &err);
    ck_assert_msg(rc == SD_ERR_INVALID, "accepted: %s", json);
    ck_assert_msg(strcmp(err.field, field) == 0, "%s: field '%s', expected '%s' (%s)",
                  json, err.field, field, err.message);
    ck_assert_msg(strstr(err.message, reason) != NULL,
                  "%s: message '%s' lacks '%s'", json, err.message, reason);
    ck_assert_ptr_null(ev.storage);
}

START_TEST(parses_a_full_create)
{
    sd_event_t ev;
    fx_event(&ev, "{\"schema\":\"task-event/v1\"," BASE ",\"event_type\":\"task.created\","
                     "\"task_id\":\"t1\",\"task_type\":\"scenario_generation\","
                     "\"short_id\":\"s1\",\"user_id\":\"u1\","
                     "\"metadata\":{ \"b\" : [1, 2], \"a\" : \"x\" }}");
    ck_assert_int_eq(ev.type, SD_EVENT_TASK_CREATED);
    ck_assert_str_eq(ev.event_id, "e1");
    ck_assert_str_eq(ev.task_id, "t1");
    ck_assert_str_eq(ev.task_type, "scenario_generation");
    ck_assert_int_eq(ev.task_kind, SD_TASK_SCENARIO_GENERATION);
    ck_assert_str_eq(ev.short_id, "s1");
    ck_assert_str_eq(ev.user_id, "u1");
    ck_assert_str_eq(ev.metadata_json, "{\"b\":[1,2],\"a\":\"x\"}");
    ck_assert_int_eq(ev.occurred_at_ms, INT64_C(1772366400000));
    sd_event_clear(&ev);
    ck_assert_ptr_null(ev.storage);
}
END_TEST

START_TEST(null_optionals_are_absent_and_extra_fields_ignored)
{
    sd_event_t ev;
    fx_event(&ev, "{" BASE ",\"event_type\":\"task.created\",\"task_id\":\"t1\","
                     "\"task_type\":\"image_analysis\",\"short_id\":null,\"user_id\":null,"
                     "\"metadata\":null,\"schema\":null,\"priority\":7,\"tags\":[\"x\"]}");
    ck_assert_ptr_null(ev.short_id);
    ck_assert_ptr_null(ev.user_id);
    ck_assert_ptr_null(ev.metadata_json);
    sd_event_clear(&ev);
}
END_TEST

START_TEST(unknown_task_type_is_kept)
{
    sd_event_t ev;
    fx_event(&ev, "{" BASE ",\"event_type\":\"task.completed\",\"task_id\":\"t1\","
                     "\"task_type\":\"audio_mastering\"}");
    ck_assert_int_eq(ev.task_kind, SD_TASK_OTHER);
    ck_assert_str_eq(ev.task_type, "audio_mastering");
    sd_event_clear(&ev);
}
END_TEST

START_TEST(every_task_type_name_maps_both_ways)
{
    for (int k = SD_TASK_IMAGE_ANALYSIS; k < SD_TASK_OTHER; k++)
        ck_assert_int_eq(sd_task_type_from_name(sd_task_type_name((sd_task_type_t)k)), k);
    ck_assert_int_eq(sd_task_type_from_name(NULL), SD_TASK_NONE);
    ck_assert_int_eq(sd_task_type_from_name("Scraping"), SD_TASK_OTHER);
    for (int t = 0; t < SD_EVENT_TYPE_COUNT; t++) {
        sd_event_type_t back;
        ck_assert_int_eq(sd_event_type_from_name(sd_event_type_name((sd_event_type_t)t), &back), 0);
        ck_assert_int_eq(back, t);
    }
}
END_TEST

START_TEST(save_needs_no_task_id)
{
    sd_event_t ev;
    fx_event(&ev, "{" BASE ",\"event_type\":\"scenario.saved\",\"short_id\":\"s1\"}");
    ck_assert_int_eq(ev.type, SD_EVENT_SCENARIO_SAVED);
    ck_assert_ptr_null(ev.task_id);
    sd_event_clear(&ev);
    fx_event(&ev, "{" BASE ",\"event_type\":\"session.delete_requested\",\"task_id\":\"t\"}");
    ck_assert_ptr_null(ev.task_type);
    ck_assert_int_eq(ev.task_kind, SD_TASK_NONE);
    sd_event_clear(&ev);
}
END_TEST

/* What the sweeper writes, the event reader reads: the id depends only on
 * task_id and version, occurred_at is the moment the TTL passed. */
START_TEST(an_expiry_event_reads_back)
{
    sd_expiry_due_t due = {"t/\"1\"", 4, 1790000000000};
    char *json;
    size_t len;
    sd_error_t err;
    ck_assert_int_eq(sd_expiry_event_json(&due, 7 * 86400000LL, &json, &len, &err), SD_OK);
    sd_event_t ev;
    ck_assert_msg(sd_event_parse(json, len, &ev, &err) == SD_OK, "%s: %s", json, err.message);
    ck_assert_int_eq(ev.type, SD_EVENT_SESSION_EXPIRY_DUE);
    ck_assert_str_eq(ev.task_id, due.task_id);
    ck_assert_int_eq(ev.occurred_at_ms, 1790000000000 + 7 * 86400000LL);
    ck_assert_ptr_null(ev.task_type);
    char id[SD_EXPIRY_EVENT_ID_BUFSZ], other[SD_EXPIRY_EVENT_ID_BUFSZ];
    ck_assert_int_eq(sd_expiry_event_id(due.task_id, 4, id, &err), SD_OK);
    ck_assert_str_eq(ev.event_id, id);
    ck_assert_uint_eq(strlen(id), SD_EXPIRY_EVENT_ID_BUFSZ - 1);
    ck_assert_int_eq(sd_expiry_event_id(due.task_id, 5, other, &err), SD_OK);
    ck_assert_str_ne(id, other);
    ck_assert_ptr_nonnull(strstr(json, "\"session_version\":4"));
    sd_event_clear(&ev);
    free(json);
    expect_invalid("{" BASE ",\"event_type\":\"session.expiry_due\"}", "task_id", "is required");
}
END_TEST

START_TEST(message_level_errors)
{
    expect_invalid("{\"event_id\":", "", "not JSON");
    expect_invalid("not json", "", "not JSON");
    expect_invalid("{} {}", "", "not JSON");
    expect_invalid("{\"a\":1,\"a\":2}", "", "not JSON");
    expect_invalid("{\"a\":\"x\\u0000y\"}", "", "not JSON");
    expect_invalid("{\"a\":\"\\ud800\"}", "", "not JSON");
    expect_invalid("{\"a\":99999999999999999999}", "", "not JSON");
    expect_invalid("{\"a\":\"\xff\"}", "", "not JSON");
    expect_invalid("[1,2]", "", "not an object (got array)");
    expect_invalid("42", "", "not an object (got number)");
    expect_invalid("\"text\"", "", "not an object (got string)");
    expect_invalid("null", "", "not an object (got null)");
    expect_invalid("true", "", "not an object (got boolean)");
}
END_TEST

START_TEST(over_one_mib_is_rejected_before_parsing)
{
    size_t len = SD_EVENT_MAX_BYTES + 1;
    char *big = malloc(len);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', len);
    sd_event_t ev;
    sd_error_t err;
    ck_assert_int_eq(sd_event_parse(big, len, &ev, &err), SD_ERR_INVALID);
    ck_assert_str_eq(err.message, "over 1 MiB (1048577 bytes)");
    free(big);
}
END_TEST

START_TEST(field_errors_name_field_and_reason)
{
    expect_invalid("{\"schema\":\"task-event/v2\"," BASE ",\"event_type\":\"task.created\"}",
                   "schema", "unsupported value \"task-event/v2\"");
    expect_invalid("{\"schema\":1," BASE "}", "schema", "must be a string (got number)");
    expect_invalid("{\"occurred_at\":\"2026-03-01T12:00:00Z\",\"event_type\":\"task.created\"}",
                   "event_id", "is required");
    expect_invalid("{\"event_id\":null}", "event_id", "is required");
    expect_invalid("{\"event_id\":\"\"}", "event_id", "must not be empty");
    expect_invalid("{\"event_id\":7}", "event_id", "must be a string (got number)");
    expect_invalid("{\"event_id\":\"e\"}", "event_type", "is required");
    expect_invalid("{\"event_id\":\"e\",\"event_type\":\"task.started\"}", "event_type",
                   "unknown value \"task.started\"");
    expect_invalid("{\"event_id\":\"e\",\"event_type\":\"task.created\"}", "occurred_at",
                   "is required");
    expect_invalid("{\"event_id\":\"e\",\"event_type\":\"task.created\","
                   "\"occurred_at\":\"2026-02-30T00:00:00Z\"}",
                   "occurred_at", "not an RFC 3339 timestamp: day 30 out of range");
    expect_invalid("{" BASE ",\"event_type\":\"task.created\"}", "task_id", "is required");
    expect_invalid("{" BASE ",\"event_type\":\"session.delete_requested\"}", "task_id",
                   "is required");
    expect_invalid("{" BASE ",\"event_type\":\"task.failed\",\"task_id\":\"t\"}",
                   "task_type", "is required");
    expect_invalid("{" BASE ",\"event_type\":\"task.failed\",\"task_id\":\"t\","
                   "\"task_type\":\"\"}", "task_type", "must not be empty");
    expect_invalid("{" BASE ",\"event_type\":\"scenario.saved\"}", "short_id", "is required");
    expect_invalid("{" BASE ",\"event_type\":\"task.created\",\"task_id\":\"t\","
                   "\"task_type\":\"x\",\"short_id\":[]}", "short_id",
                   "must be a string (got array)");
    expect_invalid("{" BASE ",\"event_type\":\"task.created\",\"task_id\":\"t\","
                   "\"task_type\":\"x\",\"user_id\":false}", "user_id",
                   "must be a string (got boolean)");
    expect_invalid("{" BASE ",\"event_type\":\"task.created\",\"task_id\":\"t\","
                   "\"task_type\":\"x\",\"metadata\":[1]}", "metadata",
                   "must be an object (got array)");
}
END_TEST

/* Builds {"event_id": <n copies of unit>, ...}. */
static char *event_with_id(const char *unit, int n)
{
    size_t ulen = strlen(unit);
    char *json = malloc(ulen * (size_t)n + 256);
    ck_assert_ptr_nonnull(json);
    char *p = json + sprintf(json, "{\"event_id\":\"");
    for (int i = 0; i < n; i++, p += ulen)
        memcpy(p, unit, ulen);
    sprintf(p, "\",\"event_type\":\"session.delete_requested\",\"task_id\":\"t\","
               "\"occurred_at\":\"2026-03-01T12:00:00Z\"}");
    return json;
}

START_TEST(lengths_count_characters_not_bytes)
{
    const char *units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t u = 0; u < 4; u++) {
        char *ok = event_with_id(units[u], 128);
        sd_event_t ev;
        sd_error_t err;
        ck_assert_msg(sd_event_parse(ok, strlen(ok), &ev, &err) == SD_OK, "%s", err.message);
        sd_event_clear(&ev);
        free(ok);
        char *long_id = event_with_id(units[u], 129);
        expect_invalid(long_id, "event_id", "longer than 128 characters (got 129)");
        free(long_id);
    }
}
END_TEST

START_TEST(metadata_limit_is_on_compact_json)
{
    /* {"k":"<v>"} is 8 bytes plus v: exactly 16 KiB passes, one more fails,
     * however much white space the producer put around it. */
    char *json = malloc(20000);
    ck_assert_ptr_nonnull(json);
    for (int extra = 0; extra <= 1; extra++) {
        int vlen = 16384 - 8 + extra;
        int n = sprintf(json, "{" BASE ",\"event_type\":\"task.created\",\"task_id\":\"t\","
                              "\"task_type\":\"x\",\"metadata\":{  \"k\" :  \"");
        memset(json + n, 'v', (size_t)vlen);
        sprintf(json + n + vlen, "\"  }}");
        sd_event_t ev;
        sd_error_t err;
        sd_err_t rc = sd_event_parse(json, strlen(json), &ev, &err);
        if (extra == 0) {
            ck_assert_msg(rc == SD_OK, "%s", err.message);
            ck_assert_uint_eq(strlen(ev.metadata_json), 16384);
            sd_event_clear(&ev);
        } else {
            ck_assert_int_eq(rc, SD_ERR_INVALID);
            ck_assert_str_eq(err.field, "metadata");
            ck_assert_str_eq(err.message, "over 16 KiB (16385 bytes as compact JSON)");
        }
    }
    free(json);
}
END_TEST

START_TEST(null_error_pointer_is_allowed)
{
    sd_event_t ev;
    const char *bad = "{\"event_id\":\"e\",\"event_type\":\"task.created\",\"occurred_at\":\"x\"}";
    ck_assert_int_eq(sd_event_parse(bad, strlen(bad), &ev, NULL), SD_ERR_INVALID);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parses_a_full_create);
    tcase_add_test(tc, null_optionals_are_absent_and_extra_fields_ignored);
    tcase_add_test(tc, unknown_task_type_is_kept);
    tcase_add_test(tc, every_task_type_name_maps_both_ways);
    tcase_add_test(tc, save_needs_no_task_id);
    tcase_add_test(tc, an_expiry_event_reads_back);
    tcase_add_test(tc, message_level_errors);
    tcase_add_test(tc, over_one_mib_is_rejected_before_parsing);
    tcase_add_test(tc, field_errors_name_field_and_reason);
    tcase_add_test(tc, lengths_count_characters_not_bytes);
    tcase_add_test(tc, metadata_limit_is_on_compact_json);
    tcase_add_test(tc, null_error_pointer_is_allowed);
    suite_add_tcase(s, tc);
    return fx_run(s);
}
