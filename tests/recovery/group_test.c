/* One consumer group on Apache Kafka's group and transaction coordinators,
 * with `sessiond run` members as child processes:
 *   - three members, mid-stream one killed (exactly-once: inside a
 *     transaction), one added while the group waits for the dead one,
 *     another killed during that rebalance and started again, one stopped
 *     with SIGTERM, in both delivery modes: the store and the fold equal
 *     the model, at-least-once repeats only exact copies, exactly-once
 *     (read_committed) nothing at all;
 *   - a second member with the same transactional id fences the first,
 *     which stops with a message naming the id;
 *   - a member frozen (SIGSTOP) inside a transaction past its
 *     transaction.timeout.ms: the broker aborts it, the member takes a new
 *     producer, and nothing is lost or seen twice;
 *   - three members all sweeping, restarted with a clock past every TTL:
 *     every live session expires, each session.expired is seen once by a
 *     read_committed reader (exactly-once; at-least-once repeats only exact
 *     copies), however many members published its expiry event.
 *
 *   group_test sqlite|mongodb kafka   (SESSIOND_TEST_SEED=N replays) */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recfx.h"

/* fx_scenario_expect, and what went out, for the log. */
static void expect_consistent(fx_scenario_t *s, int exactly_once)
{
    size_t repeated = fx_scenario_expect(s, PFX_NOW, exactly_once);
    printf("group_test: %s: %zu changes (%zu repeated), %zu dead letters\n", s->ctx,
           s->out.count, repeated, s->dlq.count);
}

START_TEST(three_members_killed_added_and_stopped)
{
    int exactly_once = _i;
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = exactly_once
                                                           ? "three members, exactly-once"
                                                           : "three members, at-least-once",
                                               .seed = 20261210 + (uint64_t)exactly_once,
                                               .tasks = 300, .partitions = 6, .unsent = 1,
                                               .store = "members",
                                               .order = FX_ACROSS_PARTITIONS});
    size_t slice = s.pub.workload.count / 4, sent = 0;

    /* m1 dies at its second batch (exactly-once: inside the transaction) */
    rfx_member_t m[4];
    static const char *const names[] = {"m0", "m1", "m2", "m3"};
    for (int i = 0; i < 3; i++)
        rfx_member_start(&m[i], s.kafka, names[i], exactly_once, NULL,
                     i == 1 ? "SESSIOND_FAILPOINT=after-produce:2" : NULL);
    for (int i = 0; i < 3; i++)
        rfx_member_wait_log(&m[i], "partitions assigned", 60000);
    pfx_send(s.kafka, &s.pub, sent, sent + slice);
    sent += slice;
    ck_assert_msg(fx_proc_wait(&m[1].proc, 60000), "m1 never reached its failpoint");
    ck_assert_int_eq(fx_proc_exit_code(&m[1].proc), 128 + SIGKILL);
    unlink(m[1].log);

    /* m3 joins while the group still waits for m1's session to end, and
     * m0 is killed while that rebalance is under way, then started again */
    rfx_member_start(&m[3], s.kafka, names[3], exactly_once, NULL, NULL);
    rfx_member_wait_log(&m[3], "msg=started", 60000);
    rfx_member_kill(&m[0]);
    pfx_send(s.kafka, &s.pub, sent, sent + slice);
    sent += slice;
    rfx_member_wait_log(&m[3], "partitions assigned", 60000);
    rfx_member_start(&m[0], s.kafka, names[0], exactly_once, NULL, NULL);

    /* m2 stops while the third slice is being worked on */
    pfx_send(s.kafka, &s.pub, sent, sent + slice);
    sent += slice;
    rfx_member_stop(&m[2]);
    pfx_send(s.kafka, &s.pub, sent, s.pub.workload.count);
    pfx_wait_committed(s.kafka, "sessiond");
    rfx_member_stop(&m[0]);
    rfx_member_stop(&m[3]);

    expect_consistent(&s, exactly_once);
    fx_scenario_end(&s);
}
END_TEST

START_TEST(a_second_member_with_the_transactional_id_stops_the_first)
{
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "fenced member, exactly-once",
                                               .seed = 20261212, .tasks = 120,
                                               .unsent = 1, .store = "members",
                                               .order = FX_ACROSS_PARTITIONS});
    size_t half = s.pub.workload.count / 2;

    rfx_member_t first, second;
    rfx_member_start(&first, s.kafka, "same", 1, NULL, NULL);
    rfx_member_wait_log(&first, "partitions assigned", 60000);
    pfx_send(s.kafka, &s.pub, 0, half);
    pfx_wait_committed(s.kafka, "sessiond");

    /* The second takes the id (its producer starts before it joins); the
     * first finds out at its next transaction. */
    rfx_member_start(&second, s.kafka, "same", 1, NULL, NULL);
    rfx_member_wait_log(&second, "partitions assigned", 60000);
    pfx_send(s.kafka, &s.pub, half, s.pub.workload.count);
    int ended = fx_proc_wait(&first.proc, 60000);
    char *log = fx_read_file(first.log);
    ck_assert_msg(ended, "the fenced member still runs:\n%s", log);
    ck_assert_msg(fx_proc_exit_code(&first.proc) == 1, "the fenced member exited %d:\n%s",
                  fx_proc_exit_code(&first.proc), log);
    char promised[256];
    snprintf(promised, sizeof promised,
             "another producer took transactional id %s (this one was fenced): every sessiond "
             "needs a --transactional-id of its own",
             first.txid);
    ck_assert_msg(strstr(log, promised), "the fenced member did not say \"%s\":\n%s", promised,
                  log);
    free(log);
    unlink(first.log);

    pfx_wait_committed(s.kafka, "sessiond");
    rfx_member_stop(&second);
    expect_consistent(&s, 1);
    fx_scenario_end(&s);
}
END_TEST

