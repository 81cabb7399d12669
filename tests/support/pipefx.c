#define _POSIX_C_SOURCE 200809L
#include "pipefx.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/producer.h"


void pfx_prepare(sd_pipeline_thread_t *r, fx_kafka_t *kafka, sd_store_t *store,
                 const char *group)
{
    memset(r, 0, sizeof *r);
    r->now = PFX_NOW;
    r->store = store;
    r->cfg = (sd_pipeline_config_t){
        .kafka = fx_kafka_settings(kafka),
        .group = fx_kafka_name(kafka, group), .inputs = kafka->inputs, .n_inputs = 1,
        .output_topic = kafka->output, .dlq_topic = kafka->dlq,
        .delivery = SD_DELIVERY_AT_LEAST_ONCE, .batch_max = 200, .batch_ms = 20,
        .backoff_max_ms = 1000,
    };
}

void pfx_exactly_once(sd_pipeline_thread_t *r, fx_kafka_t *kafka, const char *txid)
{
    r->cfg.delivery = SD_DELIVERY_EXACTLY_ONCE;
    r->cfg.transactional_id = fx_kafka_name(kafka, txid);
}

void pfx_go(sd_pipeline_thread_t *r)
{
    sd_error_t err;
    ck_assert_msg(sd_pipeline_thread_start(r, &err) == SD_OK, "%s", err.message);
}

void pfx_start(sd_pipeline_thread_t *r, fx_kafka_t *kafka, sd_store_t *store, const char *group)
{
    pfx_prepare(r, kafka, store, group);
    pfx_go(r);
}

/* Waits until the pipeline has consumed `events` and gone quiet. */
void pfx_wait_consumed(sd_pipeline_thread_t *r, long events)
{
    for (int i = 0; i < 600; i++) { /* 60 s */
        if (atomic_load(&r->stats.events) >= events && atomic_load(&r->stats.paused) == 0) {
            long batches = atomic_load(&r->stats.batches);
            sd_sleep_ms(300);
            if (atomic_load(&r->stats.batches) == batches)
                return;
        }
        sd_sleep_ms(100);
    }
    ck_abort_msg("the pipeline consumed %ld of %ld events in 60 s",
                 atomic_load(&r->stats.events), events);
}

void pfx_finish(sd_pipeline_thread_t *r)
{
    sd_error_t err;
    ck_assert_msg(sd_pipeline_thread_stop(r, &err) == SD_OK, "pipeline: %s", err.message);
}


void pfx_seen_free(seen_t *s)
{
    for (size_t i = 0; i < s->count; i++) {
        free(s->values[i]);
        free(s->headers[i]);
    }
    free(s->values);
    free(s->headers);
    memset(s, 0, sizeof *s);
}

void pfx_read_topic(const fx_kafka_t *kafka, const char *topic, seen_t *out)
{
    /* The mock cluster has no transaction isolation (SPEC §5) and can
     * leave a read_committed reader behind an aborted transaction. */
    pfx_read_topic_as(kafka, topic, kafka->real ? "read_committed" : "read_uncommitted", out);
}

