/* Crash anywhere: `sessiond run` as a child process, SIGKILLed again and
 * again while a seeded workload (every event type, duplicates, reorders
 * across partitions, invalid events) arrives, then left to finish.  The
 * broker outlives every daemon: the mock cluster lives here, Apache Kafka
 * in a JVM of its own.  Kills land at random moments and, through
 * SESSIOND_FAILPOINT, right after a batch's store write and after its
 * changes are delivered (exactly-once: inside the open transaction) but
 * before its offsets are committed.  At the end:
 *   - the store equals the reference model;
 *   - folding everything the output topic held gives the same sessions
 *     (SPEC §5), versions per task never go back, and two messages with
 *     one change_id are exact copies;
 *   - every invalid event is on the dead-letter topic, and nothing else.
 * In exactly-once (on Apache Kafka), what a read_committed consumer sees
 * holds no change_id twice and one dead letter per invalid message, while
 * a read_uncommitted one sees the aborted transactions' messages too.
 * Then the clock moves two TTLs on and a few more lives are killed while
 * the sweeper publishes expiry events and the batches apply them: at
 * random, after a sweep delivered its events but before the store marked
 * them, after an expiry batch's store write, and after its changes went
 * out (exactly-once: inside the transaction).  Every session live before
 * must then have expired, and the same checks hold at the later clock:
 * no expiry lost, none seen twice by read_committed, at-least-once
 * repeating only exact copies.
 *
 *   crash_harness sqlite|mongodb [mock|kafka] [--seed N] [--kills N]
 *                 [--tasks N] [--delivery at-least-once|exactly-once]
 * The seed is printed; --seed N replays a run. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recfx.h"

static uint64_t seed;
static long kills = 20;
static long tasks = 300;
static int exactly_once;
static long aborted_kills; /* kills inside a transaction that had produced */

typedef enum kill_kind {
    KILL_ANYTIME,
    KILL_AFTER_STORE,
    KILL_AFTER_PRODUCE,
    KILL_AFTER_EXPIRY_PRODUCE,
} kill_kind_t;
static const char *const kill_names[] = {"at a random moment", "after a store write",
                                         "after delivery, before the commit",
                                         "after expiry events went out, before they were marked"};
static const char *const failpoints[] = {NULL, "after-store", "after-produce",
                                         "after-expiry-produce"};

/* One daemon's life: started; once it holds the partitions, lines
 * [*sent, to) of the workload arrive and it is killed while at them (or,
 * when kind < 0, left running). */
static void one_life(fx_proc_t *p, fx_kafka_t *kafka, published_t *pub, size_t *sent,
                     size_t to, int cycle, int kind, sd_rng_t *rng)
{
    char log[512], name[32], failpoint[64] = "", batch[16];
    snprintf(name, sizeof name, "crash-%d.log", cycle);
    rfx_path(log, sizeof log, name);
    unlink(log);
    snprintf(batch, sizeof batch, "%d", 2 + (int)sd_rng_below(rng, 14));
    const char *extra[9] = {"--batch-max", batch, "--batch-ms", "20ms"};
    if (exactly_once) {
        /* One transactional id for every life: each new one fences the
         * last and aborts the transaction it left open. */
        extra[4] = "--delivery";
        extra[5] = "exactly-once";
        extra[6] = "--transactional-id";
        extra[7] = fx_kafka_name(kafka, "crash");
    }
    rfx_args_t a;
    rfx_args(&a, "run", kafka, "crash", extra);
    if (kind > KILL_ANYTIME)
        snprintf(failpoint, sizeof failpoint, "SESSIOND_FAILPOINT=%s:%d", failpoints[kind],
                 kind == KILL_AFTER_EXPIRY_PRODUCE ? 1 : 1 + (int)sd_rng_below(rng, 2));
    fx_proc_start(p, a.argv, rfx_env(failpoint[0] ? failpoint : NULL), log);
    char *text;
    /* a sweep may deliver its events before the consumer joins */
    const char *ready = kind == KILL_AFTER_EXPIRY_PRODUCE ? "msg=\"failpoint: killing"
                                                          : "partitions assigned";
    if (!fx_proc_log_has(p, ready, 60000)) {
        fx_proc_kill(p, SIGKILL);
        fx_proc_wait(p, 10000);
        text = fx_read_file(log);
        ck_abort_msg("cycle %d: no \"%s\" within 60 s:\n%s", cycle, ready, text);
    }
    pfx_send(kafka, pub, *sent, to);
    *sent = to < pub->workload.count ? to : pub->workload.count;
    if (kind < 0)
        return;
    if (kind == KILL_ANYTIME)
        sd_sleep_ms((long)sd_rng_below(rng, 400));
    else
        fx_proc_wait(p, 5000); /* the failpoint fires, or there was too little to do */
    fx_proc_kill(p, SIGKILL);
    ck_assert_msg(fx_proc_wait(p, 10000), "cycle %d: still running after SIGKILL", cycle);
    int code = fx_proc_exit_code(p);
    text = fx_read_file(log);
    ck_assert_msg(code == 128 + SIGKILL, "cycle %d: sessiond ended with %d, not by SIGKILL:\n%s",
                  cycle, code, text);
    const char *fired = strstr(text, "failpoint: killing");
    int by_failpoint = fired != NULL;
    long produced = 0;
    if (fired && kind == KILL_AFTER_PRODUCE && strstr(fired, "messages="))
        produced = atol(strstr(fired, "messages=") + 9);
    if (exactly_once && produced > 0)
        aborted_kills++;
    free(text);
    printf("crash_harness: kill %d %s%s\n", cycle + 1, kill_names[kind],
           kind != KILL_ANYTIME && !by_failpoint ? " (too little to do: killed anyway)" : "");
    unlink(log);
}

