/* One batch through the store: its messages parsed, the invalid ones set
 * apart for the dead-letter topic, the rest applied in one sd_store_apply()
 * (waiting out a store that is away), and what to produce built. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <assert.h>
#include <stdlib.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"
#include "sessiond/rules.h"

/* The working state of one batch while it is applied: per message, why it
 * is dead (if it is); per parsed event, its store item and its message. */
typedef struct applying {
    size_t n;              /* messages in the batch */
    sd_event_t *events;    /* n_items parsed */
    sd_store_item_t *items;
    size_t *item_msg;      /* items[k] came from message item_msg[k] */
    size_t n_items;
    sd_error_t *why;       /* per message */
    int *dead;             /* per message: goes to the dead-letter topic */
    size_t n_dead;
} applying_t;

static sd_err_t applying_init(applying_t *a, size_t n, sd_error_t *err)
{
    *a = (applying_t){.n = n};
    a->events = calloc(n, sizeof *a->events);
    a->items = calloc(n, sizeof *a->items);
    a->item_msg = calloc(n, sizeof *a->item_msg);
    a->why = calloc(n, sizeof *a->why);
    a->dead = calloc(n, sizeof *a->dead);
    if (!a->events || !a->items || !a->item_msg || !a->why || !a->dead)
        return sd_error_set(err, SD_ERR_FATAL, "", "out of memory for a batch of %zu", n);
    return SD_OK;
}

static void applying_free(applying_t *a)
{
    for (size_t k = 0; k < a->n_items; k++)
        sd_event_clear(&a->events[k]);
    free(a->events);
    free(a->items);
    free(a->item_msg);
    free(a->why);
    free(a->dead);
}

/* Parses every message: the valid ones become store items, the invalid
 * ones are marked dead with why. */
static void parse_batch(const batch_t *b, applying_t *a)
{
    assert(b->count == a->n && a->n_items == 0 && a->n_dead == 0);
    for (size_t i = 0; i < a->n; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        sd_event_t *e = &a->events[a->n_items];
        if (sd_event_parse(m->payload, m->len, e, &a->why[i]) != SD_OK) {
            a->dead[i] = 1;
            a->n_dead++;
            continue;
        }
        a->items[a->n_items] = (sd_store_item_t){sd_rules_intent(e), rd_kafka_topic_name(m->rkt),
                                                 m->partition, m->offset};
        a->item_msg[a->n_items++] = i;
    }
}

/* Counts an applied batch's events by topic and type and by result, and
 * marks those the store rejected as dead. */
static void count_results(pipeline_t *p, applying_t *a, const sd_apply_result_t *result)
{
    sd_pipeline_stats_t *s = p->stats;
    for (size_t i = 0, k = 0; i < a->n; i++) {
        const rd_kafka_message_t *m = p->batch.msgs[i];
        int parsed = k < a->n_items && a->item_msg[k] == i;
        sd_stats_event(s, rd_kafka_topic_name(m->rkt),
                       parsed ? (int)a->items[k].intent.event->type : SD_STATS_INVALID);
        if (!parsed)
            continue;
        switch (result->status[k]) {
        case SD_APPLY_REJECTED:
            a->dead[i] = 1;
            a->why[i] = result->errors[k];
            a->n_dead++;
            atomic_fetch_add(&s->store_errors[SD_ERR_EVENT], 1);
            break;
        case SD_APPLY_CHANGED:
            atomic_fetch_add(&s->applied, 1);
            break;
        case SD_APPLY_UNCHANGED:
            atomic_fetch_add(&s->unchanged, 1);
            break;
        case SD_APPLY_IGNORED:
            atomic_fetch_add(&s->ignored_by[a->items[k].intent.ignored], 1);
            break;
        }
        k++;
    }
}

/* Logs and counts one dead message and, when p->emit, builds its dead
 * letter. */
static sd_err_t dead_letter(pipeline_t *p, const rd_kafka_message_t *m, const sd_error_t *why,
                            sd_outgoing_t *out, sd_error_t *err)
{
    sd_err_t rc = p->emit ? sd_outgoing_dead_letter(out, p->cfg->dlq_topic, m, why, err) : SD_OK;
    sd_stats_dead_letter(p->stats, why->code == SD_ERR_EVENT ? "store"
                                   : why->field[0]       ? why->field
                                                         : "payload");
    char reason[SD_ERROR_TEXT_BUFSZ];
    sd_log(SD_LOG_WARN, "pipeline",
           p->emit ? "dead-lettered" : "invalid event skipped (not re-sent)",
           "topic=%s partition=%d offset=%lld error=%s", rd_kafka_topic_name(m->rkt),
           (int)m->partition, (long long)m->offset, SD_LOG_Q(sd_error_text(why, reason)));
    return rc;
}

