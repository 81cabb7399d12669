/* The MongoDB store's write operations and read-back, one module apart
 * from connection handling (src/store/mongo_store.c).
 *
 * Each transition of sd_state_apply() becomes one conditional update (and
 * an upsert for a new task), atomic on the server; a batch of events is one
 * ordered bulk write.  Every operation that changes a session appends an
 * entry to the document's `log`: its cause and what it set.  Replaying the
 * log through sd_state_apply() tells which operations published a change,
 * with which version and showing which session. */
#ifndef SESSIOND_MONGO_OPS_H
#define SESSIOND_MONGO_OPS_H

#include <mongoc/mongoc.h>

#include "sessiond/session_state.h"
#include "sessiond/store.h"

typedef struct sd_mongo_ctx {
    const char *batch_id;
    int64_t now_ms;
    int64_t ttl_ms;
    int64_t retention_ms;
    size_t ops; /* operations added to the bulk so far */
} sd_mongo_ctx_t;

/* Session writes, appended to an ordered bulk on the sessions collection. */
void sd_mongo_ops_create(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_event_t *ev, const sd_origin_t *origin,
                         const sd_cover_t *cover);
void sd_mongo_ops_status(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_intent_t *in, const sd_origin_t *origin);
void sd_mongo_ops_remove(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_intent_t *in, const sd_origin_t *origin);
/* A save reaching the scenario sessions of short_id (task_id NULL), or of
 * one task (the check after a create). */
void sd_mongo_ops_cover(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                        const char *short_id, const char *task_id, const sd_origin_t *save);
/* Live sessions whose TTL passed at ctx->now. */
void sd_mongo_expired_filter(bson_t *filter, const sd_mongo_ctx_t *ctx);
/* An expiry event (by) reaching task_id: expires it if live and its TTL
 * passed at ctx->now. */
void sd_mongo_ops_expire(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const char *task_id, const sd_origin_t *by);

/* Appends {field: {$in: values}}. */
void sd_mongo_append_in(bson_t *f, const char *field, const char *const *values, size_t n);

/* Save markers, on the markers collection. */
void sd_mongo_ops_marker(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const char *short_id, const sd_origin_t *save);
/* Appends metadata (compact JSON text, or NULL for null) as a subdocument,
 * key for key: "$date" stays a key, not extended JSON. */
void sd_mongo_append_metadata(bson_t *b, const char *key, const char *metadata_json);

/* Reads a marker document into a cover (strings borrowed from doc). */
void sd_mongo_marker_cover(const bson_t *doc, sd_cover_t *cover);

/* The filter of visible sessions at ctx->now (plus `by` = value if set). */
void sd_mongo_visible_filter(bson_t *filter, const sd_mongo_ctx_t *ctx, const char *by,
                             const char *value);

/* The current session of a document, when visible. */
sd_err_t sd_mongo_doc_session(const bson_t *doc, sd_session_list_t *out, sd_error_t *err);

/* The first of the items (sorted by event id) with this event id, or n. */
size_t sd_mongo_first_of_event(const sd_store_item_t *const *by_event, size_t n,
                               const char *event_id);

/* What one read-back document publishes for this batch: the changes its
 * log entries of ctx->batch_id made, or, when it made none, its latest
 * change if one of the batch's items (sorted by event id) is the message
 * that caused it (a redelivery, sd_store_item_caused). */
sd_err_t sd_mongo_doc_changes(const bson_t *doc, const sd_mongo_ctx_t *ctx,
                              const sd_store_item_t *const *by_event, size_t n_events,
                              sd_change_list_t *out, int *republished, sd_error_t *err);

/* The latest change a document published, if any (*latest gets 0 or 1). */
sd_err_t sd_mongo_doc_latest(const bson_t *doc, const sd_mongo_ctx_t *ctx,
                             sd_change_list_t *latest, sd_error_t *err);

#endif
