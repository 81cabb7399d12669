#define _POSIX_C_SOURCE 200809L
#include "sessiond/kafka_preflight.h"

#include <arpa/inet.h>
#include <assert.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"

#define UNKNOWN_ANSWERS 3 /* "no such topic" this many times: it is not coming */

/* A certificate as a message shows it. */
typedef struct cert_info {
    char subject[128], issuer[128];
    char names[160];      /* its subjectAltName: "IP:127.0.0.1, DNS:localhost" */
    char not_after[32];   /* RFC 3339, UTC */
    char not_before[32];
    int self_signed;
} cert_info_t;

/* The first broker certificate that failed verification. */
typedef struct verify_failure {
    int x509_error;   /* OpenSSL's X509_V_ERR_*; 0: none */
    char broker[128]; /* HOST:PORT, as the client named that broker */
    cert_info_t cert; /* the certificate of the chain it concerns */
} verify_failure_t;

/* What the client's callbacks saw that retrying cannot cure. */
typedef struct refusal {
    rd_kafka_resp_err_t code; /* __AUTHENTICATION or __SSL; 0: none */
    char reason[512];
    pthread_mutex_t lock;    /* `failed` is set on a broker thread, read on the polling one */
    verify_failure_t failed;
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

/* The value of -X key, or dflt. */
static const char *prop(const sd_kafka_settings_t *s, const char *key, const char *dflt)
{
    size_t len = strlen(key);
    for (size_t i = s->n_props; i-- > 0;)
        if (!strncmp(s->props[i], key, len) && s->props[i][len] == '=')
            return s->props[i] + len + 1;
    return dflt;
}

/* The value of -X key when set and not empty, else NULL: an empty env twin
 * (SESSIOND_X_SSL_KEY_PASSWORD=) means "not set" to a person. */
static const char *setting(const sd_kafka_settings_t *s, const char *key)
{
    const char *v = prop(s, key, NULL);
    return v && *v ? v : NULL;
}

/* name as RFC 2253 ("CN=broker,O=example") into out; "" when it cannot be
 * written. */
static void name_text(const X509_NAME *name, char *out, size_t cap)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int len = bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0
                  ? BIO_read(bio, out, (int)cap - 1)
                  : 0;
    out[len > 0 ? len : 0] = '\0';
    BIO_free(bio);
}

/* t as RFC 3339 UTC into out ("?" when it cannot be read). */
static void asn1_time_text(const ASN1_TIME *t, char *out, size_t cap)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, cap, "?");
}

/* Fills info with what a reader needs to recognise cert: subject, issuer,
 * the names it holds and its validity.  Never fails: what cannot be read
 * stays empty. */
static void describe(X509 *cert, cert_info_t *info)
{
    memset(info, 0, sizeof *info);
    name_text(X509_get_subject_name(cert), info->subject, sizeof info->subject);
    name_text(X509_get_issuer_name(cert), info->issuer, sizeof info->issuer);
    info->self_signed = X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
    asn1_time_text(X509_get0_notAfter(cert), info->not_after, sizeof info->not_after);
    asn1_time_text(X509_get0_notBefore(cert), info->not_before, sizeof info->not_before);
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
        char one[INET6_ADDRSTRLEN + 8] = "";
        if (n->type == GEN_DNS)
            snprintf(one, sizeof one, "DNS:%.*s", ASN1_STRING_length(n->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(n->d.dNSName));
        else if (n->type == GEN_IPADD) {
            int len = ASN1_STRING_length(n->d.iPAddress);
            char ip[INET6_ADDRSTRLEN];
            if ((len == 4 || len == 16) &&
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(n->d.iPAddress),
                          ip, sizeof ip))
                snprintf(one, sizeof one, "IP:%s", ip);
        }
        if (one[0] && used < sizeof info->names)
            used += (size_t)snprintf(info->names + used, sizeof info->names - used, "%s%s",
                                     used ? ", " : "", one);
    }
    GENERAL_NAMES_free(names);
    if (!info->names[0])
        snprintf(info->names, sizeof info->names, "no subjectAltName");
}

/* librdkafka's certificate check: keeps OpenSSL's verdict on each
 * certificate of a broker's chain (librdkafka passes the verdict's code,
 * 0 a pass, and takes 0 from here as a failure), and remembers the first
 * failure with the certificate it concerns.  The error callback later
 * says only "certificate verify failed", the same for an unknown CA, a
 * host name the certificate does not hold and an expired certificate,
 * which each need another fix.  Runs on a broker thread. */
