/* sessiond bench: what one machine does, in one run.
 *
 *   core      parse + validate + rules + change JSON, one thread
 *   pipeline  embedded broker -> store -> output topic, with batch latency
 *   memory    peak RSS of the above
 *   store     the store's own apply of the pipeline's batches: the ceiling
 *   MongoDB   round trips and documents written per 1,000 events
 *
 * The workload is generated in chunks of CHUNK_TASKS tasks (each with its
 * own id prefix, so chunks never touch each other's sessions).
 *
 * The ceiling applies exactly the batches the pipeline applied, same events
 * in the same order: a consumer reads a backlog partition by partition, a
 * thousand events of one partition span some fifty thousand of the stream,
 * and a store applies such batches markedly slower than events in the
 * order they were generated.  Measured on the same batches, the ratio is
 * what the pipeline costs, not how the events happen to be ordered.  To
 * rebuild them, the bench chooses each event's partition itself (the
 * key's hash, as librdkafka's keyed partitioner would) and holds the whole
 * workload in memory for the ceiling, after the pipeline's memory is
 * measured. */
#define _XOPEN_SOURCE 700 /* sync() */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sessiond/clock.h"
#include "sessiond/commands.h"
#include "sessiond/config.h"
#include "sessiond/log.h"
#include "sessiond/pipeline.h"
#include "sessiond/pipeline_thread.h"
#include "sessiond/producer.h"
#include "sessiond/store_backend.h"
#include "sessiond/workload.h"

#define CHUNK_TASKS 2500
#define BATCH 1000

static const char usage[] =
    "usage: sessiond bench [--events N] [--store URI] [--json]\n"
    "\n"
    "Measures, on this machine and in one run: the core (parse, validate, rules,\n"
    "change JSON) on one thread; the whole pipeline from the embedded broker\n"
    "through the store to the output topic, with batch latency; its peak memory;\n"
    "the store alone applying the pipeline's batches again (the ceiling); and for\n"
    "MongoDB the round trips and documents written per 1,000 events.  The\n"
    "workload is held in memory for the ceiling.  The default store is SQLite\n"
    "in a temporary directory; --store mongodb://… uses new collections named\n"
    "bench_<pid>_* (left in place afterwards).\n"
    "exit status: 0 measured, 1 a step failed, 2 usage\n";

static double now_s(void) { return (double)sd_monotonic_us() / 1e6; }

/* ---- the workload, chunk by chunk ---- */

typedef struct chunks {
    int64_t now, ttl;
    int32_t partitions; /* of the input topic */
    size_t index;
    char prefix[32];
} chunks_t;

static sd_err_t next_chunk(chunks_t *c, sd_workload_t *w, sd_error_t *err)
{
    snprintf(c->prefix, sizeof c->prefix, "b%zu-", c->index);
    sd_workload_params_t p = {.seed = 1000 + c->index, .tasks = CHUNK_TASKS, .now_ms = c->now,
                              .ttl_ms = c->ttl, .invalid_percent = 0, .id_prefix = c->prefix};
    c->index++;
    return sd_workload_generate(&p, w, err);
}

/* The partition an event goes to: its key's hash, as librdkafka's keyed
 * partitioner picks it (the workload has no invalid events, so every
 * event has a key). */
static int32_t partition_of(const char *key, int32_t partitions)
{
    return key ? rd_kafka_msg_partitioner_consistent(NULL, key, strlen(key), partitions, NULL,
                                                     NULL)
               : 0;
}

/* Grows *v to hold at least need elements of size bytes; 0 on success. */
static int grow(void *v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    void *grown = realloc(*(void **)v, n * size);
    if (!grown)
        return -1;
    *(void **)v = grown;
    *cap = n;
    return 0;
}

/* ---- (a) core ---- */

/* One event through the rules to its change's JSON.  Events other than
 * creates meet a session created just before them, so that each one
 * publishes a change as it would in the store. */