void pfx_read_topic_as(const fx_kafka_t *kafka, const char *topic, const char *isolation,
                       seen_t *out)
{
    sd_kafka_settings_t ks = fx_kafka_settings(kafka);
    const int n_partitions = kafka->partitions;
    const char *role[] = {"group.id", "pipeline-test-reader", "enable.partition.eof", "true",
                          "isolation.level", isolation, NULL};
    rd_kafka_conf_t *conf;
    sd_error_t err;
    ck_assert_int_eq(sd_kafka_conf(&ks, SD_KAFKA_CONSUMER, role, &conf, &err), SD_OK);
    char why[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    ck_assert_ptr_nonnull(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n_partitions);
    for (int p = 0; p < n_partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    memset(out, 0, sizeof *out);
    int eof = 0;
    size_t cap = 0;
    for (int idle = 0; eof < n_partitions && idle < 200;) {
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

size_t pfx_expect_repeats(const seen_t *seen, int exactly_once, const char *context)
{
    size_t repeated = 0;
    for (size_t i = 0; i < seen->count; i++) {
        const char *id = strstr(seen->values[i], "\"change_id\":\"");
        ck_assert_msg(id != NULL, "%s: not a change: %s", context, seen->values[i]);
        for (size_t k = i + 1; k < seen->count; k++)
            if (strncmp(strstr(seen->values[k], "\"change_id\":\""), id, 47) == 0) {
                ck_assert_msg(!exactly_once, "%s: read_committed saw a change twice:\n%s",
                              context, seen->values[i]);
                ck_assert_msg(strcmp(seen->values[k], seen->values[i]) == 0,
                              "%s: two changes with one change_id differ:\n%s\n%s", context,
                              seen->values[i], seen->values[k]);
                repeated++;
            }
    }
    return repeated;
}

void pfx_parse_changes(const seen_t *seen, sd_change_list_t *changes)
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


void pfx_generate(uint64_t seed, size_t tasks, published_t *out)
{
    memset(out, 0, sizeof *out);
    sd_workload_params_t p = {.seed = seed, .tasks = tasks, .now_ms = PFX_NOW, .ttl_ms = PFX_TTL,
                              .invalid_percent = 3, .id_prefix = ""};
    sd_error_t err;
    ck_assert_int_eq(sd_workload_generate(&p, &out->workload, &err), SD_OK);
}

void pfx_send(fx_kafka_t *kafka, published_t *pub, size_t from, size_t to)
{
    sd_kafka_settings_t ks = fx_kafka_settings(kafka);
    sd_producer_t *producer;
    sd_error_t err;
    ck_assert_msg(sd_producer_new(&ks, NULL, &producer, &err) == SD_OK, "%s", err.message);
    for (size_t i = from; i < to && i < pub->workload.count; i++) {
        const sd_workload_line_t *line = &pub->workload.lines[i];
        /* every tenth event twice, as a producer retrying without
         * idempotence would send it */
        for (int copy = 0; copy <= (i % 10 == 0); copy++)
            ck_assert_int_eq(sd_producer_send(producer, kafka->input, line->key, line->json,
                                              strlen(line->json), NULL, 0, &err), SD_OK);
        pub->sent += 1 + (i % 10 == 0);
        pub->lines++;
        if (line->valid)
            fx_events_add_json(&pub->valid, line->json);
        else
            pub->invalid += 1 + (i % 10 == 0);
    }
    ck_assert_msg(sd_producer_flush(producer, 30000, &err) == SD_OK, "%s", err.message);
    sd_producer_destroy(producer);
}

void pfx_published_free(published_t *p)
{
    sd_workload_free(&p->workload);
    fx_events_free(&p->valid);
}

uint64_t pfx_seed(uint64_t dflt)
{
    const char *s = getenv("SESSIOND_TEST_SEED");
    return s ? strtoull(s, NULL, 10) : dflt;
}


void pfx_wait_committed(fx_kafka_t *kafka, const char *group)
{
    ck_assert_msg(pfx_committed_within(kafka, group, 60000),
                  "group %s did not commit every event within 60 s", fx_kafka_name(kafka, group));
}

int pfx_committed_within(fx_kafka_t *kafka, const char *group, long ms)
{
    sd_kafka_settings_t ks = fx_kafka_settings(kafka);
    const int n_partitions = kafka->partitions;
    group = fx_kafka_name(kafka, group);
    const char *role[] = {"group.id", group, NULL};
    rd_kafka_conf_t *conf;
    sd_error_t err;
    ck_assert_int_eq(sd_kafka_conf(&ks, SD_KAFKA_CONSUMER, role, &conf, &err), SD_OK);
    char why[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why); /* never joins */
    ck_assert_ptr_nonnull(rk);
    int done = 0;
    for (int64_t deadline = sd_monotonic_ms() + ms; !done && sd_monotonic_ms() < deadline;) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n_partitions);
        for (int p = 0; p < n_partitions; p++)
            rd_kafka_topic_partition_list_add(parts, kafka->input, p);
        done = rd_kafka_committed(rk, parts, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int p = 0; done && p < n_partitions; p++) {
            int64_t low, high;
            done = rd_kafka_query_watermark_offsets(rk, kafka->input, p, &low, &high, 5000) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR &&
                   parts->elems[p].offset >= high;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (!done)
            sd_sleep_ms(200);
    }
    rd_kafka_destroy(rk);
    return done;
}

int pfx_suite_main(int argc, char **argv, const char *program, const char *tcase_name,
                   int timeout_s, void (*add_tests)(TCase *tc))
{
    if (fx_kafka_kind_set(argc > 2 ? argv[2] : "mock") != 0) {
        fprintf(stderr, "usage: %s sqlite|mongodb [mock|kafka]\n", program);
        return 2;
    }
    return fx_store_suite_main(argc > 2 ? 2 : argc, argv, program, tcase_name, timeout_s,
                               add_tests);
}
