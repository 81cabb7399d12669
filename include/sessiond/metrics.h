/* The Prometheus text exposition (format 0.0.4) of what the pipeline
 * counts. */
#ifndef SESSIOND_METRICS_H
#define SESSIOND_METRICS_H

#include <stdint.h>

#include "sessiond/stats.h"
#include "sessiond/store.h"

typedef struct sd_metrics_input {
    const sd_pipeline_stats_t *stats;
    int64_t start_ms; /* process start */
    int64_t monotonic_ms; /* now, on the clock of stats->progress_ms */
    const char *version;
    int live_known; /* live[] holds a sample of live sessions by task type */
    const sd_type_count_t *live;
    size_t n_live;
    int ready; /* 1 when /readyz answers 200, else 0: rendered as sessiond_ready */
} sd_metrics_input_t;

/* malloc'd text, or NULL when out of memory. */
char *sd_metrics_render(const sd_metrics_input_t *in);

#endif
