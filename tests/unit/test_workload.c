/* The workload's two id shapes: the same events either way, ids that look
 * like what producers send. */
#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <string.h>

#include "fixtures.h"
#include "sessiond/workload.h"

#define SEED 20261202u

static sd_workload_t make(sd_workload_ids_t ids, const char *prefix)
{
    sd_workload_params_t p = {.seed = SEED, .tasks = 300, .now_ms = INT64_C(1790000000000),
                              .ttl_ms = INT64_C(604800000), .id_prefix = prefix, .ids = ids};
    sd_workload_t w;
    sd_error_t err;
    ck_assert_int_eq(sd_workload_generate(&p, &w, &err), SD_OK);
    return w;
}

/* xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx, lower-case hex */
static int is_uuid_v4(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static const char *field(json_t *ev, const char *name)
{
    return json_string_value(json_object_get(ev, name));
}

START_TEST(uuid_ids_are_v4_and_draw_the_same_events)
{
    sd_workload_t seq = make(SD_IDS_SEQUENTIAL, ""), uuid = make(SD_IDS_UUID, "");
    ck_assert_uint_eq(seq.count, uuid.count);
    for (size_t i = 0; i < seq.count; i++) {
        json_t *a = json_loads(seq.lines[i].json, 0, NULL);
        json_t *b = json_loads(uuid.lines[i].json, 0, NULL);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_str_eq(field(a, "event_type"), field(b, "event_type"));
        ck_assert_str_eq(field(a, "occurred_at"), field(b, "occurred_at"));
        ck_assert_msg(is_uuid_v4(field(b, "event_id")), "event_id %s", field(b, "event_id"));
        static const char *const ids[] = {"task_id", "short_id"};
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(field(a, ids[k]) != NULL, field(b, ids[k]) != NULL);
            if (field(b, ids[k]))
                ck_assert_msg(is_uuid_v4(field(b, ids[k])), "%s %s", ids[k], field(b, ids[k]));
        }
        ck_assert_str_eq(uuid.lines[i].key, field(b, field(b, "task_id") ? "task_id" : "short_id"));
        json_decref(a);
        json_decref(b);
    }
    sd_workload_free(&seq);
    sd_workload_free(&uuid);
}
END_TEST

/* One task's events share its id, and another prefix gives other ids:
 * workloads of one store stay apart in both shapes. */
START_TEST(ids_keep_tasks_together_and_prefixes_apart)
{
    sd_workload_t a = make(SD_IDS_UUID, "a-"), b = make(SD_IDS_UUID, "b-"),
                  seq = make(SD_IDS_SEQUENTIAL, "");
    for (size_t i = 0; i < a.count; i++)
        for (size_t j = 0; j < a.count; j++) {
            if (a.lines[i].key && b.lines[j].key)
                ck_assert_str_ne(a.lines[i].key, b.lines[j].key);
            /* same sequential key, same uuid key, and the other way round */
            int same_seq = strcmp(seq.lines[i].key, seq.lines[j].key) == 0;
            int same_uuid = strcmp(a.lines[i].key, a.lines[j].key) == 0;
            ck_assert_int_eq(same_seq, same_uuid);
        }
    sd_workload_free(&a);
    sd_workload_free(&b);
    sd_workload_free(&seq);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("workload");
    TCase *tc = tcase_create("ids");
    tcase_add_test(tc, uuid_ids_are_v4_and_draw_the_same_events);
    tcase_add_test(tc, ids_keep_tasks_together_and_prefixes_apart);
    suite_add_tcase(s, tc);
    return fx_run(s);
}