static sd_err_t core_one(const char *line, size_t *changes, sd_error_t *err)
{
    sd_event_t ev;
    sd_err_t rc = sd_event_parse(line, strlen(line), &ev, err);
    if (rc != SD_OK)
        return rc;
    sd_intent_t in = sd_rules_intent(&ev);
    if (in.kind != SD_INTENT_IGNORE && in.kind != SD_INTENT_SAVE) {
        sd_state_t st = {.task_id = ev.task_id};
        if (in.kind != SD_INTENT_CREATE)
            st = (sd_state_t){.task_id = ev.task_id, .has_create = 1, .created_by = "c",
                              .created_at = ev.occurred_at_ms - 1, .short_id = "s",
                              .task_type = ev.task_type ? ev.task_type : "scenario_generation",
                              .live = 1, .version = 1};
        sd_origin_t origin = {ev.event_id, ev.occurred_at_ms, "task-events", 0, 0};
        sd_emit_t emit;
        sd_state_clock_t clock = {ev.occurred_at_ms, SD_STORE_DEFAULT_TTL_MS};
        if (sd_state_apply(&st, &in, &origin, NULL, clock, &emit) && emit.emitted) {
            sd_change_t change = sd_store_change_of(&st, &emit);
            char *json;
            size_t len;
            if ((rc = sd_change_to_json(&change, &json, &len, err)) == SD_OK) {
                free(json);
                (*changes)++;
            }
        }
    }
    sd_event_clear(&ev);
    return rc;
}

/* ---- (c) the pipeline ---- */

/* Consecutive offsets of one partition, applied in one batch. */
typedef struct run {
    int32_t partition;
    int64_t offset;
    size_t count;
    size_t bytes; /* the payloads' length, to check the ceiling rebuilt the same events */
} run_t;

/* What the pipeline did, batch by batch. */
typedef struct observed {
    int64_t *us; /* latencies; the first batch waited for the group to form: not counted */
    size_t n_us, us_cap;
    run_t *runs;
    size_t n_runs, runs_cap;
    size_t *batch_end; /* per batch, the index past its last run */
    size_t n_batches, batches_cap;
    int lost; /* out of memory recording: the ceiling cannot be measured */
} observed_t;

static void on_batch(void *arg, rd_kafka_message_t *const *msgs, size_t n, int64_t micros)
{
    observed_t *o = arg;
    if (o->n_batches && !grow(&o->us, &o->us_cap, o->n_us + 1, sizeof *o->us))
        o->us[o->n_us++] = micros;
    size_t first = o->n_runs;
    for (size_t i = 0; i < n && !o->lost; i++) {
        const rd_kafka_message_t *m = msgs[i];
        run_t *last = o->n_runs > first ? &o->runs[o->n_runs - 1] : NULL;
        if (last && last->partition == m->partition &&
            last->offset + (int64_t)last->count == m->offset) {
            last->count++;
            last->bytes += m->len;
        } else if (grow(&o->runs, &o->runs_cap, o->n_runs + 1, sizeof *o->runs)) {
            o->lost = 1;
        } else {
            o->runs[o->n_runs++] = (run_t){m->partition, m->offset, 1, m->len};
        }
    }
    if (grow(&o->batch_end, &o->batches_cap, o->n_batches + 1, sizeof *o->batch_end))
        o->lost = 1;
    else
        o->batch_end[o->n_batches++] = o->n_runs;
}

