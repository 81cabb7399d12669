/* The broker a Kafka suite runs against, chosen by its command line:
 *   mock   librdkafka's mock cluster, hosted in the test process (a new
 *          one per call, three brokers), for request-error injection;
 *   kafka  Apache Kafka: the broker the ctest fixture started (its
 *          directory in SESSIOND_TEST_KAFKA_DIR, or any cluster named by
 *          SESSIOND_TEST_KAFKA), shared by every test that runs at the same
 *          time, or a private one a test starts, stops and restarts.
 * On a shared broker each call gets topics and names of its own (a prefix
 * unique to the process and call); on the mock they are the defaults. */
#ifndef SESSIOND_KAFKAFX_H
#define SESSIOND_KAFKAFX_H

#include "sessiond/kafka.h"

typedef struct fx_kafka {
    int real;                      /* Apache Kafka, not the mock cluster */
    sd_embedded_t *mock;           /* the mock cluster, or NULL */
    char dir[512];                 /* a private broker's directory, or "" */
    char bootstraps[256];
    char prefix[64];               /* of every topic and name below */
    char input[128], output[128], dlq[128];
    const char *inputs[1];         /* {input}, for a pipeline's cfg.inputs */
    int partitions;
    char names[16][128];           /* fx_kafka_name()'s */
    int n_names;
} fx_kafka_t;

/* "mock" (the default) or "kafka"; -1 for anything else. */
int fx_kafka_kind_set(const char *kind);
const char *fx_kafka_kind(void);
int fx_kafka_is_real(void);

/* The input, output and dead-letter topics with this many partitions, on
 * a new mock cluster or on the shared Apache Kafka broker. */
fx_kafka_t *fx_kafka_start(int partitions);
/* The same on a broker of the test's own, which it may pause and restart:
 * a new mock cluster, or a new Apache Kafka JVM (scripts/kafka.sh, named by
 * SESSIOND_TEST_KAFKA_SH). */
fx_kafka_t *fx_kafka_start_private(int partitions);
/* Deletes this call's topics from a shared broker, stops a private one. */
void fx_kafka_stop(fx_kafka_t *k);

/* `base` with this call's prefix (groups, transactional ids); the string
 * lives as long as k. */
const char *fx_kafka_name(fx_kafka_t *k, const char *base);

/* "^" + k's prefix (as a regular expression) + tail: a pattern that
 * matches this call's topics only. */
const char *fx_kafka_pattern(fx_kafka_t *k, const char *tail);

/* Settings for a client of this broker (embedded: the mock's short waits). */
sd_kafka_settings_t fx_kafka_settings(const fx_kafka_t *k);

/* The mock cluster, for request-error injection; NULL on Apache Kafka. */
rd_kafka_mock_cluster_t *fx_kafka_mock(fx_kafka_t *k);

/* Every broker stops answering, then answers again: the mock's brokers go
 * down and up; a private Apache Kafka JVM is stopped with SIGSTOP and
 * continued with SIGCONT. */
void fx_kafka_pause(fx_kafka_t *k);
void fx_kafka_resume(fx_kafka_t *k);
/* A private Apache Kafka broker stops (SIGTERM) and starts again on its
 * data and ports. */
void fx_kafka_restart(fx_kafka_t *k);

/* Creates a topic on k's broker. */
void fx_kafka_create_topic(fx_kafka_t *k, const char *topic, int partitions);

#endif
