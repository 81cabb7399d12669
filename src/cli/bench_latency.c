/* sessiond bench --brokers: end-to-end latency, from an event's sending to
 * its change reaching a read_committed consumer, at fixed offered rates,
 * and the highest rate the pipeline keeps up with.  The pipeline runs on
 * the run's latency topics (the caller starts and stops it); each event is
 * a new task's creation, so each makes one change, and carries its sending
 * time in its event_id, which the change names as its cause. */
#define _GNU_SOURCE
#include "bench.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sessiond/producer.h"
#include "sessiond/timefmt.h"

#define CATCH_UP_S 1.0   /* a rate is kept up with: every change in this long after the last send */

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The sender: `count` events at `rate` a second, on a thread of its own. */
typedef struct sender {
    const bench_target_t *t;
    const char *input, *occurred_at;
    double rate;
    size_t count, first_seq;
    sd_producer_t *producer;
    atomic_int done;
    sd_err_t rc;
    sd_error_t err;
} sender_t;

static sd_err_t send_one(sender_t *s, size_t seq)
{
    char key[96], json[480];
    snprintf(key, sizeof key, "%s-lat-%zu", s->t->group, seq);
    snprintf(json, sizeof json,
             "{\"event_id\":\"lat-%lld-%zu\",\"event_type\":\"task.created\",\"task_id\":\"%s\","
             "\"task_type\":\"image_analysis\",\"short_id\":\"ls%zu\",\"occurred_at\":\"%s\"}",
             (long long)wall_us(), seq, key, seq % 997, s->occurred_at);
    return sd_producer_send(s->producer, s->input, key, json, strlen(json), NULL, 0, &s->err);
}

/* Sends on a schedule: by each millisecond, every event due by then. */
static void *send_at_rate(void *arg)
{
    sender_t *s = arg;
    double start = bench_now_s();
    size_t i = 0;
    s->rc = SD_OK;
    while (s->rc == SD_OK && i < s->count) {
        size_t due = (size_t)((bench_now_s() - start) * s->rate) + 1;
        for (; s->rc == SD_OK && i < due && i < s->count; i++)
            s->rc = send_one(s, s->first_seq + i);
        if (i < s->count)
            sd_sleep_ms(1);
    }
    if (s->rc == SD_OK)
        s->rc = sd_producer_flush(s->producer, 30000, &s->err);
    atomic_store(&s->done, 1);
    return NULL;
}

/* The change's cause event_id, if it is one of the sender's: its sending
 * time in µs and its sequence number. */
static int sent_at(const rd_kafka_message_t *m, int64_t *us, size_t *seq)
{
    if (!m || m->err)
        return 0;
    json_t *change = json_loadb(m->payload, m->len, 0, NULL);
    const char *id = json_string_value(json_object_get(json_object_get(change, "cause"),
                                                       "event_id"));
    long long v;
    size_t n;
    int ok = id && sscanf(id, "lat-%lld-%zu", &v, &n) == 2;
    if (ok)
        *us = v, *seq = n;
    json_decref(change);
    return ok;
}

