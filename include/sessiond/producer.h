/* An idempotent (or transactional) producer that knows whether what it
 * sent was delivered. */
#ifndef SESSIOND_PRODUCER_H
#define SESSIOND_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/kafka.h"

typedef struct sd_header {
    const char *name;
    const char *value;
} sd_header_t;

typedef struct sd_producer sd_producer_t;

/* transactional_id NULL: idempotent producer (acks=all). */
sd_err_t sd_producer_new(const sd_kafka_settings_t *s, const char *transactional_id,
                         sd_producer_t **out, sd_error_t *err);

/* Queues one message (copied).  key may be NULL. */
sd_err_t sd_producer_send(sd_producer_t *p, const char *topic, const char *key,
                          const void *value, size_t len, const sd_header_t *headers,
                          size_t n_headers, sd_error_t *err);

/* The same, to a given partition instead of the one the key hashes to. */
sd_err_t sd_producer_send_to(sd_producer_t *p, const char *topic, int32_t partition,
                             const char *key, const void *value, size_t len,
                             const sd_header_t *headers, size_t n_headers, sd_error_t *err);

/* Waits until everything queued is delivered.  SD_ERR_TRANSIENT when a
 * message could not be delivered in time (the caller sends it again);
 * SD_ERR_FATAL when the producer cannot go on (fenced, idempotence lost). */
sd_err_t sd_producer_flush(sd_producer_t *p, int timeout_ms, sd_error_t *err);

/* Messages still on their way (queued or in flight): after a flush that
 * timed out they go on being retried by librdkafka, up to its
 * message.timeout.ms, and need not be sent again; once this is 0 after a
 * failed flush, librdkafka gave up on them. */
int sd_producer_in_flight(sd_producer_t *p);

/* Connects and learns the topics' partitions before the first message:
 * otherwise the first batch waits a second for them.  A failure is left
 * for the first send to report; returns whether the topics are known. */
int sd_producer_warm(sd_producer_t *p, const char *const *topics, size_t n, int timeout_ms);

/* Whether the producer stopped because the broker fenced it: another
 * producer took its transactional.id, or a transaction outlived
 * transaction.timeout.ms and the coordinator aborted it (librdkafka 2.0.2
 * reports both as "fenced by a newer instance"). */
int sd_producer_fenced(sd_producer_t *p);
/* Its transaction.timeout.ms (librdkafka's default, or as -X set it). */
int64_t sd_producer_transaction_timeout_ms(sd_producer_t *p);

rd_kafka_t *sd_producer_handle(sd_producer_t *p);
/* Delivers what is queued (waiting up to 5 s), then frees it.  NULL is fine. */
void sd_producer_destroy(sd_producer_t *p);
/* Frees it without delivering what is still queued: those messages are
 * never sent (what is already in flight may still land).  NULL is fine. */
void sd_producer_discard(sd_producer_t *p);

#endif
