/* The pipeline end to end through real topics: librdkafka's mock cluster
 * hosted here, a seeded workload published to it, `sd_pipeline_run` in a
 * thread, and what a consumer of the output topics sees checked against
 * the reference model.
 *
 *   pipeline_test sqlite | mongodb      (SESSIOND_TEST_SEED=N replays) */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixtures.h"
#include "sessiond/pipeline.h"
#include "sessiond/producer.h"
#include "sessiond/workload.h"
#include "storefx.h"

#define NOW INT64_C(1772366400000) /* 2026-03-01T12:00:00Z */
#define TTL (INT64_C(7) * 24 * 3600 * 1000)

static int64_t fixed_clock(void *arg) { return *(const int64_t *)arg; }

typedef struct run {
    sd_pipeline_config_t cfg;
    sd_store_t *store;
    volatile sig_atomic_t stop;
    sd_pipeline_stats_t stats;
    sd_err_t rc;
    sd_error_t err;
    pthread_t thread;
    int64_t now;
} run_t;

static void *run_pipeline(void *arg)
{
    run_t *r = arg;
    r->rc = sd_pipeline_run(&r->cfg, r->store, &r->stop, &r->stats, &r->err);
    return NULL;
}

static const char *inputs[] = {"task-events"};

static void start(run_t *r, sd_embedded_t *kafka, sd_store_t *store, const char *group)
{
    memset(r, 0, sizeof *r);
    r->now = NOW;
    r->store = store;
    r->cfg = (sd_pipeline_config_t){
        .kafka = {sd_embedded_bootstraps(kafka), NULL, 0, 1},
        .group = group, .inputs = inputs, .n_inputs = 1,
        .output_topic = "session-changes", .dlq_topic = "task-events.dlq",
        .delivery = SD_DELIVERY_AT_LEAST_ONCE, .batch_max = 200, .batch_ms = 20,
        .backoff_max_ms = 1000, .now_ms = fixed_clock, .clock_arg = &r->now,
    };
    ck_assert_int_eq(pthread_create(&r->thread, NULL, run_pipeline, r), 0);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the pipeline has consumed `events` and gone quiet. */
static void wait_consumed(run_t *r, long events)
{
    for (int i = 0; i < 600; i++) { /* 60 s */
        if (atomic_load(&r->stats.events) >= events && atomic_load(&r->stats.paused) == 0) {
            long batches = atomic_load(&r->stats.batches);
            sleep_ms(300);
            if (atomic_load(&r->stats.batches) == batches)
                return;
        }
        sleep_ms(100);
    }
    ck_abort_msg("the pipeline consumed %ld of %ld events in 60 s",
                 atomic_load(&r->stats.events), events);
}

static void finish(run_t *r)
{
    r->stop = 1;
    pthread_join(r->thread, NULL);
    ck_assert_msg(r->rc == SD_OK, "pipeline: %s", r->err.message);
}

/* Every message of a topic, from the beginning to the end. */
typedef struct seen {
    char **values;
    char **headers; /* "name=value;…" */
    size_t count;
} seen_t;

static void seen_free(seen_t *s)
{
    for (size_t i = 0; i < s->count; i++) {
        free(s->values[i]);
        free(s->headers[i]);
    }
    free(s->values);
    free(s->headers);
    memset(s, 0, sizeof *s);
}

static void read_topic(sd_embedded_t *kafka, const char *topic, seen_t *out)
{
    sd_kafka_settings_t ks = {sd_embedded_bootstraps(kafka), NULL, 0, 1};
    const char *role[] = {"group.id", "pipeline-test-reader", "enable.partition.eof", "true",
                          "isolation.level", "read_committed", NULL};
    rd_kafka_conf_t *conf;
    sd_error_t err;
    ck_assert_int_eq(sd_kafka_conf(&ks, SD_KAFKA_CONSUMER, role, &conf, &err), SD_OK);
    char why[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    ck_assert_ptr_nonnull(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(4);
    for (int p = 0; p < 4; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    memset(out, 0, sizeof *out);
    int eof = 0;
    size_t cap = 0;
    for (int idle = 0; eof < 4 && idle < 200;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof++;
        } else if (!m->err) {
            if (out->count == cap) {
                cap = cap ? cap * 2 : 256;
                out->values = realloc(out->values, cap * sizeof *out->values);
                out->headers = realloc(out->headers, cap * sizeof *out->headers);
            }
            out->values[out->count] = strndup(m->payload, m->len);
            char hdrs[1024] = "";
            rd_kafka_headers_t *h;
            if (rd_kafka_message_headers(m, &h) == 0) {
                const char *name;
                const void *value;
                size_t len, used = 0;
                for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &value, &len) == 0; i++)
                    used += (size_t)snprintf(hdrs + used, sizeof hdrs - used, "%s=%.*s;", name,
                                             (int)len, (const char *)value);
            }
            out->headers[out->count++] = strdup(hdrs);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* The changes seen, parsed. */
static void parse_changes(const seen_t *seen, sd_change_list_t *changes)
{
    for (size_t i = 0; i < seen->count; i++) {
        sd_change_t c;
        char *storage;
        sd_error_t err;
        ck_assert_msg(sd_change_from_json(seen->values[i], strlen(seen->values[i]), &c, &storage,
                                          &err) == SD_OK, "%s: %s", seen->values[i], err.message);
        ck_assert_int_eq(sd_change_list_add(changes, &c), SD_OK);
        free(storage);
        ck_assert_msg(strstr(seen->headers[i], "change_type=") &&
                          strstr(seen->headers[i], "cause_event_id="),
                      "change without headers: %s", seen->headers[i]);
    }
}

typedef struct published {
    sd_workload_t workload;
    fx_events_t valid;
    size_t invalid;
} published_t;

static void publish(sd_embedded_t *kafka, uint64_t seed, size_t tasks, published_t *out)
{
    memset(out, 0, sizeof *out);
    sd_workload_params_t p = {.seed = seed, .tasks = tasks, .now_ms = NOW, .ttl_ms = TTL,
                              .invalid_percent = 3, .id_prefix = ""};
    sd_error_t err;
    ck_assert_int_eq(sd_workload_generate(&p, &out->workload, &err), SD_OK);
    sd_kafka_settings_t ks = {sd_embedded_bootstraps(kafka), NULL, 0, 1};
    sd_producer_t *producer;
    ck_assert_msg(sd_producer_new(&ks, NULL, &producer, &err) == SD_OK, "%s", err.message);
    for (size_t i = 0; i < out->workload.count; i++) {
        const sd_workload_line_t *line = &out->workload.lines[i];
        ck_assert_int_eq(sd_producer_send(producer, "task-events", line->key, line->json,
                                          strlen(line->json), NULL, 0, &err), SD_OK);
        if (line->valid)
            fx_events_add_json(&out->valid, line->json);
        else
            out->invalid++;
    }
    ck_assert_msg(sd_producer_flush(producer, 30000, &err) == SD_OK, "%s", err.message);
    sd_producer_destroy(producer);
}

static void published_free(published_t *p)
{
    sd_workload_free(&p->workload);
    fx_events_free(&p->valid);
}

static sd_embedded_t *start_kafka(void)
{
    sd_embedded_t *kafka;
    sd_error_t err;
    ck_assert_int_eq(sd_embedded_start(3, &kafka, &err), SD_OK);
    const char *topics[] = {"task-events", "session-changes", "task-events.dlq"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sd_embedded_create_topic(kafka, topics[i], 4, &err), SD_OK);
    return kafka;
}

static uint64_t test_seed(uint64_t dflt)
{
    const char *s = getenv("SESSIOND_TEST_SEED");
    return s ? strtoull(s, NULL, 10) : dflt;
}

START_TEST(every_event_through_real_topics)
{
    uint64_t seed = test_seed(20261121);
    sd_embedded_t *kafka = start_kafka();
    published_t pub;
    publish(kafka, seed, 150, &pub);
    sd_store_t *store = fx_store_open("e2e", TTL);
    run_t r;
    start(&r, kafka, store, "sessiond");
    wait_consumed(&r, (long)pub.workload.count);
    finish(&r);

    char ctx[96];
    snprintf(ctx, sizeof ctx, "seed %llu", (unsigned long long)seed);
    fx_expect_model(store, &pub.valid, NOW, TTL, ctx);
    seen_t out, dlq;
    read_topic(kafka, "session-changes", &out);
    read_topic(kafka, "task-events.dlq", &dlq);
    sd_change_list_t changes = {0};
    parse_changes(&out, &changes);
    fx_expect_fold(&changes, &pub.valid, NOW, TTL, ctx);
    ck_assert_uint_gt(changes.count, 50);

    /* Every invalid event is on the dead-letter topic, with its headers. */
    ck_assert_uint_eq(dlq.count, pub.invalid);
    for (size_t i = 0; i < dlq.count; i++)
        ck_assert_msg(strstr(dlq.headers[i], "error=") &&
                          strstr(dlq.headers[i], "source_topic=task-events;") &&
                          strstr(dlq.headers[i], "source_partition=") &&
                          strstr(dlq.headers[i], "source_offset="),
                      "dead letter headers: %s", dlq.headers[i]);
    ck_assert_int_eq(atomic_load(&r.stats.dead_lettered), (long)pub.invalid);

    sd_change_list_free(&changes);
    seen_free(&out);
    seen_free(&dlq);
    sd_store_close(store);
    published_free(&pub);
    sd_embedded_stop(kafka);
}
END_TEST

START_TEST(redelivered_input_republishes_exact_copies)
{
    /* A second group reads the whole topic again, as after a crash before
     * any commit: every change it publishes is an exact copy of one already
     * out, and only of a session's latest. */
    uint64_t seed = test_seed(20261122);
    sd_embedded_t *kafka = start_kafka();
    published_t pub;
    publish(kafka, seed, 80, &pub);
    sd_store_t *store = fx_store_open("redeliver", TTL);
    run_t r;
    start(&r, kafka, store, "first");
    wait_consumed(&r, (long)pub.workload.count);
    finish(&r);
    seen_t first;
    read_topic(kafka, "session-changes", &first);

    start(&r, kafka, store, "second");
    wait_consumed(&r, (long)pub.workload.count);
    finish(&r);
    seen_t all;
    read_topic(kafka, "session-changes", &all);
    ck_assert_uint_gt(all.count, first.count);

    sd_change_list_t first_changes = {0}, all_changes = {0};
    parse_changes(&first, &first_changes);
    parse_changes(&all, &all_changes);
    for (size_t i = 0; i < all.count; i++) {
        int copy = 0;
        for (size_t k = 0; k < first.count && !copy; k++)
            copy = strcmp(all.values[i], first.values[k]) == 0;
        ck_assert_msg(copy, "seed %llu: not a copy of a change already out: %s",
                      (unsigned long long)seed, all.values[i]);
    }
    char ctx[96];
    snprintf(ctx, sizeof ctx, "seed %llu, redelivered", (unsigned long long)seed);
    fx_expect_fold(&all_changes, &pub.valid, NOW, TTL, ctx);

    sd_change_list_free(&first_changes);
    sd_change_list_free(&all_changes);
    seen_free(&first);
    seen_free(&all);
    sd_store_close(store);
    published_free(&pub);
    sd_embedded_stop(kafka);
}
END_TEST

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "sqlite";
    if (strcmp(kind, "mongodb") == 0 && !getenv("SESSIOND_TEST_MONGO_URI")) {
        fprintf(stderr, "pipeline_test: SESSIOND_TEST_MONGO_URI is not set; skipping\n");
        return 77;
    }
    fx_store_kind_set(kind);
    Suite *s = suite_create(kind);
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, fx_store_cleanup);
    tcase_add_test(tc, every_event_through_real_topics);
    tcase_add_test(tc, redelivered_input_republishes_exact_copies);
    suite_add_tcase(s, tc);
    return fx_run(s);
}
