/* sessiond bench --brokers: the run on a real cluster, in topics of its own
 * (made for the run, deleted after it unless --keep), and the read limit:
 * what a plain consumer with sessiond's settings reads the input at. */
#define _GNU_SOURCE
#include "bench.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/kafka_admin.h"
#include "sessiond/producer.h"

void bench_target_name(bench_target_t *t, int real)
{
    t->real = real;
    if (!real) {
        snprintf(t->input, sizeof t->input, "task-events");
        snprintf(t->output[0], sizeof t->output[0], "session-changes");
        snprintf(t->dlq, sizeof t->dlq, "task-events.dlq");
        return;
    }
    /* the pid and the clock: runs of several machines or one after another
     * never meet in a topic */
    char run[48];
    snprintf(run, sizeof run, "sdbench-%ld-%lld", (long)getpid(),
             (long long)(sd_monotonic_ms() % 1000000));
    snprintf(t->input, sizeof t->input, "%s.task-events", run);
    snprintf(t->output[0], sizeof t->output[0], "%s.changes-alo", run);
    snprintf(t->output[1], sizeof t->output[1], "%s.changes-eos", run);
    snprintf(t->dlq, sizeof t->dlq, "%s.task-events.dlq", run);
    for (int eos = 0; eos < 2; eos++) {
        snprintf(t->latency_input[eos], sizeof t->latency_input[eos], "%s.latency-events-%s",
                 run, eos ? "eos" : "alo");
        snprintf(t->latency_output[eos], sizeof t->latency_output[eos], "%s.latency-changes-%s",
                 run, eos ? "eos" : "alo");
    }
    snprintf(t->group, sizeof t->group, "%s", run);
}

sd_err_t bench_publish(const bench_target_t *t, chunks_t c, size_t events, sd_error_t *err)
{
    sd_producer_t *producer = NULL;
    sd_workload_t w = {0};
    size_t sent = 0;
    sd_err_t rc = sd_producer_new(&t->kafka, NULL, &producer, err);
    if (rc != SD_OK)
        goto done;
    while (sent < events) {
        if ((rc = bench_next_chunk(&c, &w, err)) != SD_OK)
            goto done;
        for (size_t i = 0; i < w.count && sent < events; i++, sent++) {
            const sd_workload_line_t *l = &w.lines[i];
            if ((rc = sd_producer_send_to(producer, t->input,
                                          bench_partition_of(l->key, c.partitions), l->key,
                                          l->json, strlen(l->json), NULL, 0, err)) != SD_OK)
                goto done;
        }
        sd_workload_free(&w);
    }
    rc = sd_producer_flush(producer, 120000, err);
done:
    sd_workload_free(&w);
    sd_producer_destroy(producer);
    return rc;
}

#define RUN_TOPICS 8

/* The run's topics, by name. */
static size_t topic_list(const bench_target_t *t, const char *names[RUN_TOPICS])
{
    names[0] = t->input;
    names[1] = t->output[0];
    names[2] = t->output[1];
    names[3] = t->dlq;
    names[4] = t->latency_input[0];
    names[5] = t->latency_input[1];
    names[6] = t->latency_output[0];
    names[7] = t->latency_output[1];
    return RUN_TOPICS;
}

sd_err_t bench_kafka_prepare(const bench_target_t *t, chunks_t c, size_t events, sd_error_t *err)
{
    rd_kafka_t *admin = NULL;
    const char *names[RUN_TOPICS];
    size_t n = topic_list(t, names);
    sd_err_t rc;
    if ((rc = sd_kafka_admin_open(&t->kafka, &admin, err)) != SD_OK)
        goto done;
    if ((rc = sd_kafka_create_topics(admin, names, n, c.partitions, err)) != SD_OK)
        goto done;
    rc = bench_publish(t, c, events, err);
done:
    if (admin)
        rd_kafka_destroy(admin);
    return rc;
}

void bench_kafka_cleanup(const bench_target_t *t)
{
    rd_kafka_t *admin = NULL;
    const char *names[RUN_TOPICS];
    size_t n = topic_list(t, names);
    sd_error_t err;
    if (sd_kafka_admin_open(&t->kafka, &admin, &err) != SD_OK ||
        sd_kafka_delete_topics(admin, names, n, &err) != SD_OK)
        fprintf(stderr, "sessiond bench: the run's topics %s… stay: %s\n", t->input,
                err.message);
    if (admin)
        rd_kafka_destroy(admin);
}

sd_err_t bench_consumer(const bench_target_t *t, const char *group_suffix,
                        const char *const *extra, rd_kafka_t **out, sd_error_t *err)
{
    char group[160];
    snprintf(group, sizeof group, "%s-%s", t->group, group_suffix);
    const char *role[16] = {"group.id", group, "enable.auto.commit", "false"};
    for (size_t i = 0; extra && extra[i]; i++) {
        assert(4 + i < sizeof role / sizeof role[0] - 1);
        role[4 + i] = extra[i];
    }
    rd_kafka_conf_t *conf;
    sd_err_t rc = sd_kafka_conf(&t->kafka, SD_KAFKA_CONSUMER, role, &conf, err);
    if (rc != SD_OK)
        return rc;
    if ((rc = sd_kafka_new(SD_KAFKA_CONSUMER, conf, "brokers", "a Kafka consumer", out, err)) !=
        SD_OK)
        return rc;
    rd_kafka_poll_set_consumer(*out);
    return SD_OK;
}

sd_err_t bench_assign(rd_kafka_t *rk, const char *topic, int32_t partitions, int64_t offset,
                      sd_error_t *err)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int32_t p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = offset;
    rd_kafka_resp_err_t kerr = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (kerr)
        return sd_error_set(err, SD_ERR_FATAL, "brokers", "cannot read %s: %s", topic,
                            rd_kafka_err2str(kerr));
    return SD_OK;
}

sd_err_t bench_read_limit(const bench_target_t *t, int32_t partitions, size_t events,
                          double *eps, sd_error_t *err)
{
    rd_kafka_t *rk;
    *eps = 0;
    sd_err_t rc = bench_consumer(t, "read", NULL, &rk, err);
    if (rc != SD_OK)
        return rc;
    /* sessiond's own consumer settings, its partitions assigned, timed
     * from the assignment: its first fetch brings a megabyte a partition
     * at once, and a clock started at the first message would not count
     * reading those */
    double start = bench_now_s(), last = start;
    size_t got = 0;
    if ((rc = bench_assign(rk, t->input, partitions, RD_KAFKA_OFFSET_BEGINNING, err)) != SD_OK)
        goto done;
    while (got < events) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m && !m->err) {
            last = bench_now_s();
            got++;
        } else if (!m && bench_now_s() - last > 60) {
            rc = sd_error_set(err, SD_ERR_FATAL, "brokers",
                              "the read limit got %zu of %zu events, then nothing for 60 s", got,
                              events);
            goto done;
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    *eps = last > start ? (double)got / (last - start) : 0;
done:
    rd_kafka_destroy(rk);
    return rc;
}
