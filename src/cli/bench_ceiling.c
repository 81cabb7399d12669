/* sessiond bench: the store ceiling, the store alone applying exactly the
 * batches the pipeline applied (see cmd_bench.c for why those). */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "sessiond/rules.h"

/* The broker child still holds every event: each run of the pipeline's
 * batches is read back from its partition, offset by offset, into a spool
 * file, so that memory does not grow with the run. */
typedef struct reader {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    char *started; /* per partition: consuming */
    int32_t partitions;
} reader_t;

static void reader_close(reader_t *r)
{
    for (int32_t p = 0; r->started && p < r->partitions; p++)
        if (r->started[p])
            rd_kafka_consume_stop(r->topic, p);
    if (r->topic)
        rd_kafka_topic_destroy(r->topic);
    if (r->rk)
        rd_kafka_destroy(r->rk);
    free(r->started);
    *r = (reader_t){0};
}

static sd_err_t reader_open(const bench_target_t *t, int32_t partitions, reader_t *r,
                            sd_error_t *err)
{
    *r = (reader_t){.partitions = partitions};
    /* Every partition is read at once: a small prefetch each keeps the
     * whole at some tens of MiB even with hundreds of partitions. */
    static const char *const props[] = {"queued.max.messages.kbytes", "128",
                                        "queued.min.messages", "200",
                                        "fetch.message.max.bytes", "131072", NULL};
    rd_kafka_conf_t *conf;
    sd_err_t rc = sd_kafka_conf(&t->kafka, SD_KAFKA_CONSUMER, props, &conf, err);
    if (rc != SD_OK)
        return rc;
    if ((rc = sd_kafka_new(SD_KAFKA_CONSUMER, conf, "", "a consumer to read the broker back",
                           &r->rk, err)) != SD_OK)
        return rc;
    r->topic = rd_kafka_topic_new(r->rk, t->input, NULL);
    r->started = calloc((size_t)partitions, 1);
    if (!r->topic || !r->started) {
        reader_close(r);
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading the broker back");
    }
    return SD_OK;
}

/* Appends one message read back to the spool, as its length and payload,
 * if it is the one at offset want. */
static sd_err_t spool_message(const rd_kafka_message_t *m, int64_t want, FILE *spool,
                              sd_error_t *err)
{
    uint32_t len = (uint32_t)m->len;
    if (m->err)
        return sd_error_set(err, SD_ERR_FATAL, "", "reading partition %d back: %s",
                            (int)m->partition, rd_kafka_message_errstr(m));
    if (m->offset != want)
        return sd_error_set(err, SD_ERR_FATAL, "", "partition %d gave offset %lld where the "
                            "pipeline read %lld next", (int)m->partition, (long long)m->offset,
                            (long long)want);
    if (fwrite(&len, sizeof len, 1, spool) != 1 || fwrite(m->payload, 1, m->len, spool) != m->len)
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot write the bench's spool file: %s",
                            strerror(errno));
    return SD_OK;
}

/* Reads a run's events back from the broker and appends each to the
 * spool as its length and payload. */
static sd_err_t spool_run(reader_t *rd, const run_t *run, FILE *spool, sd_error_t *err)
{
    int32_t p = run->partition;
    if (p < 0 || p >= rd->partitions)
        return sd_error_set(err, SD_ERR_FATAL, "", "the pipeline read partition %d, which the "
                            "bench did not create", (int)p);
    if (!rd->started[p]) {
        if (rd_kafka_consume_start(rd->topic, p, run->offset) != 0)
            return sd_error_set(err, SD_ERR_FATAL, "", "cannot read partition %d back: %s",
                                (int)p, rd_kafka_err2str(rd_kafka_last_error()));
        rd->started[p] = 1;
    }
    if (fwrite(run, sizeof *run, 1, spool) != 1)
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot write the bench's spool file: %s",
                            strerror(errno));
    size_t bytes = 0;
    for (size_t k = 0; k < run->count; k++) {
        int64_t want = run->offset + (int64_t)k;
        rd_kafka_message_t *m = rd_kafka_consume(rd->topic, p, 30000);
        if (!m)
            return sd_error_set(err, SD_ERR_FATAL, "", "partition %d offset %lld did not come "
                                "back from the broker in 30 s", (int)p, (long long)want);
        sd_err_t rc = spool_message(m, want, spool, err);
        bytes += m->len;
        rd_kafka_message_destroy(m);
        if (rc != SD_OK)
            return rc;
    }
    if (bytes != run->bytes)
        return sd_error_set(err, SD_ERR_FATAL, "", "partition %d from offset %lld holds other "
                            "events than the pipeline read: the ceiling cannot rebuild its "
                            "batches", (int)p, (long long)run->offset);
    return SD_OK;
}

