/* sessiond publish FILE|- : validates JSON-lines events and publishes them,
 * keyed as the rules need (task events by task_id, saves by short_id). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/commands.h"
#include "sessiond/event.h"
#include "sessiond/jsonl.h"
#include "sessiond/kafka_preflight.h"
#include "sessiond/log.h"
#include "sessiond/options.h"
#include "sessiond/producer.h"

static const char usage[] =
    "usage: sessiond publish [--brokers HOSTS] [--topic T] [--skip-invalid] FILE|-\n"
    "\n"
    "Validates every event of a JSON-lines file (blank lines skipped), then\n"
    "publishes them with an idempotent producer, keyed by task_id (saves by\n"
    "short_id).  Without --skip-invalid the first invalid line stops it before\n"
    "anything is sent, and so does a file that cannot be read whole.\n"
    "exit status: 0 published, 1 invalid input or Kafka refused (credentials, TLS,\n"
    "no such topic), 2 usage or read error, 3 Kafka unavailable\n";

typedef struct line {
    char *text;
    size_t len;
    char *key;
} line_t;

static void free_lines(line_t *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(lines[i].text);
        free(lines[i].key);
    }
    free(lines);
}

int sd_cmd_publish(int argc, char **argv)
{
    const char *brokers = "localhost:9092", *topic = "task-events";
    int skip_invalid = 0;
    int64_t startup_ms = SD_STARTUP_TIMEOUT_MS;
    const sd_option_t opts[] = {
        {"brokers", SD_OPT_STRING, &brokers, "HOSTS", "bootstrap servers (default localhost:9092)", NULL},
        {"topic", SD_OPT_STRING, &topic, "T", "topic to publish to (default task-events)", NULL},
        {"skip-invalid", SD_OPT_FLAG, &skip_invalid, NULL, "report invalid lines and go on", NULL},
        SD_STARTUP_TIMEOUT_OPTION(&startup_ms),
    };
    sd_props_t props = {0};
    sd_error_t err = {0};
    const char *path = NULL;
    size_t n_pos;
    int help;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], &props, argc, argv, usage, &path, 1,
                         &n_pos, &help, &err) != SD_OK) {
        fprintf(stderr, "sessiond publish: %s\n", err.message);
        sd_props_free(&props);
        return 2;
    }
    if (help || n_pos != 1) {
        if (!help)
            fprintf(stderr, "sessiond publish: give one FILE, or - for stdin\n");
        sd_props_free(&props);
        return help ? 0 : 2;
    }

    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "sessiond publish: cannot open %s: %s\n", path, strerror(errno));
        sd_props_free(&props);
        return 2;
    }
    line_t *lines = NULL;
    size_t n = 0, cap = 0, invalid = 0;
    long lineno = 0;
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t got;
    int status = 0;
    while ((got = sd_jsonl_next(in, &buf, &bufcap, &lineno)) >= 0) {
        size_t len = (size_t)got;
        sd_event_t ev;
        if (sd_event_parse(buf, len, &ev, &err) != SD_OK) {
            char text[SD_ERROR_TEXT_BUFSZ];
            fprintf(stderr, "%s: line %ld: %s\n", path, lineno, sd_error_text(&err, text));
            invalid++;
            if (skip_invalid)
                continue;
            status = 1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            line_t *grown = realloc(lines, cap * sizeof *grown);
            if (!grown) {
                sd_event_clear(&ev);
                status = 2;
                break;
            }
            lines = grown;
        }
        const char *key = ev.type == SD_EVENT_SCENARIO_SAVED ? ev.short_id : ev.task_id;
        lines[n] = (line_t){malloc(len), len, strdup(key)};
        sd_event_clear(&ev);
        if (!lines[n].text || !lines[n].key) {
            status = 2;
            break;
        }
        memcpy(lines[n++].text, buf, len);
    }
    /* A file not read to its end (a directory, an I/O error) publishes
     * nothing: what was read of it is not what its writer meant. */
    if (status == 0 && ferror(in)) {
        fprintf(stderr, "sessiond publish: cannot read %s: %s (nothing published)\n",
                strcmp(path, "-") == 0 ? "standard input" : path, strerror(errno));
        status = 2;
    }
    free(buf);
    if (in != stdin)
        fclose(in);

    sd_kafka_settings_t ks = {brokers, props.items, props.count, 0};
    sd_producer_t *producer = NULL;
    if (status == 0 && sd_kafka_preflight(&ks, &topic, 1, 1, startup_ms, &err) == SD_ERR_FATAL) {
        fprintf(stderr, "sessiond publish: %s (nothing published)\n", err.message);
        status = 1;
    }
    if (status == 0 && sd_producer_new(&ks, NULL, &producer, &err) != SD_OK) {
        fprintf(stderr, "sessiond publish: %s\n", err.message);
        status = 2;
    }
    for (size_t i = 0; status == 0 && i < n; i++)
        if (sd_producer_send(producer, topic, lines[i].key, lines[i].text, lines[i].len, NULL, 0,
                             &err) != SD_OK)
            status = 3;
    if (status == 0 && sd_producer_flush(producer, 30000, &err) != SD_OK)
        status = 3;
    if (status == 3)
        fprintf(stderr, "sessiond publish: %s\n", err.message);
    else if (status == 0 && invalid)
        fprintf(stderr, "sessiond publish: %zu events published to %s, %zu invalid skipped\n", n,
                topic, invalid);
    else if (status == 0)
        fprintf(stderr, "sessiond publish: %zu events published to %s\n", n, topic);
    sd_producer_destroy(producer);
    free_lines(lines, n);
    sd_props_free(&props);
    return status;
}
