/* Checkpoints on a thread of their own (see the header). */
#define _POSIX_C_SOURCE 200809L
#include "sessiond/sqlite_checkpoint.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/log.h"

struct sd_sqlite_checkpointer {
    sqlite3 *writer;
    char *path;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int started, pending, stopping;
};

static void checkpoint(sqlite3 *db, const char *who)
{
    int frames = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
    /* BUSY: another checkpoint is running; the next commit asks again. */
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        sd_log(SD_LOG_WARN, "store", "sqlite checkpoint failed; the WAL grows until one succeeds",
               "by=%s error=%s path=%s", who, SD_LOG_Q(sqlite3_errmsg(db)),
               sqlite3_db_filename(db, "main"));
}

static void *run(void *arg)
{
    sd_sqlite_checkpointer_t *c = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        sd_log(SD_LOG_WARN, "store", "sqlite checkpoint thread cannot open the file; the "
               "writer checkpoints instead", "error=%s path=%s",
               SD_LOG_Q(db ? sqlite3_errmsg(db) : "out of memory"), c->path);
        sqlite3_close(db);
        db = NULL;
    }
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        if (!c->pending) {
            pthread_cond_wait(&c->wake, &c->lock);
            continue;
        }
        c->pending = 0;
        pthread_mutex_unlock(&c->lock);
        if (db)
            checkpoint(db, "thread");
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    sqlite3_close(db);
    return NULL;
}

/* After each commit of the writer, with the frames now in its WAL. */
static int on_commit(void *arg, sqlite3 *writer, const char *schema, int frames)
{
    (void)schema;
    sd_sqlite_checkpointer_t *c = arg;
    if (frames >= SD_SQLITE_CHECKPOINT_FRAMES_MAX) {
        checkpoint(writer, "writer");
        return SQLITE_OK;
    }
    if (frames < SD_SQLITE_CHECKPOINT_FRAMES)
        return SQLITE_OK;
    pthread_mutex_lock(&c->lock);
    if (!c->started && pthread_create(&c->thread, NULL, run, c) == 0)
        c->started = 1;
    c->pending = 1;
    pthread_cond_signal(&c->wake);
    int started = c->started;
    pthread_mutex_unlock(&c->lock);
    if (!started) /* no thread to be had: as SQLite would */
        checkpoint(writer, "writer");
    return SQLITE_OK;
}

sd_err_t sd_sqlite_checkpointer_attach(sqlite3 *writer, const char *path,
                                       sd_sqlite_checkpointer_t **out, sd_error_t *err)
{
    sd_sqlite_checkpointer_t *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory opening %s", path);
    }
    c->writer = writer;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    sqlite3_wal_hook(writer, on_commit, c); /* replaces the autocheckpoint */
    *out = c;
    return SD_OK;
}

void sd_sqlite_checkpointer_detach(sd_sqlite_checkpointer_t *c)
{
    if (!c)
        return;
    sqlite3_wal_autocheckpoint(c->writer, 1000);
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    int started = c->started;
    pthread_mutex_unlock(&c->lock);
    if (started)
        pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c->path);
    free(c);
}
