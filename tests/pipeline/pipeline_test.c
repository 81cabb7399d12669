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

#include "model.h"
#include "pipefx.h"
#include "sessiond/fetch_wake.h"

START_TEST(every_event_through_real_topics)
{
    uint64_t seed = pfx_seed(20261121);
    fx_kafka_t *kafka = fx_kafka_start(4);
    published_t pub;
    pfx_publish(kafka, seed, 150, &pub);
    sd_store_t *store = fx_store_open("e2e", PFX_TTL);
    run_t r;
    pfx_start(&r, kafka, store, "sessiond");
    pfx_wait_consumed(&r, (long)pub.sent);
    pfx_finish(&r);

    char ctx[96];
    snprintf(ctx, sizeof ctx, "seed %llu", (unsigned long long)seed);
    fx_expect_model(store, &pub.valid, PFX_NOW, PFX_TTL, ctx);
    seen_t out, dlq;
    pfx_read_topic(kafka, kafka->output, &out);
    pfx_read_topic(kafka, kafka->dlq, &dlq);
    sd_change_list_t changes = {0};
    pfx_parse_changes(&out, &changes);
    fx_expect_fold(&changes, &pub.valid, PFX_NOW, PFX_TTL, ctx);
    ck_assert_uint_gt(changes.count, 50);

    /* Every invalid event is on the dead-letter topic, with its headers. */
    ck_assert_uint_eq(dlq.count, pub.invalid);
    char source[160];
    snprintf(source, sizeof source, "source_topic=%s;", kafka->input);
    for (size_t i = 0; i < dlq.count; i++)
        ck_assert_msg(strstr(dlq.headers[i], "error=") && strstr(dlq.headers[i], source) &&
                          strstr(dlq.headers[i], "source_partition=") &&
                          strstr(dlq.headers[i], "source_offset="),
                      "dead letter headers: %s", dlq.headers[i]);
    ck_assert_int_eq(atomic_load(&r.stats.dead_lettered), (long)pub.invalid);

    sd_change_list_free(&changes);
    pfx_seen_free(&out);
    pfx_seen_free(&dlq);
    sd_store_close(store);
    pfx_published_free(&pub);
    fx_kafka_stop(kafka);
}
END_TEST

START_TEST(redelivered_input_republishes_exact_copies)
{
    /* A second group reads the whole topic again, as after a crash before
     * any commit: every change it publishes is an exact copy of one already
     * out, and only of a session's latest. */
    uint64_t seed = pfx_seed(20261122);
    fx_kafka_t *kafka = fx_kafka_start(4);
    published_t pub;
    pfx_publish(kafka, seed, 80, &pub);
    sd_store_t *store = fx_store_open("redeliver", PFX_TTL);
    run_t r;
    pfx_start(&r, kafka, store, "first");
    pfx_wait_consumed(&r, (long)pub.sent);
    pfx_finish(&r);
    seen_t first;
    pfx_read_topic(kafka, kafka->output, &first);

    pfx_start(&r, kafka, store, "second");
    pfx_wait_consumed(&r, (long)pub.sent);
    pfx_finish(&r);
    seen_t all;
    pfx_read_topic(kafka, kafka->output, &all);
    ck_assert_uint_gt(all.count, first.count);

    sd_change_list_t first_changes = {0}, all_changes = {0};
    pfx_parse_changes(&first, &first_changes);
    pfx_parse_changes(&all, &all_changes);
    for (size_t i = 0; i < all.count; i++) {
        int copy = 0;
        for (size_t k = 0; k < first.count && !copy; k++)
            copy = strcmp(all.values[i], first.values[k]) == 0;
        ck_assert_msg(copy, "seed %llu: not a copy of a change already out: %s",
                      (unsigned long long)seed, all.values[i]);
    }
    char ctx[96];
    snprintf(ctx, sizeof ctx, "seed %llu, redelivered", (unsigned long long)seed);
    fx_expect_fold(&all_changes, &pub.valid, PFX_NOW, PFX_TTL, ctx);

    sd_change_list_free(&first_changes);
    sd_change_list_free(&all_changes);
    pfx_seen_free(&first);
    pfx_seen_free(&all);
    sd_store_close(store);
    pfx_published_free(&pub);
    fx_kafka_stop(kafka);
}
END_TEST

