/* sessiond demo: the whole daemon on one machine with nothing installed.
 *
 * An embedded broker, a SQLite store in a temporary directory (or
 * --store), a seeded realistic workload published while the pipeline
 * consumes it, a day that passes so the sweeper expires what it should,
 * a summary, and the store checked against the reference model. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/model.h"
#include "sessiond/clock.h"
#include "sessiond/commands.h"
#include "sessiond/config.h"
#include "sessiond/log.h"
#include "sessiond/pipeline.h"
#include "sessiond/pipeline_cli.h"
#include "sessiond/pipeline_thread.h"
#include "sessiond/producer.h"
#include "sessiond/workload.h"

#define DAY_MS (INT64_C(24) * 3600 * 1000)

static const char usage[] =
    "usage: sessiond demo [--tasks N] [--seed S] [--store URI]\n"
    "\n"
    "Runs sessiond on this machine with nothing else: librdkafka's embedded\n"
    "broker and a SQLite store in a temporary directory (or --store, which must\n"
    "be empty).  Publishes a seeded, realistic workload (every task type,\n"
    "shared short_ids, completions, failures, cancellations, saves,\n"
    "regenerations, duplicates, reorders across partitions, a few invalid\n"
    "events), processes it, lets a day pass so sessions expire, prints a\n"
    "summary and checks the store against the reference model.\n"
    "exit status: 0 the store matches the model, 1 it does not or a step\n"
    "failed, 2 usage\n";

/* Sends every line, keyed as producers do, every twentieth valid one twice
 * (a producer's retry); *sent counts messages, *dups the second copies. */
static sd_err_t publish(const sd_kafka_settings_t *kafka, const sd_workload_t *w, size_t *sent,
                        size_t *dups, sd_error_t *err)
{
    sd_producer_t *producer = NULL;
    sd_err_t rc = sd_producer_new(kafka, NULL, &producer, err);
    if (rc != SD_OK)
        goto done;
    for (size_t i = 0; i < w->count; i++) {
        const sd_workload_line_t *l = &w->lines[i];
        int copies = l->valid && i % 20 == 0 ? 2 : 1;
        for (int c = 0; c < copies; c++)
            if ((rc = sd_producer_send(producer, "task-events", l->key, l->json, strlen(l->json),
                                       NULL, 0, err)) != SD_OK)
                goto done;
        *sent += (size_t)copies;
        *dups += (size_t)copies - 1;
    }
    rc = sd_producer_flush(producer, 60000, err);
done:
    sd_producer_destroy(producer);
    return rc;
}

/* Progress while the pipeline works: a live line on a terminal, a line
 * every two seconds otherwise. */
typedef struct progress {
    const sd_pipeline_stats_t *stats;
    size_t sent;
    int tty;
    double last_line;
} progress_t;

static void show_progress(void *arg, long done, double secs, int finished)
{
    progress_t *p = arg;
    if (!p->tty && !finished && secs - p->last_line < 2)
        return;
    printf("%s  %ld of %zu events processed (%.0f%%), %ld changes out, %.0f events/s%s",
           p->tty ? "\r" : "", done, p->sent, 100.0 * (double)done / (double)p->sent,
           sd_stats_changes(p->stats), secs > 0.1 ? (double)done / secs : 0.0,
           p->tty && !finished ? "   " : "\n");
    fflush(stdout);
    p->last_line = secs;
}

/* Valid lines parsed back into events: the model's input. */
static sd_event_t *parse_valid(const sd_workload_t *w, size_t *n)
{
    sd_event_t *events = calloc(w->count + 1, sizeof *events);
    *n = 0;
    for (size_t i = 0; events && i < w->count; i++) {
        sd_error_t err;
        if (w->lines[i].valid &&
            sd_event_parse(w->lines[i].json, strlen(w->lines[i].json), &events[*n], &err) == SD_OK)
            (*n)++;
    }
    return events;
}

/* 1 when the store's visible sessions at now are the model's, every
 * field compared (sd_model_matches); otherwise why says how they differ. */