static void observed_free(observed_t *o)
{
    free(o->us);
    free(o->runs);
    free(o->batch_end);
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(observed_t *o, double p)
{
    if (!o->n_us)
        return 0;
    qsort(o->us, o->n_us, sizeof *o->us, by_value);
    size_t i = (size_t)(p * (double)(o->n_us - 1) + 0.5);
    return (double)o->us[i] / 1000.0;
}

static int64_t fixed_clock(void *arg) { return *(const int64_t *)arg; }

/* ---- the run ---- */

typedef struct results {
    const char *store_kind;
    size_t events;
    double core_eps, store_eps, pipeline_eps, p50_ms, p99_ms;
    sd_store_io_t io; /* during the store ceiling */
    size_t io_events; /* applied during the store ceiling */
    long rss_kib;        /* this process, up to the end of the pipeline phase */
    long broker_rss_kib; /* the embedded broker's process */
} results_t;

static sd_err_t measure_core(chunks_t c, size_t events, results_t *r, sd_error_t *err)
{
    size_t done = 0, changes = 0;
    double busy = 0;
    sd_err_t rc = SD_OK;
    while (rc == SD_OK && done < events) {
        sd_workload_t w = {0};
        if ((rc = next_chunk(&c, &w, err)) != SD_OK)
            break;
        double t0 = now_s();
        for (size_t i = 0; rc == SD_OK && i < w.count && done < events; i++, done++)
            rc = core_one(w.lines[i].json, &changes, err);
        busy += now_s() - t0;
        sd_workload_free(&w);
    }
    r->core_eps = busy > 0 ? (double)done / busy : 0;
    return rc;
}

/* ---- (b) the store ceiling: the pipeline's batches without Kafka ---- */

/* The workload by partition: line k of partition p is the event at its
 * offset k, as the broker child published them. */
typedef struct routed {
    sd_workload_t *chunks;
    size_t n_chunks, chunks_cap;
    const sd_workload_line_t **lines; /* partition after partition */
    size_t *first;                    /* partitions + 1 entries: where each partition starts */
    int32_t partitions;
} routed_t;

static void routed_free(routed_t *w)
{
    for (size_t i = 0; i < w->n_chunks; i++)
        sd_workload_free(&w->chunks[i]);
    free(w->chunks);
    free(w->lines);
    free(w->first);
}

static sd_err_t route_all(chunks_t c, size_t events, routed_t *w, sd_error_t *err)
{
    *w = (routed_t){.partitions = c.partitions};
    size_t n = 0, *at = calloc((size_t)c.partitions, sizeof *at);
    w->first = calloc((size_t)c.partitions + 1, sizeof *w->first);
    w->lines = calloc(events, sizeof *w->lines);
    sd_err_t rc = at && w->first && w->lines
                      ? SD_OK
                      : sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for the workload");
    while (rc == SD_OK && n < events) {
        if (grow(&w->chunks, &w->chunks_cap, w->n_chunks + 1, sizeof *w->chunks)) {
            rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for the workload");
            break;
        }
        sd_workload_t *chunk = &w->chunks[w->n_chunks];
        *chunk = (sd_workload_t){0};
        if ((rc = next_chunk(&c, chunk, err)) != SD_OK)
            break;
        w->n_chunks++;
        for (size_t i = 0; i < chunk->count && n < events; i++, n++)
            w->first[partition_of(chunk->lines[i].key, c.partitions) + 1]++;
    }
    for (int32_t p = 0; rc == SD_OK && p < c.partitions; p++)
        w->first[p + 1] += w->first[p];
    n = 0;
    for (size_t k = 0; rc == SD_OK && k < w->n_chunks; k++)
        for (size_t i = 0; i < w->chunks[k].count && n < events; i++, n++) {
            int32_t p = partition_of(w->chunks[k].lines[i].key, c.partitions);
            w->lines[w->first[p] + at[p]++] = &w->chunks[k].lines[i];
        }
    free(at);
    return rc;
}

/* Parses a run's events into evs/items from *n on. */
static sd_err_t rebuild_run(const routed_t *w, const run_t *run, sd_event_t *evs,
                            sd_store_item_t *items, size_t *n, sd_error_t *err)
{
    int32_t p = run->partition;
    size_t held = p >= 0 && p < w->partitions ? w->first[p + 1] - w->first[p] : 0, bytes = 0;
    if (run->offset < 0 || (size_t)run->offset + run->count > held)
        return sd_error_set(err, SD_ERR_FATAL, "", "the pipeline read partition %d up to offset "
                            "%lld, past the %zu events the bench published there",
                            (int)p, (long long)run->offset + (long long)run->count, held);
    for (size_t k = 0; k < run->count; k++) {
        const char *json = w->lines[w->first[p] + (size_t)run->offset + k]->json;
        size_t len = strlen(json);
        sd_err_t rc = sd_event_parse(json, len, &evs[*n], err);
        if (rc != SD_OK)
            return rc;
        items[*n] = (sd_store_item_t){sd_rules_intent(&evs[*n]), "task-events", p,
                                      run->offset + (int64_t)k};
        (*n)++;
        bytes += len;
    }
    if (bytes != run->bytes)
        return sd_error_set(err, SD_ERR_FATAL, "", "partition %d from offset %lld holds other "
                            "events than the pipeline read: the ceiling cannot rebuild its "
                            "batches", (int)p, (long long)run->offset);
    return SD_OK;
}

static sd_err_t measure_ceiling(chunks_t c, sd_store_t *store, size_t events,
                                const observed_t *o, results_t *r, sd_error_t *err)
{
    if (o->lost)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory recording the pipeline's batches");
    routed_t w;
    sd_err_t rc = route_all(c, events, &w, err);
    size_t done = 0, run = 0;
    double busy = 0;
    sd_store_io_t before = sd_store_io(store);
    for (size_t b = 0; rc == SD_OK && b < o->n_batches; b++) {
        size_t n = 0, parsed = 0;
        for (size_t k = run; k < o->batch_end[b]; k++)
            n += o->runs[k].count;
        sd_event_t *evs = calloc(n + 1, sizeof *evs);
        sd_store_item_t *items = calloc(n + 1, sizeof *items);
        if (!evs || !items)
            rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for a batch");
        for (; rc == SD_OK && run < o->batch_end[b]; run++)
            rc = rebuild_run(&w, &o->runs[run], evs, items, &parsed, err);
        if (rc == SD_OK) {
            sd_apply_result_t result;
            double t0 = now_s();
            rc = sd_store_apply(store, items, parsed, c.now, &result, err);
            busy += now_s() - t0;
            if (rc == SD_OK)
                sd_apply_result_free(&result);
            done += parsed;
        }
        for (size_t i = 0; i < parsed; i++)
            sd_event_clear(&evs[i]);
        free(evs);
        free(items);
    }
    routed_free(&w);
    sd_store_io_t after = sd_store_io(store);
    r->io = (sd_store_io_t){after.round_trips - before.round_trips,
                            after.documents_written - before.documents_written};
    r->io_events = done;
    r->store_eps = busy > 0 ? (double)done / busy : 0;
    return rc;
}

/* The embedded broker runs in a child process, loaded with the whole
 * workload before the pipeline starts: in production the broker is another
 * machine, so neither its memory (it keeps every message) nor generating
 * and publishing the workload belongs in the pipeline's figures. */
typedef struct broker_child {
    pid_t pid;
    int hold_fd; /* closing it lets the child stop the broker and exit */
    char bootstraps[256];
} broker_child_t;

static sd_err_t publish_all(chunks_t c, const char *bootstraps, size_t events, sd_error_t *err)
{
    sd_kafka_settings_t kafka = {bootstraps, NULL, 0, 1};
    sd_producer_t *producer = NULL;
    sd_err_t rc = sd_producer_new(&kafka, NULL, &producer, err);
    size_t sent = 0;
    while (rc == SD_OK && sent < events) {
        sd_workload_t w = {0};
        rc = next_chunk(&c, &w, err);
        for (size_t i = 0; rc == SD_OK && i < w.count && sent < events; i++, sent++) {
            const sd_workload_line_t *l = &w.lines[i];
            rc = sd_producer_send_to(producer, "task-events", partition_of(l->key, c.partitions),
                                     l->key, l->json, strlen(l->json), NULL, 0, err);
        }
        sd_workload_free(&w);
    }
    if (rc == SD_OK)
        rc = sd_producer_flush(producer, 60000, err);
    sd_producer_destroy(producer);
    return rc;
}

/* The child: start the broker, publish, report the bootstrap servers (or
 * "!" and the error) on report_fd, then hold until hold_fd is closed. */
static int broker_child_main(chunks_t c, size_t events, int report_fd, int hold_fd)
{
    sd_error_t err = {0};
    sd_embedded_t *kafka = NULL;
    sd_err_t rc = sd_embedded_start(3, &kafka, &err);
    const char *topics[] = {"task-events", "session-changes", "task-events.dlq"};
    for (size_t i = 0; rc == SD_OK && i < 3; i++)
        rc = sd_embedded_create_topic(kafka, topics[i], i == 0 ? c.partitions : 8, &err);
    if (rc == SD_OK)
        rc = publish_all(c, sd_embedded_bootstraps(kafka), events, &err);
    char line[700];
    int n = rc == SD_OK ? snprintf(line, sizeof line, "%s\n", sd_embedded_bootstraps(kafka))
                        : snprintf(line, sizeof line, "!%s\n", err.message);
    int reported = write(report_fd, line, (size_t)n) == n;
    char byte;
    while (reported && read(hold_fd, &byte, 1) > 0)
        ;
    sd_embedded_stop(kafka);
    return rc == SD_OK && reported ? 0 : 1;
}

/* Forks before any thread exists in this process (the core measurement
 * and opening a store start none), so the child may use everything. */
static sd_err_t broker_child_start(chunks_t c, size_t events, broker_child_t *b, sd_error_t *err)
{
    int report[2], hold[2];
    if (pipe(report) != 0)
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot create a pipe: %s", strerror(errno));
    if (pipe(hold) != 0) {
        close(report[0]);
        close(report[1]);
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot create a pipe: %s", strerror(errno));
    }
    fflush(NULL);
    b->pid = fork();
    if (b->pid == 0) {
        close(report[0]);
        close(hold[1]);
        _exit(broker_child_main(c, events, report[1], hold[0])); /* no atexit, no stdio flush */
    }
    close(report[1]);
    close(hold[0]);
    b->hold_fd = hold[1];
    if (b->pid < 0) {
        close(report[0]);
        close(hold[1]);
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot start the broker process: %s",
                            strerror(errno));
    }
    FILE *from = fdopen(report[0], "r");
    char line[700] = "";
    int got = from && fgets(line, sizeof line, from) != NULL;
    if (from)
        fclose(from);
    else
        close(report[0]);
    line[strcspn(line, "\n")] = '\0';
    size_t len = strlen(line);
    if (got && line[0] != '!' && len < sizeof b->bootstraps) {
        memcpy(b->bootstraps, line, len + 1);
        return SD_OK;
    }
    return sd_error_set(err, SD_ERR_FATAL, "", "the embedded broker process failed: %s",
                        got ? line + 1 : "it ended without a word");
}

