#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "sessiond/change.h"

static sd_change_t sample(void)
{
    return (sd_change_t){
        .type = SD_CHANGE_STATUS_CHANGED,
        .reason = SD_REASON_TASK_FAILED,
        .version = 2,
        .occurred_at_ms = INT64_C(1772366400250),
        .session = {.task_id = "t1", .short_id = "s1", .task_type = "scenario_generation",
                    .user_id = "u1", .metadata_json = "{\"lang\":\"fr\",\"n\":[1,2]}",
                    .status = SD_STATUS_FAILED,
                    .created_at_ms = INT64_C(1772366000000),
                    .updated_at_ms = INT64_C(1772366400250)},
        .cause = {.event_id = "e1", .topic = "task-events", .partition = 3, .offset = 41},
    };
}

static json_t *to_json(const sd_change_t *c)
{
    char *text;
    size_t len;
    sd_error_t err;
    ck_assert_msg(sd_change_to_json(c, &text, &len, &err) == SD_OK, "%s", err.message);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert_ptr_null(strchr(text, '\n'));
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    ck_assert_ptr_nonnull(root);
    free(text);
    return root;
}

START_TEST(change_id_is_pinned)
{
    /* printf 'e1\0t1\0session.created' | sha256sum | cut -c1-32 */
    char id[SD_CHANGE_ID_BUFSZ];
    ck_assert_int_eq(sd_change_id("e1", "t1", SD_CHANGE_CREATED, id, NULL), SD_OK);
    ck_assert_str_eq(id, "962b56a064b313c0ce99b66675c5cc70");
    ck_assert_int_eq(sd_change_id("e1", "t1", SD_CHANGE_EXPIRED, id, NULL), SD_OK);
    ck_assert_str_eq(id, "8c3ad097d5522d3732ee8690b443756e");
}
END_TEST

START_TEST(change_id_separates_its_inputs)
{
    char a[SD_CHANGE_ID_BUFSZ], b[SD_CHANGE_ID_BUFSZ];
    ck_assert_int_eq(sd_change_id("ab", "c", SD_CHANGE_REMOVED, a, NULL), SD_OK);
    ck_assert_int_eq(sd_change_id("a", "bc", SD_CHANGE_REMOVED, b, NULL), SD_OK);
    ck_assert_str_ne(a, b);
    for (int t = SD_CHANGE_CREATED; t < SD_CHANGE_EXPIRED; t++) {
        ck_assert_int_eq(sd_change_id("e", "t", (sd_change_type_t)t, a, NULL), SD_OK);
        ck_assert_int_eq(sd_change_id("e", "t", (sd_change_type_t)(t + 1), b, NULL), SD_OK);
        ck_assert_str_ne(a, b);
    }
}
END_TEST

