/* MongoDB write operations: one conditional update per transition.
 *
 * Document of one task (collection `sessions`, _id = task_id):
 *   task_id, short_id, task_type, user_id, metadata, created_at, created_by,
 *   ck            "<created_at ms, 15 digits>|<created_by>": the defining
 *                 create is the smallest ck
 *   status, status_at, status_by, sk   the same for the status: largest sk
 *   removed       null, or {reason, by, at, topic, partition, offset}
 *   expired       an expiry was logged after the last change
 *   expiry_sent_at  when the sweeper last published an expiry event for
 *                 the session; null after any change
 *   unsent_expiry left by sessiond 0.1, whose sweeper expired sessions
 *                 itself: the sweep (batch id) whose expiry it had not
 *                 delivered yet (mongo_sweep.c undoes it)
 *   updated_at    event time of the latest create or status applied
 *   purge_at      TTL index: when the document may go
 *   log           one entry per operation that changed the session, in the
 *                 order the server applied them: {b: batch, n: now, k: kind
 *                 (c create, s status, r remove, v save, x expiry), e, at,
 *                 topic, partition, offset: the cause (none on 0.1's
 *                 expiries), and what it set}
 *
 * Each operation's filter states exactly when the transition changes the
 * session (a create that beats the defining one, a later status, a first
 * removal), so it applies at most once, atomically, whatever runs beside
 * it.  Whether a change was *published*, and with which version, is not
 * decided here: the read-back replays the log through the same
 * sd_state_apply() the SQLite store uses (mongo_doc.c).  So two members
 * that briefly both own a partition during a rebalance still leave one
 * serial history. */
#include "sessiond/mongo_ops.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SG "scenario_generation"
/* Shifts 0000-01-01 to 0 so keys of any valid time sort as strings. */
#define KEY_EPOCH_SHIFT INT64_C(62167219200000)

