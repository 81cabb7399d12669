/* `sessiond replay` as an operator runs it, against the mock cluster
 * hosted here or Apache Kafka: rebuilding a store from the input topic,
 * re-publishing changes for downstream consumers, moving a stopped group
 * (and refusing a live one), two replays at once, the same workload
 * converging whatever the partitions and batches, and (Apache Kafka only)
 * replaying from a time.
 *
 *   replay_test sqlite|mongodb [mock|kafka]   (SESSIOND_TEST_SEED=N replays) */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recfx.h"
#include "sessiond/timefmt.h"

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
    char log_path[512], line[128];
    rfx_path(log_path, sizeof log_path, "replay.log");
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "replay", .seed = 20261201, .tasks = 150,
                                               .store = "live"});
    const char *ctx = s.ctx;

    /* live processing */
    sd_store_t *live = s.store;
    sd_pipeline_thread_t r;
    pfx_start(&r, s.kafka, live, "sessiond");
    pfx_wait_consumed(&r, (long)s.pub.sent);
    pfx_finish(&r);
    seen_t before;
    pfx_read_topic(s.kafka, s.kafka->output, &before);

    /* the whole topic into an empty store: the same sessions, nothing out */
    rfx_args_t a;
    const char *none[] = {"--from", "earliest", NULL};
    rfx_args(&a, "replay", s.kafka, "rebuilt", none);
    char *log;
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    expect_in(log, "sessiond replay: caught up");
    snprintf(line, sizeof line, "events read      %zu of %zu", s.pub.sent, s.pub.sent);
    expect_in(log, line);
    snprintf(line, sizeof line, "dead-lettered    %zu (invalid; not re-sent", s.pub.invalid);
    expect_in(log, line);
    expect_in(log, "changes emitted  0");
    free(log);
    sd_store_t *rebuilt = fx_store_open("rebuilt", PFX_TTL);
    fx_expect_model(rebuilt, &s.pub.valid, PFX_NOW, PFX_TTL, ctx);
    char *want = rfx_dump(live, PFX_NOW), *got = rfx_dump(rebuilt, PFX_NOW);
    ck_assert_str_eq(got, want);
    free(want);
    free(got);
    seen_t after_none;
    pfx_read_topic(s.kafka, s.kafka->output, &after_none);
    ck_assert_uint_eq(after_none.count, before.count);
    pfx_seen_free(&after_none);

    /* --emit changes into the live store: every session's latest change
     * again, exact copies, so a consumer that lost its state can fold
     * the re-published changes alone */
    const char *changes[] = {"--from", "earliest", "--emit", "changes", NULL};
    rfx_args(&a, "replay", s.kafka, "live", changes);
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    expect_in(log, "sessiond replay: caught up");
    expect_in(log, "applied          0\n");
    seen_t after;
    pfx_read_topic(s.kafka, s.kafka->output, &after);
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
    fx_expect_fold(&folded, &s.pub.valid, PFX_NOW, PFX_TTL, FX_ORDERED, ctx);

    sd_change_list_free(&folded);
    free(republished.values);
    free(republished.headers);
    pfx_seen_free(&after);
    pfx_seen_free(&before);
    sd_store_close(rebuilt);
    fx_scenario_end(&s);
}
END_TEST

/* Expiry events on the input topic replay like any other event: into an
 * empty store at the clock they were applied with, they rebuild the same
 * store; at an earlier clock, where their sessions are not due yet, they
 * change nothing. */
