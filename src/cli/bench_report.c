/* sessiond bench: the results as a table or as one JSON object. */
#include "bench.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double per_event(uint64_t total, size_t events)
{
    return events ? (double)total / (double)events : 0;
}

/* The pipeline's rows of the table in one mode. */
static void print_pipeline(const char *name, const pipeline_figures_t *f, const results_t *r)
{
    char label[96];
    snprintf(label, sizeof label, "pipeline%s%s: broker -> store -> output topic",
             *name ? " " : "", name);
    if (f->eps > 0)
        printf("  %-52s %12.0f events/s\n", label, f->eps);
    else
        printf("  %-52s %21s\n", label, "n/a: one batch only");
    snprintf(label, sizeof label, "  batch latency p50 / p99 (<= %zu events)", r->batch_max);
    printf("  %-52s %9.1f ms / %.1f ms\n", label, f->p50_ms, f->p99_ms);
    printf("  %-52s %4.1f / %.1f / %.1f µs\n", "  per event: collect / store / the rest",
           f->collect_us, f->apply_us, f->rest_us);
    printf("  %-52s %12.1f µs\n", "  CPU per event (sessiond, every thread)", f->cpu_us);
    printf("  %-52s %12.1f MiB\n", "  peak RSS of sessiond", (double)f->rss_kib / 1024.0);
}

/* The latency rows of the table, both modes. */
static void print_latency(const results_t *r)
{
    static const char *const mode[] = {"at-least-once", "exactly-once"};
    printf("  end-to-end latency: event sent -> its change read (read_committed)\n");
    for (int eos = 0; eos < 2; eos++) {
        for (size_t i = 0; i < r->n_rates; i++) {
            const latency_figures_t *f = &r->latency[eos][i];
            char label[96];
            snprintf(label, sizeof label, "  %s at %.0f/s: p50 / p99 / p99.9 / max", mode[eos],
                     f->rate);
            printf("  %-52s %.1f / %.1f / %.1f / %.1f ms%s\n", label, f->p50_ms, f->p99_ms,
                   f->p999_ms, f->max_ms, f->sustained ? "" : " (fell behind)");
        }
        char label[96];
        snprintf(label, sizeof label, "  %s: highest rate kept up with", mode[eos]);
        printf("  %-52s %12.0f events/s\n", label, r->sustained_eps[eos]);
    }
}

void bench_print_table(const results_t *r, const char *machine_text)
{
    printf("sessiond bench: %zu events, %s ids, %s store, on %s\n", r->events, r->ids,
           r->store_kind, machine_text);
    if (r->brokers)
        printf("  Kafka at %s, %d input partitions\n", r->brokers, (int)r->partitions);
    else
        printf("  librdkafka's embedded broker (own process), %d input partitions\n",
               (int)r->partitions);
    printf("\n  %-52s %12.0f events/s\n",
           "core: parse + validate + rules + change JSON (1 thread)", r->core_eps);
    if (r->brokers)
        printf("  %-52s %12.0f events/s\n", "read limit: a consumer with sessiond's settings",
               r->read_eps);
    print_pipeline(r->brokers ? "at-least-once" : "", &r->alo, r);
    if (r->brokers) {
        print_pipeline("exactly-once", &r->eos, r);
        printf("  %-52s %12.0f %%\n", "at-least-once / read limit",
               r->read_eps > 0 ? 100.0 * r->alo.eps / r->read_eps : 0.0);
        printf("  %-52s %12.0f %%\n", "exactly-once / at-least-once",
               r->alo.eps > 0 ? 100.0 * r->eos.eps / r->alo.eps : 0.0);
        print_latency(r);
    }
    printf("  %-52s %12.0f events/s\n", "store ceiling: the store alone, same batches",
           r->store_eps);
    printf("  %-52s %6.0f / %.0f / %.0f\n", "  over the tenth of the run ending at 10/50/100 %",
           r->store_eps_at[0], r->store_eps_at[1], r->store_eps_at[2]);
    printf("  %-52s %12.1f µs\n", "  store CPU per event (this process)", r->store_cpu_us);
    printf("  %-52s %12.0f %%\n", "pipeline (at-least-once) / store ceiling",
           r->store_eps > 0 ? 100.0 * r->alo.eps / r->store_eps : 0.0);
    if (!r->brokers)
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

/* One mode's latencies as a JSON array, one object per rate. */
static json_t *latency_json(const results_t *r, int eos)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_rates; i++) {
        const latency_figures_t *f = &r->latency[eos][i];
        json_array_append_new(a, json_pack("{s:f, s:I, s:f, s:f, s:f, s:f, s:b}", "rate", f->rate,
                                           "samples", (json_int_t)f->samples, "p50_ms", f->p50_ms,
                                           "p99_ms", f->p99_ms, "p99_9_ms", f->p999_ms, "max_ms",
                                           f->max_ms, "kept_up", f->sustained));
    }
    return a;
}