static void event_key(char *buf, size_t cap, int64_t at, const char *event_id)
{
    snprintf(buf, cap, "%015" PRId64 "|%s", at + KEY_EPOCH_SHIFT, event_id);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static int64_t live_since(const sd_mongo_ctx_t *ctx) { return ctx->now_ms - ctx->ttl_ms; }

static int64_t purge_at(const sd_mongo_ctx_t *ctx, int64_t at)
{
    return max64(at + ctx->ttl_ms, ctx->now_ms) + ctx->retention_ms;
}

/* ---- building blocks ---- */

void sd_mongo_append_in(bson_t *f, const char *field, const char *const *values, size_t n)
{
    bson_t in, arr;
    BSON_APPEND_DOCUMENT_BEGIN(f, field, &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    char key[24];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%zu", i);
        BSON_APPEND_UTF8(&arr, key, values[i]);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(f, &in);
}

static void append_opt_utf8(bson_t *b, const char *key, const char *v)
{
    if (v)
        BSON_APPEND_UTF8(b, key, v);
    else
        BSON_APPEND_NULL(b, key);
}

static void append_create_fields(bson_t *b, const sd_event_t *ev)
{
    char key[192];
    event_key(key, sizeof key, ev->occurred_at_ms, ev->event_id);
    BSON_APPEND_UTF8(b, "short_id", ev->short_id);
    BSON_APPEND_UTF8(b, "task_type", ev->task_type);
    append_opt_utf8(b, "user_id", ev->user_id);
    sd_mongo_append_metadata(b, "metadata", ev->metadata_json);
    BSON_APPEND_DATE_TIME(b, "created_at", ev->occurred_at_ms);
    BSON_APPEND_UTF8(b, "created_by", ev->event_id);
    BSON_APPEND_UTF8(b, "ck", key);
}

static void append_status_fields(bson_t *b, const sd_intent_t *in)
{
    char key[192];
    event_key(key, sizeof key, in->event->occurred_at_ms, in->event->event_id);
    BSON_APPEND_UTF8(b, "status", sd_status_name(in->status));
    BSON_APPEND_DATE_TIME(b, "status_at", in->event->occurred_at_ms);
    BSON_APPEND_UTF8(b, "status_by", in->event->event_id);
    BSON_APPEND_UTF8(b, "sk", key);
}

static void append_position(bson_t *b, const sd_origin_t *o)
{
    append_opt_utf8(b, "topic", o->topic);
    if (o->topic) {
        BSON_APPEND_INT32(b, "partition", o->partition);
        BSON_APPEND_INT64(b, "offset", o->offset);
    } else {
        BSON_APPEND_NULL(b, "partition");
        BSON_APPEND_NULL(b, "offset");
    }
}

static void append_removed(bson_t *b, const char *key, sd_reason_t reason, const sd_origin_t *by)
{
    bson_t r;
    BSON_APPEND_DOCUMENT_BEGIN(b, key, &r);
    BSON_APPEND_UTF8(&r, "reason", sd_reason_name(reason));
    BSON_APPEND_UTF8(&r, "by", by->event_id);
    BSON_APPEND_DATE_TIME(&r, "at", by->at_ms);
    append_position(&r, by);
    bson_append_document_end(b, &r);
}

/* The log entry of an operation: its kind, cause and what it set. */
typedef struct entry {
    char kind;               /* c, s, r, v, x */
    const sd_origin_t *cause;
    const sd_event_t *create;
    const sd_intent_t *status;
    sd_reason_t reason;      /* r */
    const sd_origin_t *cover; /* c: the save that covers it already */
} entry_t;

static void append_entry(bson_t *b, const char *key, const sd_mongo_ctx_t *ctx,
                         const entry_t *e)
{
    bson_t d, part;
    char kind[2] = {e->kind, 0};
    BSON_APPEND_DOCUMENT_BEGIN(b, key, &d);
    BSON_APPEND_UTF8(&d, "b", ctx->batch_id);
    BSON_APPEND_DATE_TIME(&d, "n", ctx->now_ms);
    BSON_APPEND_UTF8(&d, "k", kind);
    if (e->cause) {
        BSON_APPEND_UTF8(&d, "e", e->cause->event_id);
        BSON_APPEND_DATE_TIME(&d, "at", e->cause->at_ms);
        append_position(&d, e->cause);
    }
    if (e->create) {
        BSON_APPEND_DOCUMENT_BEGIN(&d, "c", &part);
        BSON_APPEND_UTF8(&part, "short_id", e->create->short_id);
        BSON_APPEND_UTF8(&part, "task_type", e->create->task_type);
        append_opt_utf8(&part, "user_id", e->create->user_id);
        sd_mongo_append_metadata(&part, "metadata", e->create->metadata_json);
        bson_append_document_end(&d, &part);
    }
    if (e->status) {
        BSON_APPEND_UTF8(&d, "st", sd_status_name(e->status->status));
        BSON_APPEND_UTF8(&d, "rs", sd_reason_name(e->status->reason));
    }
    if (e->kind == 'r')
        BSON_APPEND_UTF8(&d, "rs", sd_reason_name(e->reason));
    if (e->cover) {
        BSON_APPEND_DOCUMENT_BEGIN(&d, "cv", &part);
        BSON_APPEND_UTF8(&part, "e", e->cover->event_id);
        BSON_APPEND_DATE_TIME(&part, "at", e->cover->at_ms);
        append_position(&part, e->cover);
        bson_append_document_end(&d, &part);
    }
    bson_append_document_end(b, &d);
}

/* purge_at: the TTL index removes the document then.  Every operation moves
 * it to retention past the later of the event's expiry and now; `now` only
 * grows, so the latest write is the furthest. */
static void append_times(bson_t *fields, const sd_mongo_ctx_t *ctx, int64_t event_at,
                         int touches_updated_at)
{
    BSON_APPEND_DATE_TIME(fields, "purge_at", purge_at(ctx, event_at));
    if (touches_updated_at)
        BSON_APPEND_DATE_TIME(fields, "updated_at", event_at);
}

static void add_op(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx, const bson_t *filter,
                   const bson_t *update, int upsert, int many)
{
    ctx->ops++;
    bson_t opts = BSON_INITIALIZER;
    if (upsert)
        BSON_APPEND_BOOL(&opts, "upsert", true);
    /* The driver's default also checks that every string is UTF-8, a fifth
     * of the client's CPU in a batch; the event reader checked them all
     * already (json_scan.c).  Empty keys (in metadata) are still refused. */
    BSON_APPEND_INT32(&opts, "validate", BSON_VALIDATE_EMPTY_KEYS);
    bson_error_t error;
    /* Only malformed arguments fail here; the bulk then reports them too. */
    if (many)
        (void)mongoc_bulk_operation_update_many_with_opts(bulk, filter, update, &opts, &error);
    else
        (void)mongoc_bulk_operation_update_one_with_opts(bulk, filter, update, &opts, &error);
    bson_destroy(&opts);
}

/* field null, or field `op` key: the defining-create / status comparison */
static void append_key_beats(bson_t *f, const char *field, const char *op, const char *key)
{
    bson_t or_, a, b, cmp;
    BSON_APPEND_ARRAY_BEGIN(f, "$or", &or_);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "0", &a);
    BSON_APPEND_NULL(&a, field);
    bson_append_document_end(&or_, &a);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "1", &b);
    BSON_APPEND_DOCUMENT_BEGIN(&b, field, &cmp);
    BSON_APPEND_UTF8(&cmp, op, key);
    bson_append_document_end(&b, &cmp);
    bson_append_document_end(&or_, &b);
    bson_append_array_end(f, &or_);
}

