/* The Prometheus text exposition (format 0.0.4) of what the pipeline
 * counts. */
#ifndef SESSIOND_METRICS_H
#define SESSIOND_METRICS_H

#include <stdint.h>

#include "sessiond/pipeline.h"

/* malloc'd text, or NULL when out of memory.  start_ms: process start. */
char *sd_metrics_render(const sd_pipeline_stats_t *stats, int64_t start_ms, const char *version);

#endif
