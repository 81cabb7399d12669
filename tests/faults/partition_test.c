/* Networks that go silent: packets stop, sockets stay open, nothing is
 * refused (tests/support/proxy.h's cut).  Two `sessiond run` members of one
 * group on Apache Kafka; one of them, B, reaches the broker only through a
 * proxy (the broker's PROXIED listener, scripts/kafka.sh), or its MongoDB
 * only through one (a standalone jongodb of the test's own), and
 * mid-stream that proxy is cut for a while and then healed.  The producer
 * and member A talk to both directly.  While B cannot make progress, its
 * /readyz must say so; after the heal B must process again, and the
 * usual end check holds: the store and the fold of the output equal the
 * model, a change seen twice is an exact copy (exactly-once: none is),
 * every dead letter is there.
 *
 *   partition_test sqlite|mongodb kafka   (SESSIOND_TEST_SEED=N replays;
 *   SESSIOND_TEST_LOOP=K runs the Kth case alone) */
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
 * committed everything: B's session ends (4 s) and it joins again; a
 * transaction B left open is aborted by the broker (10 s, looked for every
 * second) before its partitions' offsets are stable; a store connection
 * B's driver gave up on is found again (2 s server selection). */
#define HEALED_WITHIN_MS 60000

typedef enum target { KAFKA, STORE } target_t;

typedef struct cut {
    target_t target;
    const char *what;
    long ms;
} cut_t;

/* The members' session.timeout.ms is 4 s and, exactly-once,
 * transaction.timeout.ms 10 s (recfx.c); at-least-once waits 30 s for a
 * batch's deliveries before it backs off.  B's MongoDB URI sets
 * socketTimeoutMS 4 s and serverSelectionTimeoutMS 2 s. */
static const cut_t cuts[] = {
    {KAFKA, "cut from Kafka for less than session.timeout.ms", 2000},
    {KAFKA, "cut from Kafka past session.timeout.ms", 8000},
    {KAFKA, "cut from Kafka past transaction.timeout.ms and the delivery wait", 40000},
    {STORE, "cut from MongoDB for less than socketTimeoutMS", 2000},
    {STORE, "cut from MongoDB past socketTimeoutMS and serverSelectionTimeoutMS", 10000},
};
#define N_CUTS (int)(sizeof cuts / sizeof cuts[0])

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

/* A metric without labels from B's /metrics; -1 if it did not answer. */
static long metric_of(int http_port, const char *name)
{
    char body[65536], line[128];
    if (rfx_http_get(http_port, "/metrics", 2000, body, sizeof body) != 200)
        return -1;
    snprintf(line, sizeof line, "\n%s ", name);
    const char *at = strstr(body, line);
    return at ? atol(at + strlen(line)) : -1;
}

static long batches_of(int http_port)
{
    return metric_of(http_port, "sessiond_batches_total");
}

/* Whether B is back: holding partitions and ready, within ms; else what
 * /readyz said last, in why. */
