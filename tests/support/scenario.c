#include "scenario.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

void fx_scenario_begin(fx_scenario_t *s, fx_scenario_spec_t spec)
{
    memset(s, 0, sizeof *s);
    s->seed = pfx_seed(spec.seed);
    s->order = spec.order;
    snprintf(s->ctx, sizeof s->ctx, "%s, seed %llu", spec.what, (unsigned long long)s->seed);
    int partitions = spec.partitions ? spec.partitions : 4;
    s->kafka = spec.private_broker ? fx_kafka_start_private(partitions)
                                   : fx_kafka_start(partitions);
    pfx_generate(s->seed, spec.tasks, &s->pub);
    if (!spec.unsent)
        pfx_send(s->kafka, &s->pub, 0, s->pub.workload.count);
    if (spec.store)
        s->store = fx_store_open(spec.store, PFX_TTL);
}

static void expect_dead_letters(const fx_scenario_t *s, int exactly_once)
{
    const published_t *pub = &s->pub;
    for (size_t i = 0; i < pub->lines; i++) {
        const sd_workload_line_t *line = &pub->workload.lines[i];
        int found = 0;
        for (size_t k = 0; k < s->dlq.count && !found; k++)
            found = strcmp(s->dlq.values[k], line->json) == 0;
        ck_assert_msg(found == !line->valid, "%s: %s event %s the dead-letter topic: %s", s->ctx,
                      line->valid ? "a valid" : "an invalid", found ? "is on" : "is not on",
                      line->json);
    }
    if (exactly_once)
        ck_assert_msg(s->dlq.count == pub->invalid,
                      "%s: exactly-once: %zu dead letters for %zu invalid messages", s->ctx,
                      s->dlq.count, pub->invalid);
}

static void forget_seen(fx_scenario_t *s)
{
    sd_change_list_free(&s->changes);
    pfx_seen_free(&s->out);
    pfx_seen_free(&s->dlq);
}

size_t fx_scenario_expect(fx_scenario_t *s, int64_t now, int exactly_once)
{
    /* The mock cluster does not isolate transactions (SPEC §5): there an
     * aborted one's messages are seen, as at-least-once would repeat them. */
    int isolated = exactly_once && s->kafka->real;
    fx_expect_model(s->store, &s->pub.valid, now, PFX_TTL, s->ctx);
    forget_seen(s);
    pfx_read_topic(s->kafka, s->kafka->output, &s->out);
    pfx_read_topic(s->kafka, s->kafka->dlq, &s->dlq);
    pfx_parse_changes(&s->out, &s->changes);
    fx_order_t order = isolated && s->order == FX_LATE_AFTER_CUTS ? FX_ACROSS_PARTITIONS : s->order;
    fx_expect_fold(&s->changes, &s->pub.valid, now, PFX_TTL, order, s->ctx);
    size_t repeated = pfx_expect_repeats(&s->out, isolated, s->ctx);
    expect_dead_letters(s, isolated);
    return repeated;
}

void fx_scenario_end(fx_scenario_t *s)
{
    forget_seen(s);
    if (s->store)
        sd_store_close(s->store);
    pfx_published_free(&s->pub);
    fx_kafka_stop(s->kafka);
    memset(s, 0, sizeof *s);
}
