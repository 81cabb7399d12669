/* Hand-written cases for the reference model, one or more per rule of
 * SPEC §3.  Times are minutes after 2026-03-01T00:00Z. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "sessiond/model.h"

#define T0 FX_T0
#define MIN INT64_C(60000)
#define DAY (1440 * MIN)
#define TTL (7 * DAY)
#define NOW (T0 + DAY)

typedef struct world {
    fx_events_t ev;
    sd_model_result_t result;
} world_t;

static world_t w;

static void setup(void) { memset(&w, 0, sizeof w); }

static void teardown(void)
{
    sd_model_result_free(&w.result);
    fx_events_free(&w.ev);
}

static void run_at(int64_t now)
{
    sd_model_result_free(&w.result);
    ck_assert_int_eq(sd_model_visible(w.ev.items, w.ev.count, now, TTL, &w.result), 0);
}

static void run(void) { run_at(NOW); }

static const sd_session_t *visible(const char *task)
{
    const sd_session_t *s = sd_model_find(&w.result, task);
    ck_assert_msg(s != NULL, "%s should be visible", task);
    return s;
}

static void absent(const char *task)
{
    ck_assert_msg(sd_model_find(&w.result, task) == NULL, "%s should not be visible", task);
}

START_TEST(rule1_create_makes_an_active_session)
{
    fx_create(&w.ev, "e1", "t1", "image_analysis", "s1", 10);
    run();
    ck_assert_uint_eq(w.result.count, 1);
    const sd_session_t *s = visible("t1");
    ck_assert_str_eq(s->short_id, "s1");
    ck_assert_str_eq(s->task_type, "image_analysis");
    ck_assert_str_eq(s->user_id, "u-e1");
    ck_assert_int_eq(s->status, SD_STATUS_ACTIVE);
    ck_assert_int_eq(s->created_at_ms, T0 + 10 * MIN);
    ck_assert_int_eq(s->updated_at_ms, T0 + 10 * MIN);
}
END_TEST

START_TEST(rule1_scraping_and_no_short_id_are_ignored)
{
    fx_create(&w.ev, "e1", "t1", "scraping", "s1", 10);
    fx_create(&w.ev, "e2", "t2", "video_generation", NULL, 10);
    fx_create(&w.ev, "e3", "t3", "a_future_type", "s3", 10);
    run();
    absent("t1");
    absent("t2");
    ck_assert_str_eq(visible("t3")->task_type, "a_future_type");
}
END_TEST

START_TEST(rule2_terminals_remove_other_types)
{
    fx_create(&w.ev, "c1", "t1", "video_generation", "s1", 10);
    fx_terminal(&w.ev, "x1", "task.completed", "t1", "video_generation", 20);
    fx_create(&w.ev, "c2", "t2", "image_analysis", "s1", 10);
    fx_terminal(&w.ev, "x2", "task.failed", "t2", "image_analysis", 20);
    fx_create(&w.ev, "c3", "t3", "finalize_short", "s1", 10);
    fx_terminal(&w.ev, "x3", "task.cancelled", "t3", "finalize_short", 20);
    fx_create(&w.ev, "c4", "t4", "finalize_short", "s1", 10);
    run();
    absent("t1");
    absent("t2");
    absent("t3");
    visible("t4");
}
END_TEST

START_TEST(rule2_scenario_generation_keeps_session_with_latest_status)
{
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_terminal(&w.ev, "x1", "task.failed", "t1", "scenario_generation", 30);
    fx_terminal(&w.ev, "x2", "task.completed", "t1", "scenario_generation", 20);
    run();
    const sd_session_t *s = visible("t1");
    ck_assert_int_eq(s->status, SD_STATUS_FAILED);
    ck_assert_int_eq(s->updated_at_ms, T0 + 30 * MIN);
}
END_TEST

START_TEST(rule2_status_tie_broken_by_event_id)
{
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_terminal(&w.ev, "x-b", "task.cancelled", "t1", "scenario_generation", 30);
    fx_terminal(&w.ev, "x-a", "task.completed", "t1", "scenario_generation", 30);
    run();
    ck_assert_int_eq(visible("t1")->status, SD_STATUS_CANCELLED);
}
END_TEST

START_TEST(rule3_save_removes_covered_scenario_sessions_only)
{
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_create(&w.ev, "c2", "t2", "scenario_generation", "s1", 30); /* exactly at Ts */
    fx_create(&w.ev, "c3", "t3", "scenario_generation", "s1", 31); /* after: a new one */
    fx_create(&w.ev, "c4", "t4", "image_analysis", "s1", 10);      /* not a scenario */
    fx_create(&w.ev, "c5", "t5", "scenario_generation", "s2", 10); /* other short_id */
    fx_save(&w.ev, "v1", "s1", 30);
    run();
    absent("t1");
    absent("t2");
    visible("t3");
    visible("t4");
    visible("t5");
}
END_TEST

