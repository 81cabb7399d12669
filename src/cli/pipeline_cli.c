#define _POSIX_C_SOURCE 200809L
#include "sessiond/pipeline_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/kafka_admin.h"
#include "sessiond/log.h"

static int64_t rules_clock(void *arg)
{
    (void)arg;
    return sd_config_now_ms();
}

void sd_pipeline_cli_init(sd_pipeline_cli_t *c, const char *default_group)
{
    memset(c, 0, sizeof *c);
    c->cfg = (sd_pipeline_config_t){.group = default_group, .output_topic = "session-changes",
                                    .batch_ms = SD_BATCH_MS_DEFAULT, .backoff_max_ms = 30000,
                                    .now_ms = rules_clock};
    c->inputs = "task-events";
    c->delivery = "at-least-once";
    c->log_level = "info";
    c->batch_max = SD_BATCH_MAX_DEFAULT;
    c->batch_bytes = SD_BATCH_BYTES_DEFAULT;
    c->startup_timeout_ms = SD_STARTUP_TIMEOUT_MS;
}

/* Splits "a,b,c" in place into at most cap topic names. */
/* This machine's name, or "localhost" if it has none: part of the names
 * that must differ between machines (transactional ids, replay groups). */
static const char *host_name(char buf[128])
{
    if (gethostname(buf, 127) != 0)
        snprintf(buf, 128, "localhost");
    buf[127] = '\0';
    return buf;
}

static size_t split_topics(char *list, const char **out, size_t cap)
{
    size_t n = 0;
    for (char *save, *t = strtok_r(list, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save))
        if (*t)
            out[n++] = t;
    return n;
}

sd_err_t sd_pipeline_cli_finish(sd_pipeline_cli_t *c, sd_error_t *err)
{
    sd_pipeline_config_t *cfg = &c->cfg;
    sd_log_level_t level;
    if (!c->brokers)
        return sd_error_set(err, SD_ERR_INVALID, "brokers",
                            "no brokers: use --brokers HOSTS or SESSIOND_BROKERS");
    if (!c->store.uri)
        return sd_error_set(err, SD_ERR_INVALID, "store",
                            "no store: use --store URI (sqlite:PATH or mongodb://…) or "
                            "SESSIOND_STORE");
    if (!(c->input_list = strdup(c->inputs)))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory");
    cfg->n_inputs = split_topics(c->input_list, c->topics, SD_MAX_INPUTS);
    cfg->inputs = c->topics;
    if (cfg->n_inputs == 0)
        return sd_error_set(err, SD_ERR_INVALID, "input-topics", "no input topics");
    if (strcmp(c->delivery, "at-least-once") && strcmp(c->delivery, "exactly-once"))
        return sd_error_set(err, SD_ERR_INVALID, "delivery",
                            "--delivery is at-least-once or exactly-once");
    if (c->batch_max < 1)
        return sd_error_set(err, SD_ERR_INVALID, "batch-max", "--batch-max must be at least 1");
    if (c->batch_bytes < 1)
        return sd_error_set(err, SD_ERR_INVALID, "batch-bytes",
                            "--batch-bytes must be at least 1 (a batch always takes one event)");
    if (sd_config_check_clock(err) != SD_OK)
        return SD_ERR_INVALID;
    if (getenv("SESSIOND_NOW"))
        sd_log(SD_LOG_WARN, "config", "the rules' clock is frozen (SESSIOND_NOW)", "now=%s",
               getenv("SESSIOND_NOW"));
    if (sd_log_level_from_name(c->log_level, &level))
        return sd_error_set(err, SD_ERR_INVALID, "log-level",
                            "--log-level is debug, info, warn or error");
    sd_log_set_level(level);
    cfg->batch_max = (size_t)c->batch_max;
    cfg->batch_bytes = (size_t)c->batch_bytes;
    cfg->delivery = strcmp(c->delivery, "exactly-once") ? SD_DELIVERY_AT_LEAST_ONCE
                                                        : SD_DELIVERY_EXACTLY_ONCE;
    if (!cfg->dlq_topic) {
        snprintf(c->dlq, sizeof c->dlq, "%s.dlq",
                 c->topics[0][0] == '^' ? "sessiond" : c->topics[0]);
        cfg->dlq_topic = c->dlq;
    }
    if (!cfg->transactional_id) {
        char host[128];
        snprintf(c->txid, sizeof c->txid, "sessiond-%s-%s", cfg->group, host_name(host));
        cfg->transactional_id = c->txid;
    }
    cfg->kafka = (sd_kafka_settings_t){c->brokers, c->props.items, c->props.count, 0};
    return SD_OK;
}

