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

static void metric(text_t *t, const char *name, const char *type, const char *help, long value)
{
    add(t, "# HELP %s %s\n# TYPE %s %s\n%s %ld\n", name, help, name, type, name, value);
}

char *sd_metrics_render(const sd_pipeline_stats_t *s, int64_t start_ms, const char *version)
{
    text_t t = {0};
    add(&t, "# HELP sessiond_build_info The running sessiond.\n# TYPE sessiond_build_info gauge\n"
            "sessiond_build_info{version=\"%s\"} 1\n", version);
    add(&t, "# HELP sessiond_process_start_time_seconds Start time of the process since the "
            "epoch.\n# TYPE sessiond_process_start_time_seconds gauge\n"
            "sessiond_process_start_time_seconds %.3f\n", (double)start_ms / 1000.0);
    metric(&t, "sessiond_events_consumed_total", "counter", "Events read from the input topics.",
           atomic_load(&s->events));
    add(&t, "# HELP sessiond_events_applied_total Events applied through the store, by result.\n"
            "# TYPE sessiond_events_applied_total counter\n"
            "sessiond_events_applied_total{result=\"changed\"} %ld\n"
            "sessiond_events_applied_total{result=\"unchanged\"} %ld\n"
            "sessiond_events_applied_total{result=\"ignored\"} %ld\n",
        atomic_load(&s->applied), atomic_load(&s->unchanged), atomic_load(&s->ignored));
    metric(&t, "sessiond_events_dead_lettered_total", "counter",
           "Invalid events sent to the dead-letter topic.", atomic_load(&s->dead_lettered));
    metric(&t, "sessiond_changes_produced_total", "counter", "Session changes published.",
           atomic_load(&s->changes));
    metric(&t, "sessiond_batches_total", "counter", "Batches applied and committed.",
           atomic_load(&s->batches));
    metric(&t, "sessiond_rebalances_total", "counter", "Consumer group rebalance callbacks.",
           atomic_load(&s->rebalances));
    add(&t, "# HELP sessiond_transactions_total Kafka transactions (exactly-once), by outcome.\n"
            "# TYPE sessiond_transactions_total counter\n"
            "sessiond_transactions_total{outcome=\"committed\"} %ld\n"
            "sessiond_transactions_total{outcome=\"aborted\"} %ld\n",
        atomic_load(&s->transactions_committed), atomic_load(&s->transactions_aborted));
    metric(&t, "sessiond_assigned_partitions", "gauge", "Input partitions this member owns.",
           atomic_load(&s->assigned_partitions));
    metric(&t, "sessiond_paused", "gauge", "1 while waiting out a store or Kafka outage.",
           atomic_load(&s->paused));
    metric(&t, "sessiond_store_up", "gauge", "0 after the store failed, until it answers again.",
           atomic_load(&s->store_ok));
    metric(&t, "sessiond_kafka_up", "gauge", "0 after Kafka failed, until it answers again.",
           atomic_load(&s->kafka_ok));
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
