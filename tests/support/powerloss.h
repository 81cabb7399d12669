/* A power loss for SQLite, as SQLite's own crash tests model one: a VFS
 * over the default one remembers, for each file, what every write since
 * its last sync overwrote; when the power goes, every file goes back to
 * what its last sync made durable (writes not followed by a sync are
 * lost, whole), and the machine is dead: every later read, write, sync
 * or delete fails until the power comes back.  The shared-memory index
 * (-shm) is never durable; SQLite rebuilds it from the WAL when the first
 * connection opens after the power is back. */
#ifndef SESSIOND_POWERLOSS_H
#define SESSIOND_POWERLOSS_H

#include <stddef.h>

/* Makes the shim the default VFS of this process: every SQLite file
 * opened from now on goes through it.  Call before opening a store. */
void fx_powerloss_install(void);

/* The power goes: every file the shim saw is cut back to its durable
 * image.  Returns how many writes were lost. */
size_t fx_powerloss_cut(void);

/* The power is back (once every connection of before is closed): files
 * are what the cut left, and writes go through again. */
void fx_powerloss_restore(void);

/* Syncs the shim passed down, since install. */
size_t fx_powerloss_syncs(void);

#endif
