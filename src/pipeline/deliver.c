/* Delivering a batch's changes and dead letters, and committing its
 * offsets.  At-least-once: produce, wait for every delivery report, commit.
 * Exactly-once: produce and commit the offsets in one Kafka transaction; an
 * aborted transaction rewinds the batch's partitions. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <stdio.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"

static sd_err_t make_producer(pipeline_t *p, sd_error_t *err)
{
    int eos = p->cfg->delivery == SD_DELIVERY_EXACTLY_ONCE;
    sd_err_t rc = sd_producer_new(&p->cfg->kafka, eos ? p->cfg->transactional_id : NULL,
                                  &p->producer, err);
    const char *const outputs[] = {p->cfg->output_topic, p->cfg->dlq_topic};
    if (rc != SD_OK)
        return rc;
    if (!sd_producer_warm(p->producer, outputs, 2, 2000))
        sd_log(SD_LOG_DEBUG, "producer", "output topics not known yet: the first batch waits",
               NULL);
    if (!eos)
        return SD_OK;
    rd_kafka_error_t *e = rd_kafka_init_transactions(sd_producer_handle(p->producer), 30000);
    if (!e)
        return SD_OK;
    rc = sd_error_set(err, rd_kafka_error_is_fatal(e) ? SD_ERR_FATAL : SD_ERR_TRANSIENT,
                      "producer", "cannot start transactions (transactional.id %s): %s",
                      p->cfg->transactional_id, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return rc;
}

/* make_producer, retried while the brokers cannot start transactions. */
sd_err_t pl_start_producer(pipeline_t *p, sd_error_t *err)
{
    sd_err_t rc = make_producer(p, err);
    while (rc == SD_ERR_TRANSIENT && !*p->stop) {
        sd_producer_destroy(p->producer);
        p->producer = NULL;
        pl_back_off(p, "cannot start transactions", err);
        rc = make_producer(p, err);
    }
    return rc;
}

/* The broker fenced the producer during a transaction that began at
 * `began` (monotonic ms).  If the transaction outlived
 * transaction.timeout.ms, the coordinator aborted it: a new producer takes
 * over and SD_ERR_TRANSIENT has the caller go on (the transaction's work is
 * done again).  Otherwise another producer took the transactional id. */
sd_err_t pl_after_fencing(pipeline_t *p, int64_t began, sd_error_t *err)
{
    int64_t took = sd_monotonic_ms() - began;
    int64_t timeout = sd_producer_transaction_timeout_ms(p->producer);
    if (took < timeout)
        return sd_error_set(err, SD_ERR_FATAL, "producer",
                            "another producer took transactional id %s (this one was fenced): "
                            "every sessiond needs a --transactional-id of its own; this one "
                            "stops",
                            p->cfg->transactional_id);
    sd_log(SD_LOG_WARN, "producer",
           "a transaction outlived transaction.timeout.ms and the broker aborted it: a new "
           "producer takes over, and what it held is done again",
           "took_ms=%lld timeout_ms=%lld transactional_id=%s", (long long)took,
           (long long)timeout, p->cfg->transactional_id);
    atomic_fetch_add(&p->stats->transactions_aborted, 1);
    sd_producer_destroy(p->producer);
    p->producer = NULL;
    sd_err_t rc = pl_start_producer(p, err);
    return rc == SD_OK ? SD_ERR_TRANSIENT : rc;
}

/* Puts the batch back: its partitions are read again from its first
 * offsets, and it is dropped. */
