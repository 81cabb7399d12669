#include "sessiond/stats.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

const double sd_stats_bucket_bounds[SD_STATS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,   0.25,   0.5,   1,    2.5,   5};

/* The slot of topic, added when new; -1 when every slot is taken (the
 * counts of further topics are not kept apart). */
static int topic_slot(sd_pipeline_stats_t *s, const char *topic)
{
    int n = atomic_load(&s->n_topics);
    for (int i = 0; i < n; i++)
        if (strcmp(s->topics[i].name, topic) == 0)
            return i;
    if (n == SD_STATS_TOPICS)
        return -1;
    snprintf(s->topics[n].name, sizeof s->topics[n].name, "%s", topic);
    atomic_store(&s->n_topics, n + 1);
    return n;
}

long sd_stats_ignored(const sd_pipeline_stats_t *s)
{
    long total = 0;
    for (int why = 0; why <= SD_IGNORE_SCRAPING; why++)
        total += atomic_load(&s->ignored_by[why]);
    return total;
}

long sd_stats_changes(const sd_pipeline_stats_t *s)
{
    long total = 0;
    for (int type = 0; type <= SD_CHANGE_EXPIRED; type++)
        total += atomic_load(&s->changes_by_type[type]);
    return total;
}

int64_t sd_stats_stalled_ms(const sd_pipeline_stats_t *s, int64_t now)
{
    int64_t bound = atomic_load(&s->stall_ms), since = now - atomic_load(&s->progress_ms);
    if (bound <= 0 || atomic_load(&s->assigned_partitions) <= 0 || since < bound)
        return 0;
    return since;
}

long sd_stats_processed(const sd_pipeline_stats_t *s)
{
    return atomic_load(&s->applied) + atomic_load(&s->unchanged) + sd_stats_ignored(s) +
           atomic_load(&s->dead_lettered);
}

void sd_stats_event(sd_pipeline_stats_t *s, const char *topic, int event_type)
{
    int t = topic_slot(s, topic);
    if (t >= 0 && event_type >= 0 && event_type <= SD_STATS_INVALID)
        atomic_fetch_add(&s->topics[t].events[event_type], 1);
}

static void lock_problem(sd_pipeline_stats_t *s)
{
    int free_ = 0;
    while (!atomic_compare_exchange_weak(&s->problem_lock, &free_, 1))
        free_ = 0;
}

void sd_stats_kafka_failed(sd_pipeline_stats_t *s, const char *what, const char *why)
{
    lock_problem(s);
    snprintf(s->kafka_problem, sizeof s->kafka_problem, "%s%s%s", what, why ? ": " : "",
             why ? why : "");
    atomic_store(&s->problem_lock, 0);
    atomic_store(&s->kafka_ok, 0);
}

void sd_stats_kafka_problem(sd_pipeline_stats_t *s, char *buf, size_t cap)
{
    lock_problem(s);
    snprintf(buf, cap, "%s", s->kafka_problem[0] ? s->kafka_problem : "Kafka is unavailable");
    atomic_store(&s->problem_lock, 0);
}

void sd_stats_dead_letter(sd_pipeline_stats_t *s, const char *reason)
{
    atomic_fetch_add(&s->dead_lettered, 1);
    int n = atomic_load(&s->n_dead_reasons);
    for (int i = 0; i < n; i++)
        if (strcmp(s->dead_reasons[i].name, reason) == 0) {
            atomic_fetch_add(&s->dead_reasons[i].count, 1);
            return;
        }
    if (n == SD_STATS_REASONS)
        return;
    snprintf(s->dead_reasons[n].name, sizeof s->dead_reasons[n].name, "%s", reason);
    atomic_store(&s->dead_reasons[n].count, 1);
    atomic_store(&s->n_dead_reasons, n + 1);
}

void sd_stats_batch_applied(sd_pipeline_stats_t *s, int64_t duration_us)
{
    int b = 0;
    while (b < SD_STATS_BUCKETS && (double)duration_us / 1e6 > sd_stats_bucket_bounds[b])
        b++;
    atomic_fetch_add(&s->batch_buckets[b], 1);
    atomic_fetch_add(&s->batch_us_sum, duration_us);
}

static sd_stats_lag_t *lag_slot(sd_pipeline_stats_t *s, const char *topic, int32_t partition)
{
    int t = topic_slot(s, topic);
    if (t < 0)
        return NULL;
    int n = atomic_load(&s->n_lags);
    for (int i = 0; i < n; i++)
        if (s->lags[i].topic == t && s->lags[i].partition == partition)
            return &s->lags[i];
    if (n == SD_STATS_PARTITIONS)
        return NULL;
    s->lags[n].topic = t;
    s->lags[n].partition = partition;
    atomic_store(&s->lags[n].lag, -1);
    atomic_store(&s->n_lags, n + 1);
    return &s->lags[n];
}

void sd_stats_lag_from_json(sd_pipeline_stats_t *s, const char *json, size_t len)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *topics = json_object_get(root, "topics");
    int n = atomic_load(&s->n_lags);
    char seen[SD_STATS_PARTITIONS] = {0};
    const char *topic;
    json_t *t;
    json_object_foreach(topics, topic, t) {
        const char *key;
        json_t *p;
        json_object_foreach(json_object_get(t, "partitions"), key, p) {
            json_int_t partition = json_integer_value(json_object_get(p, "partition"));
            json_t *lag = json_object_get(p, "consumer_lag");
            /* -1 is librdkafka's "unassigned" partition; a lag of -1, unknown */
            if (partition < 0 || !json_is_integer(lag) || json_integer_value(lag) < 0)
                continue;
            sd_stats_lag_t *slot = lag_slot(s, topic, (int32_t)partition);
            if (!slot)
                continue;
            atomic_store(&slot->lag, (long long)json_integer_value(lag));
            seen[slot - s->lags] = 1;
        }
    }
    for (int i = 0; i < n; i++)
        if (!seen[i])
            atomic_store(&s->lags[i].lag, -1);
    json_decref(root);
}