static int back_within(int http_port, long ms, char *why, size_t cap)
{
    snprintf(why, cap, "no answer");
    for (int64_t end = sd_monotonic_ms() + ms; sd_monotonic_ms() < end; sd_sleep_ms(200)) {
        long held = metric_of(http_port, "sessiond_assigned_partitions");
        int status = rfx_http_get(http_port, "/readyz", 1000, why, cap);
        if (held > 0 && status == 200)
            return 1;
    }
    return 0;
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

/* The proxy B reaches its target through: the broker's PROXIED listener,
 * or a standalone jongodb of the test's own (*jongodb; the scenario's
 * store and member A use it directly). */
static fx_proxy_t *start_proxy(const cut_t *cut, pid_t *jongodb, char *b_target, size_t cap)
{
    fx_proxy_t *proxy;
    if (cut->target == KAFKA) {
        int advertised, listener;
        proxied_ports(&advertised, &listener);
        proxy = fx_proxy_start_on(advertised, "127.0.0.1", listener);
        ck_assert_msg(proxy != NULL, "cannot listen on port %d, where the broker advertises "
                                     "its PROXIED listener", advertised);
        snprintf(b_target, cap, "127.0.0.1:%d", advertised);
        return proxy;
    }
    int port;
    *jongodb = fx_jongodb_start(&port);
    ck_assert_int_gt(*jongodb, 0); /* add_tests() checked SESSIOND_TEST_JONGODB */
    char direct[128];
    snprintf(direct, sizeof direct, "mongodb://127.0.0.1:%d/", port);
    setenv("SESSIOND_TEST_MONGO_URI", direct, 1); /* the scenario's store and member A */
    proxy = fx_proxy_start("127.0.0.1", port);
    ck_assert_ptr_nonnull(proxy);
    snprintf(b_target, cap,
             "mongodb://127.0.0.1:%d/?socketTimeoutMS=4000&serverSelectionTimeoutMS=2000"
             "&connectTimeoutMS=2000",
             fx_proxy_port(proxy));
    return proxy;
}

START_TEST(member_cut_off)
{
    int exactly_once = _i % 2;
    const cut_t *cut = &cuts[_i / 2];
    char what[160];
    snprintf(what, sizeof what, "%s, %s", cut->what,
             exactly_once ? "exactly-once" : "at-least-once");
    pid_t jongodb = -1;
    char b_target[256];
    fx_proxy_t *proxy = start_proxy(cut, &jongodb, b_target, sizeof b_target);
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = what, .seed = 20261220 + (uint64_t)_i,
                                               .tasks = 240, .partitions = 6, .unsent = 1,
                                               .store = "members", .order = FX_LATE_AFTER_CUTS});
    size_t third = s.pub.workload.count / 3;

    /* B says it is stalled after a second without progress */
    const char *b_args[] = {cut->target == KAFKA ? "--brokers" : "--store", b_target,
                            "--stall-timeout", "1s", NULL};
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

    /* B holds partitions again and is ready; then the last third, of
     * which it must process its share */
    int64_t healed = sd_monotonic_ms();
    char readyz[1024];
    int back = back_within(b_http, HEALED_WITHIN_MS, readyz, sizeof readyz);
    int64_t back_after = sd_monotonic_ms() - healed;
    long back_at = batches_of(b_http);
    pfx_send(s.kafka, &s.pub, 2 * third, s.pub.workload.count);
    long left = HEALED_WITHIN_MS - (sd_monotonic_ms() - healed);
    int committed = back && pfx_committed_within(s.kafka, "sessiond", left > 0 ? left : 1);
    long b_batches = batches_of(b_http);
    char failed[512] = "";
    if (!back)
        snprintf(failed, sizeof failed, "B did not hold partitions and say it was ready within "
                 "%d s of the heal (%ld partitions; /readyz: %.300s)", HEALED_WITHIN_MS / 1000,
                 metric_of(b_http, "sessiond_assigned_partitions"), readyz);
    else if (!committed)
        snprintf(failed, sizeof failed, "the group did not commit every event within %d s of "
                 "the heal", HEALED_WITHIN_MS / 1000);
    else if (b_batches <= back_at)
        snprintf(failed, sizeof failed, "B processed nothing of what came after it was back "
                 "(its batches: %ld then, %ld at the end)", back_at, b_batches);
    else if (!said_not_ready)
        snprintf(failed, sizeof failed, "B's /readyz never said 503 during the cut");
    if (failed[0] || getenv("SESSIOND_TEST_VERBOSE")) {
        char *log = fx_read_file(b.log);
        fprintf(stderr, "---- B's log ----\n%s---- end of B's log ----\n", log);
        free(log);
    }
    ck_assert_msg(!failed[0], "%s: %s (B's log above)", s.ctx, failed);
    printf("partition_test: %s: B not ready during the cut (%s), back %.1f s after the heal\n",
           s.ctx, reason, (double)back_after / 1000.0);
    rfx_member_stop(&a);
    rfx_member_stop(&b);
    size_t repeated = fx_scenario_expect(&s, PFX_NOW, exactly_once);
    printf("partition_test: %s: %zu changes (%zu repeated), %zu dead letters\n", s.ctx,
           s.out.count, repeated, s.dlq.count);
    fx_scenario_end(&s);
    fx_proxy_stop(proxy);
    fx_jongodb_stop(jongodb);
}
END_TEST

/* Cut i covers loop indices 2i (at-least-once) and 2i + 1; the store cuts
 * run against MongoDB only (SQLite has no network). */
static void add_tests(TCase *tc)
{
    const char *only = getenv("SESSIOND_TEST_ONLY"), *loop = getenv("SESSIOND_TEST_LOOP");
    if (only && strcmp(only, "member_cut_off") != 0)
        return;
    int mongodb = strcmp(fx_store_kind(), "mongodb") == 0;
    const char *jongodb = getenv("SESSIOND_TEST_JONGODB");
    if (mongodb && (!jongodb || !*jongodb))
        fprintf(stderr, "partition_test: the MongoDB cuts need a jongodb of their own "
                        "(SESSIOND_TEST_JONGODB, which scripts/test.sh sets): not run\n");
    for (int i = 0; i < 2 * N_CUTS; i++)
        if ((!loop || atoi(loop) == i) &&
            (cuts[i / 2].target == KAFKA || (mongodb && jongodb && *jongodb)))
            tcase_add_loop_test(tc, member_cut_off, i, i + 1);
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