START_TEST(rule3_regeneration_stays_until_the_next_save)
{
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_save(&w.ev, "v1", "s1", 20);
    fx_create(&w.ev, "c2", "t2", "scenario_generation", "s1", 30);
    run();
    absent("t1");
    visible("t2");
    fx_save(&w.ev, "v2", "s1", 40);
    run();
    absent("t2");
}
END_TEST

START_TEST(rule3_latest_save_counts_even_if_seen_first)
{
    fx_save(&w.ev, "v2", "s1", 50);
    fx_save(&w.ev, "v1", "s1", 20);
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 40);
    run();
    absent("t1");
}
END_TEST

START_TEST(rule4_terminal_before_create_wins)
{
    fx_terminal(&w.ev, "x1", "task.completed", "t1", "video_generation", 20);
    fx_create(&w.ev, "c1", "t1", "video_generation", "s1", 10);
    /* even when the terminal's clock ran behind the create's */
    fx_terminal(&w.ev, "x2", "task.failed", "t2", "image_analysis", 5);
    fx_create(&w.ev, "c2", "t2", "image_analysis", "s1", 10);
    run();
    absent("t1");
    absent("t2");
}
END_TEST

START_TEST(rule4_scenario_status_before_create_applies)
{
    fx_terminal(&w.ev, "x1", "task.completed", "t1", "scenario_generation", 20);
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    run();
    ck_assert_int_eq(visible("t1")->status, SD_STATUS_COMPLETED);
}
END_TEST

START_TEST(rule4_save_before_create_wins)
{
    fx_save(&w.ev, "v1", "s1", 30);
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    run();
    absent("t1");
}
END_TEST

START_TEST(rule5_session_expires_ttl_after_its_last_change)
{
    fx_create(&w.ev, "c1", "t1", "image_analysis", "s1", 0);
    fx_create(&w.ev, "c2", "t2", "scenario_generation", "s1", 0);
    fx_terminal(&w.ev, "x2", "task.completed", "t2", "scenario_generation", 60);
    run_at(T0 + TTL - 1);
    visible("t1");
    run_at(T0 + TTL);
    absent("t1");
    const sd_session_t *s = visible("t2");
    ck_assert_int_eq(s->updated_at_ms, T0 + 60 * MIN);
    run_at(T0 + 60 * MIN + TTL);
    absent("t2");
}
END_TEST

START_TEST(rule5_events_older_than_ttl_bring_nothing_back)
{
    int64_t now = T0 + 30 * DAY;
    fx_create(&w.ev, "c1", "t1", "image_analysis", "s1", 0);
    fx_create(&w.ev, "c2", "t2", "scenario_generation", "s1", 0);
    fx_terminal(&w.ev, "x2", "task.completed", "t2", "scenario_generation", 2 * 1440);
    run_at(now);
    absent("t1");
    absent("t2");
}
END_TEST

START_TEST(rule5_status_time_before_create_does_not_extend)
{
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 100);
    fx_terminal(&w.ev, "x1", "task.completed", "t1", "scenario_generation", 50);
    run();
    ck_assert_int_eq(visible("t1")->updated_at_ms, T0 + 100 * MIN);
}
END_TEST

