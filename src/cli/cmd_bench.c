/* sessiond bench: what one machine does, in one run.
 *
 *   core      parse + validate + rules + change JSON, one thread
 *   read      a real cluster (--brokers): a plain consumer of the input
 *   pipeline  broker -> store -> output topic, with batch latency, its time
 *             per event collecting, in the store and the rest, its CPU and
 *             memory; on a real cluster at least once and exactly once
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
#include "sessiond/store_backend.h"
#include "sessiond/workload.h"

static const char usage[] =
    "usage: sessiond bench [--events N] [--ids uuid|sequential] [--batch-max N] [--store URI]\n"
    "                      [--brokers HOSTS [--partitions N] [--rates R,…] [--latency-time D]\n"
    "                      [--keep] [-X key=value]] [--json]\n"
    "\n"
    "Measures, on this machine and in one run: the core (parse, validate, rules,\n"
    "change JSON) on one thread; the whole pipeline from the broker through the\n"
    "store to the output topic, with batch latency, where its time goes\n"
    "(collecting batches, the store, the rest), its CPU per event and peak memory;\n"
    "the store alone applying the pipeline's batches again (the ceiling), how its\n"
    "rate changes as the store fills, its CPU per event and, for SQLite, the\n"
    "file's size per million sessions; for MongoDB the round trips, documents\n"
    "and bytes per event.  Task and short ids are random UUIDs unless --ids\n"
    "sequential.  The store is SQLite in a temporary directory unless --store\n"
    "sqlite:PATH (a file that must not exist: it is created and deleted) or\n"
    "mongodb://… (new collections bench_<pid>_*, left in place afterwards).\n"
    "The pipeline's batches are run's (--batch-max 10000, 4 MiB) unless --batch-max.\n"
    "\n"
    "The broker is librdkafka's embedded one, in a process of its own, unless\n"
    "--brokers names a cluster: the bench then makes topics of its own there\n"
    "(sdbench-<pid>-<n>.*, deleted afterwards unless --keep), loads the workload,\n"
    "and measures the read limit (a plain consumer with sessiond's settings),\n"
    "then the pipeline at least once and exactly once, each into a fresh store,\n"
    "and end-to-end latency in both modes: from an event's sending to its change\n"
    "reaching a read_committed consumer, at each offered rate, and the highest\n"
    "rate kept up with: every change read within a second of the last event's\n"
    "sending (from 2,000 a second, doubling, then narrowed down to an eighth).\n"
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

/* This process's peak RSS: reset now (Linux's clear_refs), and read. */
static void peak_rss_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f); /* resets the peak RSS (VmHWM), Linux 4.0 on */
        fclose(f);
    }
}

