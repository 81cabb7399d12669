/* The SQLite store's layout (see sqlite_store.c): the tables, the rewrite
 * of files of the first layout, the statements, and the file's footprint. */
#define _POSIX_C_SOURCE 200809L
#include "sqlite_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/log.h"

#define SD_STRINGIFY_(x) #x
#define SD_STRINGIFY(x) SD_STRINGIFY_(x)

#define LAYOUT_VERSION 3

#define STATE_COLUMNS                                                             \
    "task_id, short_id, task_type, user_id, metadata, created_at, created_by, " \
    "status, status_at, status_by, removed_reason, removed_by, removed_at, "    \
    "removed_topic, removed_partition, removed_offset, updated_at, live, "      \
    "version, last_change, last_cause, purge_at"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS sessions ("
    " id INTEGER PRIMARY KEY, task_id TEXT NOT NULL,"
    " short_id TEXT, task_type TEXT, user_id TEXT, metadata TEXT,"
    " status TEXT NOT NULL DEFAULT 'active',"
    " created_at INTEGER, created_by TEXT,"
    " status_at INTEGER, status_by TEXT,"
    " removed_reason TEXT, removed_by TEXT, removed_at INTEGER,"
    " removed_topic TEXT, removed_partition INTEGER, removed_offset INTEGER,"
    " updated_at INTEGER, live INTEGER NOT NULL DEFAULT 0,"
    " version INTEGER NOT NULL DEFAULT 0,"
    " last_change TEXT, last_cause TEXT, purge_at INTEGER NOT NULL,"
    /* sessiond 0.1's flag (undo_unsent_sql): kept, always 0 here, so that
     * 0.1 members still running during a rolling upgrade go on */
    " expiry_unsent INTEGER NOT NULL DEFAULT 0,"
    /* when the sweeper published this session's expiry event; any change
     * clears it */
    " expiry_sent_at INTEGER"
    ");"
    /* Only what sessiond's own queries use: every index costs each write
     * two seeks, and nobody else queries this file. */
    "CREATE UNIQUE INDEX IF NOT EXISTS sessions_task_id ON sessions(task_id);"
    "CREATE INDEX IF NOT EXISTS sessions_short_id ON sessions(short_id);"
    "CREATE INDEX IF NOT EXISTS sessions_live_updated_at ON sessions(updated_at)"
    " WHERE live = 1;"
    "CREATE INDEX IF NOT EXISTS sessions_dead_purge_at ON sessions(purge_at)"
    " WHERE live = 0;"
    "CREATE INDEX IF NOT EXISTS sessions_expiry_unsent ON sessions(id)"
    " WHERE expiry_unsent = 1;"
    "CREATE TABLE IF NOT EXISTS saves ("
    " short_id TEXT PRIMARY KEY, saved_at INTEGER NOT NULL, saved_by TEXT NOT NULL,"
    " topic TEXT, partition INTEGER, offset INTEGER, purge_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS saves_purge_at ON saves(purge_at);";

/* Older layouts.  Files from before expiries were acknowledged lack
 * expiry_unsent. */
static const char add_unsent_sql[] =
    "ALTER TABLE sessions ADD COLUMN expiry_unsent INTEGER NOT NULL DEFAULT 0;";
/* sessiond 0.1's sweeper expired sessions itself and published their
 * changes in a transaction of its own, flagging each until it knew it
 * delivered: such an expiry is undone, and made again through the log
 * (the change it kept is dropped: its cause was read long ago).  Run at
 * every open: a 0.1 member killed during a rolling upgrade leaves some. */
static const char undo_unsent_sql[] =
    "UPDATE sessions SET live = 1, version = version - 1, last_change = NULL,"
    " last_cause = NULL, expiry_unsent = 0 WHERE expiry_unsent = 1;";
/* The second layout (user_version 2) is this one but for the expiry mark. */
static const char second_layout_sql[] = "ALTER TABLE sessions ADD COLUMN expiry_sent_at INTEGER;";
/* The first layout: a WITHOUT ROWID table keyed by task_id. */
static const char first_layout_out_sql[] =
    "DROP INDEX IF EXISTS sessions_short_id; DROP INDEX IF EXISTS sessions_updated_at;"
    "DROP INDEX IF EXISTS sessions_purge_at; DROP INDEX IF EXISTS sessions_expiry_unsent;"
    "ALTER TABLE sessions RENAME TO sessions_first_layout;";
static const char first_layout_copy_sql[] =
    /* In the order of the sessions' creation: later sessions, later rows. */
    "INSERT INTO sessions (" STATE_COLUMNS ", expiry_unsent) SELECT " STATE_COLUMNS
    ", expiry_unsent FROM sessions_first_layout ORDER BY created_at;"
    "DROP TABLE sessions_first_layout;";

sd_err_t sqlite_store_error(sqlite_store_t *s, sd_error_t *err, const char *doing)
{
    int code = sqlite3_errcode(s->db);
    sd_err_t cls = (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR ||
                    code == SQLITE_FULL)
                       ? SD_ERR_TRANSIENT
                       : SD_ERR_FATAL;
    return sd_error_set(err, cls, "store", "sqlite %s: %s (%s)", doing,
                        sqlite3_errmsg(s->db), sqlite3_db_filename(s->db, "main"));
}

sd_err_t sqlite_store_exec(sqlite_store_t *s, const char *sql, sd_error_t *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sqlite_store_error(s, err, sql);
    return SD_OK;
}

/* What every write of an existing row sets: all but the create's columns. */
#define STATE_SET                                                                         \
    "status = ?8, status_at = ?9, status_by = ?10, removed_reason = ?11,"              \
    " removed_by = ?12, removed_at = ?13, removed_topic = ?14, removed_partition = ?15," \
    " removed_offset = ?16, updated_at = ?17, live = ?18, version = ?19,"              \
    " last_change = COALESCE(?20, last_change), last_cause = COALESCE(?21, last_cause)," \
    " purge_at = ?22, expiry_sent_at = NULL WHERE id = ?23"

static sd_err_t prepare(sqlite_store_t *s, sd_error_t *err)
{
    struct {
        sqlite3_stmt **stmt;
        const char *sql;
    } all[] = {
        {&s->load, "SELECT " ROW_COLUMNS ", last_cause = ?2 FROM sessions WHERE task_id = ?1"},
        {&s->insert_row,
         "INSERT INTO sessions (" STATE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
         " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"},
        /* Each index is rewritten only if the statement sets one of its
         * columns, and the kept change only if this write published one. */
        {&s->update_state, "UPDATE sessions SET " STATE_SET},
        {&s->update_row,
         "UPDATE sessions SET short_id = ?2, task_type = ?3, user_id = ?4, metadata = ?5,"
         " created_at = ?6, created_by = ?7, " STATE_SET},
        {&s->load_mark,
         "SELECT saved_at, saved_by, topic, partition, offset FROM saves WHERE short_id = ?1"},
        {&s->save_mark,
         "INSERT INTO saves (short_id, saved_at, saved_by, topic, partition, offset, purge_at)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (short_id) DO UPDATE SET"
         " saved_at = excluded.saved_at, saved_by = excluded.saved_by, topic = excluded.topic,"
         " partition = excluded.partition, offset = excluded.offset,"
         " purge_at = MAX(purge_at, excluded.purge_at)"
         " WHERE (excluded.saved_at, excluded.saved_by) > (saved_at, saved_by)"},
        {&s->scan_save,
         "SELECT task_id FROM sessions WHERE short_id = ?1 AND task_type = 'scenario_generation'"
         " AND removed_reason IS NULL AND created_at <= ?2"},
        {&s->latest, "SELECT task_id, last_change FROM sessions WHERE task_id = ?1 AND"
                     " last_cause = ?2"},
        {&s->latest_by_short, "SELECT task_id, last_change FROM sessions WHERE short_id = ?1"
                              " AND last_cause = ?2"},
        /* Served by sessions_live_updated_at: what a sweep reads is what
         * is due, and the marked rows awaiting their event. */
        {&s->due, "SELECT task_id, version, updated_at FROM sessions WHERE live = 1 AND"
                  " updated_at <= ?1 AND (expiry_sent_at IS NULL OR expiry_sent_at <= ?2)"
                  " LIMIT ?3"},
        {&s->mark_sent, "UPDATE sessions SET expiry_sent_at = ?3 WHERE task_id = ?1 AND"
                        " version = ?2 AND live = 1"},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!*all[i].stmt && sqlite3_prepare_v3(s->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                                all[i].stmt, NULL) != SQLITE_OK)
            return sqlite_store_error(s, err, "preparing statements");
    sqlite_assert_row_columns(s->load, 1);
    assert(sqlite3_bind_parameter_count(s->insert_row) == PARAM_PURGE_AT);
    assert(sqlite3_bind_parameter_count(s->update_row) == PARAM_ID);
    assert(sqlite3_bind_parameter_count(s->update_state) == PARAM_ID);
    return SD_OK;
}

void sqlite_assert_row_columns(sqlite3_stmt *q, int extra)
{
    static const char *const names[ROW_COLUMN_COUNT] = {
        [COL_TASK_ID] = "task_id",
        [COL_SHORT_ID] = "short_id",
        [COL_TASK_TYPE] = "task_type",
        [COL_USER_ID] = "user_id",
        [COL_METADATA] = "metadata",
        [COL_CREATED_AT] = "created_at",
        [COL_CREATED_BY] = "created_by",
        [COL_STATUS] = "status",
        [COL_STATUS_AT] = "status_at",
        [COL_STATUS_BY] = "status_by",
        [COL_REMOVED_REASON] = "removed_reason",
        [COL_REMOVED_BY] = "removed_by",
        [COL_REMOVED_AT] = "removed_at",
        [COL_REMOVED_TOPIC] = "removed_topic",
        [COL_REMOVED_PARTITION] = "removed_partition",
        [COL_REMOVED_OFFSET] = "removed_offset",
        [COL_LIVE] = "live",
        [COL_VERSION] = "version",
        [COL_PURGE_AT] = "purge_at",
        [COL_ID] = "id",
    };
    assert(sqlite3_column_count(q) == ROW_COLUMN_COUNT + extra);
    for (int c = 0; c < ROW_COLUMN_COUNT; c++)
        assert(names[c] && strcmp(sqlite3_column_name(q, c), names[c]) == 0);
    (void)q;
    (void)extra;
    (void)names;
}

static int64_t query_int(sqlite_store_t *s, const char *sql)
{
    sqlite3_stmt *q;
    int64_t v = -1;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static int has_column(sqlite_store_t *s, const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = '%s'", name);
    return query_int(s, sql) == 1;
}

/* Rewrites a file of an older layout into this one, in the transaction
 * ensure_schema holds, logged: the first layout in one pass over the
 * table, the second in place. */
static sd_err_t migrate_older_layout(sqlite_store_t *s, int64_t layout, sd_error_t *err)
{
    int64_t rows = query_int(s, "SELECT COUNT(*) FROM sessions");
    sd_log(SD_LOG_INFO, "store", "rewriting the sqlite file into its current layout",
           "path=%s layout=%lld sessions=%lld", sqlite3_db_filename(s->db, "main"),
           (long long)layout, (long long)rows);
    sd_err_t rc;
    if (!has_column(s, "expiry_unsent") &&
        (rc = sqlite_store_exec(s, add_unsent_sql, err)) != SD_OK)
        return rc;
    if (has_column(s, "id")) /* the second layout */
        return sqlite_store_exec(s, second_layout_sql, err);
    if ((rc = sqlite_store_exec(s, first_layout_out_sql, err)) != SD_OK)
        return rc;
    if ((rc = sqlite_store_exec(s, schema_sql, err)) != SD_OK)
        return rc;
    return sqlite_store_exec(s, first_layout_copy_sql, err);
}

sd_err_t sqlite_store_ensure_schema(sd_store_t *base, sd_error_t *err)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    /* In a write transaction: of two processes opening an old file, the
     * second finds it rewritten. */
    sd_err_t rc = sqlite_store_exec(s, "BEGIN IMMEDIATE", err);
    if (rc != SD_OK)
        return rc;
    int64_t layout = query_int(s, "PRAGMA user_version");
    if (layout > LAYOUT_VERSION) {
        rc = sd_error_set(err, SD_ERR_FATAL, "store", "sqlite file %s has layout %lld, newer "
                          "than this sessiond's %d: use the sessiond that wrote it, or "
                          "rebuild the file with `sessiond replay`",
                          sqlite3_db_filename(s->db, "main"), (long long)layout,
                          LAYOUT_VERSION);
        goto done;
    }
    if (layout < LAYOUT_VERSION &&
        query_int(s, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sessions'") == 1 &&
        (rc = migrate_older_layout(s, layout, err)) != SD_OK)
        goto done;
    if ((rc = sqlite_store_exec(s, schema_sql, err)) != SD_OK) /* creates what is missing */
        goto done;
    if ((rc = sqlite_store_exec(s, undo_unsent_sql, err)) != SD_OK)
        goto done;
    if ((rc = sqlite_store_exec(s, "PRAGMA user_version = " SD_STRINGIFY(LAYOUT_VERSION),
                                err)) != SD_OK)
        goto done;
    rc = sqlite_store_exec(s, "COMMIT", err);
done:
    if (rc != SD_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return prepare(s, err);
}

void sd_store_remove_sqlite(const char *path)
{
    static const char *const tails[] = {"", "-wal", "-shm"};
    char file[4096];
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++)
        if (snprintf(file, sizeof file, "%s%s", path, tails[i]) < (int)sizeof file)
            unlink(file);
}

sd_err_t sd_store_sqlite_footprint(const char *path, int64_t *bytes, int64_t *sessions,
                                   sd_error_t *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
             sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(db, "SELECT (SELECT page_count * page_size FROM"
                                    " pragma_page_count, pragma_page_size),"
                                    " (SELECT COUNT(*) FROM sessions)",
                                -1, &q, NULL) == SQLITE_OK &&
             sqlite3_step(q) == SQLITE_ROW;
    if (ok) {
        *bytes = sqlite3_column_int64(q, 0);
        *sessions = sqlite3_column_int64(q, 1);
    }
    sd_err_t rc = ok ? SD_OK
                     : sd_error_set(err, SD_ERR_FATAL, "store",
                                    "cannot measure sqlite database %s: %s", path,
                                    db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}
