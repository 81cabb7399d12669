#include "sessiond/sweeper.h"

#include <stdlib.h>

#include "sessiond/outgoing.h"

static sd_err_t deliver(sd_producer_t *producer, int transactional, const sd_outgoing_t *msgs,
                        size_t n, sd_error_t *err)
{
    if (!transactional) {
        sd_err_t rc = sd_outgoing_send(producer, msgs, n, err);
        return rc == SD_OK ? sd_producer_flush(producer, 30000, err) : rc;
    }
    rd_kafka_t *rk = sd_producer_handle(producer);
    rd_kafka_error_t *e = rd_kafka_begin_transaction(rk);
    sd_err_t rc = SD_OK;
    if (!e && (rc = sd_outgoing_send(producer, msgs, n, err)) == SD_OK)
        e = rd_kafka_commit_transaction(rk, -1);
    if (!e && rc == SD_OK)
        return SD_OK;
    if (e) {
        rc = sd_error_set(err, rd_kafka_error_is_fatal(e) ? SD_ERR_FATAL : SD_ERR_TRANSIENT,
                          "producer", "expiry transaction failed: %s",
                          rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        if (rc == SD_ERR_FATAL)
            return rc;
    }
    rd_kafka_error_t *abort_error = rd_kafka_abort_transaction(rk, -1);
    if (abort_error) {
        rc = sd_error_set(err, SD_ERR_FATAL, "producer", "cannot abort a transaction: %s",
                          rd_kafka_error_string(abort_error));
        rd_kafka_error_destroy(abort_error);
    }
    return rc == SD_OK ? SD_ERR_TRANSIENT : rc;
}

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

sd_err_t sd_sweep_step(sd_store_t *store, sd_producer_t *producer, int transactional,
                       const char *topic, int64_t now_ms, size_t limit, sd_sweep_result_t *res,
                       sd_error_t *err)
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
    rc = expiry_messages(&due, topic, sd_store_ttl_ms(store), &msgs, &n, err);
    if (rc == SD_OK) {
        rc = deliver(producer, transactional, msgs, n, err);
        res->producer_failed = rc != SD_OK;
    }
    if (rc == SD_OK) {
        res->published = n;
        rc = sd_store_expiries_published(store, &due, now_ms, err);
    }
done:
    sd_outgoing_free(msgs, n);
    sd_expiry_list_free(&due);
    return rc;
}
