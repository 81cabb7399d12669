/* sessiond run: the daemon. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/commands.h"
#include "sessiond/config.h"
#include "sessiond/log.h"
#include "sessiond/pipeline.h"

static const char usage[] =
    "usage: sessiond run --brokers HOSTS|embedded --store URI [options]\n"
    "\n"
    "Consumes task events, keeps the sessions in the store and publishes every\n"
    "session change.  SIGTERM or SIGINT: finish or abort the batch in flight,\n"
    "commit, leave the group and exit 0; a second signal exits at once.\n"
    "exit status: 0 stopped by a signal, 1 fatal error, 2 usage or configuration\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    if (stop_requested)
        _exit(128 + sig);
    stop_requested = 1;
}

static int64_t wall_clock(void *arg)
{
    (void)arg;
    return sd_config_now_ms();
}

/* Splits "a,b,c" in place into at most cap topic names. */
static size_t split_topics(char *list, const char **out, size_t cap)
{
    size_t n = 0;
    for (char *save, *t = strtok_r(list, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save))
        if (*t)
            out[n++] = t;
    return n;
}

static sd_err_t start_embedded(sd_embedded_t **out, const char *const *topics, size_t n,
                               int64_t partitions, sd_error_t *err)
{
    sd_err_t rc = sd_embedded_start(3, out, err);
    for (size_t i = 0; rc == SD_OK && i < n; i++)
        if (topics[i][0] != '^')
            rc = sd_embedded_create_topic(*out, topics[i], (int)partitions, err);
    if (rc == SD_OK)
        sd_log(SD_LOG_INFO, "embedded", "embedded broker started: it keeps nothing on disk",
               "bootstrap=%s brokers=3 partitions=%lld", sd_embedded_bootstraps(*out),
               (long long)partitions);
    return rc;
}

