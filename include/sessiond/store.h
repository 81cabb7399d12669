/* The store contract: sessions kept per task_id, changed only through
 * batches of intents, implemented on MongoDB and on SQLite.
 *
 * Errors are classified so the pipeline knows what to do:
 *   SD_ERR_TRANSIENT  the store is unreachable or failed over: retry the batch
 *   SD_ERR_EVENT      one event can never apply: dead-letter it (per item)
 *   SD_ERR_FATAL      configuration or authentication: stop
 * Applying a batch again after any error converges: every transition is
 * idempotent.  A handle is used by one thread at a time. */
#ifndef SESSIOND_STORE_H
#define SESSIOND_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/change.h"
#include "sessiond/expiry_event.h"
#include "sessiond/rules.h"
#include "sessiond/session_state.h"

#define SD_STORE_DEFAULT_TTL_MS (INT64_C(7) * 24 * 3600 * 1000)

typedef struct sd_store sd_store_t;

typedef struct sd_store_config {
    const char *uri;         /* mongodb://…, mongodb+srv://…, sqlite:PATH */
    const char *database;    /* MongoDB; NULL: the URI's, else "sessions" */
    const char *collection;  /* NULL: "sessions" */
    const char *write_concern; /* MongoDB "majority" (NULL), or a number */
    int64_t session_ttl_ms;  /* 0: 7 days */
    int64_t retention_ms;    /* tombstones and save markers; 0: 2 x ttl; >= ttl */
    int32_t timeout_ms;      /* MongoDB server selection and wtimeout (socket reads:
                              * 3x), SQLite lock wait; 0: 10 s; the URI wins */
} sd_store_config_t;

/* One event of a batch: what it asks for and where it was read. */
typedef struct sd_store_item {
    sd_intent_t intent;
    const char *topic; /* NULL when not read from Kafka */
    int32_t partition;
    int64_t offset;
} sd_store_item_t;

typedef enum sd_apply_status {
    SD_APPLY_CHANGED,   /* published at least one change */
    SD_APPLY_UNCHANGED, /* already reflected (redelivery, superseded, hidden) */
    SD_APPLY_IGNORED,   /* intent was SD_INTENT_IGNORE */
    SD_APPLY_REJECTED,  /* SD_ERR_EVENT: dead-letter it; see errors[] */
} sd_apply_status_t;

/* Changes with their strings; the list owns both. */
typedef struct sd_change_list {
    sd_change_t *items;
    size_t count;
    size_t cap;
    char **blobs; /* one per item */
    char **json;  /* one per item: its sd_change_to_json() text when the store
                     built it already, else NULL; NUL-terminated */
} sd_change_list_t;

typedef struct sd_session_list {
    sd_session_t *items;
    size_t count;
    size_t cap;
    char **blobs;
} sd_session_list_t;

typedef struct sd_apply_result {
    sd_change_list_t changes;   /* in batch order; per session by version */
    sd_apply_status_t *status;  /* one per item */
    sd_error_t *errors;         /* one per item; meaningful when REJECTED */
    size_t count;
} sd_apply_result_t;

/* Sessions found due; the list owns the task ids. */
typedef struct sd_expiry_list {
    sd_expiry_due_t *items;
    size_t count;
    size_t cap;
} sd_expiry_list_t;

typedef struct sd_type_count {
    char task_type[132];
    int64_t live;
} sd_type_count_t;

sd_err_t sd_store_open(const sd_store_config_t *cfg, sd_store_t **out, sd_error_t *err);
void sd_store_close(sd_store_t *store);
const char *sd_store_kind(const sd_store_t *store); /* "mongodb" or "sqlite" */
int64_t sd_store_ttl_ms(const sd_store_t *store);   /* session_ttl, defaults applied */
/* Deletes a closed SQLite store: its file and the -wal and -shm files
 * beside it.  Missing files are not an error. */
void sd_store_remove_sqlite(const char *path);
/* A closed SQLite store's size: the file's bytes (its WAL checkpointed
 * first) and the session rows it holds, tombstones included. */
sd_err_t sd_store_sqlite_footprint(const char *path, int64_t *bytes, int64_t *sessions,
                                   sd_error_t *err);

/* Creates indexes / tables when missing; safe to call on every start. */
sd_err_t sd_store_ensure_schema(sd_store_t *store, sd_error_t *err);

/* sd_store_open() then sd_store_ensure_schema(): a store ready for
 * sd_store_apply().  On failure *out is NULL and nothing is left open. */
