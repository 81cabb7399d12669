/* Messages the pipeline produces (changes and dead letters), kept until
 * delivered so that a failed delivery can send them again. */
#ifndef SESSIOND_OUTGOING_H
#define SESSIOND_OUTGOING_H

#include <stddef.h>

#include "sessiond/change.h"
#include "sessiond/expiry_event.h"
#include "sessiond/producer.h"

#define SD_OUTGOING_DEAD_LETTER (-1)
#define SD_OUTGOING_EXPIRY_EVENT (-2)

typedef struct sd_outgoing {
    int change_type; /* sd_change_type_t of a change, or SD_OUTGOING_* */
    const char *topic;
    char *key;
    char *value;
    size_t len;
    sd_header_t headers[4];
    size_t n_headers;
    char *header_text; /* the headers' values, in one block */
} sd_outgoing_t;

/* A change for topic: key task_id, headers change_type and cause_event_id.
 * Its value is *json when that is set (c's sd_change_to_json() text, as a
 * store built it: o takes it and *json becomes NULL), else built here. */
sd_err_t sd_outgoing_change(sd_outgoing_t *o, const char *topic, const sd_change_t *c,
                            char **json, sd_error_t *err);
/* The input message m as a dead letter for topic, with the SPEC §6 headers. */
sd_err_t sd_outgoing_dead_letter(sd_outgoing_t *o, const char *topic,
                                 const rd_kafka_message_t *m, const sd_error_t *why,
                                 sd_error_t *err);
/* The expiry event of due for topic (an input topic), key task_id. */
sd_err_t sd_outgoing_expiry_event(sd_outgoing_t *o, const char *topic, const sd_expiry_due_t *due,
                                  int64_t ttl_ms, sd_error_t *err);
/* Queues every message on the producer (delivery is the caller's wait). */
sd_err_t sd_outgoing_send(sd_producer_t *producer, const sd_outgoing_t *msgs, size_t n,
                          sd_error_t *err);
void sd_outgoing_free(sd_outgoing_t *msgs, size_t n);

#endif