/* Stops the child; returns its peak RSS in KiB. */
static long broker_child_stop(broker_child_t *b)
{
    close(b->hold_fd);
    int status;
    while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
        ;
    struct rusage children;
    return getrusage(RUSAGE_CHILDREN, &children) == 0 ? children.ru_maxrss : 0;
}

static sd_err_t measure_pipeline(chunks_t c, sd_store_t *store, size_t events, observed_t *seen,
                                 results_t *r, sd_error_t *err)
{
    broker_child_t broker = {0};
    sd_err_t rc = broker_child_start(c, events, &broker, err);
    if (rc != SD_OK) {
        if (broker.pid > 0)
            broker_child_stop(&broker);
        return rc;
    }
    static const char *const inputs[] = {"task-events"};
    sd_pipeline_thread_t run = {.store = store};
    int64_t now = c.now;
    run.cfg = (sd_pipeline_config_t){
        .kafka = {broker.bootstraps, NULL, 0, 1},
        .group = "sessiond-bench", .inputs = inputs, .n_inputs = 1,
        .output_topic = "session-changes", .dlq_topic = "task-events.dlq",
        .delivery = SD_DELIVERY_AT_LEAST_ONCE, .batch_max = BATCH, .batch_ms = 20,
        .backoff_max_ms = 5000, .now_ms = fixed_clock, .clock_arg = &now,
        .on_batch = on_batch, .batch_arg = seen};
    double secs = 0;
    long first_batch = 0;
    int all = 0;
    if ((rc = sd_pipeline_thread_start(&run, err)) == SD_OK) {
        all = sd_pipeline_thread_wait(&run, (long)events, 2, NULL, NULL, &secs, &first_batch);
        rc = sd_pipeline_thread_stop(&run, err);
    }
    r->pipeline_eps = all && secs > 0 ? (double)((long)events - first_batch) / secs : 0;
    r->p50_ms = percentile_ms(seen, 0.50);
    r->p99_ms = percentile_ms(seen, 0.99);
    r->broker_rss_kib = broker_child_stop(&broker);
    return rc;
}

