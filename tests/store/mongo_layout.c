/* MongoDB documents as sessiond 0.1 left them read and expire correctly:
 * its sweeper expired sessions itself, logging an expiry entry without a
 * cause, and flagged each with its sweep (unsent_expiry) until it knew the
 * change delivered.  A flagged expiry still the session's last change is
 * taken back and made again through the log, with the same version; a
 * superseded flag is dropped; a delivered expiry stays. */
#include <check.h>
#include <mongoc/mongoc.h>
#include <stdio.h>

#include "storefx.h"

#define DAY INT64_C(86400000)
#define TTL (7 * DAY)

/* What 0.1's sweep `batch` did to task_id at now_ms; flagged: not yet
 * known delivered. */
static void expire_as_0_1(mongoc_collection_t *coll, const char *task_id, const char *batch,
                          int64_t now_ms, int flagged)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(task_id));
    bson_t *update = flagged ? BCON_NEW("$set", "{", "expired", BCON_BOOL(true), "unsent_expiry",
                                        BCON_UTF8(batch), "}")
                             : BCON_NEW("$set", "{", "expired", BCON_BOOL(true), "}");
    BCON_APPEND(update, "$addToSet", "{", "log", "{", "b", BCON_UTF8(batch), "n",
                BCON_DATE_TIME(now_ms), "k", BCON_UTF8("x"), "}", "}");
    bson_error_t error;
    ck_assert_msg(mongoc_collection_update_one(coll, filter, update, NULL, NULL, &error), "%s",
                  error.message);
    bson_destroy(filter);
    bson_destroy(update);
}

START_TEST(documents_of_0_1_read_and_expire)
{
    fx_events_t e = {0};
    fx_create(&e, "c1", "t1", "image_analysis", "s1", 10);
    fx_create(&e, "c2", "t2", "scenario_generation", "s2", 10);
    fx_terminal(&e, "x2", "task.failed", "t2", "scenario_generation", 20);
    fx_create(&e, "c3", "t3", "content_analysis", "s3", 10);
    fx_create(&e, "c4", "t4", "scenario_generation", "s4", 10);
    sd_store_t *store = fx_store_open("layout01", TTL);
    sd_change_list_t changes = {0};
    fx_apply(store, &e, NULL, e.count, NULL, 0, FX_T0, &changes);
    ck_assert_uint_eq(changes.count, 5);

    char uri[512], db[128];
    fx_store_locate("layout01", uri, sizeof uri, db, sizeof db);
    mongoc_client_t *client = mongoc_client_new(uri);
    ck_assert_ptr_nonnull(client);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, db, "sessions");
    int64_t swept_at = FX_T0 + 8 * DAY;
    expire_as_0_1(coll, "t1", "sweep-a", swept_at, 1);
    expire_as_0_1(coll, "t2", "sweep-a", swept_at, 1);
    expire_as_0_1(coll, "t3", "sweep-b", swept_at, 0);
    /* t4: flagged, then revived by a later status before 0.1 knew: the
     * flag is stale (its expiry is not the last change any more) */
    expire_as_0_1(coll, "t4", "sweep-a", swept_at, 1);
    fx_terminal(&e, "x4", "task.completed", "t4", "scenario_generation", 8 * 24 * 60 + 5);
    size_t x4 = e.count - 1;
    sd_change_list_t later = {0};
    fx_apply(store, &e, &x4, 1, NULL, 0, swept_at, &later);
    ck_assert_uint_eq(later.count, 1);
    ck_assert_int_eq(later.items[0].type, SD_CHANGE_STATUS_CHANGED);
    ck_assert_int_eq(later.items[0].version, 3); /* created, 0.1's expiry, revived */

    sd_change_list_t swept = {0};
    ck_assert_uint_eq(fx_sweep_all(store, swept_at, &swept), 2);
    ck_assert_uint_eq(swept.count, 2);
    for (size_t i = 0; i < swept.count; i++) {
        const sd_change_t *c = &swept.items[i];
        int t2 = strcmp(c->session.task_id, "t2") == 0;
        ck_assert_msg(t2 || strcmp(c->session.task_id, "t1") == 0, "%s expired",
                      c->session.task_id);
        ck_assert_int_eq(c->type, SD_CHANGE_EXPIRED);
        ck_assert_int_eq(c->version, t2 ? 3 : 2);
    }
    ck_assert_uint_eq(fx_sweep_all(store, swept_at + DAY, &swept), 0);
    bson_t *flagged = BCON_NEW("unsent_expiry", "{", "$exists", BCON_BOOL(true), "}");
    bson_error_t error;
    ck_assert_int_eq(mongoc_collection_count_documents(coll, flagged, NULL, NULL, NULL, &error),
                     0);
    bson_destroy(flagged);
    fx_expect_model(store, &e, swept_at, TTL, "0.1's documents");

    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    sd_change_list_free(&swept);
    sd_change_list_free(&later);
    sd_change_list_free(&changes);
    sd_store_close(store);
    fx_events_free(&e);
}
END_TEST

static void add_tests(TCase *tc) { FX_ADD_TEST(tc, documents_of_0_1_read_and_expire); }

int main(int argc, char **argv)
{
    (void)argc;
    char *args[] = {argv[0], "mongodb", NULL};
    return fx_store_suite_main(2, args, "mongo_layout", "layout", 120, add_tests);
}