/* Lives two TTLs on, killed in the expiry path, then one left to finish:
 * every session live before expires, once. */
static void expiry_lives(fx_scenario_t *s, sd_rng_t *rng, size_t *sent)
{
    sd_model_result_t live;
    ck_assert_int_eq(sd_model_visible(s->pub.valid.items, s->pub.valid.count, PFX_NOW, PFX_TTL,
                                      &live), 0);
    int64_t later = PFX_NOW + 2 * PFX_TTL;
    rfx_set_now(later);
    long expiry_kills = kills / 4 > 3 ? kills / 4 : 3;
    fx_proc_t p;
    /* The first is killed once its sweep delivered every expiry event, the
     * next two in the batches applying them (they publish them again
     * first: never marked), the rest at random (but not after a sweep's
     * delivery: by then there may be nothing left to sweep). */
    static const kill_kind_t first[] = {KILL_AFTER_EXPIRY_PRODUCE, KILL_AFTER_STORE,
                                        KILL_AFTER_PRODUCE};
    for (int cycle = 0; cycle < expiry_kills; cycle++)
        one_life(&p, s->kafka, &s->pub, sent, *sent, (int)kills + 1 + cycle,
                 cycle < 3 ? (int)first[cycle] : (int)sd_rng_below(rng, 3), rng);
    one_life(&p, s->kafka, &s->pub, sent, *sent, (int)(kills + 1 + expiry_kills), -1, rng);
    size_t expired = rfx_wait_expired(s, &live, 120000);
    pfx_wait_committed(s->kafka, "sessiond");
    fx_proc_kill(&p, SIGTERM);
    ck_assert(fx_proc_wait(&p, 30000));
    char *log = fx_read_file(p.log);
    ck_assert_msg(fx_proc_exit_code(&p) == 0, "the last sessiond ended with %d:\n%s",
                  fx_proc_exit_code(&p), log);
    free(log);
    unlink(p.log);
    rfx_set_now(PFX_NOW);
    ck_assert_msg(expired == live.count, "%s: %zu of %zu live sessions expired", s->ctx, expired,
                  live.count);
    size_t repeated = fx_scenario_expect(s, later, exactly_once);
    printf("crash_harness: %ld kills in the expiry path; %zu sessions expired, %zu changes out "
           "(%zu repeated): consistent\n",
           expiry_kills, live.count, s->out.count, repeated);
    sd_model_result_free(&live);
}