int sd_cmd_run(int argc, char **argv)
{
    sd_store_config_t store_cfg = {0};
    const char *brokers = NULL, *inputs = "task-events", *delivery = "at-least-once",
               *log_level = "info";
    sd_pipeline_config_t cfg = {.group = "sessiond", .output_topic = "session-changes",
                                .batch_ms = 100, .backoff_max_ms = 30000, .now_ms = wall_clock};
    int64_t batch_max = 500, partitions = 4;
    const sd_option_t opts[] = {
        {"brokers", SD_OPT_STRING, &brokers, "HOSTS", "Kafka bootstrap servers, or embedded", NULL},
        {"input-topics", SD_OPT_STRING, &inputs, "T,…",
         "topics to consume; ^regex subscribes by pattern (default task-events)", NULL},
        {"output-topic", SD_OPT_STRING, &cfg.output_topic, "T", "session changes (default session-changes)", NULL},
        {"dlq-topic", SD_OPT_STRING, &cfg.dlq_topic, "T", "dead letters (default <first input>.dlq)", NULL},
        {"group", SD_OPT_STRING, &cfg.group, "G", "consumer group (default sessiond)", NULL},
        {"delivery", SD_OPT_STRING, &delivery, "MODE", "at-least-once (default) or exactly-once", NULL},
        {"transactional-id", SD_OPT_STRING, &cfg.transactional_id, "ID",
         "exactly-once: the producer's transactional.id (default sessiond-<group>-<host>)", NULL},
        {"batch-max", SD_OPT_INT, &batch_max, "N", "events per batch at most (default 500)", NULL},
        {"batch-ms", SD_OPT_DURATION, &cfg.batch_ms, "D", "longest wait to fill a batch (default 100ms)", NULL},
        {"backoff-max", SD_OPT_DURATION, &cfg.backoff_max_ms, "D", "longest retry wait in an outage (default 30s)", NULL},
        {"partitions", SD_OPT_INT, &partitions, "N", "embedded broker: partitions per topic (default 4)", NULL},
        {"log-level", SD_OPT_STRING, &log_level, "L", "debug, info (default), warn or error", NULL},
        SD_STORE_OPTIONS(&store_cfg),
    };
    sd_props_t props = {0};
    sd_error_t err = {0};
    size_t n_pos;
    int help, status = 2;
    sd_log_level_t level;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], &props, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK) {
        fprintf(stderr, "sessiond run: %s\n", err.message);
        sd_props_free(&props);
        return 2;
    }
    if (help) {
        sd_props_free(&props);
        return 0;
    }
    char *input_list = strdup(inputs);
    const char *topics[32];
    cfg.n_inputs = input_list ? split_topics(input_list, topics, 32) : 0;
    cfg.inputs = topics;
    cfg.batch_max = (size_t)batch_max;
    char dlq[300], txid[300], host[128] = "localhost";
    const char *problem = NULL;
    if (!brokers)
        problem = "no brokers: use --brokers HOSTS (or embedded) or SESSIOND_BROKERS";
    else if (!store_cfg.uri)
        problem = "no store: use --store URI (sqlite:PATH or mongodb://…) or SESSIOND_STORE";
    else if (cfg.n_inputs == 0)
        problem = "no input topics";
    else if (strcmp(delivery, "at-least-once") && strcmp(delivery, "exactly-once"))
        problem = "--delivery is at-least-once or exactly-once";
    else if (batch_max < 1 || partitions < 1)
        problem = "--batch-max and --partitions must be at least 1";
    else if (sd_log_level_from_name(log_level, &level))
        problem = "--log-level is debug, info, warn or error";
    if (problem) {
        fprintf(stderr, "sessiond run: %s\n", problem);
        goto out;
    }
    sd_log_set_level(level);
    cfg.delivery = strcmp(delivery, "exactly-once") ? SD_DELIVERY_AT_LEAST_ONCE
                                                    : SD_DELIVERY_EXACTLY_ONCE;
    if (!cfg.dlq_topic) {
        snprintf(dlq, sizeof dlq, "%s.dlq", topics[0][0] == '^' ? "sessiond" : topics[0]);
        cfg.dlq_topic = dlq;
    }
    if (!cfg.transactional_id) {
        gethostname(host, sizeof host - 1);
        snprintf(txid, sizeof txid, "sessiond-%s-%s", cfg.group, host);
        cfg.transactional_id = txid;
    }

    sd_embedded_t *embedded = NULL;
    cfg.kafka = (sd_kafka_settings_t){brokers, props.items, props.count, 0};
    if (strcmp(brokers, "embedded") == 0) {
        const char *all[34];
        size_t n = 0;
        for (size_t i = 0; i < cfg.n_inputs; i++)
            all[n++] = topics[i];
        all[n++] = cfg.output_topic;
        all[n++] = cfg.dlq_topic;
        if (start_embedded(&embedded, all, n, partitions, &err) != SD_OK) {
            fprintf(stderr, "sessiond run: %s\n", err.message);
            goto out;
        }
        cfg.kafka.brokers = sd_embedded_bootstraps(embedded);
        cfg.kafka.embedded = 1;
    }

    char masked[512];
    sd_log_mask_url(store_cfg.uri, masked, sizeof masked);
    sd_store_t *store = NULL;
    if (sd_store_open(&store_cfg, &store, &err) != SD_OK ||
        sd_store_ensure_schema(store, &err) != SD_OK) {
        sd_log(SD_LOG_ERROR, "store", "cannot open the store", "store=%s error=%s", masked, SD_LOG_Q(err.message));
        sd_store_close(store);
        sd_embedded_stop(embedded);
        status = 1;
        goto out;
    }
    sd_log(SD_LOG_INFO, "store", "store ready", "kind=%s store=%s", sd_store_kind(store), masked);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sd_pipeline_stats_t stats = {0};
    sd_err_t rc = sd_pipeline_run(&cfg, store, &stop_requested, &stats, &err);
    sd_store_close(store);
    sd_embedded_stop(embedded);
    status = rc == SD_OK ? 0 : 1;
    if (rc != SD_OK)
        fprintf(stderr, "sessiond run: %s\n", err.message);
out:
    free(input_list);
    sd_props_free(&props);
    return status;
}
