/* librdkafka plumbing shared by the consumer, the producer and the
 * embedded broker: configuration from flags and -X, and the mock cluster. */
#ifndef SESSIOND_KAFKA_H
#define SESSIOND_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stddef.h>

#include "sessiond/error.h"

typedef struct sd_kafka_settings {
    const char *brokers;       /* bootstrap servers */
    const char *const *props;  /* "key=value" pairs from -X, applied last */
    size_t n_props;
    int embedded;              /* talking to the in-process mock cluster */
} sd_kafka_settings_t;

/* A configuration with the client's defaults, role-specific settings
 * (pairs of key, value, NULL-terminated) and then -X.  Errors name the
 * property; values of properties that look secret are never echoed. */
typedef enum sd_kafka_role { SD_KAFKA_PRODUCER, SD_KAFKA_CONSUMER } sd_kafka_role_t;

sd_err_t sd_kafka_conf(const sd_kafka_settings_t *s, sd_kafka_role_t role,
                       const char *const *role_props, rd_kafka_conf_t **out, sd_error_t *err);

/* The one constructor of a Kafka client: a producer or a consumer (as role
 * says) made from conf, which it takes whatever happens (the client owns
 * it, or it is destroyed).  Fails with SD_ERR_FATAL, naming field and
 * saying "cannot create <what>: <librdkafka's reason>". */
sd_err_t sd_kafka_new(sd_kafka_role_t role, rd_kafka_conf_t *conf, const char *field,
                      const char *what, rd_kafka_t **out, sd_error_t *err);

/* The value of the last -X key=value, when set and not empty, else NULL:
 * an empty environment twin (SESSIOND_X_SSL_KEY_PASSWORD=) means "not set"
 * to a person.  Points into s->props. */
const char *sd_kafka_setting(const sd_kafka_settings_t *s, const char *key);

/* Whether a property name holds a secret (sasl.password, ssl.key.password…). */
int sd_kafka_prop_is_secret(const char *name);

/* The embedded broker: librdkafka's mock cluster, in this process. */
typedef struct sd_embedded sd_embedded_t;

sd_err_t sd_embedded_start(int brokers, sd_embedded_t **out, sd_error_t *err);
sd_err_t sd_embedded_create_topic(sd_embedded_t *e, const char *topic, int partitions,
                                  sd_error_t *err);
/* Partitions that hold bytes of messages (record overhead included)
 * within the mock's retention of 5 MiB per partition, keeping 1 MiB spare;
 * at least 8. */
int sd_embedded_partitions_for(size_t bytes);
const char *sd_embedded_bootstraps(const sd_embedded_t *e);
rd_kafka_mock_cluster_t *sd_embedded_cluster(sd_embedded_t *e);
void sd_embedded_stop(sd_embedded_t *e);

#endif
