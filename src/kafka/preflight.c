#define _POSIX_C_SOURCE 200809L
#include "sessiond/kafka_preflight.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"
#include "tls_check.h"

#define UNKNOWN_ANSWERS 3 /* "no such topic" this many times: it is not coming */

/* What the client's callbacks saw that retrying cannot cure. */
typedef struct refusal {
    rd_kafka_resp_err_t code; /* __AUTHENTICATION or __SSL; 0: none */
    char reason[512];
    sd_tls_failure_t tls;     /* the first broker certificate that failed */
} refusal_t;

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)rk;
    refusal_t *r = opaque;
    if (!r->code && (code == RD_KAFKA_RESP_ERR__AUTHENTICATION || code == RD_KAFKA_RESP_ERR__SSL)) {
        r->code = code;
        snprintf(r->reason, sizeof r->reason, "%s", reason);
    }
}

/* The check's own client says what it meets at debug level: what matters
 * comes back as the check's one message. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *facility, const char *message)
{
    (void)level;
    sd_log(SD_LOG_DEBUG, "kafka", message, "client=%s facility=%s", rd_kafka_name(rk), facility);
}

/* setting when set, else dflt: a setting as a message names it. */
static const char *or_else(const char *setting, const char *dflt)
{
    return setting ? setting : dflt;
}

/* librdkafka's certificate check, on a broker thread: what OpenSSL found
 * goes to the check's record (sd_tls_failure_record). */
static int on_verify(rd_kafka_t *rk, const char *broker_name, int32_t broker_id, int *x509_error,
                     int depth, const char *buf, size_t size, char *errstr, size_t errstr_size,
                     void *opaque)
{
    (void)rk;
    (void)broker_id;
    (void)depth;
    refusal_t *r = opaque;
    return sd_tls_failure_record(&r->tls, broker_name, x509_error, buf, size, errstr,
                                 errstr_size);
}

static sd_err_t refused(const sd_kafka_settings_t *s, refusal_t *r, sd_error_t *err)
{
    if (r->code == RD_KAFKA_RESP_ERR__SSL) {
        if (sd_tls_failure_explain(s, &r->tls, err) != SD_OK)
            return SD_ERR_FATAL;
        return sd_error_set(err, SD_ERR_FATAL, "kafka",
                            "TLS with Kafka at %s failed: %s; check ssl.ca.location (the "
                            "brokers' CA), the client certificate and key, and that the brokers "
                            "speak TLS there",
                            s->brokers, r->reason);
    }
    return sd_error_set(err, SD_ERR_FATAL, "kafka",
                        "Kafka at %s refused SASL authentication (mechanism %s, user %s): %s; "
                        "check sasl.username and the password (-X sasl.password=… or "
                        "SESSIOND_X_SASL_PASSWORD)",
                        s->brokers,
                        or_else(sd_kafka_setting(s, "sasl.mechanisms"),
                                or_else(sd_kafka_setting(s, "sasl.mechanism"), "GSSAPI")),
                        or_else(sd_kafka_setting(s, "sasl.username"), "(none)"), r->reason);
}

/* What the brokers say of topic: its error code, __TRANSPORT when they
 * did not answer.  A writer asks for the topic itself, which a broker that
 * creates topics on first use creates; a reader asks for every topic and
 * looks for it, which creates nothing anywhere (librdkafka's mock cluster
 * creates a topic asked for by name whatever the request allows). */