/* ---- the command ---- */

static void machine(char *out, size_t cap)
{
    char model[256] = "unknown CPU", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            const char *v = strchr(line, ':');
            snprintf(model, sizeof model, "%.200s", v ? v + 2 : line);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
    snprintf(out, cap, "%ld cores, %s", sysconf(_SC_NPROCESSORS_ONLN), model);
}

/* A fresh store for one phase: a file in dir, or a new collection. */
static sd_err_t open_fresh(const sd_store_config_t *base, const char *dir, const char *phase,
                           sd_store_t **out, sd_error_t *err)
{
    sd_store_config_t cfg = *base;
    char uri[600], collection[64];
    if (dir) {
        snprintf(uri, sizeof uri, "sqlite:%s/%s.db", dir, phase);
        cfg.uri = uri;
    } else {
        snprintf(collection, sizeof collection, "bench_%ld_%s", (long)getpid(), phase);
        cfg.collection = collection;
    }
    sd_err_t rc = sd_store_open(&cfg, out, err);
    if (rc == SD_OK && (rc = sd_store_ensure_schema(*out, err)) != SD_OK) {
        sd_store_close(*out);
        *out = NULL;
    }
    return rc;
}

/* Closes a phase's store and deletes its file, if any, and lets the disk
 * settle: the next phase's writes should not queue behind this one's. */
