/* `sessiond run`: events in from Kafka, rules applied through the store,
 * changes out to Kafka, offsets committed only for what was applied. */
#ifndef SESSIOND_PIPELINE_H
#define SESSIOND_PIPELINE_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sessiond/kafka.h"
#include "sessiond/stats.h"
#include "sessiond/store.h"

typedef enum sd_delivery {
    SD_DELIVERY_AT_LEAST_ONCE,
    SD_DELIVERY_EXACTLY_ONCE,
} sd_delivery_t;

/* sessiond replay: the group reads every input partition from `start` up
 * to `end` (exclusive; the high watermarks when the replay began) and the
 * pipeline returns once it got there.  The replay must be the group's only
 * member: it stops with an error when the group has others. */
typedef struct sd_replay_bounds {
    rd_kafka_topic_partition_list_t *start;
    rd_kafka_topic_partition_list_t *end;
    int emit; /* 1: publish changes and dead letters as `run` does; 0: store only */
} sd_replay_bounds_t;

/* `run`'s batches: while behind, large enough that the store's write
 * transaction amortises (docs/benchmarks.md); bounded in bytes so that large
 * events cannot take the memory. */
#define SD_BATCH_MAX_DEFAULT 10000
#define SD_BATCH_BYTES_DEFAULT (4 << 20)
#define SD_BATCH_MS_DEFAULT 50 /* the longest wait to fill a batch: end-to-end latency (docs/benchmarks.md) */

typedef struct sd_pipeline_config {
    sd_kafka_settings_t kafka;
    const char *group;                /* consumer group */
    const char *const *inputs;        /* topic names; "^…" is a regex */
    size_t n_inputs;
    const char *output_topic;
    const char *dlq_topic;
    sd_delivery_t delivery;
    const char *transactional_id;     /* exactly-once */
    size_t batch_max;                 /* events */
    size_t batch_bytes;               /* of their values, 0: no bound; a batch
                                       * closes at either, or after batch_ms */
    int64_t batch_ms;
    int64_t backoff_max_ms;
    int64_t (*now_ms)(void *arg);     /* the clock the rules see */
    void *clock_arg;
    const sd_replay_bounds_t *replay; /* NULL: run until stopped */
    int64_t sweep_interval_ms;        /* expiry sweeps; 0: none (replays never sweep) */
    /* A member holding partitions that it has not made progress on (no
     * batch committed, and not found caught up) for stall_ms is not ready;
     * after rejoin_after_ms it gives them back: it leaves the group and
     * joins again.  0: never. */
    int64_t stall_ms;
    int64_t rejoin_after_ms;
    /* Told each batch: its messages in order (those dead-lettered too: the
     * store applied the rest in this order) and its latency from applying
     * to committed. */
    void (*on_batch)(void *arg, rd_kafka_message_t *const *msgs, size_t n, int64_t micros);
    void *batch_arg;
    /* Told when the consumer gets its first assignment (of any number of
     * partitions, none too), and again after each rejoin: the member is
     * in its group.  Called on the pipeline's thread. */
    void (*on_assigned)(void *arg, int partitions);
    void *assigned_arg;
} sd_pipeline_config_t;

/* Runs until *stop is set (then finishes or aborts the batch in flight,
 * commits, leaves the group and returns SD_OK), until a replay caught up
 * (SD_OK, everything committed) or until a fatal error.  `stats->caught_up`
 * tells a stopped replay from a finished one. */
sd_err_t sd_pipeline_run(const sd_pipeline_config_t *cfg, sd_store_t *store,
                         volatile sig_atomic_t *stop, sd_pipeline_stats_t *stats,
                         sd_error_t *err);

#endif
