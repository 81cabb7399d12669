/* Harness for the pipeline tests: a broker (kafkafx.h), a seeded
 * workload published to it, the pipeline on its thread
 * (sd_pipeline_thread_t, whose clock a test may move), and everything a
 * consumer of the output topics saw.  scenario.h strings these together. */
#ifndef SESSIOND_PIPEFX_H
#define SESSIOND_PIPEFX_H

#include "fixtures.h"
#include "kafkafx.h"
#include "sessiond/clock.h"
#include "sessiond/pipeline_thread.h"
#include "sessiond/workload.h"
#include "storefx.h"

#define PFX_NOW INT64_C(1772366400000) /* 2026-03-01T12:00:00Z */
#define PFX_TTL (INT64_C(7) * 24 * 3600 * 1000)

/* Fills r for kafka's topics and store (at-least-once, group `group` with
 * kafka's prefix, the clock at PFX_NOW); the caller may change r->cfg
 * before pfx_go(). */
void pfx_prepare(sd_pipeline_thread_t *r, fx_kafka_t *kafka, sd_store_t *store,
                 const char *group);
/* Exactly-once with transactional id `txid` (prefixed likewise). */
void pfx_exactly_once(sd_pipeline_thread_t *r, fx_kafka_t *kafka, const char *txid);
void pfx_go(sd_pipeline_thread_t *r);
/* pfx_prepare + pfx_go */
void pfx_start(sd_pipeline_thread_t *r, fx_kafka_t *kafka, sd_store_t *store, const char *group);
/* Waits until the pipeline consumed `events` and went quiet (60 s at most). */
void pfx_wait_consumed(sd_pipeline_thread_t *r, long events);
/* Waits until `group` (prefixed) committed every partition of the input
 * topic to its end (60 s at most): every event was applied by some member. */
void pfx_wait_committed(fx_kafka_t *kafka, const char *group);
/* The same within ms; returns whether it did. */
int pfx_committed_within(fx_kafka_t *kafka, const char *group, long ms);

/* Stops it; fails the test if it ended on an error. */
void pfx_finish(sd_pipeline_thread_t *r);

typedef struct seen {
    char **values;
    char **headers; /* "name=value;…" */
    size_t count;
} seen_t;

/* Everything the topic holds, as a read_committed consumer sees it (on
 * the mock, which has no transaction isolation: everything). */
void pfx_read_topic(const fx_kafka_t *kafka, const char *topic, seen_t *out);
/* The same with isolation.level read_committed or read_uncommitted. */
void pfx_read_topic_as(const fx_kafka_t *kafka, const char *topic, const char *isolation,
                       seen_t *out);
void pfx_seen_free(seen_t *s);
/* Two changes on the topic with one change_id must be exact copies; with
 * exactly_once, there must be none.  Returns how many were repeated. */
size_t pfx_expect_repeats(const seen_t *seen, int exactly_once, const char *context);
/* Parses what a topic of changes held; checks each has its headers. */
void pfx_parse_changes(const seen_t *seen, sd_change_list_t *changes);

typedef struct published {
    sd_workload_t workload;
    fx_events_t valid;
    size_t invalid; /* invalid messages sent */
    size_t sent;    /* messages, duplicates included */
    size_t lines;   /* of the workload sent, from the first on */
} published_t;

/* A seeded workload (3 % invalid lines); then lines [from, to) of it sent
 * (every tenth twice), counted in *pub. */
void pfx_generate(uint64_t seed, size_t tasks, published_t *out);
void pfx_send(fx_kafka_t *kafka, published_t *pub, size_t from, size_t to);
void pfx_published_free(published_t *p);

uint64_t pfx_seed(uint64_t dflt);

/* The main() of a Kafka suite: `program sqlite|mongodb [mock|kafka]`
 * (fx_store_suite_main with the broker kind). */
int pfx_suite_main(int argc, char **argv, const char *program, const char *tcase_name,
                   int timeout_s, void (*add_tests)(TCase *tc));

#endif