static rd_kafka_resp_err_t ask(rd_kafka_t *rk, const char *topic, int creates, int64_t wait_ms)
{
    rd_kafka_topic_t *rkt = creates ? rd_kafka_topic_new(rk, topic, NULL) : NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR__TRANSPORT;
    if ((!creates || rkt) &&
        rd_kafka_metadata(rk, !creates, rkt, &md, (int)wait_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        code = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        for (int i = 0; i < md->topic_cnt; i++)
            if (strcmp(md->topics[i].topic, topic) == 0)
                code = md->topics[i].err != RD_KAFKA_RESP_ERR_NO_ERROR ? md->topics[i].err
                       : md->topics[i].partition_cnt > 0 ? RD_KAFKA_RESP_ERR_NO_ERROR
                                                         : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return code;
}

/* One metadata answer for topic: SD_OK it is there, SD_ERR_TRANSIENT not
 * yet (or no answer), SD_ERR_FATAL (err set) it will not be. */
static sd_err_t topic_there(rd_kafka_t *rk, const sd_kafka_settings_t *s, const char *topic,
                            int creates, int *unknown, int64_t wait_ms, sd_error_t *err)
{
    rd_kafka_resp_err_t code = ask(rk, topic, creates, wait_ms);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR)
        return SD_OK;
    if (code == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        return sd_error_set(err, SD_ERR_FATAL, "kafka",
                            "user %s may not describe topic %s at %s: grant it DESCRIBE, and "
                            "READ or WRITE as its use needs",
                            or_else(sd_kafka_setting(s, "sasl.username"), "(anonymous)"), topic,
                            s->brokers);
    if (code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && ++*unknown >= UNKNOWN_ANSWERS)
        return sd_error_set(err, SD_ERR_FATAL, "kafka",
                            "topic %s does not exist at %s%s: create it (kafka-topics.sh "
                            "--create --topic %s), or name another",
                            topic, s->brokers,
                            creates ? " and the brokers do not create topics on first use"
                                    : " (or this user may not describe it)",
                            topic);
    return SD_ERR_TRANSIENT;
}

sd_err_t sd_kafka_preflight(const sd_kafka_settings_t *s, const char *const *topics, size_t n,
                            int creates, int64_t bound_ms, sd_error_t *err)
{
    const char *const role[] = {"allow.auto.create.topics", creates ? "true" : "false", NULL};
    refusal_t refusal = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    sd_tls_failure_init(&refusal.tls);
    sd_err_t rc;
    if ((rc = sd_tls_check_client(s, err)) != SD_OK)
        goto done;
    if ((rc = sd_kafka_conf(s, SD_KAFKA_PRODUCER, role, &conf, err)) != SD_OK)
        goto done;
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_conf_set_opaque(conf, &refusal);
    /* Not when verification is off: OpenSSL still reports what it finds,
     * which then fails nothing and must not be blamed for another TLS
     * failure.  Setting it fails only in a librdkafka built without TLS,
     * where no certificate is ever verified: nothing to explain then. */
    const char *verify = sd_kafka_setting(s, "enable.ssl.certificate.verification");
    if (!verify || strcmp(verify, "false") != 0)
        (void)rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_verify);
    rc = sd_kafka_new(SD_KAFKA_PRODUCER, conf, "kafka", "a Kafka client", &rk, err);
    conf = NULL; /* the client owns it now, or it is gone */
    if (rc != SD_OK)
        goto done;
    int unknown[SD_PREFLIGHT_TOPICS] = {0}, there[SD_PREFLIGHT_TOPICS] = {0};
    size_t missing = 0;
    assert(n <= SD_PREFLIGHT_TOPICS);
    for (size_t i = 0; i < n; i++)
        missing += !(there[i] = topics[i][0] == '^'); /* a pattern: nothing to ask */
    int64_t deadline = sd_monotonic_ms() + bound_ms;
    rc = SD_ERR_TRANSIENT;
    while (missing > 0 && rc == SD_ERR_TRANSIENT && sd_monotonic_ms() < deadline) {
        rd_kafka_poll(rk, 100); /* serves the error callback */
        if (refusal.code) {
            rc = refused(s, &refusal, err);
            break;
        }
        for (size_t i = 0; i < n && rc == SD_ERR_TRANSIENT; i++) {
            if (there[i])
                continue;
            int64_t left = deadline - sd_monotonic_ms();
            if (left < 1)
                break;
            sd_err_t got =
                topic_there(rk, s, topics[i], creates, &unknown[i], left < 1000 ? left : 1000,
                            err);
            if (got == SD_ERR_FATAL)
                rc = SD_ERR_FATAL;
            else if (got == SD_OK)
                missing -= (there[i] = 1);
        }
    }
    if (missing == 0)
        rc = SD_OK;
    else if (rc == SD_ERR_TRANSIENT)
        sd_error_set(err, SD_ERR_TRANSIENT, "kafka",
                     "Kafka at %s did not answer within %lld ms", s->brokers,
                     (long long)bound_ms);
done:
    if (rk)
        rd_kafka_destroy(rk); /* joins the broker threads: on_verify is done */
    if (conf)
        rd_kafka_conf_destroy(conf);
    sd_tls_failure_destroy(&refusal.tls);
    return rc;
}
