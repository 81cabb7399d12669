/* One row per (event_type, task_type, short_id?) combination of SPEC §3. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fixtures.h"
#include "sessiond/rules.h"

typedef struct row {
    const char *event_type;
    const char *task_type; /* NULL: field absent */
    int has_short_id;
    sd_intent_kind_t kind;
    sd_reason_t reason;
    sd_status_t status;
    sd_ignore_t ignored;
} row_t;

#define CREATE(tt) {"task.created", tt, 1, SD_INTENT_CREATE, SD_REASON_TASK_CREATED, 0, 0}
#define NO_SHORT(tt) {"task.created", tt, 0, SD_INTENT_IGNORE, 0, 0, SD_IGNORE_NO_SHORT_ID}
#define REMOVE(et, tt, r) {et, tt, 0, SD_INTENT_REMOVE, r, 0, 0}
#define STATUS(et, r, st) {et, "scenario_generation", 0, SD_INTENT_SET_STATUS, r, st, 0}
#define SCRAPING(et) {et, "scraping", 1, SD_INTENT_IGNORE, 0, 0, SD_IGNORE_SCRAPING}

static const row_t rows[] = {
    /* rule 1: task.created with a short_id creates, except scraping */
    CREATE("image_analysis"), CREATE("scenario_generation"), CREATE("video_generation"),
    CREATE("finalize_short"), CREATE("save_scenario"), CREATE("content_analysis"),
    CREATE("data_extraction"), CREATE("a_type_from_the_future"),
    SCRAPING("task.created"),
    {"task.created", "scraping", 0, SD_INTENT_IGNORE, 0, 0, SD_IGNORE_SCRAPING},
    NO_SHORT("image_analysis"), NO_SHORT("scenario_generation"), NO_SHORT("video_generation"),
    NO_SHORT("finalize_short"), NO_SHORT("save_scenario"), NO_SHORT("content_analysis"),
    NO_SHORT("data_extraction"), NO_SHORT("a_type_from_the_future"),
    /* rule 2: terminals remove, except scenario_generation (status) */
    REMOVE("task.completed", "image_analysis", SD_REASON_TASK_COMPLETED),
    REMOVE("task.completed", "video_generation", SD_REASON_TASK_COMPLETED),
    REMOVE("task.completed", "finalize_short", SD_REASON_TASK_COMPLETED),
    REMOVE("task.completed", "save_scenario", SD_REASON_TASK_COMPLETED),
    REMOVE("task.completed", "content_analysis", SD_REASON_TASK_COMPLETED),
    REMOVE("task.completed", "data_extraction", SD_REASON_TASK_COMPLETED),
    REMOVE("task.completed", "a_type_from_the_future", SD_REASON_TASK_COMPLETED),
    REMOVE("task.failed", "image_analysis", SD_REASON_TASK_FAILED),
    REMOVE("task.failed", "video_generation", SD_REASON_TASK_FAILED),
    REMOVE("task.failed", "finalize_short", SD_REASON_TASK_FAILED),
    REMOVE("task.failed", "save_scenario", SD_REASON_TASK_FAILED),
    REMOVE("task.failed", "content_analysis", SD_REASON_TASK_FAILED),
    REMOVE("task.failed", "data_extraction", SD_REASON_TASK_FAILED),
    REMOVE("task.failed", "a_type_from_the_future", SD_REASON_TASK_FAILED),
    REMOVE("task.cancelled", "image_analysis", SD_REASON_TASK_CANCELLED),
    REMOVE("task.cancelled", "video_generation", SD_REASON_TASK_CANCELLED),
    REMOVE("task.cancelled", "finalize_short", SD_REASON_TASK_CANCELLED),
    REMOVE("task.cancelled", "save_scenario", SD_REASON_TASK_CANCELLED),
    REMOVE("task.cancelled", "content_analysis", SD_REASON_TASK_CANCELLED),
    REMOVE("task.cancelled", "data_extraction", SD_REASON_TASK_CANCELLED),
    REMOVE("task.cancelled", "a_type_from_the_future", SD_REASON_TASK_CANCELLED),
    STATUS("task.completed", SD_REASON_TASK_COMPLETED, SD_STATUS_COMPLETED),
    STATUS("task.failed", SD_REASON_TASK_FAILED, SD_STATUS_FAILED),
    STATUS("task.cancelled", SD_REASON_TASK_CANCELLED, SD_STATUS_CANCELLED),
    /* scraping tasks never have a session, so their terminals need no tombstone */
    SCRAPING("task.completed"), SCRAPING("task.failed"), SCRAPING("task.cancelled"),
    /* rule 3: saves */
    {"scenario.saved", NULL, 1, SD_INTENT_SAVE, SD_REASON_SCENARIO_SAVED, 0, 0},
    {"scenario.saved", "save_scenario", 1, SD_INTENT_SAVE, SD_REASON_SCENARIO_SAVED, 0, 0},
    /* rule 6: manual delete, whatever task_type it may carry */
    {"session.delete_requested", NULL, 0, SD_INTENT_REMOVE, SD_REASON_MANUAL, 0, 0},
    {"session.delete_requested", "scenario_generation", 0, SD_INTENT_REMOVE, SD_REASON_MANUAL, 0, 0},
    /* rule 5 through the log: the sweeper's expiry event (the store decides
     * whether the session is due) */
    {"session.expiry_due", NULL, 0, SD_INTENT_EXPIRE, SD_REASON_TTL, 0, 0},
};

