#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/kafka.h"
#include "sessiond/log.h"

int sd_kafka_prop_is_secret(const char *name)
{
    return strstr(name, "password") || strstr(name, "secret") ||
           strstr(name, "sasl.oauthbearer.config") || strstr(name, "ssl.key.pem") ||
           strstr(name, "ssl_key");
}

static sd_err_t set(rd_kafka_conf_t *conf, const char *key, const char *value, sd_error_t *err)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return SD_OK;
    if (sd_kafka_prop_is_secret(key))
        return sd_error_set(err, SD_ERR_FATAL, key, "%s", why);
    return sd_error_set(err, SD_ERR_FATAL, key, "%s (value: %s)", why, value);
}

/* librdkafka's own messages (syslog levels) join sessiond's log lines. */
static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *message)
{
    sd_log_level_t to = level <= 3 ? SD_LOG_ERROR : level == 4 ? SD_LOG_WARN
                        : level <= 6 ? SD_LOG_INFO : SD_LOG_DEBUG;
    sd_log(to, "kafka", message, "client=%s facility=%s", rd_kafka_name(rk), facility);
}

/* Sets each key and value of a NULL-terminated list of pairs (none if
 * pairs is NULL). */
static sd_err_t set_pairs(rd_kafka_conf_t *conf, const char *const *pairs, sd_error_t *err)
{
    for (size_t i = 0; pairs && pairs[i]; i += 2) {
        sd_err_t rc = set(conf, pairs[i], pairs[i + 1], err);
        if (rc != SD_OK)
            return rc;
    }
    return SD_OK;
}

/* Sets each -X key=value, in order: a later one wins. */
static sd_err_t set_user_props(rd_kafka_conf_t *conf, const sd_kafka_settings_t *s,
                               sd_error_t *err)
{
    for (size_t i = 0; i < s->n_props; i++) {
        const char *eq = strchr(s->props[i], '=');
        if (!eq)
            return sd_error_set(err, SD_ERR_FATAL, "-X", "'%s' is not key=value", s->props[i]);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - s->props[i]), s->props[i]);
        sd_err_t rc = set(conf, key, eq + 1, err);
        if (rc != SD_OK)
            return rc;
    }
    return SD_OK;
}

sd_err_t sd_kafka_conf(const sd_kafka_settings_t *s, sd_kafka_role_t role,
                       const char *const *role_props, rd_kafka_conf_t **out, sd_error_t *err)
{
    /* Each batch waits for a commit's answer: Nagle's algorithm would hold
     * small requests back for the peer's delayed ACK (~40 ms). */
    static const char *const every[] = {"socket.nagle.disable", "true", NULL};
    /* The mock cluster answers an empty fetch only after the full wait,
     * and holds its group for a dead member's whole session: keep both
     * short (SPEC §6).  -X still overrides them. */
    static const char *const embedded[] = {"fetch.wait.max.ms", "5",
                                           "session.timeout.ms", "6000",
                                           "heartbeat.interval.ms", "500", NULL};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_log);
    sd_err_t rc = SD_OK;
    if (s->brokers && (rc = set(conf, "bootstrap.servers", s->brokers, err)) != SD_OK)
        goto done;
    if ((rc = set_pairs(conf, every, err)) != SD_OK)
        goto done;
    if (s->embedded && role == SD_KAFKA_CONSUMER && (rc = set_pairs(conf, embedded, err)) != SD_OK)
        goto done;
    if ((rc = set_pairs(conf, role_props, err)) != SD_OK)
        goto done;
    if ((rc = set_user_props(conf, s, err)) != SD_OK)
        goto done;
    *out = conf;
done:
    if (rc != SD_OK)
        rd_kafka_conf_destroy(conf);
    return rc;
}

const char *sd_kafka_setting(const sd_kafka_settings_t *s, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = s->n_props; i-- > 0;)
        if (!strncmp(s->props[i], key, len) && s->props[i][len] == '=')
            return s->props[i][len + 1] ? s->props[i] + len + 1 : NULL;
    return NULL;
}

sd_err_t sd_kafka_new(sd_kafka_role_t role, rd_kafka_conf_t *conf, const char *field,
                      const char *what, rd_kafka_t **out, sd_error_t *err)
{
    char why[512];
    *out = rd_kafka_new(role == SD_KAFKA_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf,
                        why, sizeof why);
    if (*out)
        return SD_OK;
    rd_kafka_conf_destroy(conf);
    return sd_error_set(err, SD_ERR_FATAL, field, "cannot create %s: %s", what, why);
}
