/* Progress: a member must never hold partitions it does not process.
 *
 * Progress is a batch committed, or the assigned partitions found caught
 * up: while the pipeline is idle it asks their leaders where they end
 * (sd_fetch_behind), which also shows that the path to them works.  A
 * member holding partitions without progress for cfg->stall_ms is not
 * ready (stats: the HTTP thread reads it even while this one is blocked
 * in a call to Kafka or the store); after cfg->rejoin_after_ms it gives
 * the partitions back by leaving the group and joining again
 * (pipeline.c), so that another member, or a fresh consumer of its own,
 * takes them up. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include "sessiond/clock.h"
#include "sessiond/fetch_wake.h"
#include "sessiond/log.h"

void pl_progress(pipeline_t *p)
{
    atomic_store(&p->stats->progress_ms, sd_monotonic_ms());
    if (p->stall_logged)
        sd_log(SD_LOG_INFO, "pipeline", "progressing again", NULL);
    p->stall_logged = 0;
}

/* Idle, a probe every quarter of stall_ms (within 0.25 to 5 s), each
 * waiting at most that long (at least 1 s) for the leaders. */
static int64_t probe_interval(const pipeline_t *p)
{
    int64_t q = p->cfg->stall_ms / 4;
    return q < 250 ? 250 : q > 5000 ? 5000 : q;
}

void pl_probe_if_idle(pipeline_t *p)
{
    int64_t now = sd_monotonic_ms(), every = probe_interval(p);
    if (p->cfg->stall_ms <= 0 || !p->source->watched || p->batch.count ||
        now - atomic_load(&p->stats->progress_ms) < every || now - p->last_probe < every)
        return;
    p->last_probe = now;
    int64_t behind;
    sd_error_t why = {0};
    sd_err_t rc = sd_fetch_behind(p->consumer, every < 1000 ? 1000 : (int)every, &behind, &why);
    /* Kafka answers: an outage that failed the last delivery or
     * transaction is over as far as readiness goes, even with nothing to
     * deliver (the next batch says otherwise if it is not). */
    if (rc == SD_OK)
        atomic_store(&p->stats->kafka_ok, 1);
    if (rc == SD_OK && behind == 0) {
        pl_progress(p);
        return;
    }
    int64_t stalled = sd_stats_stalled_ms(p->stats, sd_monotonic_ms());
    if (stalled && !p->stall_logged) {
        p->stall_logged = 1;
        if (rc == SD_OK)
            sd_log(SD_LOG_WARN, "pipeline",
                   "no progress: the assigned partitions are behind, but nothing arrives",
                   "behind=%lld stalled_ms=%lld", (long long)behind, (long long)stalled);
        else
            sd_log(SD_LOG_WARN, "pipeline", "no progress: Kafka does not answer",
                   "stalled_ms=%lld error=%s", (long long)stalled, SD_LOG_Q(why.message));
    }
}

int pl_rejoin_due(const pipeline_t *p)
{
    return p->cfg->rejoin_after_ms > 0 && p->source->watched && p->consumer &&
           atomic_load(&p->stats->assigned_partitions) > 0 &&
           sd_monotonic_ms() - atomic_load(&p->stats->progress_ms) >= p->cfg->rejoin_after_ms;
}
