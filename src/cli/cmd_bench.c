/* sessiond bench: what one machine does, in one run.
 *
 *   core      parse + validate + rules + change JSON, one thread
 *   pipeline  embedded broker -> store -> output topic, with batch latency
 *             and its time per event collecting, in the store and the rest
 *   memory    peak RSS of the above
 *   store     the store's own apply of the pipeline's batches: the ceiling,
 *             its rate as the store fills, its CPU per event, the file's size
 *   MongoDB   round trips, documents and bytes per event
 *
 * The workload is generated in chunks of CHUNK_TASKS tasks (each with its
 * own id prefix or UUID salt, so chunks never touch each other's sessions).
 *
 * The ceiling applies exactly the batches the pipeline applied, same events
 * in the same order: a consumer reads a backlog partition by partition, a
 * thousand events of one partition span some fifty thousand of the stream,
 * and a store applies such batches markedly slower than events in the
 * order they were generated.  Measured on the same batches, the ratio is
 * what the pipeline costs, not how the events happen to be ordered.  The
 * bench chooses each event's partition itself (the key's hash, as
 * librdkafka's keyed partitioner would), records the offsets of each
 * batch, and reads them back from the broker's process for the ceiling,
 * so that no phase holds the workload in memory. */
#define _GNU_SOURCE /* sync(), RUSAGE_THREAD */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "sessiond/clock.h"
#include "sessiond/commands.h"
#include "sessiond/config.h"
#include "sessiond/log.h"
#include "sessiond/pipeline.h"
#include "sessiond/pipeline_thread.h"
#include "sessiond/producer.h"
#include "sessiond/store_backend.h"
#include "sessiond/workload.h"

static const char usage[] =
    "usage: sessiond bench [--events N] [--ids uuid|sequential] [--batch-max N] [--store URI]\n"
    "                      [--json]\n"
    "\n"
    "Measures, on this machine and in one run: the core (parse, validate, rules,\n"
    "change JSON) on one thread; the whole pipeline from the embedded broker\n"
    "through the store to the output topic, with batch latency and where its time\n"
    "goes (collecting batches, the store, the rest); its peak memory;\n"
    "the store alone applying the pipeline's batches again (the ceiling), how its\n"
    "rate changes as the store fills, its CPU per event and, for SQLite, the\n"
    "file's size per million sessions; for MongoDB the round trips, documents\n"
    "and bytes per event.  Task and short ids are random UUIDs unless --ids\n"
    "sequential.  The store is SQLite in a temporary directory unless --store\n"
    "sqlite:PATH (a file that must not exist: it is created and deleted) or\n"
    "mongodb://… (new collections bench_<pid>_*, left in place afterwards).\n"
    "The pipeline's batches are run's (--batch-max 10000, 4 MiB) unless --batch-max.\n"
    "exit status: 0 measured, 1 a step failed, 2 usage\n";

/* ---- the workload, chunk by chunk ---- */

sd_err_t bench_next_chunk(chunks_t *c, sd_workload_t *w, sd_error_t *err)
{
    snprintf(c->prefix, sizeof c->prefix, "b%zu-", c->index);
    sd_workload_params_t p = {.seed = 1000 + c->index, .tasks = CHUNK_TASKS, .now_ms = c->now,
                              .ttl_ms = c->ttl, .invalid_percent = 0, .id_prefix = c->prefix,
                              .ids = c->ids};
    c->index++;
    return sd_workload_generate(&p, w, err);
}


int32_t bench_partition_of(const char *key, int32_t partitions)
{
    return key ? rd_kafka_msg_partitioner_consistent(NULL, key, strlen(key), partitions, NULL,
                                                     NULL)
               : 0;
}


int bench_grow(void *v, size_t *cap, size_t need, size_t size)
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