static long peak_rss_kib(void)
{
    char line[256];
    long kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* The names a pipeline's configuration points at. */
typedef struct pipeline_names {
    const char *inputs[1];
    char group[112], transactional_id[128];
} pipeline_names_t;

/* run's pipeline in one delivery mode from input to output, in a consumer
 * group of its own (named after t's run, the mode and phase); the rest is
 * `sessiond run`'s defaults but for --batch-max. */
static void configure(sd_pipeline_thread_t *run, pipeline_names_t *names,
                      const bench_target_t *t, sd_delivery_t delivery, const char *input,
                      const char *output, const char *phase, const results_t *r)
{
    int eos = delivery == SD_DELIVERY_EXACTLY_ONCE;
    names->inputs[0] = input;
    snprintf(names->group, sizeof names->group, "%s-%s-%s",
             t->real ? t->group : "sessiond-bench", phase, eos ? "eos" : "alo");
    snprintf(names->transactional_id, sizeof names->transactional_id, "%s-tx", names->group);
    run->now = r->now;
    run->cfg = (sd_pipeline_config_t){
        .kafka = t->kafka,
        .group = names->group, .inputs = names->inputs, .n_inputs = 1,
        .output_topic = output, .dlq_topic = t->dlq,
        .delivery = delivery, .transactional_id = eos ? names->transactional_id : NULL,
        .batch_max = r->batch_max,
        .batch_bytes = SD_BATCH_BYTES_DEFAULT, .batch_ms = SD_BATCH_MS_DEFAULT,
        .backoff_max_ms = 5000};
}

/* The pipeline in one delivery mode from t's input (the workload there
 * already) into store, t's output for the mode: its figures into *f, what
 * it did batch by batch into *seen. */
static sd_err_t measure_pipeline(const bench_target_t *t, sd_delivery_t delivery,
                                 sd_store_t *store, observed_t *seen, const results_t *r,
                                 pipeline_figures_t *f, sd_error_t *err)
{
    sd_pipeline_thread_t run = {.store = store};
    pipeline_names_t names;
    configure(&run, &names, t, delivery, t->input,
              t->output[delivery == SD_DELIVERY_EXACTLY_ONCE], "pipeline", r);
    run.cfg.on_batch = on_batch;
    run.cfg.batch_arg = seen;
    seen->stats = &run.stats;
    double secs = 0;
    long first_batch = 0;
    struct rusage before, after;
    peak_rss_reset();
    getrusage(RUSAGE_SELF, &before);
    sd_err_t rc = sd_pipeline_thread_start(&run, err);
    if (rc != SD_OK)
        return rc;
    int all = sd_pipeline_thread_wait(&run, (long)r->events, 2, NULL, NULL, &secs, &first_batch);
    rc = sd_pipeline_thread_stop(&run, err);
    getrusage(RUSAGE_SELF, &after);
    f->rss_kib = peak_rss_kib();
    f->cpu_us = ((double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec +
                          after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1e6 +
                 (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec +
                          after.ru_stime.tv_usec - before.ru_stime.tv_usec)) /
                (double)r->events;
    f->eps = all && secs > 0 ? (double)((long)r->events - first_batch) / secs : 0;
    f->p50_ms = percentile_ms(seen, 0.50);
    f->p99_ms = percentile_ms(seen, 0.99);
    if (seen->timed_events && f->eps > 0) {
        double n = (double)seen->timed_events;
        double in_flight = (double)seen->applied_to_committed_us / n;
        f->apply_us = (double)(atomic_load(&run.stats.batch_us_sum) - seen->first_apply_us) / n;
        f->rest_us = in_flight - f->apply_us;
        f->collect_us = 1e6 / f->eps - in_flight;
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
    return sd_store_open_ready(&cfg, out, err);
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

/* Waits up to 60 s for the pipeline to be assigned all partitions of its
 * input: the latency run offers events only to a pipeline that reads them. */
static sd_err_t await_assignment(sd_pipeline_thread_t *run, int32_t partitions, const char *input,
                                 sd_error_t *err)
{
    for (int waited = 0; atomic_load(&run->stats.assigned_partitions) < partitions; waited++) {
        if (waited > 600 || atomic_load(&run->finished))
            return sd_error_set(err, SD_ERR_FATAL, "",
                                "the latency pipeline did not get the %d partitions of %s "
                                "within 60 s",
                                (int)partitions, input);
        sd_sleep_ms(100);
    }
    return SD_OK;
}

/* End-to-end latency in one mode: the pipeline on t's latency topics into
 * a fresh store, with bench_latency() offering it events once it is in its
 * group. */
static sd_err_t latency_phase(const bench_target_t *t, sd_delivery_t delivery, int32_t partitions,
                              const double *rates, const sd_store_config_t *store_cfg,
                              const char *path, results_t *r, sd_error_t *err)
{
    int eos = delivery == SD_DELIVERY_EXACTLY_ONCE, started = 0;
    sd_store_t *store = NULL;
    sd_pipeline_thread_t run = {0};
    pipeline_names_t names;
    sd_err_t rc = open_fresh(store_cfg, path, eos ? "latency_eos" : "latency_alo", &store, err);
    if (rc != SD_OK)
        goto done;
    run.store = store;
    configure(&run, &names, t, delivery, t->latency_input[eos], t->latency_output[eos], "latency",
              r);
    if ((rc = sd_pipeline_thread_start(&run, err)) != SD_OK)
        goto done;
    started = 1;
    if ((rc = await_assignment(&run, partitions, t->latency_input[eos], err)) != SD_OK)
        goto done;
    rc = bench_latency(t, delivery, partitions, r->now, rates, r->n_rates,
                       (double)r->latency_ms / 1000.0, r->latency[eos], &r->sustained_eps[eos],
                       err);
done:
    if (started) {
        sd_error_t stop_err;
        sd_err_t stopped = sd_pipeline_thread_stop(&run, &stop_err);
        if (rc == SD_OK && stopped != SD_OK) {
            rc = stopped;
            *err = stop_err;
        }
    }
    sd_err_t closed = close_phase(store, path, NULL, err);
    return rc == SD_OK ? closed : rc;
}

/* One pipeline phase into a fresh store (phase names its MongoDB
 * collections). */
static sd_err_t pipeline_phase(const bench_target_t *t, sd_delivery_t delivery,
                               const sd_store_config_t *store_cfg, const char *path,
                               const char *phase, observed_t *seen, const results_t *r,
                               pipeline_figures_t *f, sd_error_t *err)
{
    sd_store_t *store = NULL;
    sd_err_t rc, closed;
    if ((rc = open_fresh(store_cfg, path, phase, &store, err)) != SD_OK)
        goto done;
    rc = measure_pipeline(t, delivery, store, seen, r, f, err);
done:
    closed = close_phase(store, path, NULL, err);
    return rc == SD_OK ? closed : rc;
}

/* The store ceiling on the spooled batches, into a fresh store. */
static sd_err_t ceiling_phase(FILE *spool, const sd_store_config_t *store_cfg, const char *path,
                              const observed_t *seen, results_t *r, sd_error_t *err)
{
    sd_store_t *store = NULL;
    sd_err_t rc, closed;
    if ((rc = open_fresh(store_cfg, path, "ceiling", &store, err)) != SD_OK)
        goto done;
    rc = bench_measure_ceiling(spool, store, seen, r, err);
done:
    closed = close_phase(store, path, rc == SD_OK ? r : NULL, err);
    return rc == SD_OK ? closed : rc;
}

/* The run on the embedded broker, phase by phase, with as many input
 * partitions as hold the workload; the broker child lives from the
 * pipeline to the spool, which reads its events back. */
static sd_err_t bench_embedded(chunks_t chunks, const sd_store_config_t *store_cfg,
                               const char *path, results_t *r, sd_error_t *err)
{
    broker_child_t broker = {0};
    bench_target_t t = {.kafka = {broker.bootstraps, NULL, 0, 1}};
    observed_t seen = {0};
    FILE *spool = NULL;
    sd_err_t rc;
    if ((rc = input_partitions(chunks, r->events, &chunks.partitions, err)) != SD_OK)
        goto done;
    r->partitions = chunks.partitions;
    if ((rc = measure_core(chunks, r->events, r, err)) != SD_OK)
        goto done;
    sync(); /* each store phase starts on a settled disk */
    if ((rc = bench_broker_child_start(chunks, r->events, &broker, err)) != SD_OK)
        goto done;
    bench_target_name(&t, 0);
    if ((rc = pipeline_phase(&t, SD_DELIVERY_AT_LEAST_ONCE, store_cfg, path, "pipeline", &seen,
                             r, &r->alo, err)) != SD_OK)
        goto done;
    if ((rc = bench_spool_batches(&t, chunks.partitions, &seen, &spool, err)) != SD_OK)
        goto done;
    r->broker_rss_kib = bench_broker_child_stop(&broker); /* the ceiling runs without it */
    rc = ceiling_phase(spool, store_cfg, path, &seen, r, err);
done:
    if (broker.pid > 0)
        r->broker_rss_kib = bench_broker_child_stop(&broker);
    if (spool)
        fclose(spool);
    observed_free(&seen);
    return rc;
}

/* The run on a real cluster: the run's topics made and loaded, the read
 * limit, the pipeline at least once and exactly once, each into a fresh
 * store, the ceiling on the first one's batches, then end-to-end latency
 * in both modes at the offered rates; the topics go afterwards unless
 * keep. */
static sd_err_t bench_cluster(chunks_t chunks, const bench_target_t *t, int keep,
                              const double *rates, const sd_store_config_t *store_cfg,
                              const char *path, results_t *r, sd_error_t *err)
{
    observed_t seen = {0}, seen_eos = {0};
    FILE *spool = NULL;
    sd_err_t rc;
    r->partitions = chunks.partitions;
    if ((rc = measure_core(chunks, r->events, r, err)) != SD_OK)
        goto done;
    if ((rc = bench_kafka_prepare(t, chunks, r->events, err)) != SD_OK)
        goto done;
    sync();
    if ((rc = bench_read_limit(t, chunks.partitions, r->events, &r->read_eps, err)) != SD_OK)
        goto done;
    if ((rc = pipeline_phase(t, SD_DELIVERY_AT_LEAST_ONCE, store_cfg, path, "pipeline", &seen, r,
                             &r->alo, err)) != SD_OK)
        goto done;
    if ((rc = bench_spool_batches(t, chunks.partitions, &seen, &spool, err)) != SD_OK)
        goto done;
    if ((rc = pipeline_phase(t, SD_DELIVERY_EXACTLY_ONCE, store_cfg, path, "pipeline_eos",
                             &seen_eos, r, &r->eos, err)) != SD_OK)
        goto done;
    if ((rc = ceiling_phase(spool, store_cfg, path, &seen, r, err)) != SD_OK)
        goto done;
    for (int eos = 0; eos < 2; eos++)
        if ((rc = latency_phase(t, eos ? SD_DELIVERY_EXACTLY_ONCE : SD_DELIVERY_AT_LEAST_ONCE,
                                chunks.partitions, rates, store_cfg, path, r, err)) != SD_OK)
            goto done;
done:
    if (!keep)
        bench_kafka_cleanup(t);
    if (spool)
        fclose(spool);
    observed_free(&seen);
    observed_free(&seen_eos);
    return rc;
}

/* The options' values together, checked: SD_OK, or SD_ERR_INVALID naming
 * the option. */
typedef struct bench_options {
    int64_t events, batch_max, partitions, latency_ms;
    int json, keep;
    const char *ids, *brokers, *rates;
    double rate[BENCH_MAX_RATES];
    size_t n_rates;
    sd_store_config_t store;
    sd_props_t props;
} bench_options_t;

/* "1000,10000" into o->rate[]. */
static sd_err_t parse_rates(bench_options_t *o, sd_error_t *err)
{
    const char *p = o->rates;
    o->n_rates = 0;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 1 || v > 1e7 || (*end && *end != ',') ||
            o->n_rates == BENCH_MAX_RATES)
            return sd_error_set(err, SD_ERR_INVALID, "rates",
                                "--rates takes up to %d rates in events a second, 1 to "
                                "10000000, separated by commas: not \"%s\"",
                                BENCH_MAX_RATES, o->rates);
        o->rate[o->n_rates++] = v;
        p = *end ? end + 1 : end;
    }
    return o->n_rates ? SD_OK
                      : sd_error_set(err, SD_ERR_INVALID, "rates", "--rates names no rate");
}

static sd_err_t check_options(bench_options_t *o, sd_error_t *err)
{
    sd_err_t rc = parse_rates(o, err);
    if (rc != SD_OK)
        return rc;
    if (o->events < 1)
        return sd_error_set(err, SD_ERR_INVALID, "events", "--events must be at least 1");
    if (o->batch_max < 1)
        return sd_error_set(err, SD_ERR_INVALID, "batch-max", "--batch-max must be at least 1");
    if (o->latency_ms < 1000)
        return sd_error_set(err, SD_ERR_INVALID, "latency-time",
                            "--latency-time must be at least 1s");
    if (o->partitions < 1 || o->partitions > 10000)
        return sd_error_set(err, SD_ERR_INVALID, "partitions",
                            "--partitions must be between 1 and 10000");
    if (strcmp(o->ids, "uuid") != 0 && strcmp(o->ids, "sequential") != 0)
        return sd_error_set(err, SD_ERR_INVALID, "ids",
                            "--ids takes uuid or sequential, not '%s'", o->ids);
    const char *path = o->store.uri && !strncmp(o->store.uri, "sqlite:", 7) ? o->store.uri + 7
                                                                          : NULL;
    if (path && (!*path || access(path, F_OK) == 0))
        return sd_error_set(err, SD_ERR_INVALID, "store",
                            "--store sqlite:PATH needs a file that does not exist yet (the "
                            "bench creates and deletes it): %s",
                            *path ? path : "no PATH given");
    return SD_OK;
}

/* Runs the bench with o, into *r; the SQLite store in a temporary
 * directory unless --store. */
static sd_err_t bench(bench_options_t *o, results_t *r, sd_error_t *err)
{
    char dir[] = "/tmp/sessiond-bench-XXXXXX", temp[64];
    const char *path = o->store.uri && !strncmp(o->store.uri, "sqlite:", 7) ? o->store.uri + 7
                                                                          : NULL;
    if (!o->store.uri) {
        if (!mkdtemp(dir))
            return sd_error_set(err, SD_ERR_FATAL, "", "cannot create a temporary directory: %s",
                                strerror(errno));
        snprintf(temp, sizeof temp, "%s/bench.db", dir);
        path = temp;
        o->store.uri = "sqlite:";
    }
    r->store_kind = path ? "sqlite" : "mongodb";
    chunks_t chunks = {.now = r->now, .ttl = SD_STORE_DEFAULT_TTL_MS,
                       .ids = strcmp(o->ids, "uuid") == 0 ? SD_IDS_UUID : SD_IDS_SEQUENTIAL};
    sd_err_t rc;
    if (r->brokers) {
        bench_target_t t = {.kafka = {o->brokers, o->props.items, o->props.count, 0}};
        bench_target_name(&t, 1);
        chunks.partitions = (int32_t)o->partitions;
        r->n_rates = o->n_rates;
        r->latency_ms = o->latency_ms;
        rc = bench_cluster(chunks, &t, o->keep, o->rate, &o->store, path, r, err);
    } else {
        rc = bench_embedded(chunks, &o->store, path, r, err);
    }
    if (path == temp)
        rmdir(dir);
    return rc;
}

int sd_cmd_bench(int argc, char **argv)
{
    bench_options_t o = {.events = 200000, .batch_max = SD_BATCH_MAX_DEFAULT, .partitions = 6,
                         .latency_ms = 10000, .ids = "uuid", .brokers = "embedded",
                         .rates = "1000,10000"};
    const sd_option_t opts[] = {
        {"events", SD_OPT_INT, &o.events, "N", "events per measurement (default 200000)", NULL},
        {"ids", SD_OPT_STRING, &o.ids, "SHAPE",
         "uuid (default: random UUID v4 task and short ids) or sequential", NULL},
        {"batch-max", SD_OPT_INT, &o.batch_max, "N",
         "the pipeline's events per batch at most (default: run's, 10000)", NULL},
        {"brokers", SD_OPT_STRING, &o.brokers, "HOSTS",
         "a real cluster's bootstrap servers, or embedded (default)", NULL},
        {"partitions", SD_OPT_INT, &o.partitions, "N",
         "with --brokers: the input topic's partitions (default 6)", NULL},
        {"keep", SD_OPT_FLAG, &o.keep, NULL, "with --brokers: keep the run's topics", NULL},
        {"rates", SD_OPT_STRING, &o.rates, "R,…",
         "with --brokers: offered rates for latency, events/s (default 1000,10000)", NULL},
        {"latency-time", SD_OPT_DURATION, &o.latency_ms, "D",
         "with --brokers: how long each rate is offered (default 10s)", NULL},
        {"json", SD_OPT_FLAG, &o.json, NULL, "print one JSON object instead of the table", NULL},
        SD_STORE_OPTIONS(&o.store),
    };
    sd_error_t err = {0};
    size_t n_pos;
    int help, status = 2;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], &o.props, argc, argv, usage, NULL,
                         0, &n_pos, &help, &err) != SD_OK ||
        (!help && check_options(&o, &err) != SD_OK)) {
        fprintf(stderr, "sessiond bench: %s\n", err.message);
        goto done;
    }
    status = 0;
    if (help)
        goto done;
    sd_log_set_level(SD_LOG_ERROR);
    char machine_text[320];
    machine(machine_text, sizeof machine_text);
    results_t r = {.ids = o.ids, .events = (size_t)o.events, .batch_max = (size_t)o.batch_max,
                   .now = sd_config_now_ms(),
                   .brokers = strcmp(o.brokers, "embedded") ? o.brokers : NULL};
    if (bench(&o, &r, &err) != SD_OK) {
        fprintf(stderr, "sessiond bench: %s\n", err.message);
        status = 1;
    } else if (o.json) {
        status = bench_print_json(&r, machine_text);
    } else {
        bench_print_table(&r, machine_text);
    }
done:
    sd_props_free(&o.props);
    return status;
}