START_TEST(a_replay_of_expiry_events_rebuilds_the_same_store)
{
    char log_path[512];
    rfx_path(log_path, sizeof log_path, "replay-expiry.log");
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "replay of expiries", .seed = 20261206,
                                               .tasks = 150, .store = "live"});
    const int64_t later = PFX_NOW + 3 * 24 * 3600 * 1000LL;
    sd_model_result_t at_now, at_later;
    ck_assert_int_eq(sd_model_visible(s.pub.valid.items, s.pub.valid.count, PFX_NOW, PFX_TTL,
                                      &at_now), 0);
    ck_assert_int_eq(sd_model_visible(s.pub.valid.items, s.pub.valid.count, later, PFX_TTL,
                                      &at_later), 0);
    long due = (long)at_now.count - (long)at_later.count;
    ck_assert_int_gt(due, 5);
    ck_assert_int_gt(at_later.count, 5);

    sd_pipeline_thread_t r;
    pfx_prepare(&r, s.kafka, s.store, "sessiond");
    r.cfg.sweep_interval_ms = 50;
    pfx_go(&r);
    pfx_wait_consumed(&r, (long)s.pub.sent);
    atomic_long *expired = &r.stats.changes_by_type[SD_CHANGE_EXPIRED];
    long before = atomic_load(expired);
    atomic_store(&r.now, later);
    for (int i = 0; i < 600 && atomic_load(expired) - before < due; i++)
        sd_sleep_ms(100);
    pfx_finish(&r);
    ck_assert_int_eq(atomic_load(expired) - before, due);
    ck_assert_int_eq(atomic_load(&r.stats.expiry_events), due);

    rfx_args_t a;
    const char *from[] = {"--from", "earliest", NULL};
    char *log;
    rfx_set_now(later);
    rfx_args(&a, "replay", s.kafka, "rebuilt", from);
    int code = rfx_run(&a, log_path, 120, &log);
    rfx_set_now(PFX_NOW);
    ck_assert_msg(code == 0, "%s", log);
    free(log);
    sd_store_t *rebuilt = fx_store_open("rebuilt", PFX_TTL);
    fx_expect_model(rebuilt, &s.pub.valid, later, PFX_TTL, s.ctx);
    char *want = rfx_dump(s.store, later), *got = rfx_dump(rebuilt, later);
    ck_assert_str_eq(got, want);
    free(want);
    free(got);

    rfx_args(&a, "replay", s.kafka, "early", from);
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    free(log);
    sd_store_t *early = fx_store_open("early", PFX_TTL);
    fx_expect_model(early, &s.pub.valid, PFX_NOW, PFX_TTL, s.ctx);

    sd_store_close(early);
    sd_store_close(rebuilt);
    sd_model_result_free(&at_now);
    sd_model_result_free(&at_later);
    fx_scenario_end(&s);
}
END_TEST

START_TEST(replay_moves_a_stopped_group_and_refuses_a_live_one)
{
    char log_path[512];
    rfx_path(log_path, sizeof log_path, "reset.log");
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "reset", .seed = 20261202, .tasks = 80,
                                               .unsent = 1, .store = "reset"});
    size_t half = s.pub.workload.count / 2;
    pfx_send(s.kafka, &s.pub, 0, half);
    sd_pipeline_thread_t r;
    pfx_start(&r, s.kafka, s.store, "live");
    pfx_wait_consumed(&r, (long)s.pub.sent);
    pfx_finish(&r);

    rfx_args_t a;
    char *log;
    const char *live = fx_kafka_name(s.kafka, "live");
    const char *unconfirmed[] = {"--from", "earliest", "--group", live, NULL};
    rfx_args(&a, "replay", s.kafka, "reset", unconfirmed);
    ck_assert_int_eq(rfx_run(&a, log_path, 30, &log), 2);
    expect_in(log, "add --reset to confirm");
    free(log);

    /* stopped: the replay reads as the group and leaves it at the end */
    const char *reset[] = {"--from", "earliest", "--group", live, "--reset", NULL};
    rfx_args(&a, "replay", s.kafka, "reset", reset);
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    expect_in(log, "sessiond replay: caught up");
    free(log);
    pfx_wait_committed(s.kafka, "live");

    /* the group resumes where the replay ended: only what came since */
    size_t sent_before = s.pub.sent;
    pfx_send(s.kafka, &s.pub, half, s.pub.workload.count);
    pfx_start(&r, s.kafka, s.store, "live");
    pfx_wait_consumed(&r, (long)(s.pub.sent - sent_before));
    ck_assert_int_eq(atomic_load(&r.stats.events), (long)(s.pub.sent - sent_before));
    fx_scenario_expect(&s, PFX_NOW, 0);

    /* and while it runs, a replay as the group is refused: Apache Kafka
     * describes the group before the replay starts; the mock cannot, and
     * the replay finds out when it joins.  The mock waits the last
     * joiner's session timeout for the others to rejoin: a long one keeps
     * a slow (sanitised) live member in the group. */
    const char *reset_slow[] = {"--from", "earliest", "--group", live, "--reset",
                                "-X", "session.timeout.ms=15000",
                                "-X", "max.poll.interval.ms=30000", NULL};
    rfx_args(&a, "replay", s.kafka, "reset", reset_slow);
    ck_assert_int_eq(rfx_run(&a, log_path, 120, &log), 1);
    char refused[256];
    snprintf(refused, sizeof refused,
             s.kafka->real ? "consumer group %s has 1 member(s): stop them first"
                         : "consumer group %s has other members",
             live);
    expect_in(log, refused);
    free(log);
    pfx_finish(&r);
    fx_scenario_end(&s);
}
END_TEST