START_TEST(row_gives_its_intent)
{
    const row_t *r = &rows[_i];
    char task_type[96] = "", short_id[32] = "";
    if (r->task_type)
        snprintf(task_type, sizeof task_type, ",\"task_type\":\"%s\"", r->task_type);
    if (r->has_short_id)
        snprintf(short_id, sizeof short_id, ",\"short_id\":\"s1\"");
    sd_event_t ev;
    fx_event(&ev, "{\"event_id\":\"e1\",\"event_type\":\"%s\",\"task_id\":\"t1\","
                     "\"occurred_at\":\"2026-03-01T12:00:00Z\"%s%s}",
                r->event_type, task_type, short_id);

    sd_intent_t in = sd_rules_intent(&ev);
    ck_assert_msg(in.kind == r->kind, "%s/%s: kind %s, expected %s", r->event_type,
                  r->task_type, sd_intent_kind_name(in.kind), sd_intent_kind_name(r->kind));
    ck_assert_ptr_eq(in.event, &ev);
    if (r->kind == SD_INTENT_IGNORE) {
        ck_assert_str_eq(sd_ignore_name(in.ignored), sd_ignore_name(r->ignored));
    } else {
        ck_assert_str_eq(sd_reason_name(in.reason), sd_reason_name(r->reason));
        ck_assert_int_eq(in.ignored, SD_IGNORE_NONE);
    }
    if (r->kind == SD_INTENT_SET_STATUS)
        ck_assert_str_eq(sd_status_name(in.status), sd_status_name(r->status));
    sd_event_clear(&ev);
}
END_TEST

START_TEST(every_event_and_task_type_has_a_row)
{
    for (int et = 0; et < SD_EVENT_TYPE_COUNT; et++) {
        int found = 0;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            found |= strcmp(rows[i].event_type, sd_event_type_name((sd_event_type_t)et)) == 0;
        ck_assert_msg(found, "no row for %s", sd_event_type_name((sd_event_type_t)et));
    }
    for (int tt = SD_TASK_IMAGE_ANALYSIS; tt < SD_TASK_OTHER; tt++) {
        int found = 0;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            found |= rows[i].task_type &&
                     strcmp(rows[i].task_type, sd_task_type_name((sd_task_type_t)tt)) == 0;
        ck_assert_msg(found, "no row for %s", sd_task_type_name((sd_task_type_t)tt));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("intents");
    tcase_add_loop_test(tc, row_gives_its_intent, 0, sizeof rows / sizeof rows[0]);
    tcase_add_test(tc, every_event_and_task_type_has_a_row);
    suite_add_tcase(s, tc);
    return fx_run(s);
}