/* field > now - ttl (recent) or its negation (also true when null) */
static void append_recent(bson_t *f, const sd_mongo_ctx_t *ctx, const char *field, int want)
{
    bson_t cond, gt;
    BSON_APPEND_DOCUMENT_BEGIN(f, field, &cond);
    if (want) {
        BSON_APPEND_DATE_TIME(&cond, "$gt", live_since(ctx));
    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&cond, "$not", &gt);
        BSON_APPEND_DATE_TIME(&gt, "$gt", live_since(ctx));
        bson_append_document_end(&cond, &gt);
    }
    bson_append_document_end(f, &cond);
}

/* Appends the fields a transition sets; insert: for a new document. */
typedef void (*fields_fn)(bson_t *set, const void *arg, int insert);

/* A new document (upsert, $setOnInsert) and, for an existing one, the
 * conditional update: both set the same fields and log the same entry. */
static void add_transition(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                           const char *task_id, const bson_t *existing_filter, fields_fn fields,
                           const void *arg, const entry_t *e, int64_t event_at,
                           int touches_updated_at)
{
    bson_t filter, update, set, log;
    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", task_id);
    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &set);
    BSON_APPEND_UTF8(&set, "task_id", task_id);
    fields(&set, arg, 1);
    if (!bson_has_field(&set, "removed"))
        BSON_APPEND_NULL(&set, "removed");
    BSON_APPEND_BOOL(&set, "expired", false);
    BSON_APPEND_ARRAY_BEGIN(&set, "log", &log);
    append_entry(&log, "0", ctx, e);
    bson_append_array_end(&set, &log);
    append_times(&set, ctx, event_at, touches_updated_at);
    bson_append_document_end(&update, &set);
    add_op(bulk, ctx, &filter, &update, 1, 0);
    bson_destroy(&filter);
    bson_destroy(&update);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    fields(&set, arg, 0);
    BSON_APPEND_BOOL(&set, "expired", false);
    BSON_APPEND_NULL(&set, "expiry_sent_at");
    append_times(&set, ctx, event_at, touches_updated_at);
    bson_append_document_end(&update, &set);
    /* {$addToSet: {log: entry}}: entries are unique (batch id, cause), so
     * this appends; a retried operation cannot add its entry twice. */
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$addToSet", &set);
    append_entry(&set, "log", ctx, e);
    bson_append_document_end(&update, &set);
    add_op(bulk, ctx, existing_filter, &update, 0, 0);
    bson_destroy(&update);
}