/* Two replays of one topic into two stores at once (rebuilding a store
 * and a copy, say): each reads as a group of its own, so each reads every
 * partition instead of half of them and a refusal. */
START_TEST(two_replays_at_once)
{
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "two replays", .seed = 20261204,
                                               .tasks = 60});
    const char *from[] = {"--from", "earliest", NULL};
    static const char *const names[] = {"twin0", "twin1"};
    rfx_args_t a[2];
    fx_proc_t p[2];
    char logs[2][512];
    for (int i = 0; i < 2; i++) {
        rfx_path(logs[i], sizeof logs[i], names[i]);
        unlink(logs[i]);
        rfx_args(&a[i], "replay", s.kafka, names[i], from);
        fx_proc_start(&p[i], a[i].argv, rfx_env(NULL), logs[i]);
    }
    for (int i = 0; i < 2; i++) {
        int ended = fx_proc_wait(&p[i], 120000);
        if (!ended)
            fx_proc_kill(&p[i], SIGKILL);
        char *log = fx_read_file(logs[i]);
        ck_assert_msg(ended && fx_proc_exit_code(&p[i]) == 0, "replay %d: exit %d:\n%s", i,
                      fx_proc_exit_code(&p[i]), log);
        expect_in(log, "sessiond replay: caught up");
        free(log);
        unlink(logs[i]);
        sd_store_t *store = fx_store_open(names[i], PFX_TTL);
        fx_expect_model(store, &s.pub.valid, PFX_NOW, PFX_TTL, s.ctx);
        sd_store_close(store);
    }
    fx_scenario_end(&s);
}
END_TEST

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Apache Kafka only (the mock cannot look offsets up by time): the second
 * half of a workload arrives after a time T; a replay --from T into an
 * empty store reads exactly that half and rebuilds the model of its
 * events, and a replay from before everything reads it all. */
START_TEST(replay_from_a_time)
{
    char log_path[512], line[128], from[SD_TIME_BUFSZ], before[SD_TIME_BUFSZ];
    rfx_path(log_path, sizeof log_path, "from.log");
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "replay from a time", .seed = 20261205,
                                               .tasks = 80, .unsent = 1});
    const char *ctx = s.ctx;
    size_t half = s.pub.workload.count / 2;
    sd_time_format(wall_ms() - 60000, before);
    pfx_send(s.kafka, &s.pub, 0, half);
    size_t sent_first = s.pub.sent, valid_first = s.pub.valid.count;
    sd_sleep_ms(20); /* message timestamps are milliseconds */
    sd_time_format(wall_ms(), from);
    sd_sleep_ms(20);
    pfx_send(s.kafka, &s.pub, half, s.pub.workload.count);

    const char *at[] = {"--from", from, NULL};
    rfx_args_t a;
    rfx_args(&a, "replay", s.kafka, "second-half", at);
    char *log;
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    snprintf(line, sizeof line, "events read      %zu of %zu\n", s.pub.sent - sent_first,
             s.pub.sent - sent_first);
    expect_in(log, line);
    free(log);
    fx_events_t second = {.items = s.pub.valid.items + valid_first,
                          .count = s.pub.valid.count - valid_first};
    sd_store_t *store = fx_store_open("second-half", PFX_TTL);
    fx_expect_model(store, &second, PFX_NOW, PFX_TTL, ctx);
    sd_store_close(store);

    const char *all[] = {"--from", before, NULL};
    rfx_args(&a, "replay", s.kafka, "all", all);
    ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s", log);
    snprintf(line, sizeof line, "events read      %zu of %zu\n", s.pub.sent, s.pub.sent);
    expect_in(log, line);
    free(log);
    store = fx_store_open("all", PFX_TTL);
    fx_expect_model(store, &s.pub.valid, PFX_NOW, PFX_TTL, ctx);
    sd_store_close(store);
    fx_scenario_end(&s);
}
END_TEST