START_TEST(input_topics_by_pattern)
{
    uint64_t seed = pfx_seed(20261123);
    fx_kafka_t *kafka = fx_kafka_start(4);
    published_t pub;
    pfx_publish(kafka, seed, 30, &pub);
    sd_store_t *store = fx_store_open("regex", PFX_TTL);
    const char *pattern[] = {fx_kafka_pattern(kafka, "task-ev[a-z]+$")}; /* not the .dlq */
    run_t r;
    pfx_prepare(&r, kafka, store, "sessiond");
    r.cfg.inputs = pattern;
    pfx_go(&r);
    pfx_wait_consumed(&r, (long)pub.sent);
    pfx_finish(&r);
    ck_assert_int_eq(atomic_load(&r.stats.events), (long)pub.sent);
    fx_expect_model(store, &pub.valid, PFX_NOW, PFX_TTL, "pattern subscription");
    sd_store_close(store);
    pfx_published_free(&pub);
    fx_kafka_stop(kafka);
}
END_TEST

/* Sessions whose TTL passed go out as session.expired, published by the
 * sweeper with the clock the pipeline was given, in both delivery modes;
 * each once, since every sweep's expiries are acknowledged. */
START_TEST(the_sweeper_publishes_expiries)
{
    int eos = _i;
    uint64_t seed = pfx_seed(20261124);
    fx_kafka_t *kafka = fx_kafka_start(4);
    published_t pub;
    pfx_publish(kafka, seed, 60, &pub);
    sd_model_result_t live;
    ck_assert_int_eq(sd_model_visible(pub.valid.items, pub.valid.count, PFX_NOW, PFX_TTL, &live),
                     0);
    ck_assert_uint_gt(live.count, 5);
    sd_store_t *store = fx_store_open(eos ? "sweep-eos" : "sweep", PFX_TTL);
    run_t r;
    pfx_prepare(&r, kafka, store, "sessiond");
    r.cfg.sweep_interval_ms = 50;
    if (eos)
        pfx_exactly_once(&r, kafka, "sweeper-test");
    pfx_go(&r);
    pfx_wait_consumed(&r, (long)pub.sent);
    long expired_early = atomic_load(&r.stats.expired);
    int64_t later = PFX_NOW + 2 * PFX_TTL;
    atomic_store(&r.now, later);
    for (int i = 0; i < 600 && atomic_load(&r.stats.expired) < expired_early + (long)live.count;
         i++)
        sd_sleep_ms(100);
    pfx_finish(&r);

    char ctx[96];
    snprintf(ctx, sizeof ctx, "seed %llu, %s", (unsigned long long)seed,
             eos ? "exactly-once" : "at-least-once");
    ck_assert_msg(atomic_load(&r.stats.expired) == expired_early + (long)live.count,
                  "%s: %ld expiries published, %zu sessions were live", ctx,
                  atomic_load(&r.stats.expired) - expired_early, live.count);
    fx_expect_model(store, &pub.valid, later, PFX_TTL, ctx);
    seen_t out;
    pfx_read_topic(kafka, kafka->output, &out);
    sd_change_list_t changes = {0};
    pfx_parse_changes(&out, &changes);
    fx_expect_fold(&changes, &pub.valid, later, PFX_TTL, ctx);
    for (size_t i = 0; i < live.count; i++) {
        size_t expiries = 0;
        for (size_t c = 0; c < changes.count; c++)
            if (changes.items[c].type == SD_CHANGE_EXPIRED &&
                strcmp(changes.items[c].session.task_id, live.sessions[i].task_id) == 0)
                expiries++;
        ck_assert_msg(expiries == 1, "%s: %s expired %zu times", ctx, live.sessions[i].task_id,
                      expiries);
    }
    if (eos)
        ck_assert_int_gt(atomic_load(&r.stats.transactions_committed), 0);

    sd_change_list_free(&changes);
    pfx_seen_free(&out);
    sd_model_result_free(&live);
    sd_store_close(store);
    pfx_published_free(&pub);
    fx_kafka_stop(kafka);
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
