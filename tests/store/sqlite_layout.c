/* The SQLite file's layout: files of the layouts sessiond 0.1 wrote (a
 * WITHOUT ROWID table keyed by task_id, then user_version 2) are
 * rewritten when opened and go on exactly as a file written in the
 * current layout. */
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

#define OLD_COLUMNS                                                                 \
    "task_id, short_id, task_type, user_id, metadata, status, created_at, created_by,"  \
    " status_at, status_by, removed_reason, removed_by, removed_at, removed_topic,"    \
    " removed_partition, removed_offset, updated_at, live, version, last_change,"     \
    " last_cause, purge_at"

/* The layouts sessiond 0.1 wrote, filled from a current file: the first
 * (WITHOUT ROWID, keyed by task_id; FIRST_BARE: from before expiries were
 * acknowledged, without expiry_unsent) and the second (user_version 2). */
enum { FIRST_BARE, FIRST, SECOND };

static void write_old_layout(const char *path, const char *from, int layout)
{
    const char *first = "CREATE TABLE sessions (task_id TEXT PRIMARY KEY,";
    const char *second = "CREATE TABLE sessions (id INTEGER PRIMARY KEY, task_id TEXT NOT NULL,";
    char sql[4096];
    snprintf(sql, sizeof sql,
             "%s short_id TEXT, task_type TEXT,"
             " user_id TEXT, metadata TEXT, status TEXT NOT NULL DEFAULT 'active',"
             " created_at INTEGER, created_by TEXT, status_at INTEGER, status_by TEXT,"
             " removed_reason TEXT, removed_by TEXT, removed_at INTEGER, removed_topic TEXT,"
             " removed_partition INTEGER, removed_offset INTEGER, updated_at INTEGER,"
             " live INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0,"
             " last_change TEXT, last_cause TEXT, purge_at INTEGER NOT NULL%s)%s;"
             "%s"
             "CREATE TABLE saves (short_id TEXT PRIMARY KEY, saved_at INTEGER NOT NULL,"
             " saved_by TEXT NOT NULL, topic TEXT, partition INTEGER, offset INTEGER,"
             " purge_at INTEGER NOT NULL) WITHOUT ROWID;"
             "CREATE INDEX saves_purge_at ON saves(purge_at);"
             "ATTACH '%s' AS current;"
             "INSERT INTO sessions (" OLD_COLUMNS ") SELECT " OLD_COLUMNS
             " FROM current.sessions ORDER BY %s;"
             "INSERT INTO saves SELECT * FROM current.saves;"
             "PRAGMA user_version = %d;",
             layout == SECOND ? second : first,
             layout == FIRST_BARE ? "" : ", expiry_unsent INTEGER NOT NULL DEFAULT 0",
             layout == SECOND ? "" : " WITHOUT ROWID",
             layout == SECOND
                 ? "CREATE UNIQUE INDEX sessions_task_id ON sessions(task_id);"
                   "CREATE INDEX sessions_short_id ON sessions(short_id);"
                   "CREATE INDEX sessions_live_updated_at ON sessions(updated_at) WHERE live = 1;"
                   "CREATE INDEX sessions_dead_purge_at ON sessions(purge_at) WHERE live = 0;"
                   "CREATE INDEX sessions_expiry_unsent ON sessions(id) WHERE expiry_unsent = 1;"
             : layout == FIRST
                 ? "CREATE INDEX sessions_short_id ON sessions(short_id);"
                   "CREATE INDEX sessions_updated_at ON sessions(updated_at);"
                   "CREATE INDEX sessions_purge_at ON sessions(purge_at);"
                   "CREATE INDEX sessions_expiry_unsent ON sessions(task_id)"
                   " WHERE expiry_unsent = 1;"
                 : "CREATE INDEX sessions_short_id ON sessions(short_id);"
                   "CREATE INDEX sessions_updated_at ON sessions(updated_at);"
                   "CREATE INDEX sessions_purge_at ON sessions(purge_at);",
             from, layout == SECOND ? "id" : "task_id", layout == SECOND ? 2 : 0);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *why = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &why) == SQLITE_OK, "%s", why);
    sqlite3_close(db);
}