static void rewind_batch(pipeline_t *p)
{
    rd_kafka_topic_partition_list_t *start = pl_batch_offsets(&p->batch, 0);
    p->source->rewound(p, start);
    rd_kafka_error_t *e = start->cnt ? rd_kafka_seek_partitions(p->consumer, start, 10000) : NULL;
    if (e) {
        sd_log(SD_LOG_ERROR, "consumer", "cannot rewind the batch", "error=%s",
               SD_LOG_Q(rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(start);
    pl_batch_clear(&p->batch);
}

/* At-least-once: the group took some of the batch's partitions while its
 * changes waited for Kafka (or the member is about to give them back,
 * pl_rejoin_due).  The next owner applies those events again and
 * publishes their changes itself, so this batch's are not sent after all:
 * the producer and what it still holds are dropped (what was already in
 * flight may still land, after the new owner's changes: older versions of
 * their sessions, which a fold ignores), and the partitions still ours
 * are read again. */
static sd_err_t abandon_batch(pipeline_t *p, const char *why, sd_error_t *err)
{
    sd_log(SD_LOG_WARN, "pipeline", why, "events_left=%zu", p->batch.count);
    sd_producer_discard(p->producer);
    p->producer = NULL;
    rewind_batch(p);
    return pl_start_producer(p, err);
}

/* At-least-once: deliver everything, then commit.  While Kafka does not
 * take the changes, the pipeline backs off and waits for them again; only
 * what librdkafka gave up on (message.timeout.ms) is sent again, as exact
 * copies. */
sd_err_t pl_publish_and_commit(pipeline_t *p, const sd_outgoing_t *msgs, size_t n,
                               sd_error_t *err)
{
    size_t owned = p->batch.count;
    sd_err_t sent = sd_outgoing_send(p->producer, msgs, n, err), rc = sent;
    while (rc != SD_OK || (rc = sd_producer_flush(p->producer, 30000, err)) != SD_OK) {
        if (rc == SD_ERR_FATAL)
            return rc;
        sd_stats_kafka_failed(p->stats, "cannot deliver changes", err->message);
        pl_back_off(p, "cannot deliver changes", err);
        if (*p->stop)
            return SD_OK; /* not committed: redelivered later, re-published identically */
        if (p->batch.count != owned)
            return abandon_batch(p,
                                 "partitions were taken away while their changes waited for "
                                 "Kafka: the batch is dropped (its events are applied again "
                                 "by their owners) and a new producer takes over",
                                 err);
        if (pl_rejoin_due(p))
            return abandon_batch(p,
                                 "no progress for too long: the batch waiting for Kafka is "
                                 "dropped (applied again later) and a new producer takes over",
                                 err);
        if (sent != SD_OK || !sd_producer_in_flight(p->producer))
            sent = sd_outgoing_send(p->producer, msgs, n, err);
        rc = sent;
    }
    atomic_store(&p->stats->kafka_ok, 1);
    if (p->batch.count == 0)
        return SD_OK;
    pl_failpoint(p, "after-produce", p->batch_no, n);
    /* Offsets an earlier commit failed on (a rebalance in progress, say)
     * go along, for the partitions still ours. */
    rd_kafka_topic_partition_list_t *offsets = pl_batch_offsets(&p->batch, 1);
    for (int i = 0; p->uncommitted && i < p->uncommitted->cnt; i++) {
        const rd_kafka_topic_partition_t *u = &p->uncommitted->elems[i];
        if (!rd_kafka_topic_partition_list_find(offsets, u->topic, u->partition))
            rd_kafka_topic_partition_list_add(offsets, u->topic, u->partition)->offset = u->offset;
    }
    pl_progress(p); /* the changes are out */
    rd_kafka_resp_err_t cerr = rd_kafka_commit(p->consumer, offsets, 0);
    if (p->uncommitted)
        rd_kafka_topic_partition_list_destroy(p->uncommitted);
    p->uncommitted = NULL;
    if (cerr) {
        /* The changes are out.  The offsets are tried again with the next
         * batch; if the partitions move first, their events come again to
         * the next owner and are re-published as exact copies. */
        sd_log(SD_LOG_DEBUG, "consumer", "offset commit failed, retried with the next batch",
               "error=%s", SD_LOG_Q(rd_kafka_err2str(cerr)));
        p->uncommitted = offsets;
        p->uncommitted_tried = sd_monotonic_ms();
        return SD_OK;
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    return SD_OK;
}

/* The transaction that began at `began` found the producer fenced: a
 * timed-out one is done again by a new producer (the batch rewound, SD_OK);
 * real fencing stops the pipeline (pl_after_fencing). */
static sd_err_t redo_after_fencing(pipeline_t *p, int64_t began, sd_error_t *err)
{
    sd_err_t rc = pl_after_fencing(p, began, err);
    if (rc != SD_ERR_TRANSIENT)
        return rc;
    rewind_batch(p);
    return SD_OK;
}

/* Exactly-once: the changes and the offsets in one transaction. */
sd_err_t pl_transact(pipeline_t *p, const sd_outgoing_t *msgs, size_t n, sd_error_t *err)
{
    rd_kafka_t *rk = sd_producer_handle(p->producer);
    int64_t began = sd_monotonic_ms();
    rd_kafka_error_t *e = rd_kafka_begin_transaction(rk);
    sd_err_t rc = SD_OK;
    if (!e && (rc = sd_outgoing_send(p->producer, msgs, n, err)) == SD_OK && p->batch.count) {
        rd_kafka_topic_partition_list_t *offsets = pl_batch_offsets(&p->batch, 1);
        rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(p->consumer);
        e = rd_kafka_send_offsets_to_transaction(rk, offsets, cgmd, -1);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offsets);
        if (!e)
            pl_failpoint(p, "after-produce", p->batch_no, n);
    }
    if (!e && rc == SD_OK)
        e = rd_kafka_commit_transaction(rk, -1);
    if (!e && rc == SD_OK) {
        atomic_store(&p->stats->kafka_ok, 1);
        atomic_fetch_add(&p->stats->transactions_committed, 1);
        pl_progress(p);
        return SD_OK;
    }
    if (sd_producer_fenced(p->producer)) {
        if (e)
            rd_kafka_error_destroy(e);
        return redo_after_fencing(p, began, err);
    }
    if (e && rd_kafka_error_is_fatal(e)) {
        rc = sd_error_set(err, SD_ERR_FATAL, "producer", "transactions cannot go on: %s",
                          rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return rc;
    }
    /* Abortable (or a send that failed): abort, rewind, read the batch again. */
    char what[512];
    snprintf(what, sizeof what, "%s", e ? rd_kafka_error_string(e) : err->message);
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_error_t *abort_error = rd_kafka_abort_transaction(rk, -1);
    if (abort_error && sd_producer_fenced(p->producer)) {
        /* the broker aborted it first (a network that went silent past
         * transaction.timeout.ms): the abort finds the producer fenced */
        rd_kafka_error_destroy(abort_error);
        return redo_after_fencing(p, began, err);
    }
    if (abort_error) {
        rc = sd_error_set(err, SD_ERR_FATAL, "producer", "cannot abort a transaction: %s",
                          rd_kafka_error_string(abort_error));
        rd_kafka_error_destroy(abort_error);
        return rc;
    }
    atomic_fetch_add(&p->stats->transactions_aborted, 1);
    sd_error_set(err, SD_ERR_TRANSIENT, "producer", "transaction aborted: %s", what);
    sd_stats_kafka_failed(p->stats, "a transaction was aborted", what);
    rewind_batch(p);
    pl_back_off(p, "transaction aborted", err);
    return SD_OK;
}

/* Offsets whose commit failed are retried with the next batch, or every
 * second while there is none, so the group's position keeps up. */
void pl_retry_uncommitted(pipeline_t *p)
{
    if (!p->uncommitted || sd_monotonic_ms() - p->uncommitted_tried < 1000)
        return;
    p->uncommitted_tried = sd_monotonic_ms();
    if (rd_kafka_commit(p->consumer, p->uncommitted, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(p->uncommitted);
        p->uncommitted = NULL;
    }
}
