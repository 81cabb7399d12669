/* The consume-apply-produce loop.
 *
 * Everything happens on this thread: librdkafka runs the rebalance
 * callback only inside rd_kafka_consumer_poll(), which this loop calls
 * while it collects a batch and while it waits out a store or broker
 * outage — never between applying a batch and committing it.  So a revoke
 * can only find a batch that is not applied yet: its messages of the
 * revoked partitions are dropped (the next owner reads them again from the
 * committed offset) and the rest go on.
 *
 * At-least-once: apply, produce, wait for every delivery report, commit.
 * Exactly-once: apply, then produce and commit the offsets in one Kafka
 * transaction; an aborted transaction rewinds the batch's partitions.
 *
 * A replay is the same loop as the group's only member, reading from
 * given offsets up to given ends, and then returning.
 *
 * The expiry sweeper takes its turns between batches (sweeper.c): one
 * step per loop while a backlog lasts, otherwise one per interval; an
 * empty batch is cut short when a turn is due.
 *
 * SESSIOND_FAILPOINT=after-store:N|after-produce:N[:stop] (for the crash
 * tests) kills the process with SIGKILL right after the Nth batch's store
 * write, or after its changes are delivered (exactly-once: inside the open
 * transaction) but before its offsets are committed; with `:stop` it
 * stops there with SIGSTOP instead, as a long pause would, until SIGCONT. */
#define _POSIX_C_SOURCE 200809L
#include "sessiond/pipeline.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/clock.h"
#include "sessiond/fetch_wake.h"
#include "sessiond/log.h"
#include "sessiond/outgoing.h"
#include "sessiond/producer.h"
#include "sessiond/rules.h"
#include "sessiond/sweeper.h"

typedef struct batch {
    rd_kafka_message_t **msgs;
    size_t count;
    size_t cap;
    size_t bytes; /* of the messages' values */
} batch_t;

typedef struct pipeline {
    const sd_pipeline_config_t *cfg;
    sd_store_t *store;
    rd_kafka_t *consumer;
    sd_producer_t *producer;
    volatile sig_atomic_t *stop;
    sd_pipeline_stats_t *stats;
    batch_t batch;
    rd_kafka_topic_partition_list_t *uncommitted; /* offsets a commit failed on */
    int64_t uncommitted_tried; /* monotonic ms */
    int paused;
    int ever_assigned;
    int closing;
    int behind; /* the last batch was full: there is a backlog */
    int64_t backoff_ms;
    int64_t next_sweep; /* monotonic ms */
    /* replaying */
    int replay_started;
    int64_t replay_deadline;  /* monotonic ms to own every partition by */
    int *replay_done;        /* per partition of cfg->replay->end */
    char replay_refused[300]; /* why the replay cannot go on, or "" */
    /* SESSIOND_FAILPOINT */
    char fail_where[32];
    long fail_batch;
    int fail_signal;
    long batch_no;
} pipeline_t;

#define SD_REPLAY_JOIN_S 60
#define SD_FETCH_WAKE_MS 100 /* a leader that answers later still woke */
#define SD_FETCH_IDLE_MS 5

/* The rules' clock (injectable); batching and backoff use the monotonic clock. */
static int64_t now_ms(const pipeline_t *p) { return p->cfg->now_ms(p->cfg->clock_arg); }

/* ---- the batch in flight ---- */

static void batch_clear(batch_t *b)
{
    for (size_t i = 0; i < b->count; i++)
        rd_kafka_message_destroy(b->msgs[i]);
    b->count = 0;
    b->bytes = 0;
}

static int batch_add(batch_t *b, rd_kafka_message_t *m)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        rd_kafka_message_t **grown = realloc(b->msgs, cap * sizeof *grown);
        if (!grown)
            return -1;
        b->msgs = grown;
        b->cap = cap;
    }
    b->msgs[b->count++] = m;
    b->bytes += m->len;
    return 0;
}

/* Drops the batch's messages of the given partitions (they were revoked). */
static void batch_drop(batch_t *b, const rd_kafka_topic_partition_list_t *parts)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->count; i++) {
        rd_kafka_message_t *m = b->msgs[i];
        if (rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt), m->partition)) {
            b->bytes -= m->len;
            rd_kafka_message_destroy(m);
        } else {
            b->msgs[kept++] = m;
        }
    }
    b->count = kept;
}

/* Per partition: the first offset of the batch (rewind) or the one after
 * its last (commit). */
static rd_kafka_topic_partition_list_t *batch_offsets(const batch_t *b, int next)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < b->count; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, rd_kafka_topic_name(m->rkt), m->partition);
        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt), m->partition);
            tp->offset = next ? m->offset + 1 : m->offset;
        } else if (next ? m->offset + 1 > tp->offset : m->offset < tp->offset) {
            tp->offset = next ? m->offset + 1 : m->offset;
        }
    }
    return list;
}

/* ---- rebalancing ---- */

/* The replay's partition index in cfg->replay->end, or -1. */
static int replay_index(const pipeline_t *p, const char *topic, int32_t partition)
{
    const rd_kafka_topic_partition_list_t *end = p->cfg->replay->end;
    for (int i = 0; i < end->cnt; i++)
        if (end->elems[i].partition == partition && strcmp(end->elems[i].topic, topic) == 0)
            return i;
    return -1;
}

