/* Checkpoints of an SQLite WAL taken on a thread of their own.
 *
 * A checkpoint copies the WAL's pages back into the database file and
 * syncs it.  Taken by the writer at commit (SQLite's autocheckpoint), it
 * stalls the batch whose commit crossed the threshold; taken here, on a
 * second connection, it runs beside the writer, which goes on appending.
 * SQLite starts the WAL over only when a write begins with every frame
 * copied, which a thread copying while the writer appends rarely sees; so
 * when the WAL reaches SD_SQLITE_CHECKPOINT_FRAMES_MAX the writer
 * checkpoints itself (the thread has copied most frames by then), which
 * also bounds the WAL should the thread fall behind or a long reader
 * hold it. */
#ifndef SESSIOND_SQLITE_CHECKPOINT_H
#define SESSIOND_SQLITE_CHECKPOINT_H

#include <sqlite3.h>

#include "sessiond/error.h"

/* WAL frames (pages) that wake the thread: 16 MiB of 4 KiB pages.  Fewer
 * checkpoints of more frames write a page rewritten by several batches
 * once. */
#define SD_SQLITE_CHECKPOINT_FRAMES 4096
/* 256 MiB: one checkpoint of the writer's own per some 90 batches of a
 * thousand random-id events; at a quarter of that it was one per 20
 * batches, and a tenth slower. */
#define SD_SQLITE_CHECKPOINT_FRAMES_MAX (16 * SD_SQLITE_CHECKPOINT_FRAMES)

typedef struct sd_sqlite_checkpointer sd_sqlite_checkpointer_t;

/* Takes over the checkpoints of writer, a WAL-mode connection to path
 * (its wal hook and autocheckpoint).  The thread starts at the first
 * commit that needs it. */
sd_err_t sd_sqlite_checkpointer_attach(sqlite3 *writer, const char *path,
                                       sd_sqlite_checkpointer_t **out, sd_error_t *err);
/* Stops the thread and gives the writer its autocheckpoint back; before
 * the writer is closed.  NULL is allowed. */
void sd_sqlite_checkpointer_detach(sd_sqlite_checkpointer_t *c);

#endif