static int check_model(sd_store_t *store, const sd_model_result_t *model, int64_t now,
                       char *why, size_t cap)
{
    sd_session_list_t list;
    sd_error_t err;
    if (sd_store_list_all(store, now, &list, &err) != SD_OK) {
        snprintf(why, cap, "cannot read the store: %s", err.message);
        return 0;
    }
    int ok = sd_model_matches(list.items, list.count, model, why, cap);
    sd_session_list_free(&list);
    return ok;
}

static long expired_since(const sd_pipeline_stats_t *s, long before)
{
    return atomic_load(&s->changes_by_type[SD_CHANGE_EXPIRED]) - before;
}

static void print_summary(const sd_pipeline_stats_t *s, sd_store_t *store, size_t sent,
                          size_t dups, size_t invalid, double secs, int64_t now)
{
    printf("\n  %-22s %10zu  (%zu duplicates, %zu invalid)\n", "events in", sent, dups, invalid);
    printf("  %-22s %10ld\n", "dead-lettered", atomic_load(&s->dead_lettered));
    printf("  %-22s %10ld\n", "sessions created", atomic_load(&s->changes_by_type[SD_CHANGE_CREATED]));
    printf("  %-22s %10ld\n", "status changes",
           atomic_load(&s->changes_by_type[SD_CHANGE_STATUS_CHANGED]));
    printf("  %-22s %10ld\n", "sessions removed", atomic_load(&s->changes_by_type[SD_CHANGE_REMOVED]));
    printf("  %-22s %10ld  (the day after)\n", "sessions expired",
           atomic_load(&s->changes_by_type[SD_CHANGE_EXPIRED]));
    printf("  %-22s %10ld\n", "changes out", sd_stats_changes(s));
    long batches = atomic_load(&s->batches);
    printf("  %-22s %10ld  (%.0f events each)\n", "batches", batches,
           batches ? (double)sent / (double)batches : 0.0);
    printf("  %-22s %10.0f  events/s (%.1f s)\n", "throughput", (double)sent / secs, secs);
    sd_type_count_t *counts;
    size_t n;
    sd_error_t err;
    if (sd_store_count_by_type(store, now, &counts, &n, &err) == SD_OK) {
        printf("  live sessions by type\n");
        for (size_t i = 0; i < n; i++)
            printf("    %-20s %10lld\n", counts[i].task_type, (long long)counts[i].live);
        free(counts);
    }
}

/* An empty store only: the model knows nothing of what is already there,
 * and a demo must not write into a store someone uses. */
static sd_err_t open_empty_store(sd_store_config_t *cfg, int64_t now, sd_store_t **out,
                                 sd_error_t *err)
{
    sd_session_list_t all;
    sd_err_t rc = sd_store_open_ready(cfg, out, err);
    if (rc != SD_OK)
        return rc;
    if ((rc = sd_store_list_all(*out, now, &all, err)) != SD_OK)
        goto done;
    if (all.count)
        rc = sd_error_set(err, SD_ERR_INVALID, "store",
                          "the demo needs an empty store, and this one has %zu sessions",
                          all.count);
    sd_session_list_free(&all);
done:
    if (rc != SD_OK) {
        sd_store_close(*out);
        *out = NULL;
    }
    return rc;
}

static sd_err_t start_broker(size_t bytes, sd_embedded_t **kafka, int *partitions,
                             sd_error_t *err)
{
    *partitions = sd_embedded_partitions_for(bytes);
    sd_err_t rc = sd_embedded_start(3, kafka, err);
    const char *topics[] = {"task-events", "session-changes", "task-events.dlq"};
    for (size_t i = 0; rc == SD_OK && i < 3; i++)
        rc = sd_embedded_create_topic(*kafka, topics[i], *partitions, err);
    return rc;
}

/* One demo run: its workload, what the model says of it, the broker and
 * the pipeline.  demo_free() releases whatever was made. */
