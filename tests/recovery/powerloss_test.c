/* A power loss under the SQLite store (tests/support/powerloss.h): the
 * pipeline runs with its file behind a VFS that, when the power goes,
 * drops every write not followed by a sync; at a seeded moment mid-stream
 * the power goes, the machine is dead, and after the reboot a new pipeline
 * of the same group carries on from the offsets Kafka holds.  Since no
 * offset is committed before the store write it covers is on the disk,
 * the store must end equal to the model, and the output must fold to it.
 *
 *   powerloss_test sqlite mock|kafka   (SESSIOND_TEST_SEED=N replays) */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerloss.h"
#include "scenario.h"

#define LOOPS 3

START_TEST(power_loss_loses_nothing_committed)
{
    int exactly_once = fx_kafka_is_real() && _i == LOOPS - 1;
    char what[96];
    snprintf(what, sizeof what, "power loss %d, %s", _i,
             exactly_once ? "exactly-once" : "at-least-once");
    fx_powerloss_install(); /* before the store opens its file */
    fx_scenario_t s;
    fx_scenario_begin(&s, (fx_scenario_spec_t){.what = what, .seed = 20261230 + (uint64_t)_i,
                                               .tasks = 150, .store = "power"});
    /* the power goes this many batches in, and then within the next ones */
    long cut_after = 2 + (long)(s.seed % 20);
    int64_t then_ms = (int64_t)(s.seed / 20 % 8);

    sd_pipeline_thread_t r;
    pfx_prepare(&r, s.kafka, s.store, "sessiond");
    r.cfg.batch_max = 10;
    if (exactly_once)
        pfx_exactly_once(&r, s.kafka, "power");
    pfx_go(&r);
    for (int i = 0; i < 1200 && atomic_load(&r.stats.batches) < cut_after; i++)
        sd_sleep_ms(5);
    sd_sleep_ms(then_ms);
    size_t syncs = fx_powerloss_syncs();
    size_t lost = fx_powerloss_cut();
    long batches = atomic_load(&r.stats.batches);
    ck_assert_msg(batches >= cut_after, "%s: only %ld batches within 6 s", s.ctx, batches);

    /* the dead machine's pipeline and connections go */
    sd_error_t err;
    if (sd_pipeline_thread_stop(&r, &err) != SD_OK)
        printf("powerloss_test: %s: the pipeline stopped on: %s\n", s.ctx, err.message);
    sd_store_close(s.store);
    fx_powerloss_restore();
    printf("powerloss_test: %s: the power went after %ld batches (%zu syncs, %zu writes lost)\n",
           s.ctx, batches, syncs, lost);

    /* the reboot: from the file as the power loss left it, and Kafka's offsets */
    s.store = fx_store_open("power", PFX_TTL);
    pfx_prepare(&r, s.kafka, s.store, "sessiond");
    if (exactly_once)
        pfx_exactly_once(&r, s.kafka, "power");
    pfx_go(&r);
    pfx_wait_committed(s.kafka, "sessiond");
    pfx_finish(&r);
    fx_scenario_expect(&s, PFX_NOW, exactly_once);
    fx_scenario_end(&s);
}
END_TEST

static void add_tests(TCase *tc)
{
    if (strcmp(fx_store_kind(), "sqlite") != 0)
        return;
    const char *only = getenv("SESSIOND_TEST_ONLY");
    if (!only || !strcmp(only, "power_loss_loses_nothing_committed"))
        tcase_add_loop_test(tc, power_loss_loses_nothing_committed, 0, LOOPS);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "sqlite") != 0) {
        fprintf(stderr, "usage: powerloss_test sqlite [mock|kafka] (the power loss is of the "
                        "SQLite store's disk)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    return pfx_suite_main(argc, argv, "powerloss_test", "powerloss", 120, add_tests);
}