static void close_phase(sd_store_t *store, const char *dir, const char *phase)
{
    sd_store_close(store);
    if (!dir)
        return;
    char path[600];
    snprintf(path, sizeof path, "%s/%s.db", dir, phase);
    sd_store_remove_sqlite(path);
    sync();
}

static void print_table(const results_t *r, const char *machine_text)
{
    printf("sessiond bench: %zu events, %s store, on %s\n\n", r->events, r->store_kind,
           machine_text);
    printf("  %-52s %12.0f events/s\n", "core: parse + validate + rules + change JSON (1 thread)",
           r->core_eps);
    if (r->pipeline_eps > 0)
        printf("  %-52s %12.0f events/s\n", "pipeline: embedded broker -> store -> output topic",
               r->pipeline_eps);
    else
        printf("  %-52s %21s\n", "pipeline: embedded broker -> store -> output topic",
               "n/a: one batch only");
    printf("  %-52s %9.1f ms / %.1f ms\n", "pipeline batch latency p50 / p99 (1,000 events)",
           r->p50_ms, r->p99_ms);
    printf("  %-52s %12.0f events/s\n", "store ceiling: the store alone, same batches",
           r->store_eps);
    printf("  %-52s %12.0f %%\n", "pipeline / store ceiling",
           r->store_eps > 0 ? 100.0 * r->pipeline_eps / r->store_eps : 0.0);
    printf("  %-52s %12.1f MiB\n", "peak RSS of sessiond (core and pipeline phases)",
           (double)r->rss_kib / 1024.0);
    printf("  %-52s %12.1f MiB\n", "peak RSS of the embedded broker (own process)",
           (double)r->broker_rss_kib / 1024.0);
    if (strcmp(r->store_kind, "mongodb") == 0) {
        printf("  %-52s %12.1f\n", "MongoDB round trips per 1,000 events",
               1000.0 * (double)r->io.round_trips / (double)r->io_events);
        printf("  %-52s %12.1f\n", "MongoDB documents written per 1,000 events",
               1000.0 * (double)r->io.documents_written / (double)r->io_events);
        printf("\n  Timings against a MongoDB stand-in (jongodb, an emulator) say nothing about\n"
               "  MongoDB: there only round trips, documents written and correctness count.\n");
    }
}

