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

/* What read_row() reads, in its order. */
#define ROW_COLUMNS                                                               \
    "task_id, short_id, task_type, user_id, metadata, created_at, created_by, " \
    "status, status_at, status_by, removed_reason, removed_by, removed_at, "    \
    "removed_topic, removed_partition, removed_offset, live, version, purge_at, id"
/* The load statement reads ROW_COLUMNS and then whether ?2 caused the kept
 * change, so that a redelivery is recognised without a second lookup. */
#define LOAD_CAUSE_COLUMN 20

/* A failed call as an error: busy, locked, I/O or a full disk are
 * transient, the rest fatal. */
sd_err_t sqlite_store_error(sqlite_store_t *s, sd_error_t *err, const char *doing);
sd_err_t sqlite_store_exec(sqlite_store_t *s, const char *sql, sd_error_t *err);
/* Creates the layout, or rewrites an older file into it, and prepares the
 * statements. */
sd_err_t sqlite_store_ensure_schema(sd_store_t *base, sd_error_t *err);

#endif
