/* Networks that go silent: packets stop, sockets stay open, nothing is
 * refused (tests/support/proxy.h's cut).  Two `sessiond run` members of one
 * group on Apache Kafka; one of them, B, reaches the broker only through a
 * proxy (the broker's PROXIED listener, scripts/kafka.sh), or its store
 * only through one, and mid-stream that proxy is cut for a while and then
 * healed.  The producer and member A talk to both directly.  After the
 * heal B must process again, and the usual end check holds: the store and
 * the fold of the output equal the model, a change seen twice is an exact
 * copy (exactly-once: none is), every dead letter is there.  While B
 * cannot make progress, its /readyz must say so.
 *
 *   partition_test sqlite|mongodb kafka   (SESSIOND_TEST_SEED=N replays) */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"
#include "recfx.h"

/* How long after the heal B must have processed again and the group
 * committed everything: B's session ends (4 s), it joins again, and a
 * transaction B left open is aborted by the broker (10 s, looked for every
 * second) before its partitions' offsets are stable. */
#define HEALED_WITHIN_MS 60000

typedef struct cut {
    const char *what;
    long ms;
} cut_t;

/* The members' session.timeout.ms is 4 s and, exactly-once,
 * transaction.timeout.ms 10 s (recfx.c). */
static const cut_t kafka_cuts[] = {
    {"cut from Kafka for less than session.timeout.ms", 2000},
    {"cut from Kafka past session.timeout.ms", 8000},
    {"cut from Kafka past transaction.timeout.ms", 40000},
};

/* The shared broker's PROXIED listener: the port it advertises and the
 * one it listens on. */
static void proxied_ports(int *advertised, int *listener)
{
    const char *dir = getenv("SESSIOND_TEST_KAFKA_DIR");
    ck_assert_msg(dir && *dir, "the partition tests need the broker of the ctest fixture "
                               "kafka.start (SESSIOND_TEST_KAFKA_DIR): its PROXIED listener");
    char path[600];
    snprintf(path, sizeof path, "%s/proxied", dir);
    char *text = fx_read_file(path);
    ck_assert_msg(sscanf(text, "%d %d", advertised, listener) == 2,
                  "%s holds no \"ADVERTISED LISTENER\" ports: a broker scripts/kafka.sh "
                  "started before it had a PROXIED listener?",
                  path);
    free(text);
}

/* B's count of batches committed, from its /metrics; -1 if it did not answer. */
static long batches_of(int http_port)
{
    char body[65536];
    if (rfx_http_get(http_port, "/metrics", 2000, body, sizeof body) != 200)
        return -1;
    const char *at = strstr(body, "\nsessiond_batches_total ");
    return at ? atol(at + strlen("\nsessiond_batches_total ")) : -1;
}

/* Watches B's /readyz for ms: whether it said 503 at least once, and why
 * (the last reason it gave). */
static int watch_not_ready(int http_port, long ms, char *reason, size_t cap)
{
    int said = 0;
    for (int64_t end = sd_monotonic_ms() + ms; sd_monotonic_ms() < end;) {
        char body[1024];
        int status = rfx_http_get(http_port, "/readyz", 1000, body, sizeof body);
        if (status == 503) {
            said = 1;
            snprintf(reason, cap, "%s", body);
        }
        sd_sleep_ms(200);
    }
    return said;
}

