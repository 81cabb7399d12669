/* `sessiond replay` as an operator runs it, against a mock cluster hosted
 * here: rebuilding a store from the input topic, re-publishing changes for
 * downstream consumers, moving a stopped group (and refusing a live one),
 * and the same workload converging whatever the partitions and batches.
 *
 *   replay_test sqlite | mongodb      (SESSIOND_TEST_SEED=N replays) */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfx.h"

static void expect_in(const char *log, const char *text)
{
    ck_assert_msg(strstr(log, text), "expected \"%s\" in:\n%s", text, log);
}

/* What `all` holds beyond `earlier` (a topic read twice: the reads
 * interleave partitions, so this is a multiset difference).  The strings
 * stay owned by `all`. */
static void without(const seen_t *all, const seen_t *earlier, seen_t *out)
{
    char *used = calloc(all->count + 1, 1);
    out->values = calloc(all->count + 1, sizeof *out->values);
    out->headers = calloc(all->count + 1, sizeof *out->headers);
    out->count = 0;
    for (size_t k = 0; k < earlier->count; k++)
        for (size_t i = 0; i < all->count; i++)
            if (!used[i] && strcmp(all->values[i], earlier->values[k]) == 0) {
                used[i] = 1;
                break;
            }
    for (size_t i = 0; i < all->count; i++)
        if (!used[i]) {
            out->values[out->count] = all->values[i];
            out->headers[out->count++] = all->headers[i];
        }
    free(used);
}

START_TEST(replay_rebuilds_the_store_and_republishes_for_downstream)
{
    uint64_t seed = pfx_seed(20261201);
    char ctx[64], log_path[512], line[128];
    snprintf(ctx, sizeof ctx, "seed %llu", (unsigned long long)seed);
    rfx_path(log_path, sizeof log_path, "replay.log");
    sd_embedded_t *kafka = pfx_start_kafka();
    published_t pub;
    pfx_publish(kafka, seed, 150, &pub);

    /* live processing */
    sd_store_t *live = fx_store_open("live", PFX_TTL);
    run_t r;
    pfx_start(&r, kafka, live, "sessiond");
    pfx_wait_consumed(&r, (long)pub.sent);
    pfx_finish(&r);
    seen_t before;
    pfx_read_topic(kafka, "session-changes", &before);

    /* the whole topic into an empty store: the same sessions, nothing out */
    rfx_args_t a;
    const char *none[] = {"--from", "earliest", NULL};
    rfx_args(&a, "replay", kafka, "rebuilt", none);
    char *log;
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    expect_in(log, "sessiond replay: caught up");
    snprintf(line, sizeof line, "events read      %zu of %zu", pub.sent, pub.sent);
    expect_in(log, line);
    snprintf(line, sizeof line, "dead-lettered    %zu (invalid; not re-sent", pub.invalid);
    expect_in(log, line);
    expect_in(log, "changes emitted  0");
    free(log);
    sd_store_t *rebuilt = fx_store_open("rebuilt", PFX_TTL);
    fx_expect_model(rebuilt, &pub.valid, PFX_NOW, PFX_TTL, ctx);
    char *want = rfx_dump(live), *got = rfx_dump(rebuilt);
    ck_assert_str_eq(got, want);
    free(want);
    free(got);
    seen_t after_none;
    pfx_read_topic(kafka, "session-changes", &after_none);
    ck_assert_uint_eq(after_none.count, before.count);
    pfx_seen_free(&after_none);

    /* --emit changes into the live store: every session's latest change
     * again, exact copies, so a consumer that lost its state can fold
     * the re-published changes alone */
    const char *changes[] = {"--from", "earliest", "--emit", "changes", NULL};
    rfx_args(&a, "replay", kafka, "live", changes);
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    expect_in(log, "sessiond replay: caught up");
    expect_in(log, "applied          0\n");
    seen_t after;
    pfx_read_topic(kafka, "session-changes", &after);
    ck_assert_uint_gt(after.count, before.count);
    snprintf(line, sizeof line, "changes emitted  %zu\n", after.count - before.count);
    expect_in(log, line);
    free(log);
    seen_t republished;
    without(&after, &before, &republished);
    ck_assert_uint_eq(republished.count, after.count - before.count);
    for (size_t i = 0; i < republished.count; i++) {
        int copy = 0;
        for (size_t k = 0; k < before.count && !copy; k++)
            copy = strcmp(republished.values[i], before.values[k]) == 0;
        ck_assert_msg(copy, "re-published change is not an exact copy: %s",
                      republished.values[i]);
    }
    sd_change_list_t folded = {0};
    pfx_parse_changes(&republished, &folded);
    fx_expect_fold(&folded, &pub.valid, PFX_NOW, PFX_TTL, ctx);

    sd_change_list_free(&folded);
    free(republished.values);
    free(republished.headers);
    pfx_seen_free(&after);
    pfx_seen_free(&before);
    sd_store_close(rebuilt);
    sd_store_close(live);
    pfx_published_free(&pub);
    sd_embedded_stop(kafka);
}
END_TEST