START_TEST(rule6_delete_requested_removes)
{
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_delete(&w.ev, "d1", "t1", 20);
    fx_delete(&w.ev, "d2", "t2", 5); /* before its create */
    fx_create(&w.ev, "c2", "t2", "image_analysis", "s1", 10);
    run();
    ck_assert_uint_eq(w.result.count, 0);
}
END_TEST

START_TEST(rule7_duplicates_change_nothing)
{
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_terminal(&w.ev, "x1", "task.failed", "t1", "scenario_generation", 20);
    fx_create(&w.ev, "c2", "t2", "image_analysis", "s2", 10);
    run();
    ck_assert_uint_eq(w.result.count, 2);
    ck_assert_int_eq(visible("t1")->status, SD_STATUS_FAILED);
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_terminal(&w.ev, "x1", "task.failed", "t1", "scenario_generation", 20);
    fx_create(&w.ev, "c2", "t2", "image_analysis", "s2", 10);
    fx_create(&w.ev, "c2", "t2", "image_analysis", "s2", 10);
    run();
    ck_assert_uint_eq(w.result.count, 2);
    ck_assert_int_eq(visible("t1")->status, SD_STATUS_FAILED);
    ck_assert_str_eq(visible("t2")->user_id, "u-c2");
}
END_TEST

START_TEST(rule7_earliest_create_defines_the_session)
{
    fx_create(&w.ev, "c-late", "t1", "image_analysis", "s-late", 20);
    fx_create(&w.ev, "c-early", "t1", "image_analysis", "s-early", 10);
    fx_create(&w.ev, "c-b", "t2", "image_analysis", "s-b", 10);
    fx_create(&w.ev, "c-a", "t2", "image_analysis", "s-a", 10); /* tie: smaller id */
    run();
    const sd_session_t *s = visible("t1");
    ck_assert_str_eq(s->short_id, "s-early");
    ck_assert_str_eq(s->user_id, "u-c-early");
    ck_assert_int_eq(s->created_at_ms, T0 + 10 * MIN);
    ck_assert_str_eq(visible("t2")->short_id, "s-a");
}
END_TEST

START_TEST(rule7_ignored_create_does_not_define)
{
    /* An ignored create (no short_id) is not a create at all. */
    fx_create(&w.ev, "c1", "t1", "image_analysis", NULL, 10);
    fx_create(&w.ev, "c2", "t1", "image_analysis", "s1", 20);
    run();
    ck_assert_str_eq(visible("t1")->short_id, "s1");
}
END_TEST

START_TEST(order_does_not_matter)
{
    /* Seed 20261121: 200 shuffles of a mixed set all give the same sessions. */
    fx_create(&w.ev, "c1", "t1", "scenario_generation", "s1", 10);
    fx_terminal(&w.ev, "x1", "task.failed", "t1", "scenario_generation", 20);
    fx_create(&w.ev, "c2", "t2", "scenario_generation", "s1", 40);
    fx_save(&w.ev, "v1", "s1", 30);
    fx_create(&w.ev, "c3", "t3", "video_generation", "s1", 10);
    fx_terminal(&w.ev, "x3", "task.completed", "t3", "video_generation", 15);
    fx_create(&w.ev, "c4", "t4", "content_analysis", "s4", 12);
    fx_create(&w.ev, "c4b", "t4", "content_analysis", "s4b", 11);
    fx_delete(&w.ev, "d5", "t5", 1);
    fx_create(&w.ev, "c5", "t5", "data_extraction", "s5", 2);
    run();
    ck_assert_uint_eq(w.result.count, 2);
    ck_assert_str_eq(visible("t4")->short_id, "s4b");
    visible("t2");

    unsigned seed = 20261121;
    srand(seed);
    for (int round = 0; round < 200; round++) {
        for (size_t i = w.ev.count - 1; i > 0; i--) {
            size_t j = (size_t)rand() % (i + 1);
            sd_event_t tmp = w.ev.items[i];
            w.ev.items[i] = w.ev.items[j];
            w.ev.items[j] = tmp;
        }
        run();
        ck_assert_msg(w.result.count == 2, "seed %u round %d", seed, round);
        ck_assert_str_eq(visible("t4")->short_id, "s4b");
        ck_assert_int_eq(visible("t2")->status, SD_STATUS_ACTIVE);
    }
}
END_TEST

