/* Harness for the pipeline tests: the mock cluster hosted in the test,
 * a seeded workload published to it, sd_pipeline_run() in a thread, and
 * everything a consumer of the output topics saw. */
#ifndef SESSIOND_PIPEFX_H
#define SESSIOND_PIPEFX_H

#include <pthread.h>

#include "fixtures.h"
#include "sessiond/clock.h"
#include "sessiond/pipeline.h"
#include "sessiond/workload.h"
#include "storefx.h"

#define PFX_NOW INT64_C(1772366400000) /* 2026-03-01T12:00:00Z */
#define PFX_TTL (INT64_C(7) * 24 * 3600 * 1000)

typedef struct run {
    sd_pipeline_config_t cfg;
    sd_store_t *store;
    volatile sig_atomic_t stop;
    sd_pipeline_stats_t stats;
    sd_err_t rc;
    sd_error_t err;
    pthread_t thread;
    atomic_llong now; /* the pipeline's clock: a test may move it */
} run_t;

/* Fills r->cfg for kafka and store (at-least-once, group `group`); the
 * caller may change r->cfg before pfx_go(). */
void pfx_prepare(run_t *r, sd_embedded_t *kafka, sd_store_t *store, const char *group);
void pfx_go(run_t *r);
/* pfx_prepare + pfx_go */
void pfx_start(run_t *r, sd_embedded_t *kafka, sd_store_t *store, const char *group);
/* Waits until the pipeline consumed `events` and went quiet (60 s at most). */
void pfx_wait_consumed(run_t *r, long events);
/* Waits until `group` committed every partition of the input topic to its
 * end (60 s at most): every event was applied by some member. */
void pfx_wait_committed(sd_embedded_t *kafka, const char *group);

/* Stops it; fails the test if it ended on an error. */
void pfx_finish(run_t *r);

typedef struct seen {
    char **values;
    char **headers; /* "name=value;…" */
    size_t count;
} seen_t;

void pfx_read_topic(sd_embedded_t *kafka, const char *topic, seen_t *out);
void pfx_seen_free(seen_t *s);
/* Parses what a topic of changes held; checks each has its headers. */
void pfx_parse_changes(const seen_t *seen, sd_change_list_t *changes);

typedef struct published {
    sd_workload_t workload;
    fx_events_t valid;
    size_t invalid; /* invalid messages sent */
    size_t sent;    /* messages, duplicates included */
} published_t;

/* Generates a seeded workload (3 % invalid lines) and sends all of it. */
void pfx_publish(sd_embedded_t *kafka, uint64_t seed, size_t tasks, published_t *out);
/* The two halves of pfx_publish: generate, then send lines [from, to)
 * (every tenth twice), counting what was sent in *pub. */
void pfx_generate(uint64_t seed, size_t tasks, const char *id_prefix, published_t *out);
void pfx_send(sd_embedded_t *kafka, published_t *pub, size_t from, size_t to);
void pfx_published_free(published_t *p);

/* The mock cluster with 3 brokers and the three topics, 4 partitions
 * (or the given number; the helpers above follow the last one started). */
sd_embedded_t *pfx_start_kafka(void);
sd_embedded_t *pfx_start_kafka_with(int partitions);

uint64_t pfx_seed(uint64_t dflt);

#endif
