/* sessiond tail: prints session changes (read_committed) as JSON lines. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/commands.h"
#include "sessiond/kafka.h"
#include "sessiond/kafka_preflight.h"
#include "sessiond/options.h"

static const char usage[] =
    "usage: sessiond tail [--brokers HOSTS] [--topic T] [--from earliest|latest]\n"
    "                     [--count N] [--idle D]\n"
    "\n"
    "Prints the messages of a topic (default session-changes) as JSON lines,\n"
    "reading only committed transactions.  Stops after --count messages, after\n"
    "--idle without one, or at Ctrl-C.\n"
    "exit status: 0 done, 1 Kafka refused (credentials, TLS) or no such topic,\n"
    "2 usage, 3 Kafka unavailable\n";

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* Assigns every partition of topic at the start or the end. */
static int assign_all(rd_kafka_t *rk, const char *topic, int64_t start, char *why, size_t cap)
{
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (rc) {
        snprintf(why, cap, "cannot read the partitions of %s: %s", topic, rd_kafka_err2str(rc));
        return -1;
    }
    int ok = md->topic_cnt == 1 && !md->topics[0].err;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; ok && i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            start;
    if (!ok)
        snprintf(why, cap, "topic %s: %s", topic,
                 rd_kafka_err2str(md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    rd_kafka_metadata_destroy(md);
    if (ok && (rc = rd_kafka_assign(rk, parts))) {
        snprintf(why, cap, "cannot read %s: %s", topic, rd_kafka_err2str(rc));
        ok = 0;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return ok ? 0 : -1;
}

/* A read_committed consumer of every partition of topic, from its start
 * (earliest) or its end.  Returns the exit status: 0 with *out, 1 Kafka
 * refused us, 2 configuration, 3 the topic cannot be read; says why on
 * stderr. */
static int open_tail(const sd_kafka_settings_t *ks, const char *topic, int earliest,
                     int64_t startup_ms, rd_kafka_t **out)
{
    const char *role[] = {"isolation.level", "read_committed", "enable.auto.commit", "false",
                          "group.id", "sessiond-tail", "enable.partition.eof", "false", NULL};
    sd_error_t err = {0};
    rd_kafka_conf_t *conf;
    char why[512];
    *out = NULL;
    if (sd_kafka_preflight(ks, &topic, 1, 0, startup_ms, &err) == SD_ERR_FATAL) {
        fprintf(stderr, "sessiond tail: %s\n", err.message);
        return 1;
    }
    if (sd_kafka_conf(ks, SD_KAFKA_CONSUMER, role, &conf, &err) != SD_OK) {
        fprintf(stderr, "sessiond tail: %s: %s\n", err.field, err.message);
        return 2;
    }
    if (sd_kafka_new(SD_KAFKA_CONSUMER, conf, "brokers", "a Kafka consumer", out, &err) != SD_OK) {
        fprintf(stderr, "sessiond tail: %s\n", err.message);
        return 2;
    }
    if (assign_all(*out, topic, earliest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END, why,
                   sizeof why)) {
        fprintf(stderr, "sessiond tail: %s\n", why);
        return 3;
    }
    return 0;
}

/* Prints each message's value as a line until count messages (0: no
 * bound), idle_ms without one (0: no bound) or a signal. */
static void print_messages(rd_kafka_t *rk, int64_t count, int64_t idle_ms)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int64_t seen = 0, quiet_ms = 0;
    while (!stop && (!count || seen < count) && (!idle_ms || quiet_ms < idle_ms)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            quiet_ms += 100;
            continue;
        }
        if (m->err) {
            fprintf(stderr, "sessiond tail: %s\n", rd_kafka_message_errstr(m));
        } else {
            fwrite(m->payload, 1, m->len, stdout);
            fputc('\n', stdout);
            seen++;
            quiet_ms = 0;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
}

int sd_cmd_tail(int argc, char **argv)
{
    const char *brokers = "localhost:9092", *topic = "session-changes", *from = "latest";
    int64_t count = 0, idle_ms = 0, startup_ms = SD_STARTUP_TIMEOUT_MS;
    const sd_option_t opts[] = {
        {"brokers", SD_OPT_STRING, &brokers, "HOSTS", "bootstrap servers (default localhost:9092)", NULL},
        {"topic", SD_OPT_STRING, &topic, "T", "topic to read (default session-changes)", NULL},
        {"from", SD_OPT_STRING, &from, "WHERE", "earliest or latest (default)", NULL},
        {"count", SD_OPT_INT, &count, "N", "stop after N messages (default 0: no limit)", NULL},
        {"idle", SD_OPT_DURATION_OFF, &idle_ms, "D",
         "stop after D without a message (default 0: no limit)", NULL},
        SD_STARTUP_TIMEOUT_OPTION(&startup_ms),
    };
    sd_props_t props = {0};
    sd_error_t err = {0};
    size_t n_pos;
    int help = 0, status = 2;
    rd_kafka_t *rk = NULL;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], &props, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK) {
        fprintf(stderr, "sessiond tail: %s\n", err.message);
        goto done;
    }
    if (help) {
        status = 0;
        goto done;
    }
    if (strcmp(from, "earliest") && strcmp(from, "latest")) {
        fprintf(stderr, "sessiond tail: --from is earliest or latest, not \"%s\"\n", from);
        goto done;
    }
    sd_kafka_settings_t ks = {brokers, props.items, props.count, 0};
    status = open_tail(&ks, topic, strcmp(from, "earliest") == 0, startup_ms, &rk);
    if (status == 0)
        print_messages(rk, count, idle_ms);
done:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    sd_props_free(&props);
    return status;
}