/* What an applied batch produces: its changes, then its dead letters (none
 * of either without p->emit).  Returns SD_OK with *out and *n_out set (the
 * caller frees them with sd_outgoing_free), or a fatal error. */
static sd_err_t outgoing_of(pipeline_t *p, const applying_t *a, const sd_apply_result_t *result,
                            sd_outgoing_t **out, size_t *n_out, size_t *n_changes,
                            sd_error_t *err)
{
    sd_outgoing_t *msgs = calloc(result->changes.count + a->n_dead + 1, sizeof *msgs);
    if (!msgs)
        return sd_error_set(err, SD_ERR_FATAL, "", "out of memory for a batch of %zu", a->n);
    size_t n_msgs = 0;
    sd_err_t rc = SD_OK;
    for (size_t c = 0; rc == SD_OK && p->emit && c < result->changes.count; c++)
        rc = sd_outgoing_change(&msgs[n_msgs++], p->cfg->output_topic, &result->changes.items[c],
                                &result->changes.json[c], err);
    *n_changes = n_msgs;
    for (size_t i = 0; rc == SD_OK && i < a->n; i++) {
        if (!a->dead[i])
            continue;
        rc = dead_letter(p, p->batch.msgs[i], &a->why[i], &msgs[n_msgs], err);
        n_msgs += p->emit != 0;
    }
    *out = msgs;
    *n_out = n_msgs;
    return rc;
}

/* One attempt at the batch: parse it, apply it in one sd_store_apply() and
 * build what it produces.  *applied says whether the store took the batch:
 * an error after that is one of building the messages, never the store's.
 * On error *out may hold messages built so far (the caller frees them). */
static sd_err_t apply_once(pipeline_t *p, sd_outgoing_t **out, size_t *n_out, size_t *n_changes,
                           int *applied, sd_error_t *err)
{
    applying_t a;
    sd_apply_result_t result = {0};
    *applied = 0;
    sd_err_t rc = applying_init(&a, p->batch.count, err);
    if (rc != SD_OK)
        goto done;
    parse_batch(&p->batch, &a);
    int64_t started = sd_monotonic_us();
    if ((rc = sd_store_apply(p->store, a.items, a.n_items, pl_now_ms(p), &result, err)) != SD_OK) {
        atomic_fetch_add(&p->stats->store_errors[rc], 1);
        goto done;
    }
    *applied = 1;
    sd_stats_batch_applied(p->stats, sd_monotonic_us() - started);
    count_results(p, &a, &result);
    rc = outgoing_of(p, &a, &result, out, n_out, n_changes, err);
    sd_apply_result_free(&result);
done:
    applying_free(&a);
    return rc;
}

/* Parses the batch, applies it through the store (waiting out outages)
 * and builds what to produce: *n_changes changes, then dead letters.
 * Returns SD_OK with *out filled, or a fatal error; an empty batch (all
 * revoked, or stopping) gives *n_out = 0.  Without p->emit (a replay that
 * only rebuilds the store) nothing is produced: its invalid events were
 * dead-lettered when first read. */
sd_err_t pl_apply_batch(pipeline_t *p, sd_outgoing_t **out, size_t *n_out, size_t *n_changes,
                        sd_error_t *err)
{
    *out = NULL;
    *n_out = 0;
    *n_changes = 0;
    while (p->batch.count) {
        int applied;
        sd_err_t rc = apply_once(p, out, n_out, n_changes, &applied, err);
        if (rc == SD_OK) {
            atomic_store(&p->stats->store_ok, 1);
            return SD_OK;
        }
        sd_outgoing_free(*out, *n_out);
        *out = NULL;
        *n_out = *n_changes = 0;
        if (applied || rc != SD_ERR_TRANSIENT)
            return rc == SD_ERR_NOMEM ? SD_ERR_FATAL : rc;
        /* Transient: wait, keep the group, then try what is still ours. */
        atomic_store(&p->stats->store_ok, 0);
        pl_back_off(p, "store unavailable", err);
        if (*p->stop || pl_rejoin_due(p))
            pl_batch_clear(&p->batch); /* aborted: nothing applied, nothing committed */
    }
    return SD_OK;
}
