#include "sessiond/pipeline_thread.h"

#include "sessiond/clock.h"

static int64_t movable_clock(void *arg) { return atomic_load((atomic_llong *)arg); }

static void *run(void *arg)
{
    sd_pipeline_thread_t *t = arg;
    t->rc = sd_pipeline_run(&t->cfg, t->store, t->stop, &t->stats, &t->err);
    atomic_store(&t->finished, 1);
    return NULL;
}

sd_err_t sd_pipeline_thread_start(sd_pipeline_thread_t *t, sd_error_t *err)
{
    if (!t->stop)
        t->stop = &t->own_stop;
    if (!t->cfg.now_ms) {
        t->cfg.now_ms = movable_clock;
        t->cfg.clock_arg = &t->now;
    }
    if (pthread_create(&t->thread, NULL, run, t) != 0)
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot start the pipeline's thread");
    return SD_OK;
}

int sd_pipeline_thread_wait(sd_pipeline_thread_t *t, long events, int poll_ms,
                            sd_progress_fn progress, void *arg, double *secs, long *before)
{
    int64_t start = sd_monotonic_us();
    int started = 0;
    *secs = 0;
    if (before)
        *before = 0;
    for (;;) {
        long done = sd_stats_processed(&t->stats);
        if (!started && done > 0) {
            start = sd_monotonic_us();
            if (before)
                *before = done;
            started = 1;
        }
        *secs = (double)(sd_monotonic_us() - start) / 1e6;
        int finished = done >= events;
        if (progress)
            progress(arg, done, *secs, finished);
        if (finished)
            return 1;
        if (*t->stop || atomic_load(&t->finished))
            return 0;
        sd_sleep_ms(poll_ms);
    }
}

sd_err_t sd_pipeline_thread_stop(sd_pipeline_thread_t *t, sd_error_t *err)
{
    *t->stop = 1;
    pthread_join(t->thread, NULL);
    if (t->rc != SD_OK)
        *err = t->err;
    return t->rc;
}
