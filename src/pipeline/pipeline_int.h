/* What the files of the pipeline share: the state of one sd_pipeline_run()
 * and the steps pipeline.c strings together.  Not a public header; all of
 * it runs on the pipeline's own thread.
 *
 *   source.c     where batches come from: the live group, or a replay
 *   collect.c    the batch in flight: collecting it, dropping revoked parts
 *   rebalance.c  assignments and revocations
 *   outage.c     pausing the partitions and backing off while a store or
 *                broker is away
 *   apply.c      parsing a batch and applying it through the store
 *   deliver.c    producing its changes and committing its offsets
 *                (at-least-once, or one transaction), and the failpoints
 *   progress.c   whether the member makes progress on its partitions
 *   pipeline.c   the loop, the consumer (and joining again), the expiry
 *                sweeper's turns */
#ifndef SESSIOND_PIPELINE_INT_H
#define SESSIOND_PIPELINE_INT_H

#include <signal.h>

#include "sessiond/outgoing.h"
#include "sessiond/pipeline.h"
#include "sessiond/producer.h"

typedef struct batch {
    rd_kafka_message_t **msgs;
    size_t count;
    size_t cap;
    size_t bytes; /* of the messages' values */
} batch_t;

typedef struct pipeline pipeline_t;

/* Where batches come from (source.c): the live group, read until the
 * pipeline is stopped, or a replay, read up to the ends taken when it
 * began.  The loop asks its source at these points and has no branch of
 * its own for either. */
typedef struct pl_source {
    int partition_eof; /* the consumer reports each partition's end */
    int watched;       /* sweeps, the stall watch and rejoins apply */
    /* Before each message is collected: SD_OK, or the fatal reason the
     * source cannot go on. */
    sd_err_t (*check)(pipeline_t *p, sd_error_t *err);
    /* Nothing more to read: the loop ends once the offsets are committed. */
    int (*finished)(const pipeline_t *p);
    /* Partitions assigned: sets where each starts. */
    void (*assigned)(pipeline_t *p, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts);
    /* Partitions taken away while the member is not closing. */
    void (*revoked)(pipeline_t *p);
    /* Whether m (a message, or a partition's end) joins the batch. */
    int (*take)(pipeline_t *p, const rd_kafka_message_t *m);
    /* A batch was rewound: its partitions are read again from start. */
    void (*rewound)(pipeline_t *p, rd_kafka_topic_partition_list_t *start);
} pl_source_t;

struct pipeline {
    const sd_pipeline_config_t *cfg;
    const pl_source_t *source;
    struct pl_replay *replay; /* the replay source's state (source.c) */
    int emit;                 /* produce changes and dead letters */
    sd_store_t *store;
    rd_kafka_t *consumer;
    sd_producer_t *producer;
    /* exactly-once: the sweeper's expiry events go out on an idempotent
     * producer of their own, not in transactions, so the input topic
     * holds no transaction markers (its lag reaches 0) */
    sd_producer_t *expiry_producer;
    volatile sig_atomic_t *stop;
    sd_pipeline_stats_t *stats;
    batch_t batch;
    rd_kafka_topic_partition_list_t *uncommitted; /* offsets a commit failed on */
    int64_t uncommitted_tried; /* monotonic ms */
    int paused;
    int ever_assigned;
    int closing;
    int cooperative; /* the group's rebalance protocol, as last answered */
    int behind; /* the last batch was full: there is a backlog */
    int64_t backoff_ms;
    int64_t next_sweep; /* monotonic ms */
    int64_t last_probe; /* monotonic ms; progress.c */
    int stall_logged;
    /* what the failpoints count (failpoint.c) */
    long batch_no;      /* batches applied */
    long expiry_sweeps; /* sweeps that published expiry events */
};

/* The rules' clock (injectable); batching and backoff use the monotonic clock. */
static inline int64_t pl_now_ms(const pipeline_t *p)
{
    return p->cfg->now_ms(p->cfg->clock_arg);
}

/* collect.c */
sd_err_t pl_collect(pipeline_t *p, sd_error_t *err);
void pl_batch_clear(batch_t *b);
void pl_batch_drop(batch_t *b, const rd_kafka_topic_partition_list_t *parts);
rd_kafka_topic_partition_list_t *pl_batch_offsets(const batch_t *b, int next);

/* rebalance.c */
void pl_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                     rd_kafka_topic_partition_list_t *parts, void *opaque);
/* Where the live group's assigned partitions start: their committed
 * offsets, once no transaction holds them (the live source's `assigned`). */
void pl_start_at_stable_offsets(pipeline_t *p, rd_kafka_t *rk,
                                rd_kafka_topic_partition_list_t *parts);

/* source.c: picks the source cfg->replay says (and sets emit); fails only
 * out of memory.  pl_source_close() frees what it holds. */
sd_err_t pl_source_open(pipeline_t *p, sd_error_t *err);
void pl_source_close(pipeline_t *p);

/* outage.c */
void pl_back_off(pipeline_t *p, const char *what, const sd_error_t *err);
void pl_resume_all(pipeline_t *p);

/* apply.c */
sd_err_t pl_apply_batch(pipeline_t *p, sd_outgoing_t **out, size_t *n_out, size_t *n_changes,
                        sd_error_t *err);

/* deliver.c */
sd_err_t pl_start_producer(pipeline_t *p, sd_error_t *err);
sd_err_t pl_after_fencing(pipeline_t *p, int64_t began, sd_error_t *err);
sd_err_t pl_publish_and_commit(pipeline_t *p, const sd_outgoing_t *msgs, size_t n,
                               sd_error_t *err);
sd_err_t pl_transact(pipeline_t *p, const sd_outgoing_t *msgs, size_t n, sd_error_t *err);
void pl_retry_uncommitted(pipeline_t *p);

/* Failpoints, for the crash tests: the steps of a batch where a test may
 * have the process killed or stopped.  The product links failpoint_none.c,
 * where both do nothing; only the test build's sessiond-testhooks links
 * failpoint.c, which reads SESSIOND_FAILPOINT (SQLite keeps its test hooks
 * out of the library the same way). */
/* Reads the failpoint of this run, if any: once, before the first batch. */
void pl_failpoint_arm(void);
/* Fires the failpoint if it names `where` and its count is n (n_msgs is
 * logged).  Returns only if it does not fire, or after SIGCONT. */
void pl_failpoint(const pipeline_t *p, const char *where, long n, size_t n_msgs);

/* progress.c */
void pl_progress(pipeline_t *p);
/* Idle (nothing collected), asks the partitions' leaders whether they are
 * caught up, once in a while when there was no progress. */
void pl_probe_if_idle(pipeline_t *p);
/* Whether to give the partitions back: held without progress for
 * cfg->rejoin_after_ms.  Loops that wait out an outage drop their batch
 * (nothing of it committed) and return to the main loop, which rejoins. */
int pl_rejoin_due(const pipeline_t *p);

/* pipeline.c */
int pl_sweep_due(const pipeline_t *p);

#endif