/* One mode's figures as a JSON object. */
static json_t *pipeline_json(const pipeline_figures_t *f)
{
    return json_pack("{s:f, s:f, s:f, s:{s:f, s:f, s:f}, s:f, s:f}", "events_per_s", f->eps,
                     "batch_p50_ms", f->p50_ms, "batch_p99_ms", f->p99_ms, "us_per_event",
                     "collect", f->collect_us, "store", f->apply_us, "rest", f->rest_us,
                     "cpu_us_per_event", f->cpu_us, "peak_rss_mib",
                     (double)f->rss_kib / 1024.0);
}

int bench_print_json(const results_t *r, const char *machine_text)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "store",
                          r->store_kind, "ids", r->ids, "events", (json_int_t)r->events,
                          "machine", machine_text, "core_events_per_s", r->core_eps,
                          "store_events_per_s", r->store_eps, "pipeline_events_per_s",
                          r->alo.eps, "batch_p50_ms", r->alo.p50_ms, "batch_p99_ms", r->alo.p99_ms,
                          "pipeline_over_store",
                          r->store_eps > 0 ? r->alo.eps / r->store_eps : 0.0,
                          "peak_rss_mib", (double)r->alo.rss_kib / 1024.0);
    if (!o)
        return 1;
    json_object_set_new(o, "batch_max", json_integer((json_int_t)r->batch_max));
    json_object_set_new(o, "partitions", json_integer(r->partitions));
    json_object_set_new(o, "pipeline_cpu_us_per_event", json_real(r->alo.cpu_us));
    if (r->brokers) {
        json_object_set_new(o, "brokers", json_string(r->brokers));
        json_object_set_new(o, "read_limit_events_per_s", json_real(r->read_eps));
        json_object_set_new(o, "at_least_once", pipeline_json(&r->alo));
        json_object_set_new(o, "exactly_once", pipeline_json(&r->eos));
        json_object_set_new(o, "latency", json_pack("{s:o, s:o}", "at_least_once",
                                                     latency_json(r, 0), "exactly_once",
                                                     latency_json(r, 1)));
        json_object_set_new(o, "highest_rate_kept_up",
                            json_pack("{s:f, s:f}", "at_least_once", r->sustained_eps[0],
                                      "exactly_once", r->sustained_eps[1]));
    }
    json_object_set_new(o, "broker_peak_rss_mib", json_real((double)r->broker_rss_kib / 1024.0));
    json_object_set_new(o, "store_events_per_s_at",
                        json_pack("{s:f, s:f, s:f}", "10%", r->store_eps_at[0], "50%",
                                  r->store_eps_at[1], "100%", r->store_eps_at[2]));
    json_object_set_new(o, "store_cpu_us_per_event", json_real(r->store_cpu_us));
    json_object_set_new(o, "pipeline_us_per_event",
                        json_pack("{s:f, s:f, s:f}", "collect", r->alo.collect_us, "store",
                                  r->alo.apply_us, "rest", r->alo.rest_us));
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