typedef struct create_args {
    const sd_event_t *ev;
    const sd_cover_t *cover; /* non-NULL when a known save covers it */
} create_args_t;

static void set_create(bson_t *set, const void *arg, int insert)
{
    const create_args_t *a = arg;
    append_create_fields(set, a->ev);
    if (insert) /* an existing document may hold a status already */
        BSON_APPEND_UTF8(set, "status", "active");
    if (a->cover)
        append_removed(set, "removed", SD_REASON_SCENARIO_SAVED, &a->cover->save);
}

void sd_mongo_ops_create(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_event_t *ev, const sd_origin_t *origin,
                         const sd_cover_t *cover)
{
    char key[192];
    event_key(key, sizeof key, ev->occurred_at_ms, ev->event_id);
    int covered = ev->task_kind == SD_TASK_SCENARIO_GENERATION && cover && cover->known &&
                  ev->occurred_at_ms <= cover->save.at_ms;
    create_args_t args = {ev, covered ? cover : NULL};
    entry_t e = {.kind = 'c', .cause = origin, .create = ev,
                 .cover = covered ? &cover->save : NULL};
    bson_t existing;
    bson_init(&existing);
    BSON_APPEND_UTF8(&existing, "_id", ev->task_id);
    BSON_APPEND_NULL(&existing, "removed");
    append_key_beats(&existing, "ck", "$gt", key);
    add_transition(bulk, ctx, ev->task_id, &existing, set_create, &args, &e, ev->occurred_at_ms, 1);
    bson_destroy(&existing);
}

static void set_status(bson_t *set, const void *arg, int insert)
{
    (void)insert;
    append_status_fields(set, arg);
}

void sd_mongo_ops_status(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_intent_t *in, const sd_origin_t *origin)
{
    const sd_event_t *ev = in->event;
    char key[192];
    event_key(key, sizeof key, ev->occurred_at_ms, ev->event_id);
    entry_t e = {.kind = 's', .cause = origin, .status = in};
    bson_t existing;
    bson_init(&existing);
    BSON_APPEND_UTF8(&existing, "_id", ev->task_id);
    BSON_APPEND_NULL(&existing, "removed");
    append_key_beats(&existing, "sk", "$lt", key);
    add_transition(bulk, ctx, ev->task_id, &existing, set_status, in, &e, ev->occurred_at_ms, 1);
    bson_destroy(&existing);
}

typedef struct remove_args {
    sd_reason_t reason;
    const sd_origin_t *by;
} remove_args_t;

static void set_removed(bson_t *set, const void *arg, int insert)
{
    (void)insert;
    const remove_args_t *a = arg;
    append_removed(set, "removed", a->reason, a->by);
}

void sd_mongo_ops_remove(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_intent_t *in, const sd_origin_t *origin)
{
    remove_args_t args = {in->reason, origin};
    entry_t e = {.kind = 'r', .cause = origin, .reason = in->reason};
    bson_t existing;
    bson_init(&existing);
    BSON_APPEND_UTF8(&existing, "_id", in->event->task_id);
    BSON_APPEND_NULL(&existing, "removed");
    add_transition(bulk, ctx, in->event->task_id, &existing, set_removed, &args, &e,
                   in->event->occurred_at_ms, 0);
    bson_destroy(&existing);
}

void sd_mongo_ops_cover(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                        const char *short_id, const char *task_id, const sd_origin_t *save)
{
    entry_t e = {.kind = 'v', .cause = save};
    bson_t filter, update, set, lte;
    bson_init(&filter);
    if (task_id)
        BSON_APPEND_UTF8(&filter, "_id", task_id);
    BSON_APPEND_UTF8(&filter, "short_id", short_id);
    BSON_APPEND_UTF8(&filter, "task_type", SG);
    BSON_APPEND_NULL(&filter, "removed");
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "created_at", &lte);
    BSON_APPEND_DATE_TIME(&lte, "$lte", save->at_ms);
    bson_append_document_end(&filter, &lte);
    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    append_removed(&set, "removed", SD_REASON_SCENARIO_SAVED, save);
    append_times(&set, ctx, save->at_ms, 0);
    bson_append_document_end(&update, &set);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$addToSet", &set);
    append_entry(&set, "log", ctx, &e);
    bson_append_document_end(&update, &set);
    add_op(bulk, ctx, &filter, &update, 0, task_id == NULL);
    bson_destroy(&filter);
    bson_destroy(&update);
}

