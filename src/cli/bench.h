/* What the files of `sessiond bench` share (src/cli/): the workload in
 * chunks, where its events live, what the pipeline was seen to do, the
 * results.  cmd_bench.c runs the phases; bench_report.c prints them;
 * bench_ceiling.c measures the store alone on the pipeline's batches;
 * bench_broker.c runs the embedded broker in a process of its own;
 * bench_kafka.c makes the run's topics on a real cluster and measures its
 * read limit; bench_latency.c measures end-to-end latency there. */
#ifndef SESSIOND_BENCH_H
#define SESSIOND_BENCH_H

#include <stdio.h>
#include <sys/types.h>

#include "sessiond/clock.h"
#include "sessiond/kafka.h"
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

/* ---- where the events live ---- */

/* The embedded broker's topics, or (real) topics of the run's own on the
 * cluster --brokers names. */
typedef struct bench_target {
    sd_kafka_settings_t kafka;
    char input[96], dlq[96];
    char output[2][96]; /* the changes: at-least-once, exactly-once */
    /* a real cluster: the latency measurement's events and changes, per
     * mode (a topic each: one mode's events are no backlog for the other) */
    char latency_input[2][96], latency_output[2][96];
    char group[64];     /* the prefix of the run's consumer groups */
    int real;
} bench_target_t;

/* Names t's topics: the embedded broker's fixed ones, or the run's own. */
void bench_target_name(bench_target_t *t, int real);

/* Publishes the workload's first `events` to t's input topic, each to the
 * partition its key hashes to (c.partitions of them), and waits until the
 * brokers have them all. */
sd_err_t bench_publish(const bench_target_t *t, chunks_t c, size_t events, sd_error_t *err);

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

#define BENCH_MAX_RATES 8

/* End-to-end latency at one offered rate. */
typedef struct latency_figures {
    double rate;   /* events a second offered */
    size_t samples;
    double p50_ms, p99_ms, p999_ms, max_ms;
    int sustained; /* every change arrived within a second of the last send */
} latency_figures_t;

/* The pipeline in one delivery mode. */
typedef struct pipeline_figures {
    double eps, p50_ms, p99_ms; /* throughput; batch latency, applying to committed */
    /* its wall time per event: collecting a batch, the store's apply, and
     * the rest (parsing, changes out, delivery, commit) */
    double collect_us, apply_us, rest_us;
    double cpu_us;  /* this process's CPU per event, every thread */
    long rss_kib;   /* this process's peak RSS during the phase */
} pipeline_figures_t;

typedef struct results {
    const char *store_kind, *ids;
    const char *brokers; /* a real cluster's bootstrap servers, or NULL: embedded */
    size_t events;
    size_t batch_max;   /* the pipeline's */
    int32_t partitions; /* of the input topic */
    int64_t now;        /* the clock of every phase */
    double core_eps, store_eps;
    double read_eps;              /* a real cluster: the read limit */
    pipeline_figures_t alo, eos;  /* at-least-once; exactly-once on a real cluster */
    /* a real cluster, per mode (at-least-once, exactly-once): latency at
     * each of the offered rates, and the highest rate kept up with */
    latency_figures_t latency[2][BENCH_MAX_RATES];
    size_t n_rates;
    int64_t latency_ms; /* each rate offered this long */
    double sustained_eps[2];
    double store_eps_at[3]; /* over the tenth of the run ending at 10 %, 50 %, 100 % */
    double store_cpu_us;    /* this thread's CPU per event inside the store's apply */
    sd_store_io_t io;       /* during the store ceiling */
    size_t io_events;       /* applied during the store ceiling */
    int64_t file_bytes, sessions; /* SQLite: the ceiling's file once closed */
    long broker_rss_kib; /* the embedded broker's process */
} results_t;

/* ---- the report (bench_report.c) ---- */

void bench_print_table(const results_t *r, const char *machine_text);
/* One JSON object on stdout; returns the exit status (1: out of memory). */
int bench_print_json(const results_t *r, const char *machine_text);

/* ---- the store ceiling (bench_ceiling.c) ---- */

/* Reads every batch the pipeline applied back from t's input into *spool. */
sd_err_t bench_spool_batches(const bench_target_t *t, int32_t partitions, const observed_t *o,
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
/* Stops it (b->pid becomes 0); returns its peak RSS in KiB. */
long bench_broker_child_stop(broker_child_t *b);

/* ---- a real cluster (bench_kafka.c) ---- */

/* Creates t's topics (c.partitions each) and publishes the workload. */
sd_err_t bench_kafka_prepare(const bench_target_t *t, chunks_t c, size_t events, sd_error_t *err);
/* Deletes t's topics; says on stderr what it could not delete. */
void bench_kafka_cleanup(const bench_target_t *t);
/* The read limit: a consumer with sessiond's settings reading t's input
 * (its `partitions` assigned, from the start) and doing nothing else; *eps
 * from the assignment to its `events`th message. */
sd_err_t bench_read_limit(const bench_target_t *t, int32_t partitions, size_t events,
                          double *eps, sd_error_t *err);
/* A consumer with sessiond's settings (sd_kafka_conf), in the group
 * <t->group>-<group_suffix> (never joined: bench_assign() gives it its
 * partitions) with extra key, value pairs (NULL-terminated, at most six
 * pairs).  *out is the caller's to destroy. */
sd_err_t bench_consumer(const bench_target_t *t, const char *group_suffix,
                        const char *const *extra, rd_kafka_t **out, sd_error_t *err);
/* Assigns rk every partition of topic, from offset. */
sd_err_t bench_assign(rd_kafka_t *rk, const char *topic, int32_t partitions, int64_t offset,
                      sd_error_t *err);

/* End-to-end latency in one mode, with the pipeline running on t's
 * latency topics: from each event's sending (its time is in its event_id)
 * to its change reaching a read_committed consumer, `seconds` at each of
 * the rates into out[], then the highest rate at which every change
 * arrives within a second of the last send (from 2,000 a second, doubling
 * until one is not kept up with, then halving the gap three times), for
 * half of `seconds` each. */
sd_err_t bench_latency(const bench_target_t *t, sd_delivery_t delivery, int32_t partitions,
                       int64_t now, const double *rates, size_t n_rates, double seconds,
                       latency_figures_t *out, double *sustained_eps, sd_error_t *err);

#endif