START_TEST(member_cut_from_kafka)
{
    int exactly_once = _i % 2;
    const cut_t *cut = &kafka_cuts[_i / 2];
    char what[160];
    snprintf(what, sizeof what, "%s, %s", cut->what,
             exactly_once ? "exactly-once" : "at-least-once");
    int advertised, listener;
    proxied_ports(&advertised, &listener);
    fx_proxy_t *proxy = fx_proxy_start_on(advertised, "127.0.0.1", listener);
    ck_assert_msg(proxy != NULL, "cannot listen on port %d, where the broker advertises its "
                                 "PROXIED listener", advertised);
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = what, .seed = 20261220 + (uint64_t)_i,
                                               .tasks = 240, .partitions = 6, .unsent = 1,
                                               .store = "members", .late_copies = 1});
    size_t third = s.pub.workload.count / 3;

    char through_proxy[64];
    snprintf(through_proxy, sizeof through_proxy, "127.0.0.1:%d", advertised);
    /* B says it is stalled after a second without progress */
    const char *b_args[] = {"--brokers", through_proxy, "--stall-timeout", "1s", NULL};
    rfx_member_t a, b;
    rfx_member_start(&a, s.kafka, "a", exactly_once, NULL, NULL);
    rfx_member_start(&b, s.kafka, "b", exactly_once, b_args, NULL);
    rfx_member_wait_log(&a, "partitions assigned", 60000);
    rfx_member_wait_log(&b, "partitions assigned", 60000);
    int b_http = rfx_member_http_port(&b);

    /* the cut lands while B works through its share of the first third */
    pfx_send(s.kafka, &s.pub, 0, third);
    for (int i = 0; i < 200 && batches_of(b_http) < 1; i++)
        sd_sleep_ms(25);
    fx_proxy_set_cut(proxy, 1);
    pfx_send(s.kafka, &s.pub, third, 2 * third);
    char reason[1024] = "";
    int said_not_ready = watch_not_ready(b_http, cut->ms, reason, sizeof reason);
    fx_proxy_set_cut(proxy, 0);
    long healed_at = batches_of(b_http);

    pfx_send(s.kafka, &s.pub, 2 * third, s.pub.workload.count);
    int committed = pfx_committed_within(s.kafka, "sessiond", HEALED_WITHIN_MS);
    long b_batches = batches_of(b_http);
    char failed[512] = "";
    if (!committed)
        snprintf(failed, sizeof failed, "the group did not commit every event within %d s of "
                 "the heal", HEALED_WITHIN_MS / 1000);
    else if (b_batches <= healed_at)
        snprintf(failed, sizeof failed, "B processed nothing within %d s of the heal (its "
                 "batches: %ld at the heal, %ld now)", HEALED_WITHIN_MS / 1000, healed_at,
                 b_batches);
    else if (!said_not_ready)
        snprintf(failed, sizeof failed, "B's /readyz never said 503 during the cut");
    if (failed[0] || getenv("SESSIOND_TEST_VERBOSE")) {
        char *log = fx_read_file(b.log);
        fprintf(stderr, "---- B's log ----\n%s---- end of B's log ----\n", log);
        free(log);
    }
    ck_assert_msg(!failed[0], "%s: %s (B's log above)", s.ctx, failed);
    printf("partition_test: %s: B not ready during the cut: %s\n", s.ctx, reason);
    rfx_member_stop(&a);
    rfx_member_stop(&b);
    size_t repeated = fx_scenario_expect(&s, PFX_NOW, exactly_once);
    printf("partition_test: %s: %zu changes (%zu repeated), %zu dead letters\n", s.ctx,
           s.out.count, repeated, s.dlq.count);
    fx_scenario_end(&s);
    fx_proxy_stop(proxy);
}
END_TEST

static void add_tests(TCase *tc)
{
    const char *only = getenv("SESSIOND_TEST_ONLY"), *loop = getenv("SESSIOND_TEST_LOOP");
    int n = (int)(sizeof kafka_cuts / sizeof kafka_cuts[0]) * 2;
    int from = loop ? atoi(loop) : 0, to = loop ? from + 1 : n;
    if (!only || !strcmp(only, "member_cut_from_kafka"))
        tcase_add_loop_test(tc, member_cut_from_kafka, from, to);
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[2], "kafka") != 0) {
        fprintf(stderr, "usage: partition_test sqlite|mongodb kafka (Apache Kafka only: the "
                        "cut member reaches it through the broker's PROXIED listener)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    return pfx_suite_main(argc, argv, "partition_test", "partition", 600, add_tests);
}