START_TEST(crash_anywhere_then_converge)
{
    char what[160];
    snprintf(what, sizeof what, "crash (replay: crash_harness %s %s --seed %llu%s)",
             fx_store_kind(), fx_kafka_kind(), (unsigned long long)seed,
             exactly_once ? " --delivery exactly-once" : "");
    printf("crash_harness: %s store, %s broker, %s, %ld kills, %ld tasks, %s\n", fx_store_kind(),
           fx_kafka_kind(), exactly_once ? "exactly-once" : "at-least-once", kills, tasks, what);
    sd_rng_t rng;
    sd_rng_seed(&rng, seed);
    fx_scenario_t s;
    /* SESSIOND_TEST_SEED, else --seed, else the time */
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = what, .seed = seed, .tasks = (size_t)tasks,
                                               .unsent = 1, .store = "crash"});

    /* The workload arrives in as many slices as there are lives. */
    size_t slice = s.pub.workload.count / (size_t)(kills + 1) + 1, sent = 0;
    fx_proc_t p;
    for (int cycle = 0; cycle < kills; cycle++)
        one_life(&p, s.kafka, &s.pub, &sent, sent + slice, cycle, (int)sd_rng_below(&rng, 3),
                 &rng);

    /* The last life: until every event is applied and committed. */
    one_life(&p, s.kafka, &s.pub, &sent, s.pub.workload.count, (int)kills, -1, &rng);
    pfx_wait_committed(s.kafka, "sessiond");
    fx_proc_kill(&p, SIGTERM);
    ck_assert(fx_proc_wait(&p, 30000));
    char *log = fx_read_file(p.log);
    ck_assert_msg(fx_proc_exit_code(&p) == 0, "the last sessiond ended with %d:\n%s",
                  fx_proc_exit_code(&p), log);
    free(log);
    unlink(p.log);

    fx_scenario_expect(&s, PFX_NOW, exactly_once);
    printf("crash_harness: %zu events sent (%zu invalid), %zu changes and %zu dead letters "
           "out: consistent\n",
           s.pub.sent, s.pub.invalid, s.out.count, s.dlq.count);
    if (exactly_once) {
        /* The kills inside transactions left messages that were aborted:
         * there, and hidden from read_committed consumers. */
        seen_t raw;
        pfx_read_topic_as(s.kafka, s.kafka->output, "read_uncommitted", &raw);
        seen_t raw_dlq;
        pfx_read_topic_as(s.kafka, s.kafka->dlq, "read_uncommitted", &raw_dlq);
        size_t aborted = raw.count + raw_dlq.count - s.out.count - s.dlq.count;
        printf("crash_harness: %ld kills inside a transaction; %zu aborted messages, unseen by "
               "read_committed\n",
               aborted_kills, aborted);
        if (aborted_kills > 0)
            ck_assert_msg(aborted > 0, "%ld transactions were killed after producing, yet "
                                       "read_uncommitted sees no more than read_committed",
                          aborted_kills);
        pfx_seen_free(&raw);
        pfx_seen_free(&raw_dlq);
    }

    expiry_lives(&s, &rng, &sent);
    fx_scenario_end(&s);
}
END_TEST

static void add_tests(TCase *tc) { tcase_add_test(tc, crash_anywhere_then_converge); }

int main(int argc, char **argv)
{
    seed = pfx_seed((uint64_t)time(NULL));
    int fixed = argc > 2 && strncmp(argv[2], "--", 2) != 0 ? 3 : 2; /* store [broker] */
    int bad = argc < 2;
    for (int i = fixed; !bad && i < argc; i += 2) {
        if (i + 1 >= argc)
            bad = 1;
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--kills"))
            kills = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--tasks"))
            tasks = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--delivery") && !strcmp(argv[i + 1], "exactly-once"))
            exactly_once = 1;
        else if (strcmp(argv[i], "--delivery") || strcmp(argv[i + 1], "at-least-once"))
            bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: crash_harness sqlite|mongodb [mock|kafka] [--seed N] [--kills N] "
                        "[--tasks N] [--delivery at-least-once|exactly-once]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    return pfx_suite_main(fixed, argv, "crash_harness", "crash", (int)(90 + (kills + 4 + kills / 4) * 30),
                          add_tests);
}
