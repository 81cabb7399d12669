/* The consume-apply-produce loop: collect a batch, apply it through the
 * store, deliver its changes and commit its offsets, then give the expiry
 * sweeper its turn.  Everything happens on this thread (pipeline_int.h
 * names the file of each step).
 *
 * The sweeper takes its turns between batches (sweeper.c): one step per
 * loop while a backlog lasts, otherwise one per interval; an empty batch is
 * cut short when a turn is due. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"
#include "sessiond/sweeper.h"

static void count_changes(sd_pipeline_stats_t *s, const sd_outgoing_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add(&s->changes_by_type[msgs[i].change_type], 1);
}

int pl_sweep_due(const pipeline_t *p)
{
    return p->cfg->sweep_interval_ms > 0 && p->source->watched &&
           sd_monotonic_ms() >= p->next_sweep;
}

/* The producer for expiry events: the pipeline's, or exactly-once one of
 * their own, made on first use; NULL (err set) if it cannot be made. */
static sd_producer_t *expiry_producer(pipeline_t *p, sd_error_t *err)
{
    if (p->cfg->delivery != SD_DELIVERY_EXACTLY_ONCE)
        return p->producer;
    if (!p->expiry_producer &&
        sd_producer_new(&p->cfg->kafka, NULL, &p->expiry_producer, err) != SD_OK)
        p->expiry_producer = NULL;
    return p->expiry_producer;
}

static void expiry_delivered(void *arg, size_t n)
{
    pipeline_t *p = arg;
    pl_failpoint(p, "after-expiry-produce", ++p->expiry_sweeps, n);
}

/* A sweep that fails is logged and tried again after the interval: what
 * it did not publish is found due again.  Only the pipeline's own producer
 * failing for good stops the pipeline, as it would stop the next batch;
 * the exactly-once expiry producer is made anew. */
static sd_err_t sweep(pipeline_t *p, sd_error_t *err)
{
    sd_sweep_result_t res = {0};
    sd_error_t why = {0};
    sd_producer_t *producer = expiry_producer(p, &why);
    /* Expiry events go to the first input topic, which the group reads. */
    sd_err_t rc = producer ? sd_sweep_step(p->store, producer, p->cfg->inputs[0], pl_now_ms(p),
                                           SD_SWEEP_LIMIT, expiry_delivered, p, &res, &why)
                           : SD_ERR_TRANSIENT;
    atomic_fetch_add(&p->stats->expiry_events, (long)res.published);
    if (rc == SD_ERR_FATAL && res.producer_failed) {
        if (producer == p->producer) {
            *err = why;
            return rc;
        }
        sd_producer_destroy(p->expiry_producer);
        p->expiry_producer = NULL;
    }
    if (rc != SD_OK) {
        atomic_fetch_add(&p->stats->sweep_errors, 1);
        if (producer && !res.producer_failed)
            atomic_fetch_add(&p->stats->store_errors[rc], 1);
        sd_log(SD_LOG_WARN, "sweeper", "expiry sweep failed, tried again later",
               "retry_in_ms=%lld error=%s", (long long)p->cfg->sweep_interval_ms,
               SD_LOG_Q(why.message));
    } else if (res.published) {
        sd_log(SD_LOG_INFO, "sweeper", "expiry events published", "count=%zu topic=%s",
               res.published, p->cfg->inputs[0]);
    }
    /* A full step means more are waiting: go on after the next batch. */
    p->next_sweep = sd_monotonic_ms() + (rc == SD_OK && res.published == SD_SWEEP_LIMIT
                                             ? 0
                                             : p->cfg->sweep_interval_ms);
    return SD_OK;
}

/* librdkafka's statistics, delivered on this thread by the poll. */
static int on_statistics(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    sd_stats_lag_from_json(((pipeline_t *)opaque)->stats, json, len);
    return 0; /* librdkafka frees json */
}

/* Credentials or certificates the brokers stopped taking (rotated, say):
 * not ready, saying so, while librdkafka keeps retrying; the start-up
 * check (kafka_preflight.h) stops a command that never got in.  Called on
 * the pipeline's thread by the consumer's poll. */