static int print_json(const results_t *r, const char *machine_text)
{
    double per = r->io_events ? 1000.0 / (double)r->io_events : 0;
    json_t *o = json_pack("{s:s, s:I, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "store",
                          r->store_kind, "events", (json_int_t)r->events, "machine", machine_text,
                          "core_events_per_s", r->core_eps, "store_events_per_s", r->store_eps,
                          "pipeline_events_per_s", r->pipeline_eps, "batch_p50_ms", r->p50_ms,
                          "batch_p99_ms", r->p99_ms, "pipeline_over_store",
                          r->store_eps > 0 ? r->pipeline_eps / r->store_eps : 0.0,
                          "peak_rss_mib", (double)r->rss_kib / 1024.0);
    if (o)
        json_object_set_new(o, "broker_peak_rss_mib", json_real((double)r->broker_rss_kib / 1024.0));
    if (o && strcmp(r->store_kind, "mongodb") == 0) {
        json_object_set_new(o, "round_trips_per_1000", json_real((double)r->io.round_trips * per));
        json_object_set_new(o, "documents_written_per_1000",
                            json_real((double)r->io.documents_written * per));
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return 1;
    puts(text);
    free(text);
    return 0;
}

int sd_cmd_bench(int argc, char **argv)
{
    int64_t events = 200000;
    int json = 0;
    sd_store_config_t store_cfg = {0};
    const sd_option_t opts[] = {
        {"events", SD_OPT_INT, &events, "N", "events per measurement (default 200000)", NULL},
        {"json", SD_OPT_FLAG, &json, NULL, "print one JSON object instead of the table", NULL},
        SD_STORE_OPTIONS(&store_cfg),
    };
    sd_error_t err = {0};
    size_t n_pos;
    int help;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], NULL, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK ||
        (events < 1 && sd_error_set(&err, SD_ERR_INVALID, "events", "--events must be at least 1")) ||
        (store_cfg.uri && strncmp(store_cfg.uri, "mongodb", 7) != 0 &&
         sd_error_set(&err, SD_ERR_INVALID, "store",
                      "--store takes a mongodb:// URI; without it the bench uses SQLite in a "
                      "temporary directory"))) {
        fprintf(stderr, "sessiond bench: %s\n", err.message);
        return 2;
    }
    if (help)
        return 0;
    sd_log_set_level(SD_LOG_ERROR);

    char dir[] = "/tmp/sessiond-bench-XXXXXX", machine_text[320];
    const char *files = NULL;
    if (!store_cfg.uri) {
        if (!mkdtemp(dir)) {
            perror("sessiond bench: cannot create a temporary directory");
            return 1;
        }
        files = dir;
        store_cfg.uri = "sqlite:";
    }
    machine(machine_text, sizeof machine_text);
    chunks_t chunks = {.now = sd_config_now_ms(), .ttl = SD_STORE_DEFAULT_TTL_MS};
    results_t r = {.store_kind = files ? "sqlite" : "mongodb", .events = (size_t)events};
    chunks.partitions = sd_embedded_partitions_for(r.events * 256); /* an event and its record */
    sd_store_t *ceiling = NULL, *piped = NULL;
    observed_t seen = {0};
    sd_err_t rc = measure_core(chunks, r.events, &r, &err);
    sync(); /* each store phase starts on a settled disk */
    if (rc == SD_OK && (rc = open_fresh(&store_cfg, files, "pipeline", &piped, &err)) == SD_OK)
        rc = measure_pipeline(chunks, piped, r.events, &seen, &r, &err);
    close_phase(piped, files, "pipeline");
    struct rusage usage_now; /* before the ceiling holds the whole workload */
    getrusage(RUSAGE_SELF, &usage_now);
    r.rss_kib = usage_now.ru_maxrss;
    if (rc == SD_OK && (rc = open_fresh(&store_cfg, files, "ceiling", &ceiling, &err)) == SD_OK)
        rc = measure_ceiling(chunks, ceiling, r.events, &seen, &r, &err);
    close_phase(ceiling, files, "ceiling");
    observed_free(&seen);
    if (files)
        rmdir(files);
    if (rc != SD_OK) {
        fprintf(stderr, "sessiond bench: %s\n", err.message);
        return 1;
    }
    if (json)
        return print_json(&r, machine_text);
    print_table(&r, machine_text);
    return 0;
}
