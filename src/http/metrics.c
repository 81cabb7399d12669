#define _POSIX_C_SOURCE 200809L
#include "sessiond/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct text {
    char *data;
    size_t len, cap;
    int failed;
} text_t;

static void add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = t->failed ? 0 : vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (t->failed || n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

static void family(text_t *t, const char *name, const char *type, const char *help)
{
    add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format asks: backslash, quote, newline. */
static void add_label(text_t *t, const char *name, const char *value, int first)
{
    add(t, "%s%s=\"", first ? "" : ",", name);
    for (const char *c = value; *c; c++) {
        const char *escaped = *c == '\\' ? "\\\\" : *c == '"' ? "\\\"" : *c == '\n' ? "\\n" : NULL;
        if (escaped)
            add(t, "%s", escaped);
        else
            add(t, "%c", *c);
    }
    add(t, "\"");
}

/* name{label="value"} count */
static void sample1(text_t *t, const char *name, const char *label, const char *value, long count)
{
    add(t, "%s{", name);
    add_label(t, label, value, 1);
    add(t, "} %ld\n", count);
}

static void scalar(text_t *t, const char *name, const char *type, const char *help, long value)
{
    family(t, name, type, help);
    add(t, "%s %ld\n", name, value);
}

static void events(text_t *t, const sd_pipeline_stats_t *s)
{
    family(t, "sessiond_events_consumed_total", "counter",
           "Events read from the input topics and applied, by topic and event_type "
           "(invalid: not a valid event).");
    int n = atomic_load(&s->n_topics);
    for (int i = 0; i < n; i++)
        for (int type = 0; type <= SD_STATS_INVALID; type++) {
            long count = atomic_load(&s->topics[i].events[type]);
            if (!count)
                continue;
            add(t, "sessiond_events_consumed_total{");
            add_label(t, "topic", s->topics[i].name, 1);
            add_label(t, "event_type",
                      type == SD_STATS_INVALID ? "invalid" : sd_event_type_name(type), 0);
            add(t, "} %ld\n", count);
        }

    family(t, "sessiond_events_applied_total", "counter",
           "Valid events applied through the store, by result (ignored ones by reason).");
    sample1(t, "sessiond_events_applied_total", "result", "changed", atomic_load(&s->applied));
    sample1(t, "sessiond_events_applied_total", "result", "unchanged",
            atomic_load(&s->unchanged));
    for (int why = SD_IGNORE_NO_SHORT_ID; why <= SD_IGNORE_SCRAPING; why++)
        add(t, "sessiond_events_applied_total{result=\"ignored\",reason=\"%s\"} %ld\n",
            sd_ignore_name(why), atomic_load(&s->ignored_by[why]));

    family(t, "sessiond_events_dead_lettered_total", "counter",
           "Events sent to the dead-letter topic, by reason: the offending field, payload "
           "(not a JSON object, too large) or store (the store cannot keep it).");
    n = atomic_load(&s->n_dead_reasons);
    for (int i = 0; i < n; i++)
        sample1(t, "sessiond_events_dead_lettered_total", "reason", s->dead_reasons[i].name,
                atomic_load(&s->dead_reasons[i].count));
}

static void changes_and_store(text_t *t, const sd_pipeline_stats_t *s)
{
    family(t, "sessiond_changes_produced_total", "counter",
           "Session changes published, by change_type.");
    for (int type = SD_CHANGE_CREATED; type <= SD_CHANGE_EXPIRED; type++)
        sample1(t, "sessiond_changes_produced_total", "change_type", sd_change_type_name(type),
                atomic_load(&s->changes_by_type[type]));

    family(t, "sessiond_batch_apply_duration_seconds", "histogram",
           "Time the store took to apply one batch.");
    long cumulative = 0;
    for (int b = 0; b <= SD_STATS_BUCKETS; b++) {
        cumulative += atomic_load(&s->batch_buckets[b]);
        if (b < SD_STATS_BUCKETS)
            add(t, "sessiond_batch_apply_duration_seconds_bucket{le=\"%g\"} %ld\n",
                sd_stats_bucket_bounds[b], cumulative);
        else
            add(t, "sessiond_batch_apply_duration_seconds_bucket{le=\"+Inf\"} %ld\n", cumulative);
    }
    add(t, "sessiond_batch_apply_duration_seconds_sum %.6f\n",
        (double)atomic_load(&s->batch_us_sum) / 1e6);
    add(t, "sessiond_batch_apply_duration_seconds_count %ld\n", cumulative);

    family(t, "sessiond_store_errors_total", "counter",
           "Store failures by class: transient (retried), event (dead-lettered), fatal.");
    static const struct {
        sd_err_t code;
        const char *name;
    } classes[] = {{SD_ERR_TRANSIENT, "transient"}, {SD_ERR_EVENT, "event"},
                   {SD_ERR_FATAL, "fatal"}};
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        sample1(t, "sessiond_store_errors_total", "class", classes[i].name,
                atomic_load(&s->store_errors[classes[i].code]));
    scalar(t, "sessiond_sweep_errors_total", "counter",
           "Expiry sweeps that failed (a later sweep publishes what they did not).",
           atomic_load(&s->sweep_errors));
    scalar(t, "sessiond_expiry_events_published_total", "counter",
           "Expiry events this member's sweeper published; the partitions' owners apply them.",
           atomic_load(&s->expiry_events));
}

static void kafka(text_t *t, const sd_pipeline_stats_t *s)
{
    scalar(t, "sessiond_batches_total", "counter", "Batches applied and committed.",
           atomic_load(&s->batches));
    scalar(t, "sessiond_rebalances_total", "counter", "Consumer group rebalance callbacks.",
           atomic_load(&s->rebalances));
    family(t, "sessiond_transactions_total", "counter",
           "Kafka transactions (exactly-once), by outcome.");
    sample1(t, "sessiond_transactions_total", "outcome", "committed",
            atomic_load(&s->transactions_committed));
    sample1(t, "sessiond_transactions_total", "outcome", "aborted",
            atomic_load(&s->transactions_aborted));
    family(t, "sessiond_consumer_lag", "gauge",
           "Messages between the committed offset and the end of each partition this member "
           "owns (librdkafka statistics, every 5 s).");
    int n = atomic_load(&s->n_lags);
    for (int i = 0; i < n; i++) {
        long long lag = atomic_load(&s->lags[i].lag);
        if (lag < 0)
            continue;
        add(t, "sessiond_consumer_lag{");
        add_label(t, "topic", s->topics[s->lags[i].topic].name, 1);
        add(t, ",partition=\"%d\"} %lld\n", (int)s->lags[i].partition, lag);
    }
    scalar(t, "sessiond_assigned_partitions", "gauge", "Input partitions this member owns.",
           atomic_load(&s->assigned_partitions));
    scalar(t, "sessiond_paused", "gauge", "1 while waiting out a store or Kafka outage.",
           atomic_load(&s->paused));
    scalar(t, "sessiond_store_up", "gauge", "0 after the store failed, until it answers again.",
           atomic_load(&s->store_ok));
    scalar(t, "sessiond_kafka_up", "gauge", "0 after Kafka failed, until it answers again.",
           atomic_load(&s->kafka_ok));
}

static void progress(text_t *t, const sd_pipeline_stats_t *s, int64_t monotonic_ms)
{
    family(t, "sessiond_stalled_seconds", "gauge",
           "How long this member has held partitions without progress (no batch committed, "
           "and not caught up), once that is past --stall-timeout; 0 otherwise.");
    add(t, "sessiond_stalled_seconds %.3f\n",
        (double)sd_stats_stalled_ms(s, monotonic_ms) / 1000.0);
    scalar(t, "sessiond_rejoins_total", "counter",
           "Times this member gave its partitions back after --rejoin-after without progress.",
           atomic_load(&s->rejoins));
}

char *sd_metrics_render(const sd_metrics_input_t *in)
{
    text_t t = {0};
    family(&t, "sessiond_build_info", "gauge", "The running sessiond.");
    sample1(&t, "sessiond_build_info", "version", in->version, 1);
    family(&t, "sessiond_process_start_time_seconds", "gauge",
           "Start time of the process since the epoch.");
    add(&t, "sessiond_process_start_time_seconds %.3f\n", (double)in->start_ms / 1000.0);
    events(&t, in->stats);
    changes_and_store(&t, in->stats);
    kafka(&t, in->stats);
    scalar(&t, "sessiond_ready", "gauge",
           "1 when /readyz answers 200 (ready), 0 when it answers 503 (not ready).", in->ready);
    progress(&t, in->stats, in->monotonic_ms);
    if (in->live_known) {
        family(&t, "sessiond_live_sessions", "gauge",
               "Visible sessions by task_type, sampled from the store (at most every 15 s).");
        for (size_t i = 0; i < in->n_live; i++)
            sample1(&t, "sessiond_live_sessions", "task_type", in->live[i].task_type,
                    (long)in->live[i].live);
    }
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
