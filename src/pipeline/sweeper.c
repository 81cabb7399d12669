#include "sessiond/sweeper.h"

#include <stdlib.h>

#include "sessiond/outgoing.h"

/* The events of due as messages for topic; *n counts those made. */
static sd_err_t expiry_messages(const sd_expiry_list_t *due, const char *topic, int64_t ttl_ms,
                                sd_outgoing_t **msgs, size_t *n, sd_error_t *err)
{
    *n = 0;
    if (!(*msgs = calloc(due->count, sizeof **msgs)))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for %zu expiry events",
                            due->count);
    sd_err_t rc = SD_OK;
    while (rc == SD_OK && *n < due->count) {
        rc = sd_outgoing_expiry_event(&(*msgs)[*n], topic, &due->items[*n], ttl_ms, err);
        (*n)++;
    }
    return rc;
}

sd_err_t sd_sweep_step(sd_store_t *store, sd_producer_t *producer, const char *topic,
                       int64_t now_ms, size_t limit, sd_sweep_delivered_fn delivered, void *arg,
                       sd_sweep_result_t *res, sd_error_t *err)
{
    *res = (sd_sweep_result_t){0};
    sd_expiry_list_t due;
    sd_outgoing_t *msgs = NULL;
    size_t n = 0;
    sd_err_t rc = sd_store_due_expiries(store, now_ms, now_ms - SD_SWEEP_RESEND_MS, limit, &due,
                                        err);
    if (rc != SD_OK)
        return rc;
    if (due.count == 0)
        goto done;
    if ((rc = expiry_messages(&due, topic, sd_store_ttl_ms(store), &msgs, &n, err)) != SD_OK)
        goto done;
    res->producer_failed = 1; /* until the broker has every expiry */
    if ((rc = sd_outgoing_send(producer, msgs, n, err)) != SD_OK)
        goto done;
    if ((rc = sd_producer_flush(producer, 30000, err)) != SD_OK)
        goto done;
    res->producer_failed = 0;
    res->published = n;
    if (delivered)
        delivered(arg, n);
    rc = sd_store_expiries_published(store, &due, now_ms, err);
done:
    sd_outgoing_free(msgs, n);
    sd_expiry_list_free(&due);
    return rc;
}