void sd_mongo_expired_filter(bson_t *f, const sd_mongo_ctx_t *ctx)
{
    bson_t lte, ne;
    bson_init(f);
    BSON_APPEND_DOCUMENT_BEGIN(f, "expired", &ne);
    BSON_APPEND_BOOL(&ne, "$ne", true);
    bson_append_document_end(f, &ne);
    BSON_APPEND_NULL(f, "removed");
    BSON_APPEND_DOCUMENT_BEGIN(f, "created_at", &lte);
    BSON_APPEND_DATE_TIME(&lte, "$lte", live_since(ctx));
    bson_append_document_end(f, &lte);
    append_recent(f, ctx, "status_at", 0);
}

void sd_mongo_ops_expire(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const char *task_id, const sd_origin_t *by)
{
    /* The version and time of the change are read off the log when
     * folding (sd_state_expire). */
    entry_t e = {.kind = 'x', .cause = by};
    bson_t filter, update, set;
    sd_mongo_expired_filter(&filter, ctx);
    BSON_APPEND_UTF8(&filter, "_id", task_id);
    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_BOOL(&set, "expired", true);
    append_times(&set, ctx, ctx->now_ms, 0);
    bson_append_document_end(&update, &set);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$addToSet", &set);
    append_entry(&set, "log", ctx, &e);
    bson_append_document_end(&update, &set);
    add_op(bulk, ctx, &filter, &update, 0, 0);
    bson_destroy(&filter);
    bson_destroy(&update);
}

void sd_mongo_ops_marker(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const char *short_id, const sd_origin_t *save)
{
    char key[192];
    event_key(key, sizeof key, save->at_ms, save->event_id);
    for (int insert = 1; insert >= 0; insert--) {
        bson_t filter, update, fields, cmp;
        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "_id", short_id);
        if (!insert) {
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "key", &cmp);
            BSON_APPEND_UTF8(&cmp, "$lt", key);
            bson_append_document_end(&filter, &cmp);
        }
        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, insert ? "$setOnInsert" : "$set", &fields);
        BSON_APPEND_UTF8(&fields, "key", key);
        BSON_APPEND_DATE_TIME(&fields, "saved_at", save->at_ms);
        BSON_APPEND_UTF8(&fields, "by", save->event_id);
        append_position(&fields, save);
        BSON_APPEND_DATE_TIME(&fields, "purge_at", purge_at(ctx, save->at_ms));
        bson_append_document_end(&update, &fields);
        add_op(bulk, ctx, &filter, &update, insert, 0);
        bson_destroy(&filter);
        bson_destroy(&update);
    }
}

void sd_mongo_visible_filter(bson_t *f, const sd_mongo_ctx_t *ctx, const char *by,
                             const char *value)
{
    bson_t ne, or_, a, b;
    bson_init(f);
    if (by)
        BSON_APPEND_UTF8(f, by, value);
    BSON_APPEND_DOCUMENT_BEGIN(f, "ck", &ne);
    BSON_APPEND_NULL(&ne, "$ne");
    bson_append_document_end(f, &ne);
    BSON_APPEND_NULL(f, "removed");
    BSON_APPEND_ARRAY_BEGIN(f, "$or", &or_);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "0", &a);
    append_recent(&a, ctx, "created_at", 1);
    bson_append_document_end(&or_, &a);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "1", &b);
    append_recent(&b, ctx, "status_at", 1);
    bson_append_document_end(&or_, &b);
    bson_append_array_end(f, &or_);
}
