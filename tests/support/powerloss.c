#define _POSIX_C_SOURCE 200809L
#include "powerloss.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a write or truncation since the last sync replaced: `len` bytes at
 * `offset` as they were (bytes beyond the end of the file then are not
 * kept: cutting the file back to its synced size removes them). */
typedef struct undo {
    sqlite3_int64 offset;
    int len;
    unsigned char *old;
} undo_t;

/* A file the shim saw, by path (several connections write one file). */
typedef struct tracked {
    char path[1024];
    sqlite3_int64 synced_size;
    undo_t *undo;
    size_t n_undo, cap_undo;
} tracked_t;

typedef struct shim_file {
    sqlite3_file base;
    tracked_t *t;        /* NULL: not tracked (opened without a name) */
    sqlite3_file *real;  /* the default VFS's file, right after this struct */
} shim_file_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static tracked_t **files;
static size_t n_files;
static int dead;
static size_t syncs;

static tracked_t *track(const char *path, sqlite3_int64 size)
{
    for (size_t i = 0; i < n_files; i++)
        if (strcmp(files[i]->path, path) == 0)
            return files[i];
    tracked_t *t = calloc(1, sizeof *t);
    tracked_t **grown = realloc(files, (n_files + 1) * sizeof *grown);
    ck_assert(t && grown);
    files = grown;
    strncpy(t->path, path, sizeof t->path - 1);
    t->synced_size = size; /* what was there before is durable */
    files[n_files++] = t;
    return t;
}

static void forget_undo(tracked_t *t)
{
    for (size_t i = 0; i < t->n_undo; i++)
        free(t->undo[i].old);
    t->n_undo = 0;
}

/* Keeps what [offset, offset + len) holds now, up to the end of the file. */
static int remember(shim_file_t *f, sqlite3_int64 offset, sqlite3_int64 len)
{
    sqlite3_int64 size;
    int rc = f->real->pMethods->xFileSize(f->real, &size);
    if (rc != SQLITE_OK)
        return rc;
    undo_t u = {offset, 0, NULL};
    if (offset < size) {
        u.len = (int)(offset + len > size ? size - offset : len);
        u.old = malloc((size_t)u.len);
        ck_assert_ptr_nonnull(u.old);
        rc = f->real->pMethods->xRead(f->real, u.old, u.len, offset);
        if (rc != SQLITE_OK) {
            free(u.old);
            return rc;
        }
    }
    tracked_t *t = f->t;
    if (t->n_undo == t->cap_undo) {
        t->cap_undo = t->cap_undo ? 2 * t->cap_undo : 64;
        t->undo = realloc(t->undo, t->cap_undo * sizeof *t->undo);
        ck_assert_ptr_nonnull(t->undo);
    }
    t->undo[t->n_undo++] = u;
    return SQLITE_OK;
}

static int shim_close(sqlite3_file *file)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xClose(f->real);
}

static int shim_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 offset)
{
    shim_file_t *f = (shim_file_t *)file;
    if (dead)
        return SQLITE_IOERR_READ;
    return f->real->pMethods->xRead(f->real, buf, amt, offset);
}

static int shim_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 offset)
{
    shim_file_t *f = (shim_file_t *)file;
    pthread_mutex_lock(&lock);
    int rc = dead ? SQLITE_IOERR_WRITE : f->t ? remember(f, offset, amt) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = f->real->pMethods->xWrite(f->real, buf, amt, offset);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int shim_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    shim_file_t *f = (shim_file_t *)file;
    pthread_mutex_lock(&lock);
    int rc = dead ? SQLITE_IOERR_TRUNCATE : f->t ? remember(f, size, INT32_MAX) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = f->real->pMethods->xTruncate(f->real, size);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int shim_sync(sqlite3_file *file, int flags)
{
    shim_file_t *f = (shim_file_t *)file;
    pthread_mutex_lock(&lock);
    int rc = dead ? SQLITE_IOERR_FSYNC : f->real->pMethods->xSync(f->real, flags);
    sqlite3_int64 size;
    if (rc == SQLITE_OK && f->t && f->real->pMethods->xFileSize(f->real, &size) == SQLITE_OK) {
        forget_undo(f->t); /* all of it is on the disk now */
        f->t->synced_size = size;
        syncs++;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int shim_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int shim_lock(sqlite3_file *file, int level)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xLock(f->real, level);
}

static int shim_unlock(sqlite3_file *file, int level)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int shim_check_reserved(sqlite3_file *file, int *out)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int shim_file_control(sqlite3_file *file, int op, void *arg)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int shim_sector_size(sqlite3_file *file)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int shim_device_characteristics(sqlite3_file *file)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int shim_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **p)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xShmMap(f->real, region, size, extend, p);
}