/* sd_model_matches: the one comparison of a store's sessions with the
 * model's, used by the store suites and the demo's verdict. */
START_TEST(matches_compares_every_field)
{
    fx_create(&w.ev, "e1", "t1", "image_analysis", "s1", 10);
    fx_create(&w.ev, "e2", "t2", "image_analysis", "s2", 20);
    run();
    ck_assert_uint_eq(w.result.count, 2);
    sd_session_t got[2] = {w.result.sessions[0], w.result.sessions[1]};
    char why[1024] = "";
    ck_assert(sd_model_matches(got, 2, &w.result, why, sizeof why));

    got[1].metadata_json = "{\"b\": 2, \"a\": 1}"; /* the same JSON value, keys reordered */
    w.result.sessions[1].metadata_json = "{\"a\":1,\"b\":2}";
    ck_assert_msg(sd_model_matches(got, 2, &w.result, why, sizeof why), "%s", why);
    got[1].metadata_json = "{\"a\":1,\"b\":3}";
    ck_assert(!sd_model_matches(got, 2, &w.result, why, sizeof why));
    ck_assert_msg(strstr(why, "session t2 differs") && strstr(why, "\"b\":3"), "%s", why);

    got[1] = w.result.sessions[1];
    got[1].updated_at_ms++;
    ck_assert(!sd_model_matches(got, 2, &w.result, why, sizeof why));
    ck_assert_msg(strstr(why, "session t2 differs"), "%s", why);

    got[1] = w.result.sessions[1];
    got[1].user_id = NULL; /* a field the store lost is said, not passed to %s */
    ck_assert(!sd_model_matches(got, 2, &w.result, why, sizeof why));
    ck_assert_msg(strstr(why, "got short_id=s2 type=image_analysis user=null"), "%s", why);

    ck_assert(!sd_model_matches(got, 1, &w.result, why, sizeof why));
    ck_assert_msg(strstr(why, "the model has t2 visible"), "%s", why);
    sd_session_t extra[3] = {w.result.sessions[0], w.result.sessions[1], w.result.sessions[1]};
    extra[2].task_id = "t3";
    ck_assert(!sd_model_matches(extra, 3, &w.result, why, sizeof why));
    ck_assert_msg(strstr(why, "t3 is visible but the model has no such session"), "%s", why);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rule1_create_makes_an_active_session);
    tcase_add_test(tc, rule1_scraping_and_no_short_id_are_ignored);
    tcase_add_test(tc, rule2_terminals_remove_other_types);
    tcase_add_test(tc, rule2_scenario_generation_keeps_session_with_latest_status);
    tcase_add_test(tc, rule2_status_tie_broken_by_event_id);
    tcase_add_test(tc, rule3_save_removes_covered_scenario_sessions_only);
    tcase_add_test(tc, rule3_regeneration_stays_until_the_next_save);
    tcase_add_test(tc, rule3_latest_save_counts_even_if_seen_first);
    tcase_add_test(tc, rule4_terminal_before_create_wins);
    tcase_add_test(tc, rule4_scenario_status_before_create_applies);
    tcase_add_test(tc, rule4_save_before_create_wins);
    tcase_add_test(tc, rule5_session_expires_ttl_after_its_last_change);
    tcase_add_test(tc, rule5_events_older_than_ttl_bring_nothing_back);
    tcase_add_test(tc, rule5_status_time_before_create_does_not_extend);
    tcase_add_test(tc, rule6_delete_requested_removes);
    tcase_add_test(tc, rule7_duplicates_change_nothing);
    tcase_add_test(tc, rule7_earliest_create_defines_the_session);
    tcase_add_test(tc, rule7_ignored_create_does_not_define);
    tcase_add_test(tc, order_does_not_matter);
    tcase_add_test(tc, matches_compares_every_field);
    suite_add_tcase(s, tc);
    return fx_run(s);
}