static int on_verify(rd_kafka_t *rk, const char *broker_name, int32_t broker_id, int *x509_error,
                     int depth, const char *buf, size_t size, char *errstr, size_t errstr_size,
                     void *opaque)
{
    (void)rk;
    (void)broker_id;
    (void)depth;
    if (*x509_error == X509_V_OK)
        return 1;
    refusal_t *r = opaque;
    snprintf(errstr, errstr_size, "%s", X509_verify_cert_error_string(*x509_error));
    pthread_mutex_lock(&r->lock);
    if (!r->failed.x509_error) {
        r->failed.x509_error = *x509_error;
        snprintf(r->failed.broker, sizeof r->failed.broker, "%s", broker_name);
        const unsigned char *der = (const unsigned char *)buf;
        X509 *cert = d2i_X509(NULL, &der, (long)size);
        if (cert)
            describe(cert, &r->failed.cert);
        X509_free(cert);
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* The message for a broker certificate that failed verification: what is
 * wrong with it, in the terms of the setting that fixes it. */
static sd_err_t untrusted(const sd_kafka_settings_t *s, const verify_failure_t *r,
                          sd_error_t *err)
{
    const char *why = X509_verify_cert_error_string(r->x509_error);
    switch (r->x509_error) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: {
        /* librdkafka checks the name the client was given for the broker
         * (the bootstrap address, then the advertised ones). */
        char host[128];
        snprintf(host, sizeof host, "%s", r->broker);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = '\0';
        return sd_error_set(err, SD_ERR_FATAL, "kafka",
                            "TLS with Kafka at %s failed: the certificate of broker %s is not "
                            "for %s (%s; it names %s): reach the brokers by a name their "
                            "certificates hold, or have certificates made for the names you use",
                            s->brokers, r->broker, host, why, r->cert.names);
    }
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return sd_error_set(err, SD_ERR_FATAL, "kafka",
                            "TLS with Kafka at %s failed: the certificate of broker %s comes "
                            "from the CA %s, which ssl.ca.location (%s) does not hold (%s): "
                            "point ssl.ca.location at the CA that signed the brokers' "
                            "certificates",
                            s->brokers, r->broker,
                            r->cert.self_signed ? r->cert.subject : r->cert.issuer,
                            setting(s, "ssl.ca.location") ? setting(s, "ssl.ca.location")
                                                          : "not set: the system's CAs",
                            why);
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return sd_error_set(err, SD_ERR_FATAL, "kafka",
                            "TLS with Kafka at %s failed: the certificate %s of broker %s is "
                            "valid from %s to %s (%s): the brokers need a valid certificate, or "
                            "this machine's clock is wrong",
                            s->brokers, r->cert.subject, r->broker, r->cert.not_before,
                            r->cert.not_after, why);
    default:
        return sd_error_set(err, SD_ERR_FATAL, "kafka",
                            "TLS with Kafka at %s failed: the certificate %s (issuer %s) of "
                            "broker %s does not verify: %s",
                            s->brokers, r->cert.subject, r->cert.issuer, r->broker, why);
    }
}

static sd_err_t refused(const sd_kafka_settings_t *s, refusal_t *r, sd_error_t *err)
{
    if (r->code == RD_KAFKA_RESP_ERR__SSL) {
        pthread_mutex_lock(&r->lock);
        verify_failure_t seen = r->failed; /* a broker thread may write it meanwhile */
        pthread_mutex_unlock(&r->lock);
        if (seen.x509_error)
            return untrusted(s, &seen, err);
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
                        s->brokers, prop(s, "sasl.mechanisms", prop(s, "sasl.mechanism", "GSSAPI")),
                        prop(s, "sasl.username", "(none)"), r->reason);
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
                            prop(s, "sasl.username", "(anonymous)"), topic, s->brokers);
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

/* The passphrase for an encrypted client key, noting that one was asked
 * for (OpenSSL asks only for an encrypted key). */
typedef struct key_password {
    const char *password; /* ssl.key.password; NULL: not set */
    int asked;
} key_password_t;

static int give_key_password(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    key_password_t *k = u;
    k->asked = 1;
    size_t len = k->password ? strlen(k->password) : 0;
    if (!k->password || len > (size_t)size)
        return -1;
    memcpy(buf, k->password, len);
    return (int)len;
}

/* A PEM reader's password callback for what is never encrypted: without
 * one OpenSSL would prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The client's certificate, from ssl.certificate.location or .pem (PEM)
 * or ssl.keystore.location (PKCS#12), into *cert (the caller frees it),
 * with the setting it came from and where it says (a file, or the
 * setting's name); *cert stays NULL when none is set or it cannot be read
 * (librdkafka then says why when it loads it). */
static void client_cert(const sd_kafka_settings_t *s, X509 **cert, const char **from,
                        const char **where)
{
    const char *path = setting(s, "ssl.certificate.location");
    const char *pem = setting(s, "ssl.certificate.pem");
    const char *store = setting(s, "ssl.keystore.location");
    *cert = NULL;
    *where = path ? path : store ? store : "the property's value";
    if (path) {
        *from = "ssl.certificate.location";
        FILE *f = fopen(path, "r");
        if (f) {
            *cert = PEM_read_X509(f, NULL, no_password, NULL);
            fclose(f);
        }
    } else if (pem) {
        *from = "ssl.certificate.pem";
        BIO *bio = BIO_new_mem_buf(pem, -1);
        if (bio)
            *cert = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        BIO_free(bio);
    } else if (store) {
        *from = "ssl.keystore.location";
        FILE *f = fopen(store, "rb");
        PKCS12 *p12 = f ? d2i_PKCS12_fp(f, NULL) : NULL;
        EVP_PKEY *key = NULL;
        STACK_OF(X509) *chain = NULL;
        if (p12 && !PKCS12_parse(p12, setting(s, "ssl.keystore.password"), &key, cert, &chain))
            *cert = NULL;
        EVP_PKEY_free(key);
        sk_X509_pop_free(chain, X509_free);
        PKCS12_free(p12);
        if (f)
            fclose(f);
    }
}

/* Checks what the client proves itself with, before connecting: an
 * encrypted key (ssl.key.location) must open with ssl.key.password, and the
 * client certificate must be valid now.  Brokers check that certificate
 * only after a TLS 1.3 handshake has completed, so librdkafka sees their
 * refusal as a dropped connection, like any network failure, and could
 * never tell it apart.  SD_OK when nothing is wrong, or what is set cannot
 * be read at all (librdkafka says why when it loads it); SD_ERR_FATAL,
 * err naming the setting and file, never the passphrase, otherwise. */
static sd_err_t client_identity(const sd_kafka_settings_t *s, sd_error_t *err)
{
    sd_err_t rc = SD_OK;
    X509 *cert = NULL;
    const char *key_path = setting(s, "ssl.key.location");
    if (key_path) {
        FILE *f = fopen(key_path, "r");
        key_password_t k = {setting(s, "ssl.key.password"), 0};
        EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, give_key_password, &k) : NULL;
        if (f)
            fclose(f);
        if (!key && k.asked) {
            rc = sd_error_set(err, SD_ERR_FATAL, "ssl.key.password",
                              k.password ? "cannot decrypt the client key %s with "
                                           "ssl.key.password: it is not that key's passphrase"
                                         : "the client key %s is encrypted and ssl.key.password "
                                           "is not set (-X ssl.key.password=… or "
                                           "SESSIOND_X_SSL_KEY_PASSWORD)",
                              key_path);
            goto done;
        }
        EVP_PKEY_free(key);
    }
    const char *from = NULL, *where = NULL;
    client_cert(s, &cert, &from, &where);
    if (!cert)
        goto done;
    cert_info_t info;
    describe(cert, &info);
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        rc = sd_error_set(err, SD_ERR_FATAL, from,
                          "the client certificate %s of %s (%s) expired at %s: brokers refuse "
                          "it; renew it",
                          info.subject, from, where, info.not_after);
    else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        rc = sd_error_set(err, SD_ERR_FATAL, from,
                          "the client certificate %s of %s (%s) is not valid before %s: "
                          "brokers refuse it until then; check this machine's clock",
                          info.subject, from, where, info.not_before);
done:
    X509_free(cert);
    /* What failed here stays out of the error queue librdkafka reads next. */
    ERR_clear_error();
    return rc;
}