static int replay_finished(const pipeline_t *p)
{
    if (!p->replay_started)
        return 0;
    for (int i = 0; i < p->cfg->replay->end->cnt; i++)
        if (!p->replay_done[i])
            return 0;
    return 1;
}

static void replay_mark_done(pipeline_t *p, int i)
{
    if (i < 0 || p->replay_done[i])
        return;
    p->replay_done[i] = 1;
    const rd_kafka_topic_partition_t *e = &p->cfg->replay->end->elems[i];
    sd_log(SD_LOG_DEBUG, "replay", "partition caught up", "topic=%s partition=%d end=%lld",
           e->topic, (int)e->partition, (long long)e->offset);
}

/* A replay owns every input partition from its first assignment on, or
 * the group has other members and the replay must not go on. */
static void on_replay_assign(pipeline_t *p, rd_kafka_topic_partition_list_t *parts)
{
    const sd_replay_bounds_t *r = p->cfg->replay;
    int all = !p->replay_started && parts->cnt == r->end->cnt;
    for (int i = 0; all && i < parts->cnt; i++)
        all = replay_index(p, parts->elems[i].topic, parts->elems[i].partition) >= 0;
    if (!all) {
        snprintf(p->replay_refused, sizeof p->replay_refused,
                 "consumer group %s has other members (is `sessiond run` still running with "
                 "it?): stop them, or replay with a group of its own",
                 p->cfg->group);
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int k = replay_index(p, parts->elems[i].topic, parts->elems[i].partition);
        parts->elems[i].offset = r->start->elems[k].offset;
        if (r->start->elems[k].offset >= r->end->elems[k].offset)
            replay_mark_done(p, k);
    }
    p->replay_started = 1;
}

/* Where the assigned partitions start: their committed offsets, once no
 * transaction holds them any more.  An exactly-once member that died
 * inside a transaction leaves its offsets pending until the broker aborts
 * the transaction (transaction.timeout.ms later, unless a producer with the
 * same transactional id starts first); meanwhile the coordinator answers
 * UNSTABLE_OFFSET_COMMIT.  librdkafka 2.0.2 gives up after two quick
 * retries and starts such a partition at auto.offset.reset, the earliest
 * offset: all it holds would be read, and every latest change re-published,
 * again.  So the offsets are fetched here, waiting while they are unstable;
 * a partition without a committed offset is left to auto.offset.reset. */