sd_err_t sd_store_open_ready(const sd_store_config_t *cfg, sd_store_t **out, sd_error_t *err);

/* Applies items in order at now_ms.  *out is filled (and must be released
 * with sd_apply_result_free) whenever SD_OK is returned.  A redelivered
 * message yields its change again (same content) while it is the
 * session's latest (see sd_store_item_caused). */
sd_err_t sd_store_apply(sd_store_t *store, const sd_store_item_t *items, size_t n,
                        int64_t now_ms, sd_apply_result_t *out, sd_error_t *err);

/* Whether item is the very message that caused a change, read again: the
 * same event from the same topic, partition and offset.  Only that message
 * re-publishes the change: its offset was not committed, so neither (in
 * exactly-once) was the change, nor (at-least-once) need it have been
 * delivered.  Another message of the same event, as from a producer that
 * sent it twice, re-publishes nothing: the first one's change is out, or
 * the first one comes again.  An item read from nowhere (topic NULL) is
 * matched by its event id alone. */
int sd_store_item_caused(const sd_store_item_t *item, const sd_cause_t *cause);

/* Visible sessions at now_ms. */
sd_err_t sd_store_get(sd_store_t *store, const char *task_id, int64_t now_ms,
                      sd_session_list_t *out, sd_error_t *err);
sd_err_t sd_store_list_by_short_id(sd_store_t *store, const char *short_id,
                                   int64_t now_ms, sd_session_list_t *out,
                                   sd_error_t *err);
/* Every visible session, by task_id (tests, rebuild checks). */
sd_err_t sd_store_list_all(sd_store_t *store, int64_t now_ms, sd_session_list_t *out,
                           sd_error_t *err);

/* The sweeper (SPEC rule 5): up to `limit` (> 0) live sessions whose TTL
 * passed at now_ms, for which no expiry event was published, or one was
 * published at or before resend_before_ms and the session is still live
 * (its event was never applied: dead-lettered by a member that does not
 * know it, or applied by a member whose clock was behind).  Changes
 * nothing of the sessions: the expiry itself is applied from the event
 * (SD_INTENT_EXPIRE).  SQLite also purges tombstones whose retention ran
 * out here; MongoDB leaves that to its TTL index.  *out must be released
 * with sd_expiry_list_free whenever SD_OK is returned. */
sd_err_t sd_store_due_expiries(sd_store_t *store, int64_t now_ms, int64_t resend_before_ms,
                               size_t limit, sd_expiry_list_t *out, sd_error_t *err);
/* The expiry events of `published` are on the brokers: later sweeps skip
 * those sessions until resend_before_ms passes now_ms, unless they change
 * (any change clears the mark; a session whose version moved on is not
 * marked). */
sd_err_t sd_store_expiries_published(sd_store_t *store, const sd_expiry_list_t *published,
                                     int64_t now_ms, sd_error_t *err);

/* Visible sessions per task_type; *out is malloc'd, *n entries. */
sd_err_t sd_store_count_by_type(sd_store_t *store, int64_t now_ms, sd_type_count_t **out,
                                size_t *n, sd_error_t *err);

sd_err_t sd_store_ping(sd_store_t *store, sd_error_t *err);

/* What a server store did so far (MongoDB; zeros for SQLite), counted by
 * the driver's command monitoring: commands sent, documents the write
 * commands changed, and the BSON of the commands and of their replies
 * (the wire adds some 20-40 bytes of framing to each). */
typedef struct sd_store_io {
    uint64_t round_trips;
    uint64_t documents_written;
    uint64_t bytes_sent, bytes_received;
} sd_store_io_t;
sd_store_io_t sd_store_io(const sd_store_t *store);

/* Containers. */
sd_err_t sd_change_list_add(sd_change_list_t *list, const sd_change_t *change);
/* Adds a copy of change with json, its sd_change_to_json() text, which the
 * list owns from then on (even on failure: SD_ERR_NOMEM), so that it is
 * not built twice. */
sd_err_t sd_change_list_add_json(sd_change_list_t *list, const sd_change_t *change, char *json);
void sd_change_list_free(sd_change_list_t *list);
sd_err_t sd_expiry_list_add(sd_expiry_list_t *list, const sd_expiry_due_t *due);
void sd_expiry_list_free(sd_expiry_list_t *list);
sd_err_t sd_session_list_add(sd_session_list_t *list, const sd_session_t *session);
void sd_session_list_free(sd_session_list_t *list);
sd_err_t sd_apply_result_init(sd_apply_result_t *r, size_t n);
void sd_apply_result_free(sd_apply_result_t *r);

#endif