static void on_batch(void *arg, rd_kafka_message_t *const *msgs, size_t n, int64_t micros)
{
    observed_t *o = arg;
    if (o->n_batches && !bench_grow(&o->us, &o->us_cap, o->n_us + 1, sizeof *o->us))
        o->us[o->n_us++] = micros;
    if (o->n_batches) {
        o->applied_to_committed_us += micros;
        o->timed_events += n;
    } else {
        o->first_apply_us = atomic_load(&o->stats->batch_us_sum);
    }
    o->n_runs = 0;
    for (size_t i = 0; i < n && !o->lost; i++) {
        const rd_kafka_message_t *m = msgs[i];
        run_t *last = o->n_runs ? &o->runs[o->n_runs - 1] : NULL;
        if (last && last->partition == m->partition &&
            last->offset + (int64_t)last->count == m->offset) {
            last->count++;
            last->bytes += m->len;
        } else if (bench_grow(&o->runs, &o->runs_cap, o->n_runs + 1, sizeof *o->runs)) {
            o->lost = 1;
        } else {
            o->runs[o->n_runs++] = (run_t){m->partition, m->offset, 1, m->len};
        }
    }
    if (!o->runs_file && !(o->runs_file = tmpfile()))
        o->lost = 1;
    if (o->lost || fwrite(o->runs, sizeof *o->runs, o->n_runs, o->runs_file) != o->n_runs ||
        bench_grow(&o->batch_runs, &o->batches_cap, o->n_batches + 1, sizeof *o->batch_runs) ||
        bench_grow(&o->batch_events, &o->events_cap, o->n_batches + 1, sizeof *o->batch_events)) {
        o->lost = 1;
        return;
    }
    o->batch_runs[o->n_batches] = o->n_runs;
    o->batch_events[o->n_batches++] = n;
}

