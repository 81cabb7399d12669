/* What the pipeline counts, for readiness, metrics, summaries and tests.
 *
 * One writer (the pipeline's thread) and any number of readers: every
 * number is an atomic, and a labelled slot (a topic, a reason, a
 * partition) is filled in before its family's count is raised, so a
 * reader never sees half a slot.  Zero-initialised; nothing to free. */
#ifndef SESSIOND_STATS_H
#define SESSIOND_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sessiond/change.h"
#include "sessiond/error.h"
#include "sessiond/event.h"
#include "sessiond/rules.h"

#define SD_STATS_TOPICS 32
#define SD_STATS_REASONS 32
#define SD_STATS_PARTITIONS 1024
#define SD_STATS_BUCKETS 12
#define SD_STATS_INVALID SD_EVENT_TYPE_COUNT /* events[] index of unparsable events */

/* Upper bounds of the batch apply duration histogram, in seconds. */
extern const double sd_stats_bucket_bounds[SD_STATS_BUCKETS];

typedef struct sd_stats_topic {
    char name[256];
    atomic_long events[SD_EVENT_TYPE_COUNT + 1]; /* by event_type; last: invalid */
} sd_stats_topic_t;

typedef struct sd_stats_reason {
    char name[64];
    atomic_long count;
} sd_stats_reason_t;

typedef struct sd_stats_lag {
    int topic; /* index into topics[] */
    int32_t partition;
    atomic_llong lag; /* messages behind the high watermark; -1: not known or not ours */
} sd_stats_lag_t;

typedef struct sd_pipeline_stats {
    atomic_int assigned_partitions;
    atomic_int store_ok;
    atomic_int kafka_ok;
    /* what Kafka last failed with, for readiness (sd_stats_kafka_failed) */
    atomic_int problem_lock; /* 0 free, 1 held: a spinlock around problem */
    char kafka_problem[320];
    atomic_int paused;
    atomic_long events;        /* consumed */
    atomic_long applied;       /* changed the store */
    atomic_long unchanged;
    atomic_long ignored_by[SD_IGNORE_SCRAPING + 1]; /* by sd_ignore_t */
    atomic_long dead_lettered;
    atomic_long changes_by_type[SD_CHANGE_EXPIRED + 1]; /* produced, expiries included */
    atomic_long expiry_events; /* published by the sweeper (sweeper.h) */
    atomic_long sweep_errors;
    atomic_long store_errors[SD_ERR_FATAL + 1]; /* by class: transient, event, fatal */
    atomic_long batches;
    atomic_long rebalances;
    atomic_long transactions_committed;
    atomic_long transactions_aborted;
    atomic_int caught_up;      /* a replay reached its end offsets */
    /* progress, for readiness (the pipeline's thread may be blocked in a
     * call to Kafka or the store while others read it) */
    atomic_llong progress_ms;  /* monotonic: a batch committed, the partitions
                                * found caught up, or an assignment */
    atomic_llong stall_ms;     /* the pipeline's stall_ms (0: never stalled) */
    atomic_int partitions_lost; /* lost, and not assigned again since */
    atomic_long rejoins;       /* times it gave its partitions back */

    /* batch apply duration */
    atomic_long batch_buckets[SD_STATS_BUCKETS + 1]; /* last: above every bound */
    atomic_llong batch_us_sum;

    sd_stats_topic_t topics[SD_STATS_TOPICS];
    atomic_int n_topics;
    sd_stats_reason_t dead_reasons[SD_STATS_REASONS];
    atomic_int n_dead_reasons;
    sd_stats_lag_t lags[SD_STATS_PARTITIONS];
    atomic_int n_lags;
} sd_pipeline_stats_t;

/* How long the member has held partitions without progress, in ms, at
 * monotonic time now; 0 when it holds none or progressed within its
 * stall_ms. */
int64_t sd_stats_stalled_ms(const sd_pipeline_stats_t *s, int64_t now);

/* Events that went through the store, whatever became of them. */
long sd_stats_processed(const sd_pipeline_stats_t *s);
/* Totals of the per-reason and per-type counts. */
long sd_stats_ignored(const sd_pipeline_stats_t *s);
long sd_stats_changes(const sd_pipeline_stats_t *s);

/* Kafka failed: not ready, saying "what: why" (why may be NULL). */
void sd_stats_kafka_failed(sd_pipeline_stats_t *s, const char *what, const char *why);
/* The last of those, into buf. */
void sd_stats_kafka_problem(sd_pipeline_stats_t *s, char *buf, size_t cap);

/* Writer side. */
void sd_stats_event(sd_pipeline_stats_t *s, const char *topic, int event_type);
void sd_stats_dead_letter(sd_pipeline_stats_t *s, const char *reason);
void sd_stats_batch_applied(sd_pipeline_stats_t *s, int64_t duration_us);
/* Consumer lag per partition from librdkafka's statistics JSON (its
 * stats_cb); partitions it no longer reports as fetched go back to -1. */
void sd_stats_lag_from_json(sd_pipeline_stats_t *s, const char *json, size_t len);

#endif
