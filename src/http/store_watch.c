/* Whether the store answers, for /readyz: a thread of its own pings it
 * every SD_STORE_WATCH_MS on a handle of its own, so that no request waits
 * on a store that went silent (a ping to it waits out the driver's
 * timeouts) and an API request that does wait does not hide the store's
 * state from readiness. */
#define _POSIX_C_SOURCE 200809L
#include "store_watch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sessiond/clock.h"

#define SD_STORE_WATCH_MS 1000
/* Unanswered for this long (a ping in flight, or failed ones): not ready. */
#define SD_STORE_SILENT_MS 3000
/* The watch's own handle gives up on a server sooner than the pipeline's
 * (server selection, and with it the socket reads, store.h). */
#define SD_STORE_WATCH_TIMEOUT_MS 2000

struct sd_store_watch {
    sd_store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    int64_t answered; /* monotonic ms of the last ping answered */
    char error[sizeof((sd_error_t *)0)->message]; /* of the last failed ping, or "" */
};

static void *watch_run(void *arg)
{
    sd_store_watch_t *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        pthread_mutex_unlock(&w->lock);
        sd_error_t err;
        int ok = sd_store_ping(w->store, &err) == SD_OK;
        pthread_mutex_lock(&w->lock);
        if (ok) {
            w->answered = sd_monotonic_ms();
            w->error[0] = '\0';
        } else {
            snprintf(w->error, sizeof w->error, "%s", err.message);
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SD_STORE_WATCH_MS / 1000;
        while (!w->stopping && pthread_cond_timedwait(&w->wake, &w->lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

sd_err_t sd_store_watch_start(const sd_store_config_t *cfg, sd_store_watch_t **out,
                              sd_error_t *err)
{
    sd_store_watch_t *w = calloc(1, sizeof *w);
    if (!w)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory");
    sd_store_config_t mine = *cfg;
    if (!mine.timeout_ms || mine.timeout_ms > SD_STORE_WATCH_TIMEOUT_MS)
        mine.timeout_ms = SD_STORE_WATCH_TIMEOUT_MS;
    sd_err_t rc = sd_store_open(&mine, &w->store, err);
    if (rc != SD_OK) {
        free(w);
        return rc;
    }
    w->answered = sd_monotonic_ms(); /* it just opened */
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, watch_run, w) != 0) {
        sd_store_close(w->store);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(w);
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot start a thread to watch the store");
    }
    *out = w;
    return SD_OK;
}

const char *sd_store_watch_problem(sd_store_watch_t *w, char *buf, size_t cap)
{
    pthread_mutex_lock(&w->lock);
    int64_t silent = sd_monotonic_ms() - w->answered;
    if (silent >= SD_STORE_SILENT_MS)
        snprintf(buf, cap, "the store has not answered for %lld s%s%s", (long long)(silent / 1000),
                 w->error[0] ? ": " : " (a ping waits for it)", w->error);
    pthread_mutex_unlock(&w->lock);
    return silent >= SD_STORE_SILENT_MS ? buf : NULL;
}

void sd_store_watch_stop(sd_store_watch_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL); /* a ping in flight ends within the store's timeouts */
    sd_store_close(w->store);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
