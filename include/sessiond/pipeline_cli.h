/* What `sessiond run` and `sessiond replay` share on the command line:
 * the pipeline's flags, their checks, the store and the signals. */
#ifndef SESSIOND_PIPELINE_CLI_H
#define SESSIOND_PIPELINE_CLI_H

#include <signal.h>

#include "sessiond/config.h"
#include "sessiond/kafka_preflight.h"
#include "sessiond/pipeline.h"

#define SD_MAX_INPUTS 32

typedef struct sd_pipeline_cli {
    sd_pipeline_config_t cfg;
    sd_store_config_t store;
    const char *brokers, *inputs, *delivery, *log_level;
    int64_t batch_max, batch_bytes;
    int64_t startup_timeout_ms;
    sd_props_t props;
    /* filled by sd_pipeline_cli_finish() */
    char *input_list;
    const char *topics[SD_MAX_INPUTS];
    char dlq[300], txid[300];
} sd_pipeline_cli_t;

/* Defaults; the clock the rules see is the wall clock (SESSIOND_NOW
 * freezes it, see config.h). */
void sd_pipeline_cli_init(sd_pipeline_cli_t *c, const char *default_group);

#define SD_PIPELINE_OPTIONS(c)                                                                    \
    {"brokers", SD_OPT_STRING, &(c)->brokers, "HOSTS", "Kafka bootstrap servers (run: or embedded)", NULL}, \
    {"input-topics", SD_OPT_STRING, &(c)->inputs, "T,…",                                          \
     "topics to consume; ^regex subscribes by pattern (default task-events)", NULL},              \
    {"output-topic", SD_OPT_STRING, &(c)->cfg.output_topic, "T",                                  \
     "session changes (default session-changes)", NULL},                                          \
    {"dlq-topic", SD_OPT_STRING, &(c)->cfg.dlq_topic, "T",                                        \
     "dead letters (default <first input>.dlq)", NULL},                                           \
    {"delivery", SD_OPT_STRING, &(c)->delivery, "MODE",                                           \
     "at-least-once (default) or exactly-once", NULL},                                            \
    {"transactional-id", SD_OPT_STRING, &(c)->cfg.transactional_id, "ID",                         \
     "exactly-once: the producer's transactional.id (default sessiond-<group>-<host>)", NULL},    \
    {"batch-max", SD_OPT_INT, &(c)->batch_max, "N", "events per batch at most (default 10000)",   \
     NULL},                                                                                       \
    {"batch-bytes", SD_OPT_INT, &(c)->batch_bytes, "N",                                           \
     "bytes of events per batch at most (default 4194304, 4 MiB)", NULL},                         \
    {"batch-ms", SD_OPT_DURATION, &(c)->cfg.batch_ms, "D",                                        \
     "longest wait to fill a batch (default 50ms)", NULL},                                        \
    {"backoff-max", SD_OPT_DURATION, &(c)->cfg.backoff_max_ms, "D",                               \
     "longest retry wait in an outage (default 30s)", NULL},                                      \
    {"log-level", SD_OPT_STRING, &(c)->log_level, "L", "debug, info (default), warn or error",    \
     NULL},                                                                                       \
    SD_STARTUP_TIMEOUT_OPTION(&(c)->startup_timeout_ms),                                          \
    SD_STORE_OPTIONS(&(c)->store)

/* Checks the options and completes c->cfg (topics, DLQ, transactional
 * id, delivery, log level); SD_ERR_INVALID with a message otherwise. */
sd_err_t sd_pipeline_cli_finish(sd_pipeline_cli_t *c, sd_error_t *err);

/* The start-up check of the brokers (kafka_preflight.h) for the input
 * topics (as a writer when writes_input) and, when the command produces,
 * the output and dead-letter topics.  SD_ERR_FATAL (logged, err set)
 * stops the command; brokers that do not answer in time are logged and
 * retried by the pipeline (SD_OK). */
sd_err_t sd_pipeline_cli_preflight(const sd_pipeline_cli_t *c, int writes_input, int produces,
                                   sd_error_t *err);

/* Opens the store and makes sure of its schema, logging where it is
 * (passwords masked). */
sd_err_t sd_pipeline_cli_open_store(const sd_pipeline_cli_t *c, sd_store_t **out,
                                    sd_error_t *err);

/* A replay's own consumer group, sessiond-replay-<host>-<pid>, written to
 * buf: replays of other topics or into other stores may run at the same
 * time, and a shared group would split the partitions between them. */
const char *sd_pipeline_cli_replay_group(char *buf, size_t cap);

/* What a replay reads: every input partition from from_ms
 * (SD_FROM_EARLIEST or a time) up to where it ends now.  Checks the
 * brokers first (the output topics too when it produces) and that
 * c->cfg.group has no member: a replay must be its only one.  Fills
 * bounds->start and bounds->end, which the caller frees
 * (rd_kafka_topic_partition_list_destroy), and *to_read, the events
 * between them. */
sd_err_t sd_pipeline_cli_replay_range(const sd_pipeline_cli_t *c, int64_t from_ms, int produces,
                                      sd_replay_bounds_t *bounds, long *to_read, sd_error_t *err);

/* SIGTERM and SIGINT set the returned flag; a second one exits at once. */
volatile sig_atomic_t *sd_pipeline_cli_trap_signals(void);

void sd_pipeline_cli_free(sd_pipeline_cli_t *c);

#endif