static int shim_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void shim_shm_barrier(sqlite3_file *file)
{
    shim_file_t *f = (shim_file_t *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int shim_shm_unmap(sqlite3_file *file, int delete_flag)
{
    shim_file_t *f = (shim_file_t *)file;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static const sqlite3_io_methods shim_methods = {
    2, /* iVersion: no xFetch (no mmap) */
    shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_file_size,
    shim_lock, shim_unlock, shim_check_reserved, shim_file_control, shim_sector_size,
    shim_device_characteristics, shim_shm_map, shim_shm_lock, shim_shm_barrier,
    shim_shm_unmap, NULL, NULL};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                     int *out_flags)
{
    (void)vfs;
    shim_file_t *f = (shim_file_t *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK)
        return rc;
    f->base.pMethods = &shim_methods;
    sqlite3_int64 size = 0;
    if (name && f->real->pMethods->xFileSize(f->real, &size) == SQLITE_OK) {
        pthread_mutex_lock(&lock);
        f->t = track(name, size);
        pthread_mutex_unlock(&lock);
    }
    return SQLITE_OK;
}

static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    pthread_mutex_lock(&lock);
    int rc = SQLITE_IOERR_DELETE;
    if (!dead && (rc = real_vfs->xDelete(real_vfs, name, sync_dir)) == SQLITE_OK)
        for (size_t i = 0; i < n_files; i++)
            if (strcmp(files[i]->path, name) == 0) { /* gone, and so is its history */
                forget_undo(files[i]);
                files[i]->synced_size = 0;
            }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int shim_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int shim_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int shim_sleep(sqlite3_vfs *vfs, int micros)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, micros);
}

static int shim_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int shim_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int shim_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

void fx_powerloss_install(void)
{
    if (real_vfs)
        return;
    ck_assert_int_eq(sqlite3_initialize(), SQLITE_OK);
    real_vfs = sqlite3_vfs_find(NULL);
    ck_assert_ptr_nonnull(real_vfs);
    shim_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(shim_file_t) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = "powerloss",
        .xOpen = shim_open,
        .xDelete = shim_delete,
        .xAccess = shim_access,
        .xFullPathname = shim_full_pathname,
        .xRandomness = shim_randomness,
        .xSleep = shim_sleep,
        .xCurrentTime = shim_current_time,
        .xGetLastError = shim_last_error,
        .xCurrentTimeInt64 = shim_current_time_int64,
    };
    ck_assert_int_eq(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

/* Puts t back as its last sync left it, with a descriptor of its own (the
 * connections still open are the dead machine's). */
static size_t cut_back(tracked_t *t)
{
    size_t lost = t->n_undo;
    if (!lost)
        return 0;
    int fd = open(t->path, O_WRONLY);
    if (fd < 0) { /* deleted since: nothing to put back */
        forget_undo(t);
        return lost;
    }
    for (size_t i = t->n_undo; i-- > 0;) {
        const undo_t *u = &t->undo[i];
        ck_assert(u->len == 0 || pwrite(fd, u->old, (size_t)u->len, u->offset) == u->len);
    }
    ck_assert_int_eq(ftruncate(fd, t->synced_size), 0);
    close(fd);
    forget_undo(t);
    return lost;
}

size_t fx_powerloss_cut(void)
{
    pthread_mutex_lock(&lock);
    dead = 1;
    size_t lost = 0;
    for (size_t i = 0; i < n_files; i++)
        lost += cut_back(files[i]);
    pthread_mutex_unlock(&lock);
    return lost;
}

void fx_powerloss_restore(void)
{
    pthread_mutex_lock(&lock);
    dead = 0;
    for (size_t i = 0; i < n_files; i++) { /* after the reboot, the disk is what it holds */
        struct stat st;
        files[i]->synced_size = stat(files[i]->path, &st) == 0 ? st.st_size : 0;
    }
    pthread_mutex_unlock(&lock);
}

size_t fx_powerloss_syncs(void)
{
    pthread_mutex_lock(&lock);
    size_t n = syncs;
    pthread_mutex_unlock(&lock);
    return n;
}
