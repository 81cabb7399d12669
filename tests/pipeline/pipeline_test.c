/* The pipeline end to end through real topics: the mock cluster hosted
 * here or Apache Kafka, a seeded workload published to it, the pipeline in
 * a thread, and what a consumer of the output topics sees checked against
 * the model.
 *
 *   pipeline_test sqlite|mongodb [mock|kafka]   (SESSIOND_TEST_SEED=N replays) */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/model.h"
#include "scenario.h"
#include "sessiond/fetch_wake.h"

START_TEST(every_event_through_real_topics)
{
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "every event", .seed = 20261121,
                                               .tasks = 150, .store = "e2e"});
    sd_pipeline_thread_t r;
    pfx_start(&r, s.kafka, s.store, "sessiond");
    pfx_wait_consumed(&r, (long)s.pub.sent);
    pfx_finish(&r);

    fx_scenario_expect(&s, PFX_NOW, 0);
    ck_assert_uint_gt(s.changes.count, 50);
    /* Every dead letter says where it came from and why. */
    char source[160];
    snprintf(source, sizeof source, "source_topic=%s;", s.kafka->input);
    for (size_t i = 0; i < s.dlq.count; i++)
        ck_assert_msg(strstr(s.dlq.headers[i], "error=") && strstr(s.dlq.headers[i], source) &&
                          strstr(s.dlq.headers[i], "source_partition=") &&
                          strstr(s.dlq.headers[i], "source_offset="),
                      "dead letter headers: %s", s.dlq.headers[i]);
    ck_assert_int_eq(atomic_load(&r.stats.dead_lettered), (long)s.pub.invalid);
    fx_scenario_end(&s);
}
END_TEST

START_TEST(redelivered_input_republishes_exact_copies)
{
    /* A second group reads the whole topic again, as after a crash before
     * any commit: every change it publishes is an exact copy of one already
     * out, and only of a session's latest. */
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "redelivered", .seed = 20261122,
                                               .tasks = 80, .store = "redeliver"});
    sd_pipeline_thread_t r;
    pfx_start(&r, s.kafka, s.store, "first");
    pfx_wait_consumed(&r, (long)s.pub.sent);
    pfx_finish(&r);
    seen_t first;
    pfx_read_topic(s.kafka, s.kafka->output, &first);

    pfx_start(&r, s.kafka, s.store, "second");
    pfx_wait_consumed(&r, (long)s.pub.sent);
    pfx_finish(&r);
    fx_scenario_expect(&s, PFX_NOW, 0);
    ck_assert_uint_gt(s.out.count, first.count);
    for (size_t i = 0; i < s.out.count; i++) {
        int copy = 0;
        for (size_t k = 0; k < first.count && !copy; k++)
            copy = strcmp(s.out.values[i], first.values[k]) == 0;
        ck_assert_msg(copy, "%s: not a copy of a change already out: %s", s.ctx,
                      s.out.values[i]);
    }
    pfx_seen_free(&first);
    fx_scenario_end(&s);
}
END_TEST

START_TEST(input_topics_by_pattern)
{
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "pattern subscription", .seed = 20261123,
                                               .tasks = 30, .store = "regex"});
    const char *pattern[] = {fx_kafka_pattern(s.kafka, "task-ev[a-z]+$")}; /* not the .dlq */
    sd_pipeline_thread_t r;
    pfx_prepare(&r, s.kafka, s.store, "sessiond");
    r.cfg.inputs = pattern;
    pfx_go(&r);
    pfx_wait_consumed(&r, (long)s.pub.sent);
    pfx_finish(&r);
    ck_assert_int_eq(atomic_load(&r.stats.events), (long)s.pub.sent);
    fx_scenario_expect(&s, PFX_NOW, 0);
    fx_scenario_end(&s);
}
END_TEST

/* Sessions whose TTL passed go out as session.expired, in both delivery
 * modes: the sweeper, with the clock the pipeline was given, publishes an
 * expiry event for each to the input topic, and the pipeline applies them
 * as any other event; each once, since a published event is marked. */
START_TEST(the_sweeper_publishes_expiries)
{
    int eos = _i;
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = eos ? "sweeper, exactly-once"
                                                           : "sweeper, at-least-once",
                                               .seed = 20261124, .tasks = 60,
                                               .store = eos ? "sweep-eos" : "sweep"});
    sd_model_result_t live;
    ck_assert_int_eq(
        sd_model_visible(s.pub.valid.items, s.pub.valid.count, PFX_NOW, PFX_TTL, &live), 0);
    ck_assert_uint_gt(live.count, 5);
    sd_pipeline_thread_t r;
    pfx_prepare(&r, s.kafka, s.store, "sessiond");
    r.cfg.sweep_interval_ms = 50;
    if (eos)
        pfx_exactly_once(&r, s.kafka, "sweeper-test");
    pfx_go(&r);
    pfx_wait_consumed(&r, (long)s.pub.sent);
    atomic_long *expired = &r.stats.changes_by_type[SD_CHANGE_EXPIRED];
    long expired_early = atomic_load(expired);
    ck_assert_int_eq(atomic_load(&r.stats.expiry_events), 0);
    int64_t later = PFX_NOW + 2 * PFX_TTL;
    atomic_store(&r.now, later);
    for (int i = 0; i < 600 && atomic_load(expired) < expired_early + (long)live.count; i++)
        sd_sleep_ms(100);
    pfx_finish(&r);

    ck_assert_msg(atomic_load(expired) == expired_early + (long)live.count,
                  "%s: %ld expiries applied, %zu sessions were live", s.ctx,
                  atomic_load(expired) - expired_early, live.count);
    ck_assert_int_eq(atomic_load(&r.stats.expiry_events), (long)live.count);
    fx_scenario_expect(&s, later, eos);
    for (size_t i = 0; i < live.count; i++) {
        size_t expiries = 0;
        for (size_t c = 0; c < s.changes.count; c++)
            if (s.changes.items[c].type == SD_CHANGE_EXPIRED &&
                strcmp(s.changes.items[c].session.task_id, live.sessions[i].task_id) == 0)
                expiries++;
        ck_assert_msg(expiries == 1, "%s: %s expired %zu times", s.ctx,
                      live.sessions[i].task_id, expiries);
    }
    if (eos)
        ck_assert_int_gt(atomic_load(&r.stats.transactions_committed), 0);
    sd_model_result_free(&live);
    fx_scenario_end(&s);
}
END_TEST

