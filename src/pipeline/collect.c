/* The batch in flight: collected from the consumer up to --batch-max
 * messages, --batch-bytes or --batch-ms, whichever comes first.  Behind its
 * input, the consumer drains librdkafka's queue faster than librdkafka
 * 2.0.2 refills it, so the leaders are woken (fetch_wake.h).  The source
 * says which messages join it (source.c). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <stdlib.h>

#include "sessiond/clock.h"
#include "sessiond/fetch_wake.h"
#include "sessiond/log.h"

#define SD_FETCH_WAKE_MS 100 /* a leader that answers later still woke */
#define SD_FETCH_IDLE_MS 5

void pl_batch_clear(batch_t *b)
{
    for (size_t i = 0; i < b->count; i++)
        rd_kafka_message_destroy(b->msgs[i]);
    b->count = 0;
    b->bytes = 0;
}

static int batch_add(batch_t *b, rd_kafka_message_t *m)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        rd_kafka_message_t **grown = realloc(b->msgs, cap * sizeof *grown);
        if (!grown)
            return -1;
        b->msgs = grown;
        b->cap = cap;
    }
    b->msgs[b->count++] = m;
    b->bytes += m->len;
    return 0;
}

/* Drops the batch's messages of the given partitions (they were revoked). */
void pl_batch_drop(batch_t *b, const rd_kafka_topic_partition_list_t *parts)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->count; i++) {
        rd_kafka_message_t *m = b->msgs[i];
        if (rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt), m->partition)) {
            b->bytes -= m->len;
            rd_kafka_message_destroy(m);
        } else {
            b->msgs[kept++] = m;
        }
    }
    b->count = kept;
}

/* Per partition: the first offset of the batch (rewind) or the one after
 * its last (commit). */
rd_kafka_topic_partition_list_t *pl_batch_offsets(const batch_t *b, int next)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < b->count; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, rd_kafka_topic_name(m->rkt), m->partition);
        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt), m->partition);
            tp->offset = next ? m->offset + 1 : m->offset;
        } else if (next ? m->offset + 1 > tp->offset : m->offset < tp->offset) {
            tp->offset = next ? m->offset + 1 : m->offset;
        }
    }
    return list;
}

static int batch_full(const pipeline_t *p)
{
    return p->batch.count >= p->cfg->batch_max ||
           (p->cfg->batch_bytes && p->batch.bytes >= p->cfg->batch_bytes);
}

/* Behind its input, the consumer drains librdkafka's queue faster than
 * librdkafka 2.0.2 refills it (fetch_wake.h): before each batch of a
 * backlog, and whenever its queue runs dry, the leaders are woken.  A
 * queue still empty after a wake means the backlog is gone: the wakes stop
 * until a batch fills again. */
static void wake_fetchers(pipeline_t *p)
{
    sd_error_t why = {0};
    if (sd_fetch_wake(p->consumer, SD_FETCH_WAKE_MS, NULL, &why) != SD_OK)
        sd_log(SD_LOG_DEBUG, "consumer", "fetchers not woken", "error=%s", SD_LOG_Q(why.message));
}

sd_err_t pl_collect(pipeline_t *p, sd_error_t *err)
{
    int64_t started = 0;
    int woke = p->behind; /* and nothing came since */
    if (woke)
        wake_fetchers(p);
    while (!batch_full(p) && !*p->stop) {
        if (p->batch.count == 0 && (pl_sweep_due(p) || pl_rejoin_due(p)))
            break;
        sd_err_t rc = p->source->check(p, err);
        if (rc != SD_OK)
            return rc;
        if (p->source->finished(p)) {
            if (p->batch.count || !p->uncommitted)
                break;
            /* read to the end, but the last offsets are not committed yet */
            rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 100);
            if (m)
                rd_kafka_message_destroy(m); /* past the end: not ours */
            pl_retry_uncommitted(p);
            continue;
        }
        int64_t left = 100;
        if (p->batch.count) {
            left = p->cfg->batch_ms - (sd_monotonic_ms() - started);
            if (left <= 0)
                break;
        }
        /* Behind, an empty queue is librdkafka not fetching yet. */
        int64_t wait = p->behind && left > SD_FETCH_IDLE_MS ? SD_FETCH_IDLE_MS : left;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, (int)wait);
        if (!m) {
            if (p->behind && woke) {
                p->behind = 0; /* woken and still empty: caught up, not stalled */
            } else if (p->behind) {
                wake_fetchers(p);
                woke = 1;
            }
            if (p->batch.count == 0) {
                pl_retry_uncommitted(p);
                pl_probe_if_idle(p);
            }
            continue;
        }
        woke = 0;
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[512];
                rd_kafka_fatal_error(p->consumer, why, sizeof why);
                rd_kafka_message_destroy(m);
                return sd_error_set(err, SD_ERR_FATAL, "consumer", "consumer failed: %s", why);
            }
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                sd_log(SD_LOG_WARN, "consumer", "consumer error", "error=%s",
                       SD_LOG_Q(rd_kafka_message_errstr(m)));
            else if (m->rkt)
                p->source->take(p, m); /* the end may be a transaction marker */
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!p->source->take(p, m)) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (p->batch.count == 0)
            started = sd_monotonic_ms();
        atomic_fetch_add(&p->stats->events, 1);
        if (batch_add(&p->batch, m)) {
            rd_kafka_message_destroy(m);
            return sd_error_set(err, SD_ERR_FATAL, "", "out of memory collecting a batch");
        }
    }
    p->behind = batch_full(p);
    return SD_OK;
}
