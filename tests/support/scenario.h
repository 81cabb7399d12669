/* One end-to-end scenario, the shape of every pipeline, fault, recovery
 * and real-broker test: a broker with topics of its own, a seeded workload
 * (sent at once, or by the test in parts with pfx_send), a store, and, once
 * pipelines (pipefx.h) or sessiond processes have run over them, what the
 * store holds and what the output topics carried checked against the
 * reference model.  Every failure names the scenario and its seed
 * (SESSIOND_TEST_SEED=N replays it). */
#ifndef SESSIOND_SCENARIO_H
#define SESSIOND_SCENARIO_H

#include "pipefx.h"

typedef struct fx_scenario_spec {
    const char *what;   /* named in every failure, before the seed */
    uint64_t seed;      /* the default; SESSIOND_TEST_SEED replaces it */
    size_t tasks;       /* of the workload; 0: none */
    int partitions;     /* of each topic; 0: 4 */
    int unsent;         /* the test sends the workload itself */
    int private_broker; /* one the test may pause and restart (kafkafx.h) */
    const char *store;  /* opened (created) as s->store; NULL: none */
    fx_order_t order;   /* how far versions may go back in emission order
                         * (storefx.h); exactly-once on Apache Kafka
                         * isolates what a cut member held, so there
                         * FX_LATE_AFTER_CUTS counts as FX_ACROSS_PARTITIONS */
} fx_scenario_spec_t;

typedef struct fx_scenario {
    uint64_t seed;
    fx_order_t order;
    char ctx[256]; /* "<what>, seed N" */
    fx_kafka_t *kafka;
    published_t pub;
    sd_store_t *store;
    /* what fx_scenario_expect() read, for further checks; freed at the end */
    seen_t out, dlq;
    sd_change_list_t changes;
} fx_scenario_t;

void fx_scenario_begin(fx_scenario_t *s, fx_scenario_spec_t spec);

/* Checks that the scenario converged: s->store equals the model at `now`;
 * the output topic's changes fold to it, each with its headers, their
 * versions growing per session (but for late changes, if the spec
 * allows them and exactly_once is not isolated); a change
 * seen twice there is an exact copy (exactly-once on Apache Kafka: none is
 * seen twice); the dead-letter topic holds every invalid message sent and
 * no valid one (exactly-once on Apache Kafka: each once).  Returns how many
 * changes were seen again. */
size_t fx_scenario_expect(fx_scenario_t *s, int64_t now, int exactly_once);

/* Frees what the scenario holds: store, workload, what was read, topics. */
void fx_scenario_end(fx_scenario_t *s);

#endif