/* The pipeline's batches, in order, into an unlinked temporary file (each
 * run, then its events' lengths and payloads): the ceiling then reads them
 * with the broker's process gone, so that nothing else runs while it is
 * timed. */
sd_err_t bench_spool_batches(const bench_target_t *t, int32_t partitions, const observed_t *o,
                             FILE **out, sd_error_t *err)
{
    if (o->lost)
        return sd_error_set(err, SD_ERR_FATAL, "", "the pipeline's batches could not be "
                            "recorded (out of memory or disk)");
    FILE *spool = tmpfile();
    if (!spool)
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot create the bench's spool file: %s",
                            strerror(errno));
    reader_t rd = {0};
    run_t run;
    sd_err_t rc;
    if ((rc = reader_open(t, partitions, &rd, err)) != SD_OK)
        goto done;
    if (!o->runs_file || fflush(o->runs_file) != 0 || fseek(o->runs_file, 0, SEEK_SET) != 0) {
        rc = sd_error_set(err, SD_ERR_FATAL, "", "cannot read the pipeline's batches back");
        goto done;
    }
    while (fread(&run, sizeof run, 1, o->runs_file) == 1)
        if ((rc = spool_run(&rd, &run, spool, err)) != SD_OK)
            goto done;
    if (fflush(spool) != 0 || fseek(spool, 0, SEEK_SET) != 0) {
        rc = sd_error_set(err, SD_ERR_FATAL, "", "cannot write the bench's spool file: %s",
                          strerror(errno));
        goto done;
    }
    *out = spool;
done:
    reader_close(&rd);
    if (rc != SD_OK)
        fclose(spool);
    return rc;
}

/* Parses the spool's next run into evs/items from *n on (room for max). */
static sd_err_t rebuild_run(FILE *spool, char **buf, size_t *cap, sd_event_t *evs,
                            sd_store_item_t *items, size_t *n, size_t max, sd_error_t *err)
{
    run_t stored, *run = &stored;
    if (fread(run, sizeof *run, 1, spool) != 1 || run->count > max - *n)
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot read the bench's spool file back");
    for (size_t k = 0; k < run->count; k++) {
        uint32_t len;
        if (fread(&len, sizeof len, 1, spool) != 1 ||
            (len > *cap && bench_grow(buf, cap, len, 1)) || fread(*buf, 1, len, spool) != len)
            return sd_error_set(err, SD_ERR_FATAL, "", "cannot read the bench's spool file back");
        sd_err_t rc = sd_event_parse(*buf, len, &evs[*n], err);
        if (rc != SD_OK)
            return rc;
        items[*n] = (sd_store_item_t){sd_rules_intent(&evs[*n]), "task-events", run->partition,
                                      run->offset + (int64_t)k};
        (*n)++;
    }
    return SD_OK;
}

