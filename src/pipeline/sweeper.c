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

sd_err_t sd_sweep_step(sd_store_t *store, sd_producer_t *producer, int transactional,
                       const char *topic, int64_t now_ms, size_t limit, size_t *published,
                       sd_error_t *err)
{
    *published = 0;
    sd_change_list_t expired = {0};
    sd_err_t rc = sd_store_sweep(store, now_ms, limit, &expired, err);
    if (rc != SD_OK || expired.count == 0)
        return rc;
    sd_outgoing_t *msgs = calloc(expired.count, sizeof *msgs);
    size_t n = 0;
    if (!msgs)
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for %zu expiries",
                          expired.count);
    while (rc == SD_OK && n < expired.count) {
        rc = sd_outgoing_change(&msgs[n], topic, &expired.items[n], err);
        n++;
    }
    if (rc == SD_OK)
        rc = deliver(producer, transactional, msgs, n, err);
    if (rc == SD_OK) {
        *published = n;
        rc = sd_store_sweep_ack(store, &expired, err);
    }
    sd_outgoing_free(msgs, n);
    sd_change_list_free(&expired);
    return rc;
}
