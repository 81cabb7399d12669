/* The expiry sweeper (SPEC rule 5), one step at a time: the pipeline runs
 * a step between batches, on its own thread, with its own producer. */
#ifndef SESSIOND_SWEEPER_H
#define SESSIOND_SWEEPER_H

#include "sessiond/producer.h"
#include "sessiond/store.h"

#define SD_SWEEP_LIMIT 1000 /* expiries per step */

/* Takes up to `limit` expiries from the store, produces them to topic
 * (in a transaction of their own when `transactional`), waits for their
 * delivery and acknowledges them to the store.  *published counts what
 * was delivered.  Anything not delivered stays pending in the store and
 * comes back with the next step.  SD_ERR_TRANSIENT: the store or Kafka
 * failed, try later; SD_ERR_FATAL: the producer cannot go on. */
sd_err_t sd_sweep_step(sd_store_t *store, sd_producer_t *producer, int transactional,
                       const char *topic, int64_t now_ms, size_t limit, size_t *published,
                       sd_error_t *err);

#endif
