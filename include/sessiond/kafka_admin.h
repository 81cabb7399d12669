/* What a replay asks the cluster before it starts: the partitions of the
 * input topics with where to begin and where to stop, and whether a
 * consumer group has members; and the topics `sessiond bench --brokers`
 * makes for its run and deletes after it. */
#ifndef SESSIOND_KAFKA_ADMIN_H
#define SESSIOND_KAFKA_ADMIN_H

#include <stdint.h>

#include "sessiond/kafka.h"

#define SD_FROM_EARLIEST INT64_C(-1)

/* A client for the questions below (a consumer that never joins a group);
 * the caller destroys it with rd_kafka_destroy(). */
sd_err_t sd_kafka_admin_open(const sd_kafka_settings_t *ks, rd_kafka_t **out, sd_error_t *err);

/* Every partition of the topics (names, or "^regex" patterns matched
 * against the cluster's topics): *start holds the first offset to read
 * (the earliest kept, or the first at or after from_ms), *end the high
 * watermark now.  Both lists list the partitions in the same order; the
 * caller destroys them. */
sd_err_t sd_kafka_replay_range(rd_kafka_t *admin, const char *const *topics, size_t n_topics,
                               int64_t from_ms, rd_kafka_topic_partition_list_t **start,
                               rd_kafka_topic_partition_list_t **end, sd_error_t *err);

/* The members of a consumer group as its coordinator reports them, or -1
 * in *members when the broker cannot describe groups (librdkafka's mock
 * cluster cannot). */
sd_err_t sd_kafka_group_members(rd_kafka_t *admin, const char *group, int *members,
                                sd_error_t *err);

/* Creates the topics, `partitions` each at the cluster's default
 * replication, and waits until every partition has a leader.
 * SD_ERR_FATAL, naming the topic, when the cluster refuses one (it exists,
 * or the user may not create topics); SD_ERR_TRANSIENT when it does not
 * answer in time. */
sd_err_t sd_kafka_create_topics(rd_kafka_t *admin, const char *const *topics, size_t n,
                                int partitions, sd_error_t *err);

/* Deletes the topics; one already gone is no error. */
sd_err_t sd_kafka_delete_topics(rd_kafka_t *admin, const char *const *topics, size_t n,
                                sd_error_t *err);

#endif