sd_err_t sd_pipeline_cli_preflight(const sd_pipeline_cli_t *c, int writes_input, int produces,
                                   sd_error_t *err)
{
    const sd_pipeline_config_t *cfg = &c->cfg;
    const char *outputs[] = {cfg->output_topic, cfg->dlq_topic};
    /* `run` writes to its first input too (expiry events, DELETE): there,
     * as for the outputs, a broker that creates topics on first use may
     * create them, as the first write would.  A reader creates nothing. */
    sd_err_t rc = sd_kafka_preflight(&cfg->kafka, cfg->inputs, cfg->n_inputs, writes_input,
                                     c->startup_timeout_ms, err);
    if (rc != SD_OK || !produces)
        goto done;
    rc = sd_kafka_preflight(&cfg->kafka, outputs, 2, 1, c->startup_timeout_ms, err);
done:
    if (rc == SD_ERR_TRANSIENT) {
        sd_log(SD_LOG_WARN, "kafka", "brokers not reachable at start-up: going on, retrying",
               "error=%s", SD_LOG_Q(err->message));
        return SD_OK;
    }
    if (rc != SD_OK)
        sd_log(SD_LOG_ERROR, "kafka", "cannot start", "error=%s", SD_LOG_Q(err->message));
    return rc;
}

sd_err_t sd_pipeline_cli_open_store(const sd_pipeline_cli_t *c, sd_store_t **out,
                                    sd_error_t *err)
{
    char masked[512];
    sd_log_mask_url(c->store.uri, masked, sizeof masked);
    sd_err_t rc = sd_store_open_ready(&c->store, out, err);
    if (rc != SD_OK) {
        sd_log(SD_LOG_ERROR, "store", "cannot open the store", "store=%s error=%s", masked,
               SD_LOG_Q(err->message));
        return rc;
    }
    sd_log(SD_LOG_INFO, "store", "store ready", "kind=%s store=%s", sd_store_kind(*out), masked);
    return SD_OK;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    if (stop_requested)
        _exit(128 + sig);
    stop_requested = 1;
}

volatile sig_atomic_t *sd_pipeline_cli_trap_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    return &stop_requested;
}

void sd_pipeline_cli_free(sd_pipeline_cli_t *c)
{
    free(c->input_list);
    c->input_list = NULL;
    sd_props_free(&c->props);
}

const char *sd_pipeline_cli_replay_group(char *buf, size_t cap)
{
    char host[128];
    snprintf(buf, cap, "sessiond-replay-%s-%ld", host_name(host), (long)getpid());
    return buf;
}

/* Refuses a group its coordinator says has members (brokers that cannot
 * describe groups are checked by the pipeline once it joins). */
static sd_err_t check_group_idle(rd_kafka_t *admin, const char *group, sd_error_t *err)
{
    int members;
    sd_err_t rc = sd_kafka_group_members(admin, group, &members, err);
    if (rc != SD_OK)
        return rc;
    if (members > 0)
        return sd_error_set(err, SD_ERR_FATAL, "group",
                            "consumer group %s has %d member(s): stop them first (a replay must "
                            "be the group's only member)",
                            group, members);
    return SD_OK;
}

sd_err_t sd_pipeline_cli_replay_range(const sd_pipeline_cli_t *c, int64_t from_ms, int produces,
                                      sd_replay_bounds_t *bounds, long *to_read, sd_error_t *err)
{
    rd_kafka_t *admin = NULL;
    sd_err_t rc;
    *to_read = 0;
    if ((rc = sd_pipeline_cli_preflight(c, 0, produces, err)) != SD_OK)
        goto done;
    if ((rc = sd_kafka_admin_open(&c->cfg.kafka, &admin, err)) != SD_OK)
        goto done;
    if ((rc = check_group_idle(admin, c->cfg.group, err)) != SD_OK)
        goto done;
    if ((rc = sd_kafka_replay_range(admin, c->cfg.inputs, c->cfg.n_inputs, from_ms,
                                    &bounds->start, &bounds->end, err)) != SD_OK)
        goto done;
    for (int i = 0; i < bounds->end->cnt; i++)
        *to_read += (long)(bounds->end->elems[i].offset - bounds->start->elems[i].offset);
done:
    if (admin)
        rd_kafka_destroy(admin);
    return rc;
}