static void start_at_stable_offsets(pipeline_t *p, rd_kafka_t *rk,
                                    rd_kafka_topic_partition_list_t *parts)
{
    int64_t started = sd_monotonic_ms(), logged = started;
    while (!*p->stop) {
        rd_kafka_topic_partition_list_t *asked = rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t err = rd_kafka_committed(rk, asked, 10000);
        int unstable = 0;
        for (int i = 0; !err && i < asked->cnt; i++)
            unstable += asked->elems[i].err == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT;
        if (!err && !unstable)
            for (int i = 0; i < asked->cnt; i++)
                parts->elems[i].offset = asked->elems[i].offset; /* INVALID: none committed */
        rd_kafka_topic_partition_list_destroy(asked);
        if (err) { /* librdkafka fetches them itself, as it would have */
            sd_log(SD_LOG_WARN, "consumer", "cannot fetch the committed offsets", "error=%s",
                   SD_LOG_Q(rd_kafka_err2str(err)));
            return;
        }
        if (!unstable)
            return;
        if (sd_monotonic_ms() - logged >= 5000) {
            logged = sd_monotonic_ms();
            sd_log(SD_LOG_WARN, "consumer",
                   "waiting for a transaction to end: it holds the committed offsets of "
                   "assigned partitions (a member that died inside a transaction?)",
                   "partitions=%d waited_ms=%lld", unstable, (long long)(logged - started));
        }
        sd_sleep_ms(200);
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pipeline_t *p = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    atomic_fetch_add(&p->stats->rebalances, 1);
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        p->ever_assigned = 1;
        if (p->cfg->replay)
            on_replay_assign(p, parts);
        else
            start_at_stable_offsets(p, rk, parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (p->paused) /* still waiting out an outage: these wait too */
            rd_kafka_pause_partitions(rk, parts);
        atomic_fetch_add(&p->stats->assigned_partitions, parts->cnt);
        sd_log(SD_LOG_INFO, "consumer", "partitions assigned", "count=%d protocol=%s", parts->cnt,
               rd_kafka_rebalance_protocol(rk));
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        if (p->cfg->replay && !p->closing && !p->replay_refused[0])
            snprintf(p->replay_refused, sizeof p->replay_refused,
                     "consumer group %s gained a member during the replay: what was applied is "
                     "committed; stop the other member and replay again",
                     p->cfg->group);
        /* Not applied yet: the next owner reads them again.  Nothing of
         * theirs was committed, lost or not. */
        batch_drop(&p->batch, parts);
        for (int i = 0; p->uncommitted && i < parts->cnt; i++)
            rd_kafka_topic_partition_list_del(p->uncommitted, parts->elems[i].topic,
                                              parts->elems[i].partition);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        atomic_fetch_sub(&p->stats->assigned_partitions, parts->cnt);
        sd_log(lost ? SD_LOG_WARN : SD_LOG_INFO, "consumer",
               lost ? "partitions lost" : "partitions revoked", "count=%d", parts->cnt);
    }
    if (error) {
        sd_log(SD_LOG_ERROR, "consumer", "rebalance failed", "error=%s",
               SD_LOG_Q(rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
    }
}

/* ---- waiting out outages ---- */

static void pause_all(pipeline_t *p)
{
    if (p->paused || !p->consumer)
        return;
    rd_kafka_topic_partition_list_t *parts;
    if (rd_kafka_assignment(p->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(p->consumer, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    p->paused = 1;
    atomic_store(&p->stats->paused, 1);
}

static void resume_all(pipeline_t *p)
{
    if (!p->paused)
        return;
    rd_kafka_topic_partition_list_t *parts;
    if (rd_kafka_assignment(p->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_resume_partitions(p->consumer, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    p->paused = 0;
    p->backoff_ms = 0;
    atomic_store(&p->stats->paused, 0);
    sd_log(SD_LOG_INFO, "pipeline", "resumed", NULL);
}

/* Pauses the partitions and waits the next backoff step while serving
 * the group.  A message that still arrives is put back (rewound). */
static void back_off(pipeline_t *p, const char *what, const sd_error_t *err)
{
    pause_all(p);
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : 100;
    if (p->backoff_ms > p->cfg->backoff_max_ms)
        p->backoff_ms = p->cfg->backoff_max_ms;
    int64_t wait = p->backoff_ms / 2 + rand() % (p->backoff_ms / 2 + 1); /* jitter */
    sd_log(SD_LOG_WARN, "pipeline", what, "retry_in_ms=%lld error=%s", (long long)wait,
           SD_LOG_Q(err->message));
    for (int64_t waited = 0; waited < wait && !*p->stop; waited += 100) {
        if (!p->consumer) { /* not in the group yet */
            sd_sleep_ms(100);
            continue;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 100);
        if (m && !m->err) {
            rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(at, rd_kafka_topic_name(m->rkt), m->partition)
                ->offset = m->offset;
            rd_kafka_error_t *e = rd_kafka_seek_partitions(p->consumer, at, 5000);
            if (e)
                rd_kafka_error_destroy(e);
            rd_kafka_topic_partition_list_destroy(at);
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
}

/* ---- the producer ---- */

static sd_err_t make_producer(pipeline_t *p, sd_error_t *err)
{
    int eos = p->cfg->delivery == SD_DELIVERY_EXACTLY_ONCE;
    sd_err_t rc = sd_producer_new(&p->cfg->kafka, eos ? p->cfg->transactional_id : NULL,
                                  &p->producer, err);
    const char *const outputs[] = {p->cfg->output_topic, p->cfg->dlq_topic};
    if (rc == SD_OK && !sd_producer_warm(p->producer, outputs, 2, 2000))
        sd_log(SD_LOG_DEBUG, "producer", "output topics not known yet: the first batch waits",
               NULL);
    if (rc != SD_OK || !eos)
        return rc;
    rd_kafka_error_t *e = rd_kafka_init_transactions(sd_producer_handle(p->producer), 30000);
    if (!e)
        return SD_OK;
    rc = sd_error_set(err, rd_kafka_error_is_fatal(e) ? SD_ERR_FATAL : SD_ERR_TRANSIENT,
                      "producer", "cannot start transactions (transactional.id %s): %s",
                      p->cfg->transactional_id, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return rc;
}

/* make_producer, retried while the brokers cannot start transactions. */
static sd_err_t start_producer(pipeline_t *p, sd_error_t *err)
{
    sd_err_t rc = make_producer(p, err);
    while (rc == SD_ERR_TRANSIENT && !*p->stop) {
        sd_producer_destroy(p->producer);
        p->producer = NULL;
        back_off(p, "cannot start transactions", err);
        rc = make_producer(p, err);
    }
    return rc;
}

/* The broker fenced the producer during a transaction that began at
 * `began` (monotonic ms).  If the transaction outlived
 * transaction.timeout.ms, the coordinator aborted it: a new producer takes
 * over and SD_ERR_TRANSIENT has the caller go on (the transaction's work is
 * done again).  Otherwise another producer took the transactional id. */
static sd_err_t after_fencing(pipeline_t *p, int64_t began, sd_error_t *err)
{
    int64_t took = sd_monotonic_ms() - began;
    int64_t timeout = sd_producer_transaction_timeout_ms(p->producer);
    if (took < timeout)
        return sd_error_set(err, SD_ERR_FATAL, "producer",
                            "another producer took transactional id %s (this one was fenced): "
                            "every sessiond needs a --transactional-id of its own; this one "
                            "stops",
                            p->cfg->transactional_id);
    sd_log(SD_LOG_WARN, "producer",
           "a transaction outlived transaction.timeout.ms and the broker aborted it: a new "
           "producer takes over, and what it held is done again",
           "took_ms=%lld timeout_ms=%lld transactional_id=%s", (long long)took,
           (long long)timeout, p->cfg->transactional_id);
    atomic_fetch_add(&p->stats->transactions_aborted, 1);
    sd_producer_destroy(p->producer);
    p->producer = NULL;
    sd_err_t rc = start_producer(p, err);
    return rc == SD_OK ? SD_ERR_TRANSIENT : rc;
}

/* ---- one batch ---- */

/* Counts an applied batch's events by topic and type and by result, and
 * marks those the store rejected as dead.  Returns how many it rejected. */
static size_t count_results(pipeline_t *p, const sd_store_item_t *items, const size_t *item_msg,
                            size_t n_items, const sd_apply_result_t *result, int *dead,
                            sd_error_t *why)
{
    sd_pipeline_stats_t *s = p->stats;
    size_t rejected = 0;
    for (size_t i = 0, k = 0; i < p->batch.count; i++) {
        const rd_kafka_message_t *m = p->batch.msgs[i];
        int parsed = k < n_items && item_msg[k] == i;
        sd_stats_event(s, rd_kafka_topic_name(m->rkt),
                       parsed ? (int)items[k].intent.event->type : SD_STATS_INVALID);
        if (!parsed)
            continue;
        switch (result->status[k]) {
        case SD_APPLY_REJECTED:
            dead[i] = 1;
            why[i] = result->errors[k];
            rejected++;
            atomic_fetch_add(&s->store_errors[SD_ERR_EVENT], 1);
            break;
        case SD_APPLY_CHANGED:
            atomic_fetch_add(&s->applied, 1);
            break;
        case SD_APPLY_UNCHANGED:
            atomic_fetch_add(&s->unchanged, 1);
            break;
        case SD_APPLY_IGNORED:
            atomic_fetch_add(&s->ignored_by[items[k].intent.ignored], 1);
            break;
        }
        k++;
    }
    return rejected;
}

/* Parses the batch, applies it through the store (waiting out outages)
 * and builds what to produce: *n_changes changes, then dead letters.
 * Returns SD_OK with *out filled, or a fatal error; an empty batch (all
 * revoked, or stopping) gives *n_out = 0.  A replay with emit 0 produces
 * nothing: its invalid events were dead-lettered when first read. */
static sd_err_t apply_batch(pipeline_t *p, sd_outgoing_t **out, size_t *n_out, size_t *n_changes,
                            sd_error_t *err)
{
    int emit = !p->cfg->replay || p->cfg->replay->emit;
    *out = NULL;
    *n_out = 0;
    *n_changes = 0;
    for (;;) {
        batch_t *b = &p->batch;
        size_t n = b->count;
        if (n == 0)
            return SD_OK;
        sd_event_t *events = calloc(n, sizeof *events);
        sd_store_item_t *items = calloc(n, sizeof *items);
        size_t *item_msg = calloc(n, sizeof *item_msg);
        sd_outgoing_t *msgs = NULL;
        size_t n_items = 0, n_msgs = 0;
        sd_err_t rc = SD_OK;
        if (!events || !items || !item_msg)
            rc = sd_error_set(err, SD_ERR_FATAL, "", "out of memory for a batch of %zu", n);

        /* Invalid events go to the dead-letter topic; the rest to the store. */
        size_t n_dead = 0;
        sd_error_t *why = calloc(n, sizeof *why);
        int *dead = calloc(n, sizeof *dead);
        if (rc == SD_OK && (!why || !dead))
            rc = sd_error_set(err, SD_ERR_FATAL, "", "out of memory for a batch of %zu", n);
        for (size_t i = 0; rc == SD_OK && i < n; i++) {
            const rd_kafka_message_t *m = b->msgs[i];
            if (sd_event_parse(m->payload, m->len, &events[n_items], &why[i]) != SD_OK) {
                dead[i] = 1;
                n_dead++;
                continue;
            }
            items[n_items] = (sd_store_item_t){sd_rules_intent(&events[n_items]),
                                               rd_kafka_topic_name(m->rkt), m->partition,
                                               m->offset};
            item_msg[n_items++] = i;
        }

        sd_apply_result_t result = {0};
        int applied = 0;
        if (rc == SD_OK) {
            int64_t started = sd_monotonic_us();
            rc = sd_store_apply(p->store, items, n_items, now_ms(p), &result, err);
            applied = rc == SD_OK;
            if (applied)
                sd_stats_batch_applied(p->stats, sd_monotonic_us() - started);
            else
                atomic_fetch_add(&p->stats->store_errors[rc], 1);
        }
        if (applied) {
            n_dead += count_results(p, items, item_msg, n_items, &result, dead, why);
            msgs = calloc(result.changes.count + n_dead + 1, sizeof *msgs);
            if (!msgs)
                rc = sd_error_set(err, SD_ERR_FATAL, "", "out of memory for a batch of %zu", n);
            for (size_t c = 0; rc == SD_OK && emit && c < result.changes.count; c++)
                rc = sd_outgoing_change(&msgs[n_msgs++], p->cfg->output_topic,
                                        &result.changes.items[c], err);
            *n_changes = n_msgs;
            for (size_t i = 0; rc == SD_OK && i < n; i++)
                if (dead[i]) {
                    if (emit)
                        rc = sd_outgoing_dead_letter(&msgs[n_msgs++], p->cfg->dlq_topic,
                                                     b->msgs[i], &why[i], err);
                    sd_stats_dead_letter(p->stats, why[i].code == SD_ERR_EVENT ? "store"
                                                   : why[i].field[0]       ? why[i].field
                                                                           : "payload");
                    char reason[SD_ERROR_TEXT_BUFSZ];
                    sd_log(SD_LOG_WARN, "pipeline",
                           emit ? "dead-lettered" : "invalid event skipped (not re-sent)",
                           "topic=%s partition=%d offset=%lld error=%s",
                           rd_kafka_topic_name(b->msgs[i]->rkt), (int)b->msgs[i]->partition,
                           (long long)b->msgs[i]->offset, SD_LOG_Q(sd_error_text(&why[i], reason)));
                }
            sd_apply_result_free(&result);
        }
        for (size_t k = 0; k < n_items; k++)
            sd_event_clear(&events[k]);
        free(events);
        free(items);
        free(item_msg);
        free(why);
        free(dead);

        if (applied && rc == SD_OK) {
            atomic_store(&p->stats->store_ok, 1);
            *out = msgs;
            *n_out = n_msgs;
            return SD_OK;
        }
        sd_outgoing_free(msgs, n_msgs);
        if (applied || rc != SD_ERR_TRANSIENT)
            return rc == SD_ERR_NOMEM ? SD_ERR_FATAL : rc;
        /* Transient: wait, keep the group, then try what is still ours. */
        atomic_store(&p->stats->store_ok, 0);
        back_off(p, "store unavailable", err);
        if (*p->stop) {
            batch_clear(&p->batch); /* aborted: nothing applied, nothing committed */
            return SD_OK;
        }
    }
}

static void failpoint(const pipeline_t *p, const char *where, size_t n_msgs)
{
    if (p->fail_batch != p->batch_no || strcmp(p->fail_where, where) != 0)
        return;
    /* "after produce" means on the brokers: a transaction's messages are
     * otherwise sent only by its commit. */
    if (strcmp(where, "after-produce") == 0)
        rd_kafka_flush(sd_producer_handle(p->producer), 10000);
    sd_log(SD_LOG_WARN, "pipeline",
           p->fail_signal == SIGSTOP ? "failpoint: stopping the process"
                                     : "failpoint: killing the process",
           "at=%s batch=%ld messages=%zu", where, p->batch_no, n_msgs);
    raise(p->fail_signal);
}

/* At-least-once: deliver everything, then commit. */
static sd_err_t publish_and_commit(pipeline_t *p, const sd_outgoing_t *msgs, size_t n,
                                   sd_error_t *err)
{
    sd_err_t rc;
    while ((rc = sd_outgoing_send(p->producer, msgs, n, err)) != SD_OK ||
           (rc = sd_producer_flush(p->producer, 30000, err)) != SD_OK) {
        if (rc == SD_ERR_FATAL)
            return rc;
        atomic_store(&p->stats->kafka_ok, 0);
        back_off(p, "cannot deliver changes", err);
        if (*p->stop)
            return SD_OK; /* not committed: redelivered later, re-published identically */
    }
    atomic_store(&p->stats->kafka_ok, 1);
    if (p->batch.count == 0)
        return SD_OK;
    failpoint(p, "after-produce", n);
    /* Offsets an earlier commit failed on (a rebalance in progress, say)
     * go along, for the partitions still ours. */
    rd_kafka_topic_partition_list_t *offsets = batch_offsets(&p->batch, 1);
    for (int i = 0; p->uncommitted && i < p->uncommitted->cnt; i++) {
        const rd_kafka_topic_partition_t *u = &p->uncommitted->elems[i];
        if (!rd_kafka_topic_partition_list_find(offsets, u->topic, u->partition))
            rd_kafka_topic_partition_list_add(offsets, u->topic, u->partition)->offset = u->offset;
    }
    rd_kafka_resp_err_t cerr = rd_kafka_commit(p->consumer, offsets, 0);
    if (p->uncommitted)
        rd_kafka_topic_partition_list_destroy(p->uncommitted);
    p->uncommitted = NULL;
    if (cerr) {
        /* The changes are out.  The offsets are tried again with the next
         * batch; if the partitions move first, their events come again to
         * the next owner and are re-published as exact copies. */
        sd_log(SD_LOG_DEBUG, "consumer", "offset commit failed, retried with the next batch",
               "error=%s", SD_LOG_Q(rd_kafka_err2str(cerr)));
        p->uncommitted = offsets;
        p->uncommitted_tried = sd_monotonic_ms();
        return SD_OK;
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    return SD_OK;
}

static void rewind_batch(pipeline_t *p)
{
    rd_kafka_topic_partition_list_t *start = batch_offsets(&p->batch, 0);
    for (int i = 0; p->cfg->replay && i < start->cnt; i++) { /* not caught up after all */
        int k = replay_index(p, start->elems[i].topic, start->elems[i].partition);
        if (k >= 0)
            p->replay_done[k] = 0;
    }
    if (p->cfg->replay)
        rd_kafka_resume_partitions(p->consumer, start);
    rd_kafka_error_t *e = rd_kafka_seek_partitions(p->consumer, start, 10000);
    if (e) {
        sd_log(SD_LOG_ERROR, "consumer", "cannot rewind the batch", "error=%s",
               SD_LOG_Q(rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(start);
    batch_clear(&p->batch);
}

/* Exactly-once: the changes and the offsets in one transaction. */
static sd_err_t transact(pipeline_t *p, const sd_outgoing_t *msgs, size_t n, sd_error_t *err)
{
    rd_kafka_t *rk = sd_producer_handle(p->producer);
    int64_t began = sd_monotonic_ms();
    rd_kafka_error_t *e = rd_kafka_begin_transaction(rk);
    sd_err_t rc = SD_OK;
    if (!e && (rc = sd_outgoing_send(p->producer, msgs, n, err)) == SD_OK && p->batch.count) {
        rd_kafka_topic_partition_list_t *offsets = batch_offsets(&p->batch, 1);
        rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(p->consumer);
        e = rd_kafka_send_offsets_to_transaction(rk, offsets, cgmd, -1);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offsets);
        if (!e)
            failpoint(p, "after-produce", n);
    }
    if (!e && rc == SD_OK)
        e = rd_kafka_commit_transaction(rk, -1);
    if (!e && rc == SD_OK) {
        atomic_store(&p->stats->kafka_ok, 1);
        atomic_fetch_add(&p->stats->transactions_committed, 1);
        return SD_OK;
    }
    if (sd_producer_fenced(p->producer)) {
        if (e)
            rd_kafka_error_destroy(e);
        rc = after_fencing(p, began, err);
        if (rc != SD_ERR_TRANSIENT)
            return rc;
        rewind_batch(p);
        return SD_OK;
    }
    if (e && rd_kafka_error_is_fatal(e)) {
        rc = sd_error_set(err, SD_ERR_FATAL, "producer", "transactions cannot go on: %s",
                          rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return rc;
    }
    /* Abortable (or a send that failed): abort, rewind, read the batch again. */
    char what[512];
    snprintf(what, sizeof what, "%s", e ? rd_kafka_error_string(e) : err->message);
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_error_t *abort_error = rd_kafka_abort_transaction(rk, -1);
    if (abort_error) {
        rc = sd_error_set(err, SD_ERR_FATAL, "producer", "cannot abort a transaction: %s",
                          rd_kafka_error_string(abort_error));
        rd_kafka_error_destroy(abort_error);
        return rc;
    }
    atomic_fetch_add(&p->stats->transactions_aborted, 1);
    atomic_store(&p->stats->kafka_ok, 0);
    sd_error_set(err, SD_ERR_TRANSIENT, "producer", "transaction aborted: %s", what);
    rewind_batch(p);
    back_off(p, "transaction aborted", err);
    return SD_OK;
}

/* ---- the loop ---- */

/* Offsets whose commit failed are retried with the next batch, or every
 * second while there is none, so the group's position keeps up. */
static void retry_uncommitted(pipeline_t *p)
{
    if (!p->uncommitted || sd_monotonic_ms() - p->uncommitted_tried < 1000)
        return;
    p->uncommitted_tried = sd_monotonic_ms();
    if (rd_kafka_commit(p->consumer, p->uncommitted, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(p->uncommitted);
        p->uncommitted = NULL;
    }
}

/* A replay takes a message only below its partition's end; at the end the
 * partition is paused, so what arrived since the replay began stays for
 * the live group.  Returns whether to take it. */
static int replay_take(pipeline_t *p, const rd_kafka_message_t *m)
{
    int i = replay_index(p, rd_kafka_topic_name(m->rkt), m->partition);
    if (i < 0)
        return 0;
    int64_t end = p->cfg->replay->end->elems[i].offset;
    int take = m->offset < end && !m->err;
    if (m->offset + take >= end) {
        replay_mark_done(p, i);
        rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, rd_kafka_topic_name(m->rkt), m->partition);
        rd_kafka_pause_partitions(p->consumer, one);
        rd_kafka_topic_partition_list_destroy(one);
    }
    return take;
}

static void count_changes(sd_pipeline_stats_t *s, const sd_outgoing_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add(&s->changes_by_type[msgs[i].change_type], 1);
}

static int sweep_due(const pipeline_t *p)
{
    return p->cfg->sweep_interval_ms > 0 && !p->cfg->replay && sd_monotonic_ms() >= p->next_sweep;
}

/* A sweep that fails is logged and tried again after the interval: its
 * expiries stay pending in the store.  Only a producer that cannot go on
 * stops the pipeline, as it would stop the next batch. */
static sd_err_t sweep(pipeline_t *p, sd_error_t *err)
{
    size_t published;
    sd_error_t why = {0};
    int64_t began = sd_monotonic_ms();
    sd_err_t rc = sd_sweep_step(p->store, p->producer,
                                p->cfg->delivery == SD_DELIVERY_EXACTLY_ONCE,
                                p->cfg->output_topic, now_ms(p), SD_SWEEP_LIMIT, &published, &why);
    atomic_fetch_add(&p->stats->expired, (long)published);
    atomic_fetch_add(&p->stats->changes_by_type[SD_CHANGE_EXPIRED], (long)published);
    if (rc == SD_ERR_FATAL && sd_producer_fenced(p->producer) &&
        (rc = after_fencing(p, began, &why)) == SD_ERR_FATAL) {
        *err = why;
        return rc;
    }
    int producer = rc != SD_OK && strcmp(why.field, "producer") == 0;
    if (rc == SD_ERR_FATAL && producer) {
        *err = why;
        return rc;
    }
    if (rc != SD_OK) {
        atomic_fetch_add(&p->stats->sweep_errors, 1);
        if (!producer)
            atomic_fetch_add(&p->stats->store_errors[rc], 1);
        sd_log(SD_LOG_WARN, "sweeper", "expiry sweep failed, tried again later",
               "retry_in_ms=%lld error=%s", (long long)p->cfg->sweep_interval_ms,
               SD_LOG_Q(why.message));
    } else if (published) {
        sd_log(SD_LOG_INFO, "sweeper", "sessions expired", "count=%zu", published);
    }
    /* A full step means more are waiting: go on after the next batch. */
    p->next_sweep = sd_monotonic_ms() +
                    (rc == SD_OK && published == SD_SWEEP_LIMIT ? 0 : p->cfg->sweep_interval_ms);
    return SD_OK;
}

/* Behind its input, the consumer drains librdkafka's queue faster than
 * librdkafka 2.0.2 refills it (fetch_wake.h): before each batch of a
 * backlog, and whenever its queue runs dry, the leaders are woken.  A
 * queue still empty after a wake means the backlog is gone: the wakes stop
 * until a batch fills again. */
static void wake_fetchers(pipeline_t *p)
{
    sd_error_t why = {0};
    if (sd_fetch_wake(p->consumer, SD_FETCH_WAKE_MS, NULL, &why) != SD_OK)
        sd_log(SD_LOG_DEBUG, "consumer", "fetchers not woken", "error=%s", SD_LOG_Q(why.message));
}

static int batch_full(const pipeline_t *p)
{
    return p->batch.count >= p->cfg->batch_max ||
           (p->cfg->batch_bytes && p->batch.bytes >= p->cfg->batch_bytes);
}

static sd_err_t collect(pipeline_t *p, sd_error_t *err)
{
    int64_t started = 0;
    int woke = p->behind; /* and nothing came since */
    if (woke)
        wake_fetchers(p);
    while (!batch_full(p) && !*p->stop) {
        if (p->batch.count == 0 && sweep_due(p))
            break;
        if (p->replay_refused[0])
            return sd_error_set(err, SD_ERR_FATAL, "group", "%s", p->replay_refused);
        if (p->cfg->replay && !p->replay_started && sd_monotonic_ms() > p->replay_deadline)
            return sd_error_set(err, SD_ERR_FATAL, "group",
                                "consumer group %s did not hand every input partition to the "
                                "replay within %d s: does it have other members?",
                                p->cfg->group, SD_REPLAY_JOIN_S);
        if (p->cfg->replay && replay_finished(p)) {
            if (p->batch.count || !p->uncommitted)
                break;
            /* caught up, but the last offsets are not committed yet */
            rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 100);
            if (m)
                rd_kafka_message_destroy(m); /* past the end: not ours */
            retry_uncommitted(p);
            continue;
        }
        int64_t left = 100;
        if (p->batch.count) {
            left = p->cfg->batch_ms - (sd_monotonic_ms() - started);
            if (left <= 0)
                break;
        }
        /* Behind, an empty queue is librdkafka not fetching yet. */
        int64_t wait = p->behind && left > SD_FETCH_IDLE_MS ? SD_FETCH_IDLE_MS : left;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, (int)wait);
        if (!m) {
            if (p->behind && woke) {
                p->behind = 0; /* woken and still empty: caught up, not stalled */
            } else if (p->behind) {
                wake_fetchers(p);
                woke = 1;
            }
            if (p->batch.count == 0)
                retry_uncommitted(p);
            continue;
        }
        woke = 0;
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[512];
                rd_kafka_fatal_error(p->consumer, why, sizeof why);
                rd_kafka_message_destroy(m);
                return sd_error_set(err, SD_ERR_FATAL, "consumer", "consumer failed: %s", why);
            }
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                sd_log(SD_LOG_WARN, "consumer", "consumer error", "error=%s",
                       SD_LOG_Q(rd_kafka_message_errstr(m)));
            else if (p->cfg->replay && m->rkt)
                replay_take(p, m); /* the end may be a transaction marker */
            rd_kafka_message_destroy(m);
            continue;
        }
        if (p->cfg->replay && !replay_take(p, m)) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (p->batch.count == 0)
            started = sd_monotonic_ms();
        atomic_fetch_add(&p->stats->events, 1);
        if (batch_add(&p->batch, m)) {
            rd_kafka_message_destroy(m);
            return sd_error_set(err, SD_ERR_FATAL, "", "out of memory collecting a batch");
        }
    }
    p->behind = batch_full(p);
    return SD_OK;
}

/* librdkafka's statistics, delivered on this thread by the poll. */
static int on_statistics(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    sd_stats_lag_from_json(((pipeline_t *)opaque)->stats, json, len);
    return 0; /* librdkafka frees json */
}

static sd_err_t make_consumer(pipeline_t *p, sd_error_t *err)
{
    const sd_pipeline_config_t *cfg = p->cfg;
    const char *role[] = {"group.id", cfg->group,
                          "enable.auto.commit", "false",
                          "enable.auto.offset.store", "false",
                          "auto.offset.reset", "earliest",
                          "partition.assignment.strategy", "cooperative-sticky",
                          "isolation.level", "read_committed",
                          "enable.partition.eof", cfg->replay ? "true" : "false",
                          "statistics.interval.ms", "5000", /* consumer lag metrics */
                          /* librdkafka would prefetch up to 64 MiB and fetch 50 MB
                           * at once.  4 MiB is a batch of a backlog ahead: the
                           * fetchers are woken once the queue is drained
                           * (fetch_wake.h), so it need not hold a second's worth
                           * (measured: README Benchmark). */
                          "queued.max.messages.kbytes", "4096",
                          "fetch.max.bytes", "1048576",
                          "max.partition.fetch.bytes", "262144",
                          NULL};
    rd_kafka_conf_t *conf;
    sd_err_t rc = sd_kafka_conf(&cfg->kafka, SD_KAFKA_CONSUMER, role, &conf, err);
    if (rc != SD_OK)
        return rc;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_stats_cb(conf, on_statistics);
    rd_kafka_conf_set_opaque(conf, p);
    char why[512];
    p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!p->consumer) {
        rd_kafka_conf_destroy(conf);
        return sd_error_set(err, SD_ERR_FATAL, "consumer", "cannot create the consumer: %s", why);
    }
    rd_kafka_poll_set_consumer(p->consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)cfg->n_inputs);
    for (size_t i = 0; i < cfg->n_inputs; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->inputs[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(p->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (serr)
        return sd_error_set(err, SD_ERR_FATAL, "consumer", "cannot subscribe: %s",
                            rd_kafka_err2str(serr));
    return SD_OK;
}

sd_err_t sd_pipeline_run(const sd_pipeline_config_t *cfg, sd_store_t *store,
                         volatile sig_atomic_t *stop, sd_pipeline_stats_t *stats,
                         sd_error_t *err)
{
    pipeline_t p = {.cfg = cfg, .store = store, .stop = stop, .stats = stats};
    const char *fail = getenv("SESSIOND_FAILPOINT");
    if (fail && *fail) {
        char action[8] = "kill";
        int fields = sscanf(fail, "%31[a-z-]:%ld:%7s", p.fail_where, &p.fail_batch, action);
        p.fail_signal = strcmp(action, "stop") == 0 ? SIGSTOP : SIGKILL;
        int armed = fields >= 2 && (!strcmp(action, "kill") || !strcmp(action, "stop"));
        if (!armed)
            p.fail_batch = -1;
        sd_log(SD_LOG_WARN, "pipeline",
               armed ? "failpoint armed (testing only)"
                     : "SESSIOND_FAILPOINT ignored: not after-store:N or after-produce:N[:stop]",
               "failpoint=%s", fail);
    }
    if (cfg->replay && !(p.replay_done = calloc((size_t)cfg->replay->end->cnt + 1, sizeof(int))))
        return sd_error_set(err, SD_ERR_FATAL, "", "out of memory");
    p.replay_deadline = sd_monotonic_ms() + SD_REPLAY_JOIN_S * 1000;
    atomic_store(&stats->store_ok, 1);
    atomic_store(&stats->kafka_ok, 1);
    sd_err_t rc = start_producer(&p, err); /* init_transactions may wait for a broker */
    if (rc == SD_OK)
        rc = make_consumer(&p, err);
    if (rc == SD_OK)
        sd_log(SD_LOG_INFO, "pipeline", "started", "group=%s input=%s output=%s dlq=%s delivery=%s",
               cfg->group, cfg->inputs[0], cfg->output_topic, cfg->dlq_topic,
               cfg->delivery == SD_DELIVERY_EXACTLY_ONCE ? "exactly-once" : "at-least-once");

    while (rc == SD_OK && !*stop) {
        if (cfg->replay && replay_finished(&p) && !p.uncommitted) {
            atomic_store(&stats->caught_up, 1);
            break;
        }
        resume_all(&p); /* an outage waited out, or an aborted batch rewound */
        if ((rc = collect(&p, err)) != SD_OK)
            break;
        sd_outgoing_t *msgs;
        size_t n_msgs, n_changes;
        int64_t collected = sd_monotonic_us();
        if ((rc = apply_batch(&p, &msgs, &n_msgs, &n_changes, err)) != SD_OK)
            break;
        if (p.batch.count) {
            p.batch_no++;
            failpoint(&p, "after-store", n_msgs);
            long aborted = atomic_load(&stats->transactions_aborted);
            rc = cfg->delivery == SD_DELIVERY_EXACTLY_ONCE ? transact(&p, msgs, n_msgs, err)
                                                           : publish_and_commit(&p, msgs, n_msgs, err);
            if (atomic_load(&stats->transactions_aborted) == aborted)
                count_changes(stats, msgs, n_changes);
            atomic_fetch_add(&stats->batches, 1);
            if (cfg->on_batch)
                cfg->on_batch(cfg->batch_arg, p.batch.msgs, p.batch.count,
                              sd_monotonic_us() - collected);
        }
        sd_outgoing_free(msgs, n_msgs);
        batch_clear(&p.batch);
        if (rc == SD_OK && !*stop && sweep_due(&p))
            rc = sweep(&p, err);
    }

    batch_clear(&p.batch); /* its messages belong to the consumer */
    if (p.uncommitted && p.consumer && rc == SD_OK &&
        rd_kafka_commit(p.consumer, p.uncommitted, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        sd_log(SD_LOG_INFO, "consumer", "last offsets not committed: they are read again",
               NULL);
    if (p.uncommitted)
        rd_kafka_topic_partition_list_destroy(p.uncommitted);
    p.uncommitted = NULL; /* closing runs the rebalance callback */
    p.closing = 1;
    if (p.consumer) {
        rd_kafka_consumer_close(p.consumer); /* leaves the group */
        /* librdkafka 2.0.2 aborts destroying a cooperative-sticky consumer
         * that never completed a join (its issue 4312, fixed in 2.3.0):
         * such a consumer, which holds nothing, is left to process exit. */
        if (p.ever_assigned)
            rd_kafka_destroy(p.consumer);
        else
            sd_log(SD_LOG_DEBUG, "consumer", "consumer left to exit: it never joined", NULL);
    }
    sd_producer_destroy(p.producer);
    free(p.batch.msgs);
    free(p.replay_done);
    if (rc == SD_OK)
        sd_log(SD_LOG_INFO, "pipeline", "stopped", NULL);
    else
        sd_log(SD_LOG_ERROR, "pipeline", "stopped on a fatal error", "error=%s",
               SD_LOG_Q(err->message));
    return rc;
}
