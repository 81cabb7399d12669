/* Rebalancing.  librdkafka runs the callback only inside
 * rd_kafka_consumer_poll(), which the pipeline calls while it collects a
 * batch and while it waits out an outage, never between applying a batch
 * and committing it.  So a revoke can only find a batch that is not applied
 * yet: its messages of the revoked partitions are dropped (the next owner
 * reads them again from the committed offset) and the rest go on.  Where
 * assigned partitions start is the source's to say (source.c). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <stdio.h>
#include <string.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"

/* Where the assigned partitions start: their committed offsets, once no
 * transaction holds them any more.  An exactly-once member that died
 * inside a transaction leaves its offsets pending until the broker aborts
 * the transaction (transaction.timeout.ms later, unless a producer with the
 * same transactional id starts first); meanwhile the coordinator answers
 * UNSTABLE_OFFSET_COMMIT.  librdkafka 2.0.2 gives up after two quick
 * retries and starts such a partition at auto.offset.reset, the earliest
 * offset: all it holds would be read, and every latest change re-published,
 * again.  So the offsets are fetched here, waiting while they are unstable;
 * a partition without a committed offset is left to auto.offset.reset. */
void pl_start_at_stable_offsets(pipeline_t *p, rd_kafka_t *rk,
                                rd_kafka_topic_partition_list_t *parts)
{
    int64_t started = sd_monotonic_ms(), logged = started;
    while (!*p->stop) {
        rd_kafka_topic_partition_list_t *asked = rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t err = rd_kafka_committed(rk, asked, 10000);
        int unstable = 0;
        for (int i = 0; !err && i < asked->cnt; i++)
            unstable += asked->elems[i].err == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT;
        if (!err && !unstable)
            for (int i = 0; i < asked->cnt; i++)
                parts->elems[i].offset = asked->elems[i].offset; /* INVALID: none committed */
        rd_kafka_topic_partition_list_destroy(asked);
        if (err) { /* librdkafka fetches them itself, as it would have */
            sd_log(SD_LOG_WARN, "consumer", "cannot fetch the committed offsets", "error=%s",
                   SD_LOG_Q(rd_kafka_err2str(err)));
            return;
        }
        if (!unstable)
            return;
        if (sd_monotonic_ms() - logged >= 5000) {
            logged = sd_monotonic_ms();
            sd_log(SD_LOG_WARN, "consumer",
                   "waiting for a transaction to end: it holds the committed offsets of "
                   "assigned partitions (a member that died inside a transaction?)",
                   "partitions=%d waited_ms=%lld", unstable, (long long)(logged - started));
        }
        sd_sleep_ms(200);
    }
}

void pl_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                     rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pipeline_t *p = opaque;
    /* librdkafka answers NULL once the consumer is being closed, and a
     * close can still serve an assignment and then its revocation (seen
     * in recovery.group): the protocol has not changed since it last
     * answered. */
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    if (protocol)
        p->cooperative = strcmp(protocol, "COOPERATIVE") == 0;
    int cooperative = p->cooperative;
    rd_kafka_error_t *error = NULL;
    atomic_fetch_add(&p->stats->rebalances, 1);
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (!p->ever_assigned && p->cfg->on_assigned)
            p->cfg->on_assigned(p->cfg->assigned_arg, parts->cnt);
        p->ever_assigned = 1;
        p->source->assigned(p, rk, parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        /* librdkafka keeps a partition's pause across its revocation and a
         * later assignment (its issue 1849): one paused for an outage, lost
         * meanwhile and assigned again would never be fetched.  So each
         * assignment is set to what the pipeline is doing now. */
        if (p->paused) /* still waiting out an outage: these wait too */
            rd_kafka_pause_partitions(rk, parts);
        else
            rd_kafka_resume_partitions(rk, parts);
        atomic_fetch_add(&p->stats->assigned_partitions, parts->cnt);
        atomic_store(&p->stats->partitions_lost, 0);
        pl_progress(p); /* new partitions get the whole bound to show progress */
        sd_log(SD_LOG_INFO, "consumer", "partitions assigned", "count=%d cooperative=%s", parts->cnt,
               cooperative ? "true" : "false");
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        if (!p->closing)
            p->source->revoked(p);
        /* Not applied yet: the next owner reads them again.  Nothing of
         * theirs was committed, lost or not. */
        pl_batch_drop(&p->batch, parts);
        for (int i = 0; p->uncommitted && i < parts->cnt; i++)
            rd_kafka_topic_partition_list_del(p->uncommitted, parts->elems[i].topic,
                                              parts->elems[i].partition);
        if (p->uncommitted && p->uncommitted->cnt == 0) { /* nothing of ours is left in it */
            rd_kafka_topic_partition_list_destroy(p->uncommitted);
            p->uncommitted = NULL;
        }
        rd_kafka_resume_partitions(rk, parts); /* see the assignment above */
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        atomic_fetch_sub(&p->stats->assigned_partitions, parts->cnt);
        if (lost && !p->closing)
            atomic_store(&p->stats->partitions_lost, 1);
        sd_log(lost ? SD_LOG_WARN : SD_LOG_INFO, "consumer",
               lost ? "partitions lost" : "partitions revoked", "count=%d", parts->cnt);
    }
    if (error) {
        sd_log(SD_LOG_ERROR, "consumer", "rebalance failed", "error=%s",
               SD_LOG_Q(rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
    }
}