typedef struct demo {
    int64_t now, ttl;
    sd_workload_t workload;
    sd_event_t *events; /* the valid lines, parsed: the model's input */
    size_t n_events, bytes, invalid, sent, dups;
    sd_model_result_t before, after; /* visible now and a day later */
    sd_embedded_t *kafka;
    int partitions;
    sd_pipeline_thread_t d;
    long expired_before;
} demo_t;

/* The sessions visible now that the model says are gone a day later: each
 * should be published as one expiry. */
static long expiries_expected(const demo_t *m)
{
    return (long)m->before.count - (long)m->after.count;
}

/* The workload and the model's two answers (now, a day later). */
static sd_err_t prepare(demo_t *m, int64_t tasks, int64_t seed, sd_error_t *err)
{
    sd_workload_params_t wp = {.seed = (uint64_t)seed, .tasks = (size_t)tasks, .now_ms = m->now,
                               .ttl_ms = m->ttl, .invalid_percent = 1, .id_prefix = ""};
    sd_err_t rc = sd_workload_generate(&wp, &m->workload, err);
    if (rc != SD_OK)
        return rc;
    for (size_t i = 0; i < m->workload.count; i++) {
        m->bytes += strlen(m->workload.lines[i].json) + 100; /* with the record's overhead */
        m->invalid += !m->workload.lines[i].valid;
    }
    if (!(m->events = parse_valid(&m->workload, &m->n_events)) ||
        sd_model_visible(m->events, m->n_events, m->now, m->ttl, &m->before) != 0 ||
        sd_model_visible(m->events, m->n_events, m->now + DAY_MS, m->ttl, &m->after) != 0)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for the reference model");
    return SD_OK;
}

/* The pipeline on the embedded broker, as `run` would be configured. */
static sd_err_t start_pipeline(demo_t *m, sd_error_t *err)
{
    static const char *const inputs[] = {"task-events"};
    m->d.cfg = (sd_pipeline_config_t){
        .kafka = {sd_embedded_bootstraps(m->kafka), NULL, 0, 1},
        .group = "sessiond-demo", .inputs = inputs, .n_inputs = 1,
        .output_topic = "session-changes", .dlq_topic = "task-events.dlq",
        .delivery = SD_DELIVERY_AT_LEAST_ONCE, .batch_max = 1000,
        .batch_bytes = SD_BATCH_BYTES_DEFAULT, .batch_ms = 20, .backoff_max_ms = 5000,
        .sweep_interval_ms = 250};
    m->d.stop = sd_pipeline_cli_trap_signals();
    return sd_pipeline_thread_start(&m->d, err);
}

/* Publishes the workload, waits until the pipeline has read all of it,
 * then lets a day pass on the pipeline's clock, so the sweeper publishes
 * an expiry event for what reached its TTL, and waits for those.  *ok is
 * 0 if interrupted. */
static sd_err_t process(demo_t *m, int *ok, double *secs, sd_error_t *err)
{
    sd_err_t rc = publish(&m->d.cfg.kafka, &m->workload, &m->sent, &m->dups, err);
    progress_t progress = {&m->d.stats, m->sent, isatty(STDOUT_FILENO), -2};
    *ok = rc == SD_OK && sd_pipeline_thread_wait(&m->d, (long)m->sent, progress.tty ? 100 : 200,
                                                 show_progress, &progress, secs, NULL);
    long expected = expiries_expected(m);
    m->expired_before = atomic_load(&m->d.stats.changes_by_type[SD_CHANGE_EXPIRED]);
    if (*ok) {
        printf("  a day passes: %ld sessions reach their TTL\n", expected);
        atomic_store(&m->d.now, m->now + DAY_MS);
        for (int i = 0; i < 600 && expired_since(&m->d.stats, m->expired_before) < expected &&
                        !*m->d.stop && !atomic_load(&m->d.finished);
             i++)
            sd_sleep_ms(100);
    }
    sd_err_t stopped = sd_pipeline_thread_stop(&m->d, err);
    return rc != SD_OK ? rc : stopped;
}

/* Prints the verdict: whether the store is the model's, and the expiries
 * the model expects were published.  Returns the exit status. */
