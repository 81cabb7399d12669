/* The expiry sweeper (SPEC rule 5), one step at a time: the pipeline runs
 * a step between batches, on its own thread, with its own producer.
 *
 * A step does not expire anything: it publishes an expiry event
 * (expiry_event.h) for each session due, to an input topic, and the
 * member owning that partition applies it in an ordinary batch.  So an
 * expiry is ordered, owned, idempotent and (exactly-once) committed with
 * offsets exactly as every other change; any number of members may
 * sweep, and a repeated expiry event changes nothing. */
#ifndef SESSIOND_SWEEPER_H
#define SESSIOND_SWEEPER_H

#include "sessiond/producer.h"
#include "sessiond/store.h"

#define SD_SWEEP_LIMIT 1000 /* expiry events per step */
/* An expiry event published this long ago whose session is still live is
 * published again: a member that does not know the event type (a rolling
 * upgrade) dead-letters it, and one whose clock is behind finds it not
 * due yet. */
#define SD_SWEEP_RESEND_MS (INT64_C(3600) * 1000)

typedef struct sd_sweep_result {
    size_t published;    /* expiry events on the brokers */
    int producer_failed; /* the error came from Kafka, not the store */
} sd_sweep_result_t;

/* Called once the events are delivered, before the store marks them (the
 * crash tests' failpoint); may be NULL. */
typedef void (*sd_sweep_delivered_fn)(void *arg, size_t n);

/* Finds up to `limit` sessions due at now_ms, produces their expiry events
 * to topic with producer (idempotent, not transactional: an event sent
 * twice is harmless, and a transaction would leave markers in an input
 * topic), waits for their delivery and marks them published in the
 * store.  Events not delivered are not marked, and the next step finds
 * their sessions again.  SD_ERR_TRANSIENT: the store or Kafka failed, try
 * later; SD_ERR_FATAL: see res->producer_failed (a producer that cannot
 * go on) or the store. */
sd_err_t sd_sweep_step(sd_store_t *store, sd_producer_t *producer, const char *topic,
                       int64_t now_ms, size_t limit, sd_sweep_delivered_fn delivered, void *arg,
                       sd_sweep_result_t *res, sd_error_t *err);

#endif
