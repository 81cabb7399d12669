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

/* The lines read so far, each with its key. */
typedef struct lines {
    line_t *items;
    size_t n, cap;
    size_t invalid; /* skipped */
} lines_t;

/* Keeps one valid line and its key.  Returns 0, or -1 out of memory. */
static int keep_line(lines_t *l, const char *text, size_t len, const char *key)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        line_t *grown = realloc(l->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->items = grown;
        l->cap = cap;
    }
    line_t *kept = &l->items[l->n];
    *kept = (line_t){malloc(len), len, strdup(key)};
    if (kept->text)
        memcpy(kept->text, text, len);
    l->n++; /* freed with the rest, whole or not */
    return kept->text && kept->key ? 0 : -1;
}

/* Reads and validates every line of path ("-": standard input) into *l.
 * Returns the exit status so far: 0, 1 an invalid line (unless
 * skip_invalid), 2 the file cannot be read whole (or out of memory); every
 * failure is said on stderr. */
static int read_events(const char *path, int skip_invalid, lines_t *l)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "sessiond publish: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    long lineno = 0;
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t got;
    int status = 0;
    while (status == 0 && (got = sd_jsonl_next(in, &buf, &bufcap, &lineno)) >= 0) {
        sd_event_t ev;
        sd_error_t err;
        if (sd_event_parse(buf, (size_t)got, &ev, &err) != SD_OK) {
            char text[SD_ERROR_TEXT_BUFSZ];
            fprintf(stderr, "%s: line %ld: %s\n", path, lineno, sd_error_text(&err, text));
            l->invalid++;
            status = skip_invalid ? 0 : 1;
            continue;
        }
        const char *key = ev.type == SD_EVENT_SCENARIO_SAVED ? ev.short_id : ev.task_id;
        if (keep_line(l, buf, (size_t)got, key) != 0) {
            fprintf(stderr, "sessiond publish: out of memory at line %ld\n", lineno);
            status = 2;
        }
        sd_event_clear(&ev);
    }
    /* A file not read to its end (a directory, an I/O error) publishes
     * nothing: what was read of it is not what its writer meant. */
    if (status == 0 && ferror(in)) {
        fprintf(stderr, "sessiond publish: cannot read %s: %s (nothing published)\n",
                is_stdin ? "standard input" : path, strerror(errno));
        status = 2;
    }
    free(buf);
    if (!is_stdin)
        fclose(in);
    return status;
}

/* Publishes every kept line to topic and waits for Kafka to take them.
 * Returns the exit status: 0, 1 Kafka refused us, 2 no producer, 3 Kafka
 * unavailable; says so on stderr either way. */
static int send_events(const sd_kafka_settings_t *ks, const char *topic, int64_t startup_ms,
                       const lines_t *l)
{
    sd_error_t err = {0};
    sd_producer_t *producer = NULL;
    int status = 0;
    if (sd_kafka_preflight(ks, &topic, 1, 1, startup_ms, &err) == SD_ERR_FATAL) {
        fprintf(stderr, "sessiond publish: %s (nothing published)\n", err.message);
        return 1;
    }
    if (sd_producer_new(ks, NULL, &producer, &err) != SD_OK) {
        fprintf(stderr, "sessiond publish: %s\n", err.message);
        return 2;
    }
    for (size_t i = 0; status == 0 && i < l->n; i++)
        if (sd_producer_send(producer, topic, l->items[i].key, l->items[i].text, l->items[i].len,
                             NULL, 0, &err) != SD_OK)
            status = 3;
    if (status == 0 && sd_producer_flush(producer, 30000, &err) != SD_OK)
        status = 3;
    if (status == 3)
        fprintf(stderr, "sessiond publish: %s\n", err.message);
    else if (l->invalid)
        fprintf(stderr, "sessiond publish: %zu events published to %s, %zu invalid skipped\n",
                l->n, topic, l->invalid);
    else
        fprintf(stderr, "sessiond publish: %zu events published to %s\n", l->n, topic);
    sd_producer_destroy(producer);
    return status;
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
    int help = 0, status = 2;
    lines_t lines = {0};
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], &props, argc, argv, usage, &path, 1,
                         &n_pos, &help, &err) != SD_OK) {
        fprintf(stderr, "sessiond publish: %s\n", err.message);
        goto done;
    }
    if (help || n_pos != 1) {
        if (!help)
            fprintf(stderr, "sessiond publish: give one FILE, or - for stdin\n");
        status = help ? 0 : 2;
        goto done;
    }
    status = read_events(path, skip_invalid, &lines);
    if (status == 0) {
        sd_kafka_settings_t ks = {brokers, props.items, props.count, 0};
        status = send_events(&ks, topic, startup_ms, &lines);
    }
done:
    free_lines(lines.items, lines.n);
    sd_props_free(&props);
    return status;
}