START_TEST(replay_moves_a_stopped_group_and_refuses_a_live_one)
{
    uint64_t seed = pfx_seed(20261202);
    char ctx[64], log_path[512];
    snprintf(ctx, sizeof ctx, "seed %llu", (unsigned long long)seed);
    rfx_path(log_path, sizeof log_path, "reset.log");
    sd_embedded_t *kafka = pfx_start_kafka();
    published_t pub;
    pfx_generate(seed, 80, "", &pub);
    size_t half = pub.workload.count / 2;
    pfx_send(kafka, &pub, 0, half);
    sd_store_t *store = fx_store_open("reset", PFX_TTL);
    run_t r;
    pfx_start(&r, kafka, store, "live");
    pfx_wait_consumed(&r, (long)pub.sent);
    pfx_finish(&r);

    rfx_args_t a;
    char *log;
    const char *unconfirmed[] = {"--from", "earliest", "--group", "live", NULL};
    rfx_args(&a, "replay", kafka, "reset", unconfirmed);
    ck_assert_int_eq(rfx_run(&a, log_path, 30, &log), 2);
    expect_in(log, "add --reset to confirm");
    free(log);

    /* stopped: the replay reads as the group and leaves it at the end */
    const char *reset[] = {"--from", "earliest", "--group", "live", "--reset", NULL};
    rfx_args(&a, "replay", kafka, "reset", reset);
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    expect_in(log, "sessiond replay: caught up");
    free(log);
    pfx_wait_committed(kafka, "live");

    /* the group resumes where the replay ended: only what came since */
    size_t sent_before = pub.sent;
    pfx_send(kafka, &pub, half, pub.workload.count);
    pfx_start(&r, kafka, store, "live");
    pfx_wait_consumed(&r, (long)(pub.sent - sent_before));
    ck_assert_int_eq(atomic_load(&r.stats.events), (long)(pub.sent - sent_before));
    fx_expect_model(store, &pub.valid, PFX_NOW, PFX_TTL, ctx);

    /* and while it runs, a replay as the group is refused.  The mock
     * waits the last joiner's session timeout for the others to rejoin: a
     * long one keeps a slow (sanitised) live member in the group. */
    const char *reset_slow[] = {"--from", "earliest", "--group", "live", "--reset",
                                "-X", "session.timeout.ms=15000",
                                "-X", "max.poll.interval.ms=30000", NULL};
    rfx_args(&a, "replay", kafka, "reset", reset_slow);
    ck_assert_int_eq(rfx_run(&a, log_path, 120, &log), 1);
    expect_in(log, "consumer group live has other members");
    free(log);
    pfx_finish(&r);

    sd_store_close(store);
    pfx_published_free(&pub);
    sd_embedded_stop(kafka);
}
END_TEST