/* A read_committed consumer of the mode's output, from its end now. */
static sd_err_t open_reader(const bench_target_t *t, sd_delivery_t delivery, int32_t partitions,
                            rd_kafka_t **out, sd_error_t *err)
{
    static const char *const extra[] = {"isolation.level", "read_committed",
                                        "fetch.wait.max.ms", "10", NULL};
    sd_err_t rc = bench_consumer(t, "lat-read", extra, out, err);
    if (rc != SD_OK)
        return rc;
    if ((rc = bench_assign(*out, t->latency_output[delivery == SD_DELIVERY_EXACTLY_ONCE],
                           partitions, RD_KAFKA_OFFSET_END, err)) != SD_OK) {
        rd_kafka_destroy(*out);
        *out = NULL;
    }
    return rc;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double quantile_ms(const int64_t *us, size_t n, double q)
{
    return n ? (double)us[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0 : 0;
}

/* One step: `count` events at `rate`; the latencies of the changes that
 * arrive into f, and whether every change arrived within CATCH_UP_S of the
 * last send. */
static sd_err_t step(rd_kafka_t *reader, sender_t *s, latency_figures_t *f, sd_error_t *err)
{
    int64_t *us = calloc(s->count, sizeof *us);
    if (!us)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory measuring latency");
    pthread_t thread;
    atomic_store(&s->done, 0);
    if (pthread_create(&thread, NULL, send_at_rate, s) != 0) {
        free(us);
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot start the latency sender");
    }
    size_t got = 0;
    double last_send = 0, deadline = 0;
    while (got < s->count) {
        if (!last_send && atomic_load(&s->done))
            last_send = bench_now_s(), deadline = last_send + 30;
        if (last_send && bench_now_s() > deadline)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 5);
        int64_t at;
        size_t seq;
        if (sent_at(m, &at, &seq) && seq >= s->first_seq) {
            int64_t lat = wall_us() - at;
            us[got++] = lat > 0 ? lat : 0;
            if (last_send && bench_now_s() - last_send > CATCH_UP_S)
                f->sustained = 0;
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    pthread_join(thread, NULL);
    sd_err_t rc = s->rc;
    if (rc != SD_OK)
        *err = s->err;
    if (got < s->count)
        f->sustained = 0;
    qsort(us, got, sizeof *us, by_value);
    f->samples = got;
    f->p50_ms = quantile_ms(us, got, 0.50);
    f->p99_ms = quantile_ms(us, got, 0.99);
    f->p999_ms = quantile_ms(us, got, 0.999);
    f->max_ms = got ? (double)us[got - 1] / 1000.0 : 0;
    free(us);
    return rc;
}

/* Until the pipeline and the reader are both under way: an event every
 * 10 ms until one's change is read (a reader positioned at the end finds
 * its position only with its first fetch, and would miss the changes made
 * before), then a second for the rest of them to arrive. */
static sd_err_t warm_up(rd_kafka_t *reader, sender_t *s, sd_error_t *err)
{
    double deadline = bench_now_s() + 60, read_at = 0;
    while (!read_at || bench_now_s() < read_at + 1) {
        if (!read_at && bench_now_s() > deadline)
            return sd_error_set(err, SD_ERR_FATAL, "", "no change came back from the latency "
                                "pipeline within 60 s");
        if (!read_at) {
            sd_err_t rc = send_one(s, s->first_seq++);
            if (rc != SD_OK) {
                *err = s->err;
                return rc;
            }
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 10);
        int64_t at;
        size_t seq;
        if (sent_at(m, &at, &seq) && !read_at)
            read_at = bench_now_s();
        if (m)
            rd_kafka_message_destroy(m);
    }
    return SD_OK;
}

/* One step of the search for the highest rate kept up with. */
static sd_err_t try_rate(rd_kafka_t *reader, sender_t *s, double rate, double seconds,
                         int *kept_up, sd_error_t *err)
{
    latency_figures_t f = {.rate = rate, .sustained = 1};
    s->rate = rate, s->count = (size_t)(rate * seconds);
    sd_err_t rc = step(reader, s, &f, err);
    s->first_seq += s->count;
    *kept_up = rc == SD_OK && f.sustained;
    return rc;
}

sd_err_t bench_latency(const bench_target_t *t, sd_delivery_t delivery, int32_t partitions,
                       int64_t now, const double *rates, size_t n_rates, double seconds,
                       latency_figures_t *out, double *sustained_eps, sd_error_t *err)
{
    char occurred_at[SD_TIME_BUFSZ];
    sd_time_format(now, occurred_at);
    rd_kafka_t *reader = NULL;
    sender_t s = {.t = t, .input = t->latency_input[delivery == SD_DELIVERY_EXACTLY_ONCE],
                  .occurred_at = occurred_at};
    double low = 0, high = 0;
    *sustained_eps = 0;
    sd_err_t rc;
    if ((rc = sd_producer_new(&t->kafka, NULL, &s.producer, err)) != SD_OK)
        goto done;
    if ((rc = open_reader(t, delivery, partitions, &reader, err)) != SD_OK)
        goto done;
    if ((rc = warm_up(reader, &s, err)) != SD_OK)
        goto done;
    for (size_t i = 0; i < n_rates; i++) {
        out[i] = (latency_figures_t){.rate = rates[i], .sustained = 1};
        s.rate = rates[i], s.count = (size_t)(rates[i] * seconds);
        if ((rc = step(reader, &s, &out[i], err)) != SD_OK)
            goto done;
        s.first_seq += s.count;
    }
    /* the highest rate kept up with: doubling from 2,000 a second until
     * one is not, then halving the gap three times */
    for (double rate = 2000; !high && rate <= 1e6; rate *= 2) {
        int kept_up = 0;
        if ((rc = try_rate(reader, &s, rate, seconds / 2, &kept_up, err)) != SD_OK)
            goto done;
        *(kept_up ? &low : &high) = rate;
    }
    for (int i = 0; high && i < 3; i++) {
        double rate = (low + high) / 2;
        int kept_up = 0;
        if ((rc = try_rate(reader, &s, rate, seconds / 2, &kept_up, err)) != SD_OK)
            goto done;
        *(kept_up ? &low : &high) = rate;
    }
    *sustained_eps = low;
done:
    if (reader)
        rd_kafka_destroy(reader);
    sd_producer_destroy(s.producer);
    return rc;
}
