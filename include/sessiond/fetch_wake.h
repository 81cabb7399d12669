/* Asking the leaders of a consumer's partitions where they end: to wake
 * its fetchers after its queue was full, and to learn whether it is
 * behind. */
#ifndef SESSIOND_FETCH_WAKE_H
#define SESSIOND_FETCH_WAKE_H

#include <librdkafka/rdkafka.h>

#include "sessiond/error.h"

/* librdkafka 2.0.2 stops fetching while the consumer's queue holds more
 * than queued.max.messages.kbytes (or queued.min.messages) and looks again
 * only when a broker thread wakes: on a response, on a request to send,
 * or after a second.  A consumer behind its input drains the queue in a
 * fraction of that second and then waits out the rest (librdkafka issue
 * 2879; later releases add fetch.queue.backoff.ms).  This sends each leader
 * of the consumer's assignment one ListOffsets request, small and read-only,
 * which wakes its thread to fetch again.  Waits for the answers up to
 * timeout_ms; *partitions (may be NULL) is how many were asked about. */
sd_err_t sd_fetch_wake(rd_kafka_t *consumer, int timeout_ms, int *partitions, sd_error_t *err);

/* How many messages the consumer's assigned partitions hold past its
 * position, summed, from their leaders' answers now (the same requests as
 * sd_fetch_wake, and for a partition that delivered nothing yet, its
 * committed offset).  SD_ERR_TRANSIENT when a leader or the coordinator
 * does not answer within timeout_ms: a consumer that cannot learn this
 * cannot fetch either.  0 with nothing assigned. */
sd_err_t sd_fetch_behind(rd_kafka_t *consumer, int timeout_ms, int64_t *behind, sd_error_t *err);

#endif
