/* The SQLite file's layout: files of the first layout (a WITHOUT ROWID
 * table keyed by task_id, from before user_version 2) are rewritten when
 * opened and go on exactly as a file written in the current layout. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

#include "storefx.h"
#include "sessiond/workload.h"

#define DAY INT64_C(86400000)
#define TTL (7 * DAY)
#define T0 INT64_C(1790000000000)
#define SEED 20261202u

/* The first layout, as sessiond wrote it; without_unsent leaves out the
 * column files from before expiries were acknowledged lack. */
static void write_first_layout(const char *path, const char *from, int without_unsent)
{
    char sql[4096];
    snprintf(sql, sizeof sql,
             "CREATE TABLE sessions (task_id TEXT PRIMARY KEY, short_id TEXT, task_type TEXT,"
             " user_id TEXT, metadata TEXT, status TEXT NOT NULL DEFAULT 'active',"
             " created_at INTEGER, created_by TEXT, status_at INTEGER, status_by TEXT,"
             " removed_reason TEXT, removed_by TEXT, removed_at INTEGER, removed_topic TEXT,"
             " removed_partition INTEGER, removed_offset INTEGER, updated_at INTEGER,"
             " live INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0,"
             " last_change TEXT, last_cause TEXT, purge_at INTEGER NOT NULL%s) WITHOUT ROWID;"
             "CREATE INDEX sessions_short_id ON sessions(short_id);"
             "CREATE INDEX sessions_updated_at ON sessions(updated_at);"
             "CREATE INDEX sessions_purge_at ON sessions(purge_at);"
             "%s"
             "CREATE TABLE saves (short_id TEXT PRIMARY KEY, saved_at INTEGER NOT NULL,"
             " saved_by TEXT NOT NULL, topic TEXT, partition INTEGER, offset INTEGER,"
             " purge_at INTEGER NOT NULL) WITHOUT ROWID;"
             "CREATE INDEX saves_purge_at ON saves(purge_at);"
             "ATTACH '%s' AS current;"
             "INSERT INTO sessions SELECT task_id, short_id, task_type, user_id, metadata,"
             " status, created_at, created_by, status_at, status_by, removed_reason,"
             " removed_by, removed_at, removed_topic, removed_partition, removed_offset,"
             " updated_at, live, version, last_change, last_cause, purge_at%s"
             " FROM current.sessions ORDER BY task_id;"
             "INSERT INTO saves SELECT * FROM current.saves;",
             without_unsent ? "" : ", expiry_unsent INTEGER NOT NULL DEFAULT 0",
             without_unsent ? ""
                            : "CREATE INDEX sessions_expiry_unsent ON sessions(task_id)"
                              " WHERE expiry_unsent = 1;",
             from, without_unsent ? "" : ", expiry_unsent");
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *why = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &why) == SQLITE_OK, "%s", why);
    sqlite3_close(db);
}

static int64_t query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static char *all_sessions(sd_store_t *store, int64_t now)
{
    sd_session_list_t list;
    sd_error_t err;
    ck_assert_msg(sd_store_list_all(store, now, &list, &err) == SD_OK, "%s", err.message);
    size_t cap = 1, used = 0;
    char *text = calloc(1, 1);
    for (size_t i = 0; i < list.count; i++) {
        const sd_session_t *s = &list.items[i];
        char line[1024];
        int n = snprintf(line, sizeof line, "%s %s %s %d %lld %lld\n", s->task_id,
                         s->short_id ? s->short_id : "-", s->task_type, (int)s->status,
                         (long long)s->created_at_ms, (long long)s->updated_at_ms);
        text = realloc(text, cap += (size_t)n);
        ck_assert_ptr_nonnull(text);
        memcpy(text + used, line, (size_t)n + 1);
        used += (size_t)n;
    }
    sd_session_list_free(&list);
    return text;
}

static void expect_same_changes(const sd_change_list_t *a, const sd_change_list_t *b)
{
    ck_assert_uint_eq(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        char *x = fx_change_json(&a->items[i]), *y = fx_change_json(&b->items[i]);
        ck_assert_str_eq(x, y);
        free(x);
        free(y);
    }
}

