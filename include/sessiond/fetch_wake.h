/* Waking the consumer's fetchers after its queue was full. */
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

#endif