static void on_kafka_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    pipeline_t *p = opaque;
    /* what librdkafka logs itself when there is no error callback */
    sd_log(SD_LOG_ERROR, "kafka", reason, "client=%s error=%s", rd_kafka_name(rk),
           rd_kafka_err2name(code));
    if (code == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        sd_stats_kafka_failed(p->stats, "Kafka refused SASL authentication", reason);
    else if (code == RD_KAFKA_RESP_ERR__SSL)
        sd_stats_kafka_failed(p->stats, "TLS with Kafka failed", reason);
}

static sd_err_t make_consumer(pipeline_t *p, sd_error_t *err)
{
    const sd_pipeline_config_t *cfg = p->cfg;
    const char *role[] = {"group.id", cfg->group,
                          "enable.auto.commit", "false",
                          "enable.auto.offset.store", "false",
                          "auto.offset.reset", "earliest",
                          "partition.assignment.strategy", "cooperative-sticky",
                          "isolation.level", "read_committed",
                          "enable.partition.eof", p->source->partition_eof ? "true" : "false",
                          "statistics.interval.ms", "5000", /* consumer lag metrics */
                          /* librdkafka would prefetch up to 64 MiB and fetch 50 MB
                           * at once.  4 MiB is a batch of a backlog ahead: the
                           * fetchers are woken once the queue is drained
                           * (fetch_wake.h), so it need not hold a second's worth
                           * (measured: docs/benchmarks.md). */
                          "queued.max.messages.kbytes", "4096",
                          "fetch.max.bytes", "1048576",
                          "max.partition.fetch.bytes", "262144",
                          NULL};
    rd_kafka_conf_t *conf;
    sd_err_t rc = sd_kafka_conf(&cfg->kafka, SD_KAFKA_CONSUMER, role, &conf, err);
    if (rc != SD_OK)
        return rc;
    rd_kafka_conf_set_rebalance_cb(conf, pl_on_rebalance);
    p->cooperative = 1; /* cooperative-sticky, above */
    rd_kafka_conf_set_stats_cb(conf, on_statistics);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set_opaque(conf, p);
    if ((rc = sd_kafka_new(SD_KAFKA_CONSUMER, conf, "consumer", "the consumer", &p->consumer,
                           err)) != SD_OK)
        return rc;
    rd_kafka_poll_set_consumer(p->consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)cfg->n_inputs);
    for (size_t i = 0; i < cfg->n_inputs; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->inputs[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(p->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (serr)
        return sd_error_set(err, SD_ERR_FATAL, "consumer", "cannot subscribe: %s",
                            rd_kafka_err2str(serr));
    return SD_OK;
}

/* Leaves the group and frees the consumer.  Its messages in the batch
 * must be gone already. */
static void close_consumer(pipeline_t *p)
{
    if (!p->consumer)
        return;
    p->closing = 1; /* closing runs the rebalance callback */
    rd_kafka_consumer_close(p->consumer); /* leaves the group */
    /* librdkafka 2.0.2 aborts destroying a cooperative-sticky consumer
     * that never completed a join (its issue 4312, fixed in 2.3.0): such a
     * consumer, which holds nothing, is left to process exit. */
    if (p->ever_assigned)
        rd_kafka_destroy(p->consumer);
    else
        sd_log(SD_LOG_DEBUG, "consumer", "consumer left to exit: it never joined", NULL);
    p->consumer = NULL;
    p->closing = 0;
}

/* Gives the partitions back (pl_rejoin_due): a new consumer joins the
 * group in the old one's place, with nothing paused and nothing pending;
 * what was not committed is read again by whoever gets the partitions. */
static sd_err_t rejoin(pipeline_t *p, sd_error_t *err)
{
    int64_t stalled = sd_monotonic_ms() - atomic_load(&p->stats->progress_ms);
    sd_log(SD_LOG_WARN, "consumer",
           "no progress on the assigned partitions for too long: giving them back and joining "
           "the group again",
           "stalled_ms=%lld partitions=%d", (long long)stalled,
           atomic_load(&p->stats->assigned_partitions));
    atomic_fetch_add(&p->stats->rejoins, 1);
    assert(p->batch.count == 0);
    if (p->uncommitted)
        rd_kafka_topic_partition_list_destroy(p->uncommitted);
    p->uncommitted = NULL;
    close_consumer(p);
    p->ever_assigned = 0; /* of the new consumer */
    atomic_store(&p->stats->assigned_partitions, 0);
    p->paused = 0;
    p->backoff_ms = 0;
    p->behind = 0;
    atomic_store(&p->stats->paused, 0);
    pl_progress(p); /* the new consumer gets the whole bound */
    return make_consumer(p, err);
}

sd_err_t sd_pipeline_run(const sd_pipeline_config_t *cfg, sd_store_t *store,
                         volatile sig_atomic_t *stop, sd_pipeline_stats_t *stats,
                         sd_error_t *err)
{
    pipeline_t p = {.cfg = cfg, .store = store, .stop = stop, .stats = stats};
    pl_failpoint_arm();
    if (pl_source_open(&p, err) != SD_OK)
        return SD_ERR_FATAL;
    atomic_store(&stats->store_ok, 1);
    atomic_store(&stats->kafka_ok, 1);
    atomic_store(&stats->stall_ms, cfg->stall_ms);
    atomic_store(&stats->progress_ms, sd_monotonic_ms());
    sd_err_t rc;
    if ((rc = pl_start_producer(&p, err)) != SD_OK) /* init_transactions may wait for a broker */
        goto done;
    if ((rc = make_consumer(&p, err)) != SD_OK)
        goto done;
    sd_log(SD_LOG_INFO, "pipeline", "started", "group=%s input=%s output=%s dlq=%s delivery=%s",
           cfg->group, cfg->inputs[0], cfg->output_topic, cfg->dlq_topic,
           cfg->delivery == SD_DELIVERY_EXACTLY_ONCE ? "exactly-once" : "at-least-once");

    while (rc == SD_OK && !*stop) {
        if (p.source->finished(&p) && !p.uncommitted) {
            atomic_store(&stats->caught_up, 1);
            break;
        }
        if (pl_rejoin_due(&p) && (rc = rejoin(&p, err)) != SD_OK)
            break;
        pl_resume_all(&p); /* an outage waited out, or an aborted batch rewound */
        if ((rc = pl_collect(&p, err)) != SD_OK)
            break;
        sd_outgoing_t *msgs;
        size_t n_msgs, n_changes;
        int64_t collected = sd_monotonic_us();
        if ((rc = pl_apply_batch(&p, &msgs, &n_msgs, &n_changes, err)) != SD_OK)
            break;
        if (p.batch.count) {
            p.batch_no++;
            pl_failpoint(&p, "after-store", p.batch_no, n_msgs);
            long aborted = atomic_load(&stats->transactions_aborted);
            rc = cfg->delivery == SD_DELIVERY_EXACTLY_ONCE ? pl_transact(&p, msgs, n_msgs, err)
                                                           : pl_publish_and_commit(&p, msgs, n_msgs, err);
            if (atomic_load(&stats->transactions_aborted) == aborted)
                count_changes(stats, msgs, n_changes);
            atomic_fetch_add(&stats->batches, 1);
            if (cfg->on_batch)
                cfg->on_batch(cfg->batch_arg, p.batch.msgs, p.batch.count,
                              sd_monotonic_us() - collected);
        }
        sd_outgoing_free(msgs, n_msgs);
        pl_batch_clear(&p.batch);
        if (rc == SD_OK && !*stop && pl_sweep_due(&p))
            rc = sweep(&p, err);
    }

done:
    pl_batch_clear(&p.batch); /* its messages belong to the consumer */
    if (p.uncommitted && p.consumer && rc == SD_OK &&
        rd_kafka_commit(p.consumer, p.uncommitted, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        sd_log(SD_LOG_INFO, "consumer", "last offsets not committed: they are read again",
               NULL);
    if (p.uncommitted)
        rd_kafka_topic_partition_list_destroy(p.uncommitted);
    p.uncommitted = NULL;
    close_consumer(&p);
    sd_producer_destroy(p.producer);
    sd_producer_destroy(p.expiry_producer);
    free(p.batch.msgs);
    pl_source_close(&p);
    if (rc == SD_OK)
        sd_log(SD_LOG_INFO, "pipeline", "stopped", NULL);
    else
        sd_log(SD_LOG_ERROR, "pipeline", "stopped on a fatal error", "error=%s",
               SD_LOG_Q(err->message));
    return rc;
}
