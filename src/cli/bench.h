/* What the files of `sessiond bench` share (src/cli/): the workload in
 * chunks, what the pipeline was seen to do, the results.  cmd_bench.c runs
 * the phases and reports; bench_ceiling.c measures the store alone on the
 * pipeline's batches; bench_broker.c runs the embedded broker in a process
 * of its own. */
#ifndef SESSIOND_BENCH_H
#define SESSIOND_BENCH_H

#include <stdio.h>
#include <sys/types.h>

#include "sessiond/clock.h"
#include "sessiond/pipeline.h"
#include "sessiond/store_backend.h"
#include "sessiond/workload.h"

#define CHUNK_TASKS 2500

static inline double bench_now_s(void) { return (double)sd_monotonic_us() / 1e6; }

/* ---- the workload, chunk by chunk ---- */

typedef struct chunks {
    int64_t now, ttl;
    sd_workload_ids_t ids;
    int32_t partitions; /* of the input topic */
    size_t index;
    char prefix[32];
} chunks_t;

sd_err_t bench_next_chunk(chunks_t *c, sd_workload_t *w, sd_error_t *err);

/* The partition an event goes to: its key's hash, as librdkafka's keyed
 * partitioner picks it (the workload has no invalid events, so every
 * event has a key). */
int32_t bench_partition_of(const char *key, int32_t partitions);

/* Grows *v to hold at least need elements of size bytes; 0 on success. */
int bench_grow(void *v, size_t *cap, size_t need, size_t size);

/* ---- what the pipeline did ---- */

/* Consecutive offsets of one partition, applied in one batch. */
typedef struct run {
    int32_t partition;
    int64_t offset;
    size_t count;
    size_t bytes; /* the payloads' length, to check the ceiling rebuilt the same events */
} run_t;

/* What the pipeline did, batch by batch.  Runs go to a file as they come:
 * with hundreds of partitions a batch holds dozens of short runs, and a
 * list of them would grow sessiond's measured memory with the run. */
typedef struct observed {
    int64_t *us; /* latencies; the first batch waited for the group to form: not counted */
    size_t n_us, us_cap;
    run_t *runs; /* the current batch's */
    size_t n_runs, runs_cap;
    FILE *runs_file; /* every batch's runs, in order */
    size_t *batch_runs, *batch_events; /* per batch */
    size_t n_batches, batches_cap, events_cap;
    int lost; /* recording failed: the ceiling cannot be measured */
    /* where the pipeline's time goes, batches after the first */
    const sd_pipeline_stats_t *stats;
    long long first_apply_us; /* the store's apply of the first batch */
    int64_t applied_to_committed_us;
    size_t timed_events;
} observed_t;

/* ---- the results ---- */

typedef struct results {
    const char *store_kind, *ids;
    size_t events;
    size_t batch_max;   /* the pipeline's */
    int32_t partitions; /* of the input topic */
    int64_t now;        /* the clock of every phase */
    double core_eps, store_eps, pipeline_eps, p50_ms, p99_ms;
    double store_eps_at[3]; /* over the tenth of the run ending at 10 %, 50 %, 100 % */
    double store_cpu_us;    /* this thread's CPU per event inside the store's apply */
    /* the pipeline's wall time per event: collecting a batch, the store's
     * apply, and the rest (parsing, changes out, delivery, commit) */
    double collect_us, apply_us, rest_us;
    sd_store_io_t io;       /* during the store ceiling */
    size_t io_events;       /* applied during the store ceiling */
    int64_t file_bytes, sessions; /* SQLite: the ceiling's file once closed */
    long rss_kib;        /* this process, up to the end of the pipeline phase */
    long broker_rss_kib; /* the embedded broker's process */
} results_t;

/* ---- the store ceiling (bench_ceiling.c) ---- */

/* Reads every batch the pipeline applied back from the broker into *spool. */
sd_err_t bench_spool_batches(const char *bootstraps, int32_t partitions, const observed_t *o,
                             FILE **out, sd_error_t *err);
/* Applies the spooled batches to store, filling r's ceiling figures. */
sd_err_t bench_measure_ceiling(FILE *spool, sd_store_t *store, const observed_t *o,
                               results_t *r, sd_error_t *err);

/* ---- the broker's process (bench_broker.c) ---- */

/* The embedded broker runs in a child process, loaded with the whole
 * workload before the pipeline starts: in production the broker is another
 * machine, so neither its memory (it keeps every message) nor generating
 * and publishing the workload belongs in the pipeline's figures. */

typedef struct broker_child {
    pid_t pid;
    int hold_fd; /* closing it lets the child stop the broker and exit */
    char bootstraps[256];
} broker_child_t;

/* Forks the broker's process, which publishes `events`; b->bootstraps
 * names it. */
sd_err_t bench_broker_child_start(chunks_t c, size_t events, broker_child_t *b, sd_error_t *err);
/* Stops it; returns its peak RSS in KiB. */
long bench_broker_child_stop(broker_child_t *b);

#endif