static void exec_sql(const char *path, const char *sql)
{
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

START_TEST(an_older_layout_is_rewritten_and_goes_on_the_same)
{
    int layout = _i;
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

    /* The same first half in a current file and in an older-layout copy of it. */
    sd_store_t *current = fx_store_open("current", TTL);
    sd_change_list_t ignored = {0};
    fx_apply(current, &events, order, half, sizes, 3, T0, &ignored);
    sd_change_list_free(&ignored);
    char uri[512], db[16], old_path[600];
    fx_store_locate("current", uri, sizeof uri, db, sizeof db);
    fx_store_locate("old", old_path, sizeof old_path, db, sizeof db);
    write_old_layout(old_path + strlen("sqlite:"), uri + strlen("sqlite:"), layout);

    sd_store_t *old = fx_store_open("old", TTL);
    ck_assert_int_eq(query_int(old_path + 7, "PRAGMA user_version"), 3);
    ck_assert_int_eq(query_int(old_path + 7, "SELECT COUNT(*) FROM pragma_table_info('sessions')"
                                             " WHERE name = 'expiry_sent_at'"), 1);
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

/* sessiond 0.1's sweeper expired sessions itself and flagged each expiry
 * until it knew it delivered.  A flagged one is taken back when the file
 * is rewritten and made again through the log, with the same version;
 * a delivered one stays. */
START_TEST(an_expiry_left_undelivered_by_0_1_is_made_again)
{
    int layout = _i;
    fx_events_t e = {0};
    fx_create(&e, "c1", "t1", "image_analysis", "s1", 10);
    fx_create(&e, "c2", "t2", "scenario_generation", "s2", 10);
    fx_terminal(&e, "x2", "task.failed", "t2", "scenario_generation", 20);
    fx_create(&e, "c3", "t3", "content_analysis", "s3", 10);
    sd_store_t *current = fx_store_open("current", TTL);
    sd_change_list_t changes = {0};
    fx_apply(current, &e, NULL, e.count, NULL, 0, FX_T0, &changes);
    sd_store_close(current);
    char uri[512], db[16], old_path[600];
    fx_store_locate("current", uri, sizeof uri, db, sizeof db);
    fx_store_locate("old", old_path, sizeof old_path, db, sizeof db);
    write_old_layout(old_path + 7, uri + 7, layout);
    /* What 0.1's sweep eight days on left: t1 and t2 expired, not known
     * delivered; t3 expired and delivered. */
    exec_sql(old_path + 7, "UPDATE sessions SET live = 0, version = version + 1,"
                           " last_change = '{\"0.1\":1}', last_cause = created_by,"
                           " expiry_unsent = task_id <> 't3'");

    sd_store_t *old = fx_store_open("old", TTL);
    sd_change_list_t swept = {0};
    ck_assert_uint_eq(fx_sweep_all(old, FX_T0 + 8 * DAY, &swept), 2);
    ck_assert_uint_eq(swept.count, 2);
    for (size_t i = 0; i < swept.count; i++) {
        const sd_change_t *c = &swept.items[i];
        ck_assert_int_eq(c->type, SD_CHANGE_EXPIRED);
        ck_assert_int_eq(c->version, strcmp(c->session.task_id, "t2") == 0 ? 3 : 2);
    }
    ck_assert_uint_eq(fx_sweep_all(old, FX_T0 + 9 * DAY, &swept), 0);
    fx_expect_model(old, &e, FX_T0 + 8 * DAY, TTL, "0.1's expiries made again");
    sd_change_list_free(&swept);
    sd_change_list_free(&changes);
    sd_store_close(old);
    fx_events_free(&e);
}
END_TEST

START_TEST(a_newer_layout_is_refused_with_what_to_do)
{
    sd_store_close(fx_store_open("newer", TTL));
    char uri[512], db[16];
    fx_store_locate("newer", uri, sizeof uri, db, sizeof db);
    sqlite3 *raw;
    ck_assert_int_eq(sqlite3_open(uri + 7, &raw), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(raw, "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    sd_store_config_t cfg = {.session_ttl_ms = TTL, .timeout_ms = 20000, .uri = uri};
    sd_store_t *store = NULL;
    sd_error_t err;
    ck_assert_int_ne(sd_store_open(&cfg, &store, &err), SD_OK);
    ck_assert_ptr_null(store);
    ck_assert_msg(strstr(err.message, "layout 4") && strstr(err.message, "sessiond replay"),
                  "%s", err.message);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, an_older_layout_is_rewritten_and_goes_on_the_same, FIRST_BARE,
                        SECOND + 1);
    tcase_add_loop_test(tc, an_expiry_left_undelivered_by_0_1_is_made_again, FIRST, SECOND + 1);
    FX_ADD_TEST(tc, a_newer_layout_is_refused_with_what_to_do);
}

int main(int argc, char **argv)
{
    (void)argc;
    char *args[] = {argv[0], "sqlite", NULL};
    return fx_store_suite_main(2, args, "sqlite_layout", "layout", 120, add_tests);
}