START_TEST(replay_says_what_it_cannot_do)
{
    char log_path[512];
    rfx_path(log_path, sizeof log_path, "usage.log");
    sd_embedded_t *kafka = pfx_start_kafka();
    published_t pub;
    pfx_publish(kafka, 1, 5, &pub);
    rfx_args_t a;
    char *log;

    const char *at_time[] = {"--from", "2026-02-27T00:00:00Z", NULL};
    rfx_args(&a, "replay", kafka, "usage", at_time);
    ck_assert_int_eq(rfx_run(&a, log_path, 60, &log), 1);
    expect_in(log, "--from TIME needs a Kafka broker");
    free(log);

    /* after every message: nothing to replay, and the broker is not asked
     * to look anything up that it cannot */
    const char *future[] = {"--from", "2099-01-01T00:00:00Z", NULL};
    rfx_args(&a, "replay", kafka, "usage", future);
    ck_assert_msg(rfx_run(&a, log_path, 60, &log) == 0, "%s", log);
    expect_in(log, "events read      0 of 0");
    free(log);

    const char *bad_time[] = {"--from", "yesterday", NULL};
    rfx_args(&a, "replay", kafka, "usage", bad_time);
    ck_assert_int_eq(rfx_run(&a, log_path, 30, &log), 2);
    expect_in(log, "--from is earliest or an RFC 3339 time");
    free(log);

    /* a pattern reads what matches it, and only that */
    char line[64];
    const char *pattern[] = {"--from", "earliest", "--input-topics", "^task-ev[a-z]+s$", NULL};
    rfx_args(&a, "replay", kafka, "usage", pattern);
    ck_assert_msg(rfx_run(&a, log_path, 60, &log) == 0, "%s", log);
    snprintf(line, sizeof line, "events read      %zu of %zu\n", pub.sent, pub.sent);
    expect_in(log, line);
    free(log);

    const char *bad_pattern[] = {"--from", "earliest", "--input-topics", "^task-(", NULL};
    rfx_args(&a, "replay", kafka, "usage", bad_pattern);
    ck_assert_int_eq(rfx_run(&a, log_path, 60, &log), 1);
    expect_in(log, "'^task-(' is not a valid regular expression");
    free(log);

    const char *no_topic[] = {"--from", "earliest", "--input-topics", "nowhere", NULL};
    rfx_args(&a, "replay", kafka, "usage", no_topic);
    ck_assert_int_eq(rfx_run(&a, log_path, 60, &log), 1);
    expect_in(log, "no topic on the cluster matches 'nowhere'");
    free(log);

    pfx_published_free(&pub);
    sd_embedded_stop(kafka);
}
END_TEST

START_TEST(replays_converge_whatever_the_partitions_and_batches)
{
    /* The same events through topics of 1, 3 and 8 partitions, replayed
     * in batches of 3, 40 and 500 into fresh stores: one visible state,
     * the model's. */
    uint64_t seed = pfx_seed(20261203);
    static const int partitions[] = {1, 3, 8};
    static const char *const batches[] = {"3", "40", "500"};
    char ctx[96], log_path[512], *first = NULL;
    rfx_path(log_path, sizeof log_path, "converge.log");
    for (int v = 0; v < 3; v++) {
        snprintf(ctx, sizeof ctx, "seed %llu, %d partitions, batches of %s",
                 (unsigned long long)seed, partitions[v], batches[v]);
        sd_embedded_t *kafka = pfx_start_kafka_with(partitions[v]);
        published_t pub;
        pfx_publish(kafka, seed, 120, &pub);
        char name[32];
        snprintf(name, sizeof name, "converge%d", v);
        const char *extra[] = {"--from", "earliest", "--batch-max", batches[v], NULL};
        rfx_args_t a;
        rfx_args(&a, "replay", kafka, name, extra);
        char *log;
        ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s: %s", ctx, log);
        free(log);
        sd_store_t *store = fx_store_open(name, PFX_TTL);
        fx_expect_model(store, &pub.valid, PFX_NOW, PFX_TTL, ctx);
        char *dump = rfx_dump(store);
        if (!first)
            first = dump;
        else {
            ck_assert_msg(strcmp(dump, first) == 0, "%s: differs from the first", ctx);
            free(dump);
        }
        sd_store_close(store);
        pfx_published_free(&pub);
        sd_embedded_stop(kafka);
    }
    free(first);
}
END_TEST

static void add_tests(TCase *tc)
{
    FX_ADD_TEST(tc, replay_rebuilds_the_store_and_republishes_for_downstream);
    FX_ADD_TEST(tc, replay_moves_a_stopped_group_and_refuses_a_live_one);
    FX_ADD_TEST(tc, replay_says_what_it_cannot_do);
    FX_ADD_TEST(tc, replays_converge_whatever_the_partitions_and_batches);
}

int main(int argc, char **argv)
{
    return fx_store_suite_main(argc, argv, "replay_test", "replay", 300, add_tests);
}
