/* The HTTP server of `sessiond run` (libmicrohttpd, one thread of its
 * own): /healthz, /readyz, /metrics and the seed service's session API. */
#ifndef SESSIOND_HTTP_H
#define SESSIOND_HTTP_H

#include <stdint.h>

#include "sessiond/pipeline.h"
#include "sessiond/producer.h"
#include "sessiond/store.h"

typedef struct sd_http_config {
    const char *addr;               /* "HOST:PORT"; port 0 picks a free one */
    const char *token;              /* DELETE needs "Authorization: Bearer <token>"; NULL: open */
    const sd_store_config_t *store; /* the API opens its own handle */
    sd_pipeline_stats_t *stats;     /* readiness and metrics */
    const sd_kafka_settings_t *kafka; /* DELETE publishes with a producer of its own */
    const char *input_topic;          /* where DELETE publishes */
    int64_t (*now_ms)(void *arg);
    void *clock_arg;
} sd_http_config_t;

typedef struct sd_http sd_http_t;

/* Opens its store handle and producer and listens; logs the address. */
sd_err_t sd_http_start(const sd_http_config_t *cfg, sd_http_t **out, sd_error_t *err);
void sd_http_stop(sd_http_t *h);

#endif
