/* TLS as the start-up check (preflight.c) sees it, through OpenSSL, which
 * librdkafka uses too: the client's own key and certificate, checked
 * before connecting, and why a broker's certificate failed verification,
 * which librdkafka's error callback does not say ("certificate verify
 * failed" for an unknown CA, a host name and an expired certificate alike,
 * each needing another fix).  Internal to src/kafka. */
#ifndef SESSIOND_TLS_CHECK_H
#define SESSIOND_TLS_CHECK_H

#include <pthread.h>
#include <stddef.h>

#include "sessiond/error.h"
#include "sessiond/kafka.h"

/* A certificate as a message shows it. */
typedef struct sd_tls_cert_info {
    char subject[128], issuer[128];
    char names[160];      /* its subjectAltName: "IP:127.0.0.1, DNS:localhost" */
    char not_after[32];   /* RFC 3339, UTC */
    char not_before[32];
    int self_signed;
} sd_tls_cert_info_t;

/* A broker certificate that failed verification. */
typedef struct sd_tls_bad_cert {
    int x509_error;           /* OpenSSL's X509_V_ERR_*; 0: none */
    char broker[128];         /* HOST:PORT, as the client named that broker */
    sd_tls_cert_info_t cert;  /* the certificate of the chain it concerns */
} sd_tls_bad_cert_t;

/* The first one, recorded on a broker thread, read on the polling one. */
typedef struct sd_tls_failure {
    pthread_mutex_t lock; /* guards first */
    sd_tls_bad_cert_t first;
} sd_tls_failure_t;

void sd_tls_failure_init(sd_tls_failure_t *f);
void sd_tls_failure_destroy(sd_tls_failure_t *f);

/* The body of librdkafka's certificate check (rd_kafka_conf_set_ssl_cert_
 * verify_cb): keeps OpenSSL's verdict *x509_error on the certificate der
 * (size bytes) of broker_name's chain, and records the first failure in f.
 * Returns what the callback returns: 1 the certificate passes, 0 it fails
 * (errstr then says why). */
int sd_tls_failure_record(sd_tls_failure_t *f, const char *broker_name, const int *x509_error,
                          const char *der, size_t size, char *errstr, size_t errstr_size);

/* SD_ERR_FATAL with a message saying what is wrong with the recorded
 * certificate, in the terms of the setting that fixes it (never a secret);
 * SD_OK, err untouched, when nothing was recorded. */
sd_err_t sd_tls_failure_explain(const sd_kafka_settings_t *s, sd_tls_failure_t *f,
                                sd_error_t *err);

/* Checks what the client proves itself with, before connecting: an
 * encrypted key (ssl.key.location) must open with ssl.key.password, and the
 * client certificate must be valid now.  Brokers check that certificate
 * only after a TLS 1.3 handshake has completed, so librdkafka sees their
 * refusal as a dropped connection, like any network failure, and could
 * never tell it apart.  SD_OK when nothing is wrong, or what is set cannot
 * be read at all (librdkafka says why when it loads it); SD_ERR_FATAL,
 * err naming the setting and file, never the passphrase, otherwise. */
sd_err_t sd_tls_check_client(const sd_kafka_settings_t *s, sd_error_t *err);

#endif