static double thread_cpu_s(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_THREAD, &u) != 0)
        return 0;
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* The store's rate over the tenth of the run that ends at each mark. */
static void growth_curve(const size_t *cum_events, const double *cum_s, size_t n_batches,
                         results_t *r)
{
    static const size_t tenths[] = {1, 5, 10};
    size_t total = n_batches ? cum_events[n_batches - 1] : 0;
    for (size_t m = 0; m < 3; m++) {
        size_t hi = total * tenths[m] / 10, lo = total * (tenths[m] - 1) / 10, b0 = 0, b1 = 0;
        while (b1 + 1 < n_batches && cum_events[b1] < hi)
            b1++;
        while (b0 < b1 && cum_events[b0] < lo)
            b0++;
        size_t ev = cum_events[b1] - (b0 ? cum_events[b0 - 1] : 0);
        double secs = cum_s[b1] - (b0 ? cum_s[b0 - 1] : 0);
        r->store_eps_at[m] = secs > 0 ? (double)ev / secs : 0;
    }
}

/* The spool as the ceiling reads it, and the time spent in the store. */
typedef struct ceiling_run {
    FILE *spool;
    char *buf;
    size_t cap;
    sd_store_t *store;
    int64_t now;
    double busy_s, cpu_s; /* in sd_store_apply() only */
} ceiling_run_t;

/* Reads the next batch (n events in runs runs) back from the spool and
 * applies it in one sd_store_apply(), timing only that; *parsed is the
 * number of events applied. */
static sd_err_t apply_spooled(ceiling_run_t *c, size_t n, size_t runs, size_t *parsed,
                              sd_error_t *err)
{
    sd_event_t *evs = calloc(n + 1, sizeof *evs);
    sd_store_item_t *items = calloc(n + 1, sizeof *items);
    sd_err_t rc = SD_OK;
    *parsed = 0;
    if (!evs || !items) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for a batch");
        goto done;
    }
    for (size_t k = 0; k < runs; k++)
        if ((rc = rebuild_run(c->spool, &c->buf, &c->cap, evs, items, parsed, n, err)) != SD_OK)
            goto done;
    sd_apply_result_t result;
    double t0 = bench_now_s(), c0 = thread_cpu_s();
    rc = sd_store_apply(c->store, items, *parsed, c->now, &result, err);
    c->cpu_s += thread_cpu_s() - c0;
    c->busy_s += bench_now_s() - t0;
    if (rc == SD_OK)
        sd_apply_result_free(&result);
done:
    for (size_t i = 0; i < *parsed; i++)
        sd_event_clear(&evs[i]);
    free(evs);
    free(items);
    return rc;
}

sd_err_t bench_measure_ceiling(FILE *spool, sd_store_t *store, const observed_t *o,
                               results_t *r, sd_error_t *err)
{
    ceiling_run_t c = {.spool = spool, .store = store, .now = r->now};
    size_t applied = 0, *cum_events = calloc(o->n_batches + 1, sizeof *cum_events);
    double *cum_s = calloc(o->n_batches + 1, sizeof *cum_s);
    sd_store_io_t before = sd_store_io(store);
    sd_err_t rc = SD_OK;
    if (!cum_events || !cum_s) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for the ceiling");
        goto done;
    }
    for (size_t b = 0; b < o->n_batches; b++) {
        size_t parsed;
        if ((rc = apply_spooled(&c, o->batch_events[b], o->batch_runs[b], &parsed, err)) != SD_OK)
            goto done;
        applied += parsed;
        cum_events[b] = applied;
        cum_s[b] = c.busy_s;
    }
    growth_curve(cum_events, cum_s, o->n_batches, r);
done:
    free(c.buf);
    free(cum_events);
    free(cum_s);
    sd_store_io_t after = sd_store_io(store);
    r->io = (sd_store_io_t){after.round_trips - before.round_trips,
                            after.documents_written - before.documents_written,
                            after.bytes_sent - before.bytes_sent,
                            after.bytes_received - before.bytes_received};
    r->io_events = applied;
    r->store_eps = c.busy_s > 0 ? (double)applied / c.busy_s : 0;
    r->store_cpu_us = applied ? 1e6 * c.cpu_s / (double)applied : 0;
    return rc;
}