sd_err_t sd_kafka_preflight(const sd_kafka_settings_t *s, const char *const *topics, size_t n,
                            int creates, int64_t bound_ms, sd_error_t *err)
{
    const char *const role[] = {"allow.auto.create.topics", creates ? "true" : "false", NULL};
    refusal_t refusal = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    pthread_mutex_init(&refusal.lock, NULL);
    sd_err_t rc = client_identity(s, err);
    if (rc == SD_OK)
        rc = sd_kafka_conf(s, SD_KAFKA_PRODUCER, role, &conf, err);
    if (rc != SD_OK)
        goto done;
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_conf_set_opaque(conf, &refusal);
    /* Not when verification is off: OpenSSL still reports what it finds,
     * which then fails nothing and must not be blamed for another TLS
     * failure.  Setting it fails only in a librdkafka built without TLS,
     * where no certificate is ever verified: nothing to explain then. */
    const char *verify = setting(s, "enable.ssl.certificate.verification");
    if (!verify || strcmp(verify, "false") != 0)
        (void)rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_verify);
    char why[512];
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        rc = sd_error_set(err, SD_ERR_FATAL, "kafka", "cannot make a Kafka client: %s", why);
        goto done;
    }
    conf = NULL; /* the client owns it now */
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
    pthread_mutex_destroy(&refusal.lock);
    return rc;
}
