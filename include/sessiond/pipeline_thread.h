/* sd_pipeline_run() on a thread of its own, for those that feed the
 * pipeline and watch it work: demo, bench and the tests. */
#ifndef SESSIOND_PIPELINE_THREAD_H
#define SESSIOND_PIPELINE_THREAD_H

#include <pthread.h>

#include "sessiond/pipeline.h"

typedef struct sd_pipeline_thread {
    /* set by the caller before sd_pipeline_thread_start() */
    sd_pipeline_config_t cfg;
    sd_store_t *store;
    volatile sig_atomic_t *stop; /* NULL: a flag of its own */
    /* The rules' clock when cfg.now_ms is NULL: set before the start, and
     * movable while the pipeline runs (a day passes in the demo). */
    atomic_llong now;
    /* read by the caller at any time */
    sd_pipeline_stats_t stats;
    atomic_int finished; /* the pipeline returned */
    /* the thread's */
    volatile sig_atomic_t own_stop;
    sd_err_t rc;
    sd_error_t err;
    pthread_t thread;
} sd_pipeline_thread_t;

sd_err_t sd_pipeline_thread_start(sd_pipeline_thread_t *t, sd_error_t *err);

/* Called every poll of sd_pipeline_thread_wait(): events processed so far
 * and seconds since the first batch went through. */
typedef void (*sd_progress_fn)(void *arg, long processed, double secs, int finished);

/* Waits until `events` went through the store (returns 1), or until the
 * pipeline returned or *stop was set (returns 0).  The first batch waits
 * for the consumer group to form, so throughput is timed from its end:
 * *secs from then to the last, *before (if not NULL) = events processed
 * by then. */
int sd_pipeline_thread_wait(sd_pipeline_thread_t *t, long events, int poll_ms,
                            sd_progress_fn progress, void *arg, double *secs, long *before);

/* Stops the pipeline and joins it: SD_OK, or its error in *err. */
sd_err_t sd_pipeline_thread_stop(sd_pipeline_thread_t *t, sd_error_t *err);

#endif