START_TEST(a_transaction_past_its_timeout_is_aborted_and_done_again)
{
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = "transaction timeout, exactly-once",
                                               .seed = 20261213, .tasks = 80,
                                               .unsent = 1, .store = "members",
                                               .order = FX_ACROSS_PARTITIONS});

    const char *short_timeout[] = {"-X", "transaction.timeout.ms=2000", NULL};
    rfx_member_t m;
    rfx_member_start(&m, s.kafka, "frozen", 1, short_timeout, "SESSIOND_FAILPOINT=after-produce:2:stop");
    rfx_member_wait_log(&m, "partitions assigned", 60000);
    pfx_send(s.kafka, &s.pub, 0, s.pub.workload.count);
    rfx_member_wait_log(&m, "failpoint: stopping the process", 60000);
    /* frozen with its transaction open, until the broker (which looks for
     * timed-out transactions every second here) has aborted it */
    sd_sleep_ms(5000);
    fx_proc_kill(&m.proc, SIGCONT);
    rfx_member_wait_log(&m, "a transaction outlived transaction.timeout.ms", 30000);
    pfx_wait_committed(s.kafka, "sessiond");
    rfx_member_stop(&m);
    expect_consistent(&s, 1);
    fx_scenario_end(&s);
}
END_TEST

START_TEST(three_members_sweeping_publish_each_expiry_once)
{
    int exactly_once = _i;
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = exactly_once
                                                           ? "three sweepers, exactly-once"
                                                           : "three sweepers, at-least-once",
                                               .seed = 20261205 + (uint64_t)exactly_once,
                                               .tasks = 200, .partitions = 6,
                                               .unsent = 1, .store = "members",
                                               .order = FX_ACROSS_PARTITIONS});
    rfx_member_t m[3];
    static const char *const names[] = {"s0", "s1", "s2"};
    static const char *const sweep_often[] = {"--sweep-interval", "100ms", NULL};
    for (int i = 0; i < 3; i++)
        rfx_member_start(&m[i], s.kafka, names[i], exactly_once, sweep_often, NULL);
    for (int i = 0; i < 3; i++)
        rfx_member_wait_log(&m[i], "partitions assigned", 60000);
    pfx_send(s.kafka, &s.pub, 0, s.pub.workload.count);
    pfx_wait_committed(s.kafka, "sessiond");
    for (int i = 0; i < 3; i++)
        rfx_member_stop(&m[i]);
    sd_model_result_t live;
    ck_assert_int_eq(sd_model_visible(s.pub.valid.items, s.pub.valid.count, PFX_NOW, PFX_TTL,
                                      &live), 0);
    ck_assert_uint_gt(live.count, 20);

    /* Two TTLs later, all three start at once and sweep every 100 ms:
     * each finds every session due before any has marked it. */
    int64_t later = PFX_NOW + 2 * PFX_TTL;
    rfx_set_now(later);
    for (int i = 0; i < 3; i++)
        rfx_member_start(&m[i], s.kafka, names[i], exactly_once, sweep_often, NULL);
    size_t expired = rfx_wait_expired(&s, &live, 90000);
    ck_assert_msg(expired == live.count, "%s: %zu of %zu live sessions expired", s.ctx, expired,
                  live.count);
    pfx_wait_committed(s.kafka, "sessiond");
    long published = 0;
    for (int i = 0; i < 3; i++) {
        char *log = fx_read_file(m[i].log);
        static const char mark[] = "msg=\"expiry events published\" count=";
        for (const char *at = log; (at = strstr(at, mark)); at++)
            published += atol(at + strlen(mark));
        free(log);
        rfx_member_stop(&m[i]);
    }
    rfx_set_now(PFX_NOW);
    size_t repeated = fx_scenario_expect(&s, later, exactly_once);
    printf("group_test: %s: %zu sessions expired, %ld expiry events published by three "
           "sweepers, %zu changes (%zu repeated)\n",
           s.ctx, live.count, published, s.out.count, repeated);
    sd_model_result_free(&live);
    fx_scenario_end(&s);
}
END_TEST

static void add_tests(TCase *tc)
{
    const char *only = getenv("SESSIOND_TEST_ONLY");
    if (!only || !strcmp(only, "three_members_killed_added_and_stopped"))
        tcase_add_loop_test(tc, three_members_killed_added_and_stopped, 0, 2);
    FX_ADD_TEST(tc, a_second_member_with_the_transactional_id_stops_the_first);
    FX_ADD_TEST(tc, a_transaction_past_its_timeout_is_aborted_and_done_again);
    if (!only || !strcmp(only, "three_members_sweeping_publish_each_expiry_once"))
        tcase_add_loop_test(tc, three_members_sweeping_publish_each_expiry_once, 0, 2);
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[2], "kafka") != 0) {
        fprintf(stderr, "usage: group_test sqlite|mongodb kafka (Apache Kafka only: the mock "
                        "cluster has no transaction isolation)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    return pfx_suite_main(argc, argv, "group_test", "group", 300, add_tests);
}