/* What librdkafka's latest statistics say of the brokers that lead the
 * assigned partitions: how many there are, how many partitions they lead
 * and how many of them were sent a ListOffsets request. */
typedef struct leaders_seen {
    int leaders, partitions, asked;
} leaders_seen_t;

static int on_leader_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    leaders_seen_t now = {0};
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *broker;
    const char *name;
    json_object_foreach(json_object_get(root, "brokers"), name, broker) {
        size_t led = json_object_size(json_object_get(broker, "toppars"));
        /* a partition whose leader is not known yet waits on the internal
         * broker (node id -1), which sends nothing */
        if (led == 0 || json_integer_value(json_object_get(broker, "nodeid")) < 0)
            continue;
        json_t *req = json_object_get(broker, "req");
        json_int_t asked = json_integer_value(json_object_get(req, "ListOffsets")) +
                           json_integer_value(json_object_get(req, "Offset")); /* older name */
        now.leaders++;
        now.partitions += (int)led;
        now.asked += asked > 0;
    }
    json_decref(root);
    *(leaders_seen_t *)opaque = now;
    return 0; /* librdkafka frees json */
}

/* Polls until the statistics show `partitions` partitions led and
 * `asked` leaders asked, or 30 s went by; returns the last snapshot. */
static leaders_seen_t poll_leaders(rd_kafka_t *rk, leaders_seen_t *seen, int partitions,
                                   int asked)
{
    for (int i = 0; i < 300 && !(seen->partitions == partitions && seen->asked >= asked); i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    return *seen;
}

START_TEST(waking_the_fetchers_asks_every_leader)
{
    /* sd_fetch_wake's promise: each broker that leads an assigned partition
     * gets a request, so each broker thread wakes (fetch_wake.h). */
    const int partitions = 6;
    fx_kafka_t *kafka = fx_kafka_start(partitions);
    /* The mock picks each partition's leader at random, which may leave a
     * broker leading nothing; spread them over its three brokers instead. */
    rd_kafka_mock_cluster_t *mock = fx_kafka_mock(kafka);
    for (int p = 0; mock && p < partitions; p++)
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mock, kafka->input, p, p % 3 + 1),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    sd_kafka_settings_t ks = fx_kafka_settings(kafka);
    const char *role[] = {"group.id", fx_kafka_name(kafka, "wake-test"),
                          "statistics.interval.ms", "100", NULL};
    rd_kafka_conf_t *conf;
    sd_error_t err;
    ck_assert_int_eq(sd_kafka_conf(&ks, SD_KAFKA_CONSUMER, role, &conf, &err), SD_OK);
    leaders_seen_t seen = {0};
    rd_kafka_conf_set_stats_cb(conf, on_leader_stats);
    rd_kafka_conf_set_opaque(conf, &seen);
    char why[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    ck_assert_msg(rk != NULL, "%s", why);
    rd_kafka_poll_set_consumer(rk);
    /* Absolute offsets: a logical one would be looked up with ListOffsets. */
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, kafka->input, p)->offset = 0;
    ck_assert_int_eq(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);

    leaders_seen_t before = poll_leaders(rk, &seen, partitions, 0);
    ck_assert_int_eq(before.partitions, partitions);
    ck_assert_int_eq(before.asked, 0);
    if (mock)
        ck_assert_int_eq(before.leaders, 3);
    else
        ck_assert_int_ge(before.leaders, 1);

    int woken = 0;
    ck_assert_int_eq(sd_fetch_wake(rk, 5000, &woken, &err), SD_OK);
    ck_assert_int_eq(woken, partitions);
    leaders_seen_t after = poll_leaders(rk, &seen, partitions, before.leaders);
    ck_assert_int_eq(after.partitions, partitions);
    ck_assert_int_eq(after.asked, after.leaders);

    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fx_kafka_stop(kafka);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, every_event_through_real_topics);
    tcase_add_test(tc, redelivered_input_republishes_exact_copies);
    tcase_add_test(tc, input_topics_by_pattern);
    tcase_add_loop_test(tc, the_sweeper_publishes_expiries, 0, 2);
    tcase_add_test(tc, waking_the_fetchers_asks_every_leader);
}

int main(int argc, char **argv)
{
    return pfx_suite_main(argc, argv, "pipeline_test", "pipeline", 300, add_tests);
}
