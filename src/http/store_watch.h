/* Whether the store answers, watched from a thread of its own (see
 * store_watch.c).  Private to src/http. */
#ifndef SESSIOND_STORE_WATCH_H
#define SESSIOND_STORE_WATCH_H

#include <stddef.h>

#include "sessiond/store.h"

typedef struct sd_store_watch sd_store_watch_t;

/* Opens a handle of its own on the store (fails as sd_store_open does)
 * and starts pinging it every second. */
sd_err_t sd_store_watch_start(const sd_store_config_t *cfg, sd_store_watch_t **out,
                              sd_error_t *err);
/* NULL while the store answers; otherwise why not, written into buf.
 * Never waits on the store. */
const char *sd_store_watch_problem(sd_store_watch_t *w, char *buf, size_t cap);
/* Stops the thread (waiting for a ping in flight) and frees it; NULL is fine. */
void sd_store_watch_stop(sd_store_watch_t *w);

#endif