START_TEST(first_layout_is_rewritten_and_goes_on_the_same)
{
    int without_unsent = _i;
    sd_workload_params_t p = {.seed = SEED, .tasks = 300, .now_ms = T0, .ttl_ms = TTL,
                              .id_prefix = "", .ids = SD_IDS_UUID};
    sd_workload_t w;
    sd_error_t err;
    ck_assert_int_eq(sd_workload_generate(&p, &w, &err), SD_OK);
    fx_events_t events = {0};
    for (size_t i = 0; i < w.count; i++)
        fx_events_add_json(&events, w.lines[i].json);
    sd_workload_free(&w);
    size_t half = events.count / 2, *order = malloc(events.count * sizeof *order);
    for (size_t i = 0; i < events.count; i++)
        order[i] = i;
    const size_t sizes[] = {37, 5, 200};

    /* The same first half in a current file and in a first-layout copy of it. */
    sd_store_t *current = fx_store_open("current", TTL);
    sd_change_list_t ignored = {0};
    fx_apply(current, &events, order, half, sizes, 3, T0, &ignored);
    sd_change_list_free(&ignored);
    char uri[512], db[16], old_path[600];
    fx_store_locate("current", uri, sizeof uri, db, sizeof db);
    fx_store_locate("old", old_path, sizeof old_path, db, sizeof db);
    write_first_layout(old_path + strlen("sqlite:"), uri + strlen("sqlite:"), without_unsent);
    ck_assert_int_eq(query_int(old_path + 7, "PRAGMA user_version"), 0);

    sd_store_t *old = fx_store_open("old", TTL);
    ck_assert_int_eq(query_int(old_path + 7, "PRAGMA user_version"), 2);
    ck_assert_int_eq(query_int(old_path + 7, "SELECT COUNT(*) FROM sqlite_schema"
                                             " WHERE name = 'sessions_first_layout'"), 0);
    ck_assert_int_eq(query_int(old_path + 7, "SELECT COUNT(*) FROM sessions"),
                     query_int(uri + 7, "SELECT COUNT(*) FROM sessions"));
    char *a = all_sessions(current, T0), *b = all_sessions(old, T0);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);

    /* Redelivered messages re-publish the same kept changes; the second
     * half, the sweep and the model agree. */
    sd_change_list_t ca = {0}, cb = {0};
    fx_apply(current, &events, order, events.count, sizes, 3, T0, &ca);
    fx_apply(old, &events, order, events.count, sizes, 3, T0, &cb);
    expect_same_changes(&ca, &cb);
    fx_sweep_all(current, T0 + 30 * DAY, &ca);
    fx_sweep_all(old, T0 + 30 * DAY, &cb);
    expect_same_changes(&ca, &cb);
    fx_expect_model(old, &events, T0, TTL, "the rewritten file");
    sd_change_list_free(&ca);
    sd_change_list_free(&cb);
    sd_store_close(current);
    sd_store_close(old);
    fx_events_free(&events);
    free(order);
}
END_TEST

START_TEST(a_newer_layout_is_refused_with_what_to_do)
{
    sd_store_close(fx_store_open("newer", TTL));
    char uri[512], db[16];
    fx_store_locate("newer", uri, sizeof uri, db, sizeof db);
    sqlite3 *raw;
    ck_assert_int_eq(sqlite3_open(uri + 7, &raw), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(raw, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    sd_store_config_t cfg = {.session_ttl_ms = TTL, .timeout_ms = 20000, .uri = uri};
    sd_store_t *store = NULL;
    sd_error_t err;
    ck_assert_int_ne(sd_store_open(&cfg, &store, &err), SD_OK);
    ck_assert_ptr_null(store);
    ck_assert_msg(strstr(err.message, "layout 3") && strstr(err.message, "sessiond replay"),
                  "%s", err.message);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, first_layout_is_rewritten_and_goes_on_the_same, 0, 2);
    FX_ADD_TEST(tc, a_newer_layout_is_refused_with_what_to_do);
}

int main(int argc, char **argv)
{
    (void)argc;
    char *args[] = {argv[0], "sqlite", NULL};
    return fx_store_suite_main(2, args, "sqlite_layout", "layout", 120, add_tests);
}