START_TEST(serialises_every_field)
{
    sd_change_t c = sample();
    json_t *root = to_json(&c);
    ck_assert_str_eq(json_string_value(json_object_get(root, "schema")), "session-change/v1");
    char id[SD_CHANGE_ID_BUFSZ];
    ck_assert_int_eq(sd_change_id("e1", "t1", SD_CHANGE_STATUS_CHANGED, id, NULL), SD_OK);
    ck_assert_str_eq(json_string_value(json_object_get(root, "change_id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(root, "change_type")),
                     "session.status_changed");
    ck_assert_str_eq(json_string_value(json_object_get(root, "reason")), "task.failed");
    ck_assert_int_eq(json_integer_value(json_object_get(root, "version")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(root, "occurred_at")),
                     "2026-03-01T12:00:00.250Z");
    json_t *s = json_object_get(root, "session");
    ck_assert_str_eq(json_string_value(json_object_get(s, "task_id")), "t1");
    ck_assert_str_eq(json_string_value(json_object_get(s, "short_id")), "s1");
    ck_assert_str_eq(json_string_value(json_object_get(s, "task_type")), "scenario_generation");
    ck_assert_str_eq(json_string_value(json_object_get(s, "user_id")), "u1");
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")), "failed");
    ck_assert_str_eq(json_string_value(json_object_get(s, "created_at")),
                     "2026-03-01T11:53:20.000Z");
    ck_assert_str_eq(json_string_value(json_object_get(s, "updated_at")),
                     "2026-03-01T12:00:00.250Z");
    json_t *m = json_object_get(s, "metadata");
    ck_assert_str_eq(json_string_value(json_object_get(m, "lang")), "fr");
    ck_assert_int_eq(json_array_size(json_object_get(m, "n")), 2);
    json_t *cause = json_object_get(root, "cause");
    ck_assert_str_eq(json_string_value(json_object_get(cause, "event_id")), "e1");
    ck_assert_str_eq(json_string_value(json_object_get(cause, "topic")), "task-events");
    ck_assert_int_eq(json_integer_value(json_object_get(cause, "partition")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(cause, "offset")), 41);
    json_decref(root);
}
END_TEST

START_TEST(absent_values_are_null)
{
    sd_change_t c = sample();
    c.type = SD_CHANGE_EXPIRED;
    c.reason = SD_REASON_TTL;
    c.session.user_id = NULL;
    c.session.metadata_json = NULL;
    c.cause.topic = NULL;
    json_t *root = to_json(&c);
    json_t *s = json_object_get(root, "session");
    ck_assert(json_is_null(json_object_get(s, "user_id")));
    ck_assert(json_is_null(json_object_get(s, "metadata")));
    json_t *cause = json_object_get(root, "cause");
    ck_assert_str_eq(json_string_value(json_object_get(cause, "event_id")), "e1");
    ck_assert(json_is_null(json_object_get(cause, "topic")));
    ck_assert(json_is_null(json_object_get(cause, "partition")));
    ck_assert(json_is_null(json_object_get(cause, "offset")));
    json_decref(root);
}
END_TEST

START_TEST(same_change_serialises_identically)
{
    sd_change_t c = sample();
    char *a, *b;
    size_t alen, blen;
    ck_assert_int_eq(sd_change_to_json(&c, &a, &alen, NULL), SD_OK);
    ck_assert_int_eq(sd_change_to_json(&c, &b, &blen, NULL), SD_OK);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
}
END_TEST

START_TEST(missing_required_session_field_is_an_error)
{
    sd_change_t c = sample();
    c.session.short_id = NULL;
    char *text = NULL;
    size_t len;
    sd_error_t err;
    ck_assert_int_eq(sd_change_to_json(&c, &text, &len, &err), SD_ERR_INVALID);
    ck_assert_ptr_null(text);
    ck_assert_ptr_nonnull(strstr(err.message, "task t1"));
}
END_TEST

/* The text is written by hand for speed; jansson decides what it should be.
 * Loading it and dumping it again with JSON_COMPACT must give the same
 * bytes, for strings with every kind of byte jansson escapes or keeps. */
START_TEST(text_is_what_jansson_would_write)
{
    static const char *const awkward[] = {
        "plain", "quote \" and backslash \\", "tab\tnewline\nreturn\rff\fbs\b",
        "\x01\x1f\x7f control", "slash / stays", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "\xe2\x80\xa8 line separator", "",
    };
    for (size_t i = 0; i < sizeof awkward / sizeof awkward[0]; i++) {
        sd_change_t c = sample();
        c.session.user_id = awkward[i];
        c.session.task_id = awkward[(i + 1) % 8];
        c.cause.event_id = awkward[(i + 2) % 8];
        c.version = i % 2 ? INT64_MAX : 1;
        c.cause.offset = i % 2 ? 0 : INT64_MAX;
        c.occurred_at_ms = i % 2 ? INT64_C(-62167219200000) : INT64_C(253402300799999);
        char *text;
        size_t len;
        ck_assert_int_eq(sd_change_to_json(&c, &text, &len, NULL), SD_OK);
        json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        ck_assert_msg(root != NULL, "not JSON: %s", text);
        char *again = json_dumps(root, JSON_COMPACT);
        ck_assert_str_eq(text, again);
        free(again);
        free(text);
        json_decref(root);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("change");
    TCase *tc = tcase_create("change");
    tcase_add_test(tc, change_id_is_pinned);
    tcase_add_test(tc, change_id_separates_its_inputs);
    tcase_add_test(tc, serialises_every_field);
    tcase_add_test(tc, absent_values_are_null);
    tcase_add_test(tc, same_change_serialises_identically);
    tcase_add_test(tc, missing_required_session_field_is_an_error);
    tcase_add_test(tc, text_is_what_jansson_would_write);
    suite_add_tcase(s, tc);
    return fx_run(s);
}
