/* One batch through the store: its messages parsed, the invalid ones set
 * apart for the dead-letter topic, the rest applied in one sd_store_apply()
 * (waiting out a store that is away), and what to produce built. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <stdlib.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"
#include "sessiond/rules.h"

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
sd_err_t pl_apply_batch(pipeline_t *p, sd_outgoing_t **out, size_t *n_out, size_t *n_changes,
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
            rc = sd_store_apply(p->store, items, n_items, pl_now_ms(p), &result, err);
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
                                        &result.changes.items[c], &result.changes.json[c], err);
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
        pl_back_off(p, "store unavailable", err);
        if (*p->stop || pl_rejoin_due(p)) {
            pl_batch_clear(&p->batch); /* aborted: nothing applied, nothing committed */
            return SD_OK;
        }
    }
}
