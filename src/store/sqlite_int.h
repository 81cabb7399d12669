/* What the SQLite store's files share (src/store/): sqlite_store.c applies
 * batches and reads; sqlite_schema.c holds the layout, rewrites older files
 * into it and prepares the statements.  Not a public header. */
#ifndef SESSIOND_SQLITE_INT_H
#define SESSIOND_SQLITE_INT_H

#include <sqlite3.h>

#include "sessiond/sqlite_checkpoint.h"
#include "sessiond/store_backend.h"

typedef struct sqlite_store {
    sd_store_t base;
    sqlite3 *db;
    sd_sqlite_checkpointer_t *checkpointer;
    sqlite3_stmt *load, *insert_row, *update_row, *update_state, *load_mark, *save_mark,
        *scan_save, *latest, *latest_by_short, *due, *mark_sent;
} sqlite_store_t;

/* What read_row() reads: ROW_COLUMNS, named in this order by enum
 * sqlite_row_column (sqlite_schema.c asserts, as it prepares each reader,
 * that the names match). */
#define ROW_COLUMNS                                                               \
    "task_id, short_id, task_type, user_id, metadata, created_at, created_by, " \
    "status, status_at, status_by, removed_reason, removed_by, removed_at, "    \
    "removed_topic, removed_partition, removed_offset, live, version, purge_at, id"
enum sqlite_row_column {
    COL_TASK_ID,
    COL_SHORT_ID,
    COL_TASK_TYPE,
    COL_USER_ID,
    COL_METADATA,
    COL_CREATED_AT,
    COL_CREATED_BY,
    COL_STATUS,
    COL_STATUS_AT,
    COL_STATUS_BY,
    COL_REMOVED_REASON,
    COL_REMOVED_BY,
    COL_REMOVED_AT,
    COL_REMOVED_TOPIC,
    COL_REMOVED_PARTITION,
    COL_REMOVED_OFFSET,
    COL_LIVE,
    COL_VERSION,
    COL_PURGE_AT,
    COL_ID,
    ROW_COLUMN_COUNT,
    /* The load statement reads ROW_COLUMNS and then whether ?2 caused the
     * kept change, so that a redelivery is recognised without a second
     * lookup. */
    LOAD_CAUSE_COLUMN = ROW_COLUMN_COUNT
};
/* Asserts that a statement reads ROW_COLUMNS, in the enum's order, then
 * `extra` columns more (a no-op under NDEBUG). */
void sqlite_assert_row_columns(sqlite3_stmt *q, int extra);

/* The parameters of the statements that write a row (insert_row writes
 * ?1-?22; update_row ?2-?23 but the task id; update_state ?8-?23, all but
 * the create's columns), in the order of STATE_COLUMNS (sqlite_schema.c),
 * then the row's id. */
enum sqlite_row_param {
    PARAM_TASK_ID = 1,
    PARAM_SHORT_ID,
    PARAM_TASK_TYPE,
    PARAM_USER_ID,
    PARAM_METADATA,
    PARAM_CREATED_AT,
    PARAM_CREATED_BY,
    PARAM_STATUS,
    PARAM_STATUS_AT,
    PARAM_STATUS_BY,
    PARAM_REMOVED_REASON,
    PARAM_REMOVED_BY,
    PARAM_REMOVED_AT,
    PARAM_REMOVED_TOPIC,
    PARAM_REMOVED_PARTITION,
    PARAM_REMOVED_OFFSET,
    PARAM_UPDATED_AT,
    PARAM_LIVE,
    PARAM_VERSION,
    PARAM_LAST_CHANGE,
    PARAM_LAST_CAUSE,
    PARAM_PURGE_AT,
    PARAM_ID
};

/* A failed call as an error: busy, locked, I/O or a full disk are
 * transient, the rest fatal. */
sd_err_t sqlite_store_error(sqlite_store_t *s, sd_error_t *err, const char *doing);
sd_err_t sqlite_store_exec(sqlite_store_t *s, const char *sql, sd_error_t *err);
/* Creates the layout, or rewrites an older file into it, and prepares the
 * statements. */
sd_err_t sqlite_store_ensure_schema(sd_store_t *base, sd_error_t *err);

#endif
