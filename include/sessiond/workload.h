/* Seeded, realistic task-event workloads (the demo, the bench and the
 * tests): every task type, short_ids shared by several tasks, completions,
 * failures, cancellations, saves before and after creates, regenerations,
 * manual deletes, duplicate creates with other ids, sessions old enough to
 * expire, and optionally invalid events.  Same parameters, same events. */
#ifndef SESSIOND_WORKLOAD_H
#define SESSIOND_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/error.h"

typedef struct sd_rng {
    uint64_t state;
} sd_rng_t;

void sd_rng_seed(sd_rng_t *rng, uint64_t seed);
uint64_t sd_rng_next(sd_rng_t *rng);
/* Uniform in [0, bound); bound > 0. */
uint64_t sd_rng_below(sd_rng_t *rng, uint64_t bound);
/* 1 with probability percent/100. */
int sd_rng_chance(sd_rng_t *rng, unsigned percent);

/* How ids look: sequential ("task-000042", which keeps a B-tree's writes
 * in one place) or random UUID v4, as most producers send them. */
typedef enum sd_workload_ids { SD_IDS_SEQUENTIAL = 0, SD_IDS_UUID } sd_workload_ids_t;

typedef struct sd_workload_params {
    uint64_t seed;
    size_t tasks;
    int64_t now_ms;          /* events fall within the two weeks before it */
    int64_t ttl_ms;          /* some sessions are made older than this */
    unsigned invalid_percent; /* share of extra invalid lines; 0 for none */
    const char *id_prefix;   /* keeps workloads of one store apart; "" */
    sd_workload_ids_t ids;   /* with SD_IDS_UUID the prefix salts the ids instead */
} sd_workload_params_t;

typedef struct sd_workload_line {
    char *json;
    int valid;
    char *key; /* the Kafka key: task_id, or short_id for saves; NULL if invalid */
} sd_workload_line_t;

typedef struct sd_workload {
    sd_workload_line_t *lines;
    size_t count;
    size_t cap;
} sd_workload_t;

/* Generates the events of p->tasks tasks, in a shuffled order. */
sd_err_t sd_workload_generate(const sd_workload_params_t *p, sd_workload_t *out,
                              sd_error_t *err);
void sd_workload_free(sd_workload_t *w);

#endif