static int verdict(const demo_t *m)
{
    char why[2048];
    long expected = expiries_expected(m);
    long expired = expired_since(&m->d.stats, m->expired_before);
    int matches = check_model(m->d.store, &m->after, m->now + DAY_MS, why, sizeof why);
    if (matches && expired != expected) {
        snprintf(why, sizeof why, "%ld sessions expired, the model says %ld", expired, expected);
        matches = 0;
    }
    if (matches)
        printf("\nverdict: the store matches the reference model (%zu visible sessions)\n",
               m->after.count);
    else
        printf("\nverdict: MISMATCH: %s\n", why);
    return matches ? 0 : 1;
}

static void demo_free(demo_t *m)
{
    sd_model_result_free(&m->before);
    sd_model_result_free(&m->after);
    for (size_t i = 0; i < m->n_events; i++)
        sd_event_clear(&m->events[i]);
    free(m->events);
    sd_store_close(m->d.store);
    sd_embedded_stop(m->kafka);
    sd_workload_free(&m->workload);
}

int sd_cmd_demo(int argc, char **argv)
{
    int64_t tasks = 20000, seed = 1;
    sd_store_config_t store_cfg = {0};
    const sd_option_t opts[] = {
        {"tasks", SD_OPT_INT, &tasks, "N", "tasks in the workload (default 20000)", NULL},
        {"seed", SD_OPT_INT, &seed, "S", "the workload's seed (default 1): same seed, same events",
         NULL},
        SD_STORE_OPTIONS(&store_cfg),
    };
    sd_error_t err = {0};
    size_t n_pos;
    int help;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], NULL, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK ||
        (tasks < 1 && sd_error_set(&err, SD_ERR_INVALID, "tasks", "--tasks must be at least 1"))) {
        fprintf(stderr, "sessiond demo: %s\n", err.message);
        return 2;
    }
    if (help)
        return 0;
    sd_log_set_level(SD_LOG_ERROR); /* the demo shows its own progress */

    char dir[] = "/tmp/sessiond-demo-XXXXXX", uri[600];
    int temp = !store_cfg.uri;
    if (temp) {
        if (!mkdtemp(dir)) {
            perror("sessiond demo: cannot create a temporary directory");
            return 1;
        }
        snprintf(uri, sizeof uri, "sqlite:%s/sessions.db", dir);
        store_cfg.uri = uri;
    }
    demo_t m = {.now = sd_config_now_ms()};
    m.ttl = store_cfg.session_ttl_ms ? store_cfg.session_ttl_ms : SD_STORE_DEFAULT_TTL_MS;
    m.d.now = m.now; /* the pipeline's clock: a day passes on it */
    int status = 1, ok = 0;
    double secs = 0;
    sd_err_t rc;
    if ((rc = prepare(&m, tasks, seed, &err)) != SD_OK)
        goto done;
    if ((rc = start_broker(m.bytes, &m.kafka, &m.partitions, &err)) != SD_OK)
        goto done;
    if ((rc = open_empty_store(&store_cfg, m.now, &m.d.store, &err)) != SD_OK)
        goto done;
    char masked[600];
    sd_log_mask_url(store_cfg.uri, masked, sizeof masked);
    printf("sessiond demo: %lld tasks (seed %lld), %zu events, embedded broker with %d "
           "partitions, store %s\n",
           (long long)tasks, (long long)seed, m.workload.count, m.partitions, masked);
    if ((rc = start_pipeline(&m, &err)) != SD_OK)
        goto done;
    if ((rc = process(&m, &ok, &secs, &err)) != SD_OK)
        goto done;
    if (!ok) {
        fprintf(stderr, "sessiond demo: interrupted\n");
        goto done;
    }
    print_summary(&m.d.stats, m.d.store, m.sent, m.dups, m.invalid, secs, m.now + DAY_MS);
    status = verdict(&m);
done:
    if (rc != SD_OK)
        fprintf(stderr, "sessiond demo: %s\n", err.message);
    demo_free(&m);
    if (temp) {
        sd_store_remove_sqlite(uri + strlen("sqlite:"));
        rmdir(dir);
    }
    return status;
}