static void observed_free(observed_t *o)
{
    free(o->us);
    free(o->runs);
    free(o->batch_runs);
    free(o->batch_events);
    if (o->runs_file)
        fclose(o->runs_file);
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

/* ---- the run ---- */

static sd_err_t measure_core(chunks_t c, size_t events, results_t *r, sd_error_t *err)
{
    size_t done = 0, changes = 0;
    double busy = 0;
    sd_err_t rc = SD_OK;
    while (rc == SD_OK && done < events) {
        sd_workload_t w = {0};
        if ((rc = bench_next_chunk(&c, &w, err)) != SD_OK)
            break;
        double t0 = bench_now_s();
        for (size_t i = 0; rc == SD_OK && i < w.count && done < events; i++, done++)
            rc = core_one(w.lines[i].json, &changes, err);
        busy += bench_now_s() - t0;
        sd_workload_free(&w);
    }
    r->core_eps = busy > 0 ? (double)done / busy : 0;
    return rc;
}

static sd_err_t measure_pipeline(const char *bootstraps, sd_store_t *store, observed_t *seen,
                                 results_t *r, sd_error_t *err)
{
    static const char *const inputs[] = {"task-events"};
    sd_pipeline_thread_t run = {.store = store, .now = r->now};
    seen->stats = &run.stats;
    run.cfg = (sd_pipeline_config_t){
        .kafka = {bootstraps, NULL, 0, 1},
        .group = "sessiond-bench", .inputs = inputs, .n_inputs = 1,
        .output_topic = "session-changes", .dlq_topic = "task-events.dlq",
        .delivery = SD_DELIVERY_AT_LEAST_ONCE, .batch_max = r->batch_max,
        .batch_bytes = SD_BATCH_BYTES_DEFAULT, .batch_ms = 20,
        .backoff_max_ms = 5000,
        .on_batch = on_batch, .batch_arg = seen};
    double secs = 0;
    long first_batch = 0;
    int all = 0;
    sd_err_t rc = sd_pipeline_thread_start(&run, err);
    if (rc == SD_OK) {
        all = sd_pipeline_thread_wait(&run, (long)r->events, 2, NULL, NULL, &secs, &first_batch);
        rc = sd_pipeline_thread_stop(&run, err);
    }
    r->pipeline_eps = all && secs > 0 ? (double)((long)r->events - first_batch) / secs : 0;
    r->p50_ms = percentile_ms(seen, 0.50);
    r->p99_ms = percentile_ms(seen, 0.99);
    if (seen->timed_events && r->pipeline_eps > 0) {
        double n = (double)seen->timed_events;
        double in_flight = (double)seen->applied_to_committed_us / n;
        r->apply_us = (double)(atomic_load(&run.stats.batch_us_sum) - seen->first_apply_us) / n;
        r->rest_us = in_flight - r->apply_us;
        r->collect_us = 1e6 / r->pipeline_eps - in_flight;
    }
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

/* A fresh store for one phase: the SQLite file at path (both phases use
 * it in turn), or new collections named after the phase. */
static sd_err_t open_fresh(const sd_store_config_t *base, const char *path, const char *phase,
                           sd_store_t **out, sd_error_t *err)
{
    sd_store_config_t cfg = *base;
    char uri[4200], collection[64];
    if (path) {
        snprintf(uri, sizeof uri, "sqlite:%s", path);
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

/* Closes a phase's store and deletes its file, if any (measured first when
 * r is given), and lets the disk settle: the next phase's writes should
 * not queue behind this one's. */
static sd_err_t close_phase(sd_store_t *store, const char *path, results_t *r, sd_error_t *err)
{
    sd_store_close(store);
    if (!path)
        return SD_OK;
    sd_err_t rc = r && store ? sd_store_sqlite_footprint(path, &r->file_bytes, &r->sessions, err)
                             : SD_OK;
    sd_store_remove_sqlite(path);
    sync();
    return rc;
}

static double per_event(uint64_t total, size_t events)
{
    return events ? (double)total / (double)events : 0;
}

static void print_table(const results_t *r, const char *machine_text)
{
    printf("sessiond bench: %zu events, %s ids, %s store, on %s\n\n", r->events, r->ids,
           r->store_kind, machine_text);
    printf("  %-52s %12.0f events/s\n", "core: parse + validate + rules + change JSON (1 thread)",
           r->core_eps);
    if (r->pipeline_eps > 0)
        printf("  %-52s %12.0f events/s\n", "pipeline: embedded broker -> store -> output topic",
               r->pipeline_eps);
    else
        printf("  %-52s %21s\n", "pipeline: embedded broker -> store -> output topic",
               "n/a: one batch only");
    char latency[64];
    snprintf(latency, sizeof latency, "pipeline batch latency p50 / p99 (<= %zu events)",
             r->batch_max);
    printf("  %-52s %9.1f ms / %.1f ms\n", latency, r->p50_ms, r->p99_ms);
    printf("  %-52s %12.0f events/s\n", "store ceiling: the store alone, same batches",
           r->store_eps);
    printf("  %-52s %6.0f / %.0f / %.0f\n", "  over the tenth of the run ending at 10/50/100 %",
           r->store_eps_at[0], r->store_eps_at[1], r->store_eps_at[2]);
    printf("  %-52s %12.1f µs\n", "  store CPU per event (this process)", r->store_cpu_us);
    printf("  %-52s %12.0f %%\n", "pipeline / store ceiling",
           r->store_eps > 0 ? 100.0 * r->pipeline_eps / r->store_eps : 0.0);
    printf("  %-52s %4.1f / %.1f / %.1f µs\n", "  pipeline per event: collect / store / the rest",
           r->collect_us, r->apply_us, r->rest_us);
    printf("  %-52s %12.1f MiB\n", "peak RSS of sessiond (core and pipeline phases)",
           (double)r->rss_kib / 1024.0);
    printf("  %-52s %12.1f MiB\n", "peak RSS of the embedded broker (own process)",
           (double)r->broker_rss_kib / 1024.0);
    if (r->sessions > 0)
        printf("  %-52s %12.1f MiB (%lld sessions)\n", "SQLite file per million sessions",
               (double)r->file_bytes / (double)r->sessions * 1e6 / 1048576.0,
               (long long)r->sessions);
    if (strcmp(r->store_kind, "mongodb") == 0) {
        printf("  %-52s %12.1f\n", "MongoDB round trips per 1,000 events",
               1000.0 * per_event(r->io.round_trips, r->io_events));
        printf("  %-52s %12.1f\n", "MongoDB documents written per 1,000 events",
               1000.0 * per_event(r->io.documents_written, r->io_events));
        printf("  %-52s %6.0f B / %.0f B\n", "MongoDB bytes sent / received per event",
               per_event(r->io.bytes_sent, r->io_events),
               per_event(r->io.bytes_received, r->io_events));
        printf("\n  Timings against a MongoDB stand-in (jongodb, an emulator) say nothing about\n"
               "  MongoDB: there only the client's CPU, round trips, bytes, documents written\n"
               "  and correctness count.\n");
    }
}

static int print_json(const results_t *r, const char *machine_text)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "store",
                          r->store_kind, "ids", r->ids, "events", (json_int_t)r->events,
                          "machine", machine_text, "core_events_per_s", r->core_eps,
                          "store_events_per_s", r->store_eps, "pipeline_events_per_s",
                          r->pipeline_eps, "batch_p50_ms", r->p50_ms, "batch_p99_ms", r->p99_ms,
                          "pipeline_over_store",
                          r->store_eps > 0 ? r->pipeline_eps / r->store_eps : 0.0,
                          "peak_rss_mib", (double)r->rss_kib / 1024.0);
    if (!o)
        return 1;
    json_object_set_new(o, "batch_max", json_integer((json_int_t)r->batch_max));
    json_object_set_new(o, "broker_peak_rss_mib", json_real((double)r->broker_rss_kib / 1024.0));
    json_object_set_new(o, "store_events_per_s_at",
                        json_pack("{s:f, s:f, s:f}", "10%", r->store_eps_at[0], "50%",
                                  r->store_eps_at[1], "100%", r->store_eps_at[2]));
    json_object_set_new(o, "store_cpu_us_per_event", json_real(r->store_cpu_us));
    json_object_set_new(o, "pipeline_us_per_event",
                        json_pack("{s:f, s:f, s:f}", "collect", r->collect_us, "store",
                                  r->apply_us, "rest", r->rest_us));
    if (r->sessions > 0) {
        json_object_set_new(o, "sqlite_sessions", json_integer(r->sessions));
        json_object_set_new(o, "sqlite_file_bytes", json_integer(r->file_bytes));
        json_object_set_new(o, "sqlite_mib_per_million_sessions",
                            json_real((double)r->file_bytes / (double)r->sessions * 1e6 /
                                      1048576.0));
    }
    if (strcmp(r->store_kind, "mongodb") == 0) {
        json_object_set_new(o, "round_trips_per_1000",
                            json_real(1000.0 * per_event(r->io.round_trips, r->io_events)));
        json_object_set_new(o, "documents_written_per_1000",
                            json_real(1000.0 * per_event(r->io.documents_written, r->io_events)));
        json_object_set_new(o, "bytes_sent_per_event",
                            json_real(per_event(r->io.bytes_sent, r->io_events)));
        json_object_set_new(o, "bytes_received_per_event",
                            json_real(per_event(r->io.bytes_received, r->io_events)));
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return 1;
    puts(text);
    free(text);
    return 0;
}

/* Input partitions that hold the workload within the mock's retention,
 * from the size of the first chunk's events (ids of either shape). */
static sd_err_t input_partitions(chunks_t c, size_t events, int32_t *out, sd_error_t *err)
{
    sd_workload_t w = {0};
    sd_err_t rc = bench_next_chunk(&c, &w, err);
    if (rc != SD_OK)
        return rc;
    size_t bytes = 0;
    for (size_t i = 0; i < w.count; i++)
        bytes += strlen(w.lines[i].json) + strlen(w.lines[i].key) + 80; /* record overhead */
    *out = sd_embedded_partitions_for(bytes / (w.count ? w.count : 1) * events);
    sd_workload_free(&w);
    return SD_OK;
}

/* The run, phase by phase; the broker child lives from the pipeline to the
 * end of the ceiling, which reads its events back. */
static sd_err_t bench(chunks_t chunks, const sd_store_config_t *store_cfg, const char *path,
                      results_t *r, sd_error_t *err)
{
    sd_err_t rc = measure_core(chunks, r->events, r, err);
    sync(); /* each store phase starts on a settled disk */
    broker_child_t broker = {0};
    if (rc == SD_OK)
        rc = bench_broker_child_start(chunks, r->events, &broker, err);
    sd_store_t *store = NULL;
    observed_t seen = {0};
    if (rc == SD_OK && (rc = open_fresh(store_cfg, path, "pipeline", &store, err)) == SD_OK)
        rc = measure_pipeline(broker.bootstraps, store, &seen, r, err);
    sd_err_t closed = close_phase(store, path, NULL, err);
    struct rusage usage_now; /* before the ceiling's phase */
    getrusage(RUSAGE_SELF, &usage_now);
    r->rss_kib = usage_now.ru_maxrss;
    FILE *spool = NULL;
    if (rc == SD_OK && (rc = closed) == SD_OK)
        rc = bench_spool_batches(broker.bootstraps, chunks.partitions, &seen, &spool, err);
    if (broker.pid > 0)
        r->broker_rss_kib = bench_broker_child_stop(&broker);
    store = NULL;
    if (rc == SD_OK && (rc = open_fresh(store_cfg, path, "ceiling", &store, err)) == SD_OK)
        rc = bench_measure_ceiling(spool, store, &seen, r, err);
    closed = close_phase(store, path, rc == SD_OK ? r : NULL, err);
    if (rc == SD_OK)
        rc = closed;
    if (spool)
        fclose(spool);
    observed_free(&seen);
    return rc;
}

int sd_cmd_bench(int argc, char **argv)
{
    int64_t events = 200000, batch_max = SD_BATCH_MAX_DEFAULT;
    int json = 0;
    const char *ids = "uuid";
    sd_store_config_t store_cfg = {0};
    const sd_option_t opts[] = {
        {"events", SD_OPT_INT, &events, "N", "events per measurement (default 200000)", NULL},
        {"ids", SD_OPT_STRING, &ids, "SHAPE",
         "uuid (default: random UUID v4 task and short ids) or sequential", NULL},
        {"batch-max", SD_OPT_INT, &batch_max, "N",
         "the pipeline's events per batch at most (default: run's, 10000)", NULL},
        {"json", SD_OPT_FLAG, &json, NULL, "print one JSON object instead of the table", NULL},
        SD_STORE_OPTIONS(&store_cfg),
    };
    sd_error_t err = {0};
    size_t n_pos;
    int help;
    const char *path = NULL; /* SQLite: the file both phases use in turn */
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], NULL, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK ||
        (events < 1 && sd_error_set(&err, SD_ERR_INVALID, "events", "--events must be at least 1")) ||
        (batch_max < 1 &&
         sd_error_set(&err, SD_ERR_INVALID, "batch-max", "--batch-max must be at least 1")) ||
        (strcmp(ids, "uuid") != 0 && strcmp(ids, "sequential") != 0 &&
         sd_error_set(&err, SD_ERR_INVALID, "ids", "--ids takes uuid or sequential, not '%s'",
                      ids))) {
        fprintf(stderr, "sessiond bench: %s\n", err.message);
        return 2;
    }
    if (help)
        return 0;
    if (store_cfg.uri && strncmp(store_cfg.uri, "sqlite:", 7) == 0) {
        path = store_cfg.uri + 7;
        if (!*path || access(path, F_OK) == 0) {
            fprintf(stderr, "sessiond bench: --store sqlite:PATH needs a file that does not "
                            "exist yet (the bench creates and deletes it): %s\n",
                    *path ? path : "no PATH given");
            return 2;
        }
    }
    sd_log_set_level(SD_LOG_ERROR);

    char dir[] = "/tmp/sessiond-bench-XXXXXX", temp[64], machine_text[320];
    if (!store_cfg.uri) {
        if (!mkdtemp(dir)) {
            perror("sessiond bench: cannot create a temporary directory");
            return 1;
        }
        snprintf(temp, sizeof temp, "%s/bench.db", dir);
        path = temp;
        store_cfg.uri = "sqlite:";
    }
    machine(machine_text, sizeof machine_text);
    results_t r = {.store_kind = path ? "sqlite" : "mongodb", .ids = ids,
                   .events = (size_t)events, .batch_max = (size_t)batch_max,
                   .now = sd_config_now_ms()};
    chunks_t chunks = {.now = r.now, .ttl = SD_STORE_DEFAULT_TTL_MS,
                       .ids = strcmp(ids, "uuid") == 0 ? SD_IDS_UUID : SD_IDS_SEQUENTIAL};
    sd_err_t rc = input_partitions(chunks, r.events, &chunks.partitions, &err);
    if (rc == SD_OK)
        rc = bench(chunks, &store_cfg, path, &r, &err);
    if (path == temp)
        rmdir(dir);
    if (rc != SD_OK) {
        fprintf(stderr, "sessiond bench: %s\n", err.message);
        return 1;
    }
    if (json)
        return print_json(&r, machine_text);
    print_table(&r, machine_text);
    return 0;
}
