/* Store test helpers: fresh stores of either kind, applying event sets,
 * and comparing what a store shows with the reference model. */
#ifndef SESSIOND_STOREFX_H
#define SESSIOND_STOREFX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fixtures.h"
#include "sessiond/model.h"
#include "sessiond/store.h"

/* "sqlite" or "mongodb": which store the suite runs against.  For mongodb
 * the URI comes from SESSIOND_TEST_MONGO_URI. */
void fx_store_kind_set(const char *kind);
const char *fx_store_kind(void);

/* A fresh, empty store (its own SQLite file or MongoDB database); a second
 * call with the same `name` opens a second connection to the same one. */
sd_store_t *fx_store_open(const char *name, int64_t ttl_ms);

/* Where fx_store_open(name) keeps its store, for a sessiond child process:
 * the --store URI, and the --database ("" for SQLite). */
void fx_store_locate(const char *name, char *uri, size_t uri_cap, char *database,
                     size_t db_cap);

/* The main() of a suite run once per store: `program sqlite|mongodb`.
 * Skips (exit 77) mongodb without SESSIOND_TEST_MONGO_URI; builds one test
 * case with the timeout and fx_store_cleanup() after each test, lets
 * add_tests() fill it, and runs it. */
int fx_store_suite_main(int argc, char **argv, const char *program, const char *tcase_name,
                        int timeout_s, void (*add_tests)(TCase *tc));

/* Adds test t to tc unless SESSIOND_TEST_ONLY names another test. */
#define FX_ADD_TEST(tc, t)                                                              \
    do {                                                                                \
        const char *only_ = getenv("SESSIOND_TEST_ONLY");                              \
        if (!only_ || !strcmp(only_, #t))                                               \
            tcase_add_test(tc, t);                                                      \
    } while (0)

/* A standalone jongodb of the test's own ($SESSIOND_TEST_JONGODB, which
 * scripts/test.sh sets), for tests that put a proxy between it and
 * sessiond: a replica set member would advertise its real address, and
 * jongodb refuses the read preference a direct connection sends.  Returns
 * its pid with *port, or -1 when SESSIOND_TEST_JONGODB is not set. */
pid_t fx_jongodb_start(int *port);
void fx_jongodb_stop(pid_t pid);

/* Drops what fx_store_open created in this process (a Check teardown). */
void fx_store_cleanup(void);

/* Applies events[order[i]] for i < n in batches of the given sizes
 * (cycled), appending every published change to changes.  Event k is one
 * message, read from task-events partition k % 4 at offset k / 4 whatever
 * the order: applying it again is a redelivery. */
void fx_apply(sd_store_t *store, const fx_events_t *events, const size_t *order, size_t n,
              const size_t *batch_sizes, size_t n_sizes, int64_t now_ms,
              sd_change_list_t *changes);

/* Fails the test unless the store's visible sessions at now equal the
 * model's for the same events. */
void fx_expect_model(sd_store_t *store, const fx_events_t *events, int64_t now_ms,
                     int64_t ttl_ms, const char *context);

/* How far a session's versions may go back in emission order. */
typedef enum fx_order {
    FX_ORDERED = 0, /* one member at a time: never */
    /* several members: to an older change caused by an event of another
     * input partition.  A scenario.saved is keyed by short_id, so one
     * member may apply the save while another applies the events of a
     * session it covers; each publishes with a producer of its own, and
     * nothing orders two producers' messages. */
    FX_ACROSS_PARTITIONS,
    /* and an at-least-once member cut off from Kafka delivers, after the
     * heal, changes it held behind what the member that took over
     * published: back to any older change */
    FX_LATE_AFTER_CUTS,
} fx_order_t;

/* Fails unless folding changes (highest version per task_id) gives the
 * model's visible sessions, and versions never went back beyond what
 * `order` allows, and then only to a change that no other change of that
 * version contradicts. */
void fx_expect_fold(const sd_change_list_t *changes, const fx_events_t *events,
                    int64_t now_ms, int64_t ttl_ms, fx_order_t order, const char *context);

/* Sweeps as a member does, until nothing is due: the expiry events of the
 * sessions due at now_ms, as JSON through the event reader, are applied
 * at now_ms from task-events partition 0 at offsets of their own, and
 * marked published.  Appends the changes; returns the events published. */
size_t fx_sweep_all(sd_store_t *store, int64_t now_ms, sd_change_list_t *changes);

/* Applies due's expiry event at now_ms as read from (topic, partition,
 * offset), appending the changes; returns the apply status. */
sd_apply_status_t fx_apply_expiry(sd_store_t *store, const sd_expiry_due_t *due, int64_t now_ms,
                                  const char *topic, int32_t partition, int64_t offset,
                                  sd_change_list_t *changes);

/* Compact JSON of a change, for exact comparisons; caller frees. */
char *fx_change_json(const sd_change_t *change);

#endif