START_TEST(replay_says_what_it_cannot_do)
{
    char log_path[512];
    rfx_path(log_path, sizeof log_path, "usage.log");
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "usage", .seed = 1, .tasks = 5});
    rfx_args_t a;
    char *log;

    if (!s.kafka->real) { /* Apache Kafka looks offsets up: replay_from_a_time */
        const char *at_time[] = {"--from", "2026-02-27T00:00:00Z", NULL};
        rfx_args(&a, "replay", s.kafka, "usage", at_time);
        ck_assert_int_eq(rfx_run(&a, log_path, 60, &log), 1);
        expect_in(log, "--from TIME needs a Kafka broker");
        free(log);
    }

    /* after every message: nothing to replay, and the broker is not asked
     * to look anything up that it cannot */
    const char *future[] = {"--from", "2099-01-01T00:00:00Z", NULL};
    rfx_args(&a, "replay", s.kafka, "usage", future);
    ck_assert_msg(rfx_run(&a, log_path, 60, &log) == 0, "%s", log);
    expect_in(log, "events read      0 of 0");
    free(log);

    const char *bad_time[] = {"--from", "yesterday", NULL};
    rfx_args(&a, "replay", s.kafka, "usage", bad_time);
    ck_assert_int_eq(rfx_run(&a, log_path, 30, &log), 2);
    expect_in(log, "--from is earliest or an RFC 3339 time");
    free(log);

    /* a pattern reads what matches it, and only that */
    char line[64];
    const char *pattern[] = {"--from", "earliest", "--input-topics",
                             fx_kafka_pattern(s.kafka, "task-ev[a-z]+s$"), NULL};
    rfx_args(&a, "replay", s.kafka, "usage", pattern);
    ck_assert_msg(rfx_run(&a, log_path, 60, &log) == 0, "%s", log);
    snprintf(line, sizeof line, "events read      %zu of %zu\n", s.pub.sent, s.pub.sent);
    expect_in(log, line);
    free(log);

    const char *bad_pattern[] = {"--from", "earliest", "--input-topics", "^task-(", NULL};
    rfx_args(&a, "replay", s.kafka, "usage", bad_pattern);
    ck_assert_int_eq(rfx_run(&a, log_path, 60, &log), 1);
    expect_in(log, "'^task-(' is not a valid regular expression");
    free(log);

    const char *no_topic[] = {"--from", "earliest", "--input-topics", "nowhere", NULL};
    rfx_args(&a, "replay", s.kafka, "usage", no_topic);
    ck_assert_int_eq(rfx_run(&a, log_path, 60, &log), 1);
    expect_in(log, "sessiond replay: topic nowhere does not exist at ");
    free(log);

    fx_scenario_end(&s);
}
END_TEST

START_TEST(replays_converge_whatever_the_partitions_and_batches)
{
    /* The same events through topics of 1, 3 and 8 partitions, replayed
     * in batches of 3, 40 and 500 into fresh stores: one visible state,
     * the model's. */
    static const int partitions[] = {1, 3, 8};
    static const char *const batches[] = {"3", "40", "500"};
    char what[64], log_path[512], *first = NULL;
    rfx_path(log_path, sizeof log_path, "converge.log");
    for (int v = 0; v < 3; v++) {
        snprintf(what, sizeof what, "%d partitions, batches of %s", partitions[v], batches[v]);
        fx_scenario_t s;
        fx_scenario_begin(&s, (fx_scenario_spec_t){.what = what, .seed = 20261203, .tasks = 120,
                                                   .partitions = partitions[v]});
            const char *ctx = s.ctx;
        char name[32];
        snprintf(name, sizeof name, "converge%d", v);
        const char *extra[] = {"--from", "earliest", "--batch-max", batches[v], NULL};
        rfx_args_t a;
        rfx_args(&a, "replay", s.kafka, name, extra);
        char *log;
        ck_assert_msg(rfx_run(&a, log_path, 120, &log) == 0, "%s: %s", ctx, log);
        free(log);
        sd_store_t *store = fx_store_open(name, PFX_TTL);
        fx_expect_model(store, &s.pub.valid, PFX_NOW, PFX_TTL, ctx);
        char *dump = rfx_dump(store, PFX_NOW);
        if (!first)
            first = dump;
        else {
            ck_assert_msg(strcmp(dump, first) == 0, "%s: differs from the first", ctx);
            free(dump);
        }
        sd_store_close(store);
        fx_scenario_end(&s);
    }
    free(first);
}
END_TEST

static void add_tests(TCase *tc)
{
    FX_ADD_TEST(tc, replay_rebuilds_the_store_and_republishes_for_downstream);
    FX_ADD_TEST(tc, a_replay_of_expiry_events_rebuilds_the_same_store);
    FX_ADD_TEST(tc, replay_moves_a_stopped_group_and_refuses_a_live_one);
    FX_ADD_TEST(tc, two_replays_at_once);
    FX_ADD_TEST(tc, replay_says_what_it_cannot_do);
    if (fx_kafka_is_real())
        FX_ADD_TEST(tc, replay_from_a_time);
    FX_ADD_TEST(tc, replays_converge_whatever_the_partitions_and_batches);
}

int main(int argc, char **argv)
{
    return pfx_suite_main(argc, argv, "replay_test", "replay", 300, add_tests);
}
