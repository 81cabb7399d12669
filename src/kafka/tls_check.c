#define _POSIX_C_SOURCE 200809L
#include "tls_check.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
static void describe(X509 *cert, sd_tls_cert_info_t *info)
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

/* The message for a broker certificate that failed verification: what is
 * wrong with it, in the terms of the setting that fixes it. */
static sd_err_t untrusted(const sd_kafka_settings_t *s, const sd_tls_bad_cert_t *r,
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
                            sd_kafka_setting(s, "ssl.ca.location") ? sd_kafka_setting(s, "ssl.ca.location")
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

void sd_tls_failure_init(sd_tls_failure_t *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
}

void sd_tls_failure_destroy(sd_tls_failure_t *f) { pthread_mutex_destroy(&f->lock); }

int sd_tls_failure_record(sd_tls_failure_t *f, const char *broker_name, const int *x509_error,
                          const char *der, size_t size, char *errstr, size_t errstr_size)
{
    if (*x509_error == X509_V_OK)
        return 1;
    snprintf(errstr, errstr_size, "%s", X509_verify_cert_error_string(*x509_error));
    pthread_mutex_lock(&f->lock);
    if (!f->first.x509_error) {
        f->first.x509_error = *x509_error;
        snprintf(f->first.broker, sizeof f->first.broker, "%s", broker_name);
        const unsigned char *p = (const unsigned char *)der;
        X509 *cert = d2i_X509(NULL, &p, (long)size);
        if (cert)
            describe(cert, &f->first.cert);
        X509_free(cert);
    }
    pthread_mutex_unlock(&f->lock);
    return 0;
}

sd_err_t sd_tls_failure_explain(const sd_kafka_settings_t *s, sd_tls_failure_t *f,
                                sd_error_t *err)
{
    pthread_mutex_lock(&f->lock);
    sd_tls_bad_cert_t seen = f->first; /* a broker thread may write it meanwhile */
    pthread_mutex_unlock(&f->lock);
    return seen.x509_error ? untrusted(s, &seen, err) : SD_OK;
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
    const char *path = sd_kafka_setting(s, "ssl.certificate.location");
    const char *pem = sd_kafka_setting(s, "ssl.certificate.pem");
    const char *store = sd_kafka_setting(s, "ssl.keystore.location");
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
        if (p12 && !PKCS12_parse(p12, sd_kafka_setting(s, "ssl.keystore.password"), &key, cert, &chain))
            *cert = NULL;
        EVP_PKEY_free(key);
        sk_X509_pop_free(chain, X509_free);
        PKCS12_free(p12);
        if (f)
            fclose(f);
    }
}

sd_err_t sd_tls_check_client(const sd_kafka_settings_t *s, sd_error_t *err)
{
    sd_err_t rc = SD_OK;
    X509 *cert = NULL;
    const char *key_path = sd_kafka_setting(s, "ssl.key.location");
    if (key_path) {
        FILE *f = fopen(key_path, "r");
        key_password_t k = {sd_kafka_setting(s, "ssl.key.password"), 0};
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
    sd_tls_cert_info_t info;
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
