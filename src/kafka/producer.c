#include "sessiond/producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sd_producer {
    rd_kafka_t *rk;
    long failed;            /* deliveries failed since the last flush */
    char first_failure[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sd_producer_t *p = opaque;
    if (!m->err)
        return;
    if (p->failed++ == 0)
        snprintf(p->first_failure, sizeof p->first_failure, "%s [%d]: %s",
                 rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
}

sd_err_t sd_producer_new(const sd_kafka_settings_t *s, const char *transactional_id,
                         sd_producer_t **out, sd_error_t *err)
{
    const char *props[] = {"enable.idempotence", "true", "acks", "all", "linger.ms", "5",
                           transactional_id ? "transactional.id" : NULL, transactional_id,
                           NULL};
    rd_kafka_conf_t *conf;
    sd_err_t rc = sd_kafka_conf(s, SD_KAFKA_PRODUCER, props, &conf, err);
    if (rc != SD_OK)
        return rc;
    sd_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        rd_kafka_conf_destroy(conf);
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory creating a producer");
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    if ((rc = sd_kafka_new(SD_KAFKA_PRODUCER, conf, "producer", "the producer", &p->rk, err)) !=
        SD_OK) {
        free(p);
        return rc;
    }
    *out = p;
    return SD_OK;
}

sd_err_t sd_producer_send(sd_producer_t *p, const char *topic, const char *key,
                          const void *value, size_t len, const sd_header_t *headers,
                          size_t n_headers, sd_error_t *err)
{
    return sd_producer_send_to(p, topic, RD_KAFKA_PARTITION_UA, key, value, len, headers,
                               n_headers, err);
}

sd_err_t sd_producer_send_to(sd_producer_t *p, const char *topic, int32_t partition,
                             const char *key, const void *value, size_t len,
                             const sd_header_t *headers, size_t n_headers, sd_error_t *err)
{
    for (;;) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(n_headers);
        for (size_t i = 0; i < n_headers; i++)
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value, -1);
        rd_kafka_resp_err_t rc = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
            return SD_OK;
        rd_kafka_headers_destroy(hdrs);
        if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL) { /* wait for deliveries to make room */
            rd_kafka_poll(p->rk, 100);
            continue;
        }
        return sd_error_set(err, rc == RD_KAFKA_RESP_ERR__FATAL ? SD_ERR_FATAL : SD_ERR_TRANSIENT,
                            "producer", "cannot queue a message for %s: %s", topic,
                            rd_kafka_err2str(rc));
    }
}

sd_err_t sd_producer_flush(sd_producer_t *p, int timeout_ms, sd_error_t *err)
{
    rd_kafka_resp_err_t rc = rd_kafka_flush(p->rk, timeout_ms);
    char fatal[512];
    if (rd_kafka_fatal_error(p->rk, fatal, sizeof fatal))
        return sd_error_set(err, SD_ERR_FATAL, "producer", "the producer cannot go on: %s", fatal);
    if (rc == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return sd_error_set(err, SD_ERR_TRANSIENT, "producer",
                            "%d messages not delivered within %d ms: are the brokers reachable?",
                            rd_kafka_outq_len(p->rk), timeout_ms);
    if (p->failed) {
        sd_error_set(err, SD_ERR_TRANSIENT, "producer", "%ld messages not delivered, first %s",
                     p->failed, p->first_failure);
        p->failed = 0;
        return SD_ERR_TRANSIENT;
    }
    return SD_OK;
}

int sd_producer_warm(sd_producer_t *p, const char *const *topics, size_t n, int timeout_ms)
{
    int known = 1;
    for (size_t i = 0; known && i < n; i++) { /* one wait at most when no broker answers */
        rd_kafka_topic_t *t = rd_kafka_topic_new(p->rk, topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        known &= t && rd_kafka_metadata(p->rk, 0, t, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (t)
            rd_kafka_topic_destroy(t);
    }
    return known;
}

int sd_producer_fenced(sd_producer_t *p)
{
    char why[256];
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(p->rk, why, sizeof why);
    return e == RD_KAFKA_RESP_ERR__FENCED || e == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           e == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

int64_t sd_producer_transaction_timeout_ms(sd_producer_t *p)
{
    char value[32];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(rd_kafka_conf(p->rk), "transaction.timeout.ms", value, &size) !=
        RD_KAFKA_CONF_OK)
        return 60000; /* librdkafka's default */
    return strtoll(value, NULL, 10);
}

int sd_producer_in_flight(sd_producer_t *p) { return rd_kafka_outq_len(p->rk); }

rd_kafka_t *sd_producer_handle(sd_producer_t *p) { return p->rk; }

void sd_producer_destroy(sd_producer_t *p)
{
    if (!p)
        return;
    rd_kafka_flush(p->rk, 5000);
    rd_kafka_destroy(p->rk);
    free(p);
}

void sd_producer_discard(sd_producer_t *p)
{
    if (!p)
        return;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(p->rk, 0); /* serves the purged messages' reports */
    rd_kafka_destroy(p->rk);
    free(p);
}
