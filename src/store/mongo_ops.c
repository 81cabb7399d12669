/* MongoDB write operations for each transition, and the read-back fold.
 *
 * Document of one task (collection `sessions`, _id = task_id):
 *   task_id, short_id, task_type, user_id, metadata, created_at, created_by,
 *   ck            "<created_at ms, 15 digits>|<created_by>": the defining
 *                 create is the smallest ck
 *   status, status_at, status_by, sk   the same for the status: largest sk
 *   removed       null, or {reason, by, at, topic, partition, offset}
 *   live          the latest published change left the session visible
 *   version       number of published changes
 *   updated_at    event time of the latest create or status applied
 *   purge_at      TTL index: when the document may go
 *   log           [{b, e, ct, rs, ce, topic, partition, offset, at, c, s, r}], one entry
 *                 per operation that changed the session: batch id,
 *                 emitted?, change type, reason, cause, occurred_at, and the
 *                 create / status / removal fields the operation set
 *
 * Each transition is split into operations whose filters are disjoint and
 * say exactly when sd_state_apply() would publish.  Only the pipeline of a
 * task's own partition makes a session visible; the sweeper and saves only
 * hide sessions.  Operations that test `live: true` therefore come before
 * those that test `live != true`, so a concurrent hide between two of them
 * still lets exactly one apply. */
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

static int recent(const sd_mongo_ctx_t *ctx, int64_t at) { return at + ctx->ttl_ms > ctx->now_ms; }

static int64_t live_since(const sd_mongo_ctx_t *ctx) { return ctx->now_ms - ctx->ttl_ms; }

static int64_t purge_at(const sd_mongo_ctx_t *ctx, int64_t at)
{
    return max64(at + ctx->ttl_ms, ctx->now_ms) + ctx->retention_ms;
}

/* ---- building blocks ---- */

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

/* What one operation publishes and sets, as a log entry. */
typedef struct entry {
    int emitted;
    sd_change_type_t type;
    sd_reason_t reason;
    const sd_origin_t *cause; /* NULL: the sweeper's expiry, see entry_change() */
    int has_at; /* 0: an expiry, dated when folding */
    const sd_event_t *create;
    const sd_intent_t *status;
    int removes;
    sd_reason_t removed_reason;
    const sd_origin_t *removed_by;
} entry_t;

static void append_entry(bson_t *b, const char *key, const sd_mongo_ctx_t *ctx,
                         const entry_t *e)
{
    bson_t d, part;
    BSON_APPEND_DOCUMENT_BEGIN(b, key, &d);
    BSON_APPEND_UTF8(&d, "b", ctx->batch_id);
    BSON_APPEND_BOOL(&d, "e", e->emitted);
    if (e->emitted) {
        BSON_APPEND_UTF8(&d, "ct", sd_change_type_name(e->type));
        BSON_APPEND_UTF8(&d, "rs", sd_reason_name(e->reason));
        sd_origin_t none = {0};
        if (e->cause)
            BSON_APPEND_UTF8(&d, "ce", e->cause->event_id);
        append_position(&d, e->type == SD_CHANGE_EXPIRED || !e->cause ? &none : e->cause);
        if (e->has_at && e->cause)
            BSON_APPEND_DATE_TIME(&d, "at", e->cause->at_ms);
    }
    if (e->create) {
        BSON_APPEND_DOCUMENT_BEGIN(&d, "c", &part);
        append_create_fields(&part, e->create);
        bson_append_document_end(&d, &part);
    }
    if (e->status) {
        BSON_APPEND_DOCUMENT_BEGIN(&d, "s", &part);
        append_status_fields(&part, e->status);
        bson_append_document_end(&d, &part);
    }
    if (e->removes)
        append_removed(&d, "r", e->removed_reason, e->removed_by);
    bson_append_document_end(b, &d);
}

/* {$addToSet: {log: entry}}: entries are unique (batch id, cause), so this
 * appends; a retried operation cannot add its entry twice. */
static void append_log(bson_t *update, const sd_mongo_ctx_t *ctx, const entry_t *e)
{
    bson_t add;
    BSON_APPEND_DOCUMENT_BEGIN(update, "$addToSet", &add);
    append_entry(&add, "log", ctx, e);
    bson_append_document_end(update, &add);
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

static void append_inc_version(bson_t *update)
{
    bson_t inc;
    BSON_APPEND_DOCUMENT_BEGIN(update, "$inc", &inc);
    BSON_APPEND_INT64(&inc, "version", 1);
    bson_append_document_end(update, &inc);
}

static void add_op(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx, const bson_t *filter,
                   const bson_t *update, int upsert, int many)
{
    ctx->ops++;
    bson_t opts = BSON_INITIALIZER;
    if (upsert)
        BSON_APPEND_BOOL(&opts, "upsert", true);
    bson_error_t error;
    /* Only malformed arguments fail here; the bulk then reports them too. */
    if (many)
        (void)mongoc_bulk_operation_update_many_with_opts(bulk, filter, update, &opts, &error);
    else
        (void)mongoc_bulk_operation_update_one_with_opts(bulk, filter, update, &opts, &error);
    bson_destroy(&opts);
}

/* {_id: task_id, removed: null, ...}: a session that can still change. */
static void open_filter(bson_t *f, const char *task_id)
{
    bson_init(f);
    BSON_APPEND_UTF8(f, "_id", task_id);
    BSON_APPEND_NULL(f, "removed");
}

/* field null, or field `op` key: the defining-create / status comparison */
static void append_key_beats(bson_t *f, const char *field, const char *op, const char *key)
{
    bson_t and_, or_, a, b, cmp, wrap;
    /* wrapped in $and so other $or clauses can sit beside it */
    BSON_APPEND_ARRAY_BEGIN(f, "$and", &and_);
    BSON_APPEND_DOCUMENT_BEGIN(&and_, "0", &wrap);
    BSON_APPEND_ARRAY_BEGIN(&wrap, "$or", &or_);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "0", &a);
    BSON_APPEND_NULL(&a, field);
    bson_append_document_end(&or_, &a);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "1", &b);
    BSON_APPEND_DOCUMENT_BEGIN(&b, field, &cmp);
    BSON_APPEND_UTF8(&cmp, op, key);
    bson_append_document_end(&b, &cmp);
    bson_append_document_end(&or_, &b);
    bson_append_array_end(&wrap, &or_);
    bson_append_document_end(&and_, &wrap);
    bson_append_array_end(f, &and_);
}

static void append_live(bson_t *f, int live)
{
    if (live) {
        BSON_APPEND_BOOL(f, "live", true);
    } else {
        bson_t ne;
        BSON_APPEND_DOCUMENT_BEGIN(f, "live", &ne);
        BSON_APPEND_BOOL(&ne, "$ne", true);
        bson_append_document_end(f, &ne);
    }
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

/* ---- transitions ---- */

/* $set of fields plus live (-1: leave it), $inc version when emitting, the
 * log entry and the purge time. */
typedef void (*fields_fn)(bson_t *set, const void *arg);

static void build_update(bson_t *u, const sd_mongo_ctx_t *ctx, fields_fn fields,
                         const void *arg, int live, const entry_t *e, int64_t event_at,
                         int touches_updated_at)
{
    bson_t set;
    bson_init(u);
    BSON_APPEND_DOCUMENT_BEGIN(u, "$set", &set);
    if (fields)
        fields(&set, arg);
    if (e->removes)
        append_removed(&set, "removed", e->removed_reason, e->removed_by);
    if (live >= 0)
        BSON_APPEND_BOOL(&set, "live", live);
    append_times(&set, ctx, event_at, touches_updated_at);
    bson_append_document_end(u, &set);
    if (e->emitted)
        append_inc_version(u);
    append_log(u, ctx, e);
}

static void set_create(bson_t *set, const void *arg) { append_create_fields(set, arg); }
static void set_status(bson_t *set, const void *arg) { append_status_fields(set, arg); }

static void set_new_create(bson_t *set, const void *arg)
{
    append_create_fields(set, arg);
    BSON_APPEND_UTF8(set, "status", "active");
}

/* The upsert that makes the document when the task is new; on an existing
 * document it does nothing and the conditional updates after it apply. */
static void add_insert(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx, const char *task_id,
                       fields_fn fields, const void *arg, const entry_t *e, int64_t event_at,
                       int touches_updated_at)
{
    bson_t filter, update, soi, log;
    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", task_id);
    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &soi);
    BSON_APPEND_UTF8(&soi, "task_id", task_id);
    if (fields)
        fields(&soi, arg);
    if (e->removes)
        append_removed(&soi, "removed", e->removed_reason, e->removed_by);
    else
        BSON_APPEND_NULL(&soi, "removed");
    BSON_APPEND_BOOL(&soi, "live", e->emitted);
    BSON_APPEND_INT64(&soi, "version", e->emitted);
    BSON_APPEND_ARRAY_BEGIN(&soi, "log", &log);
    append_entry(&log, "0", ctx, e);
    bson_append_array_end(&soi, &log);
    append_times(&soi, ctx, event_at, touches_updated_at);
    bson_append_document_end(&update, &soi);
    add_op(bulk, ctx, &filter, &update, 1, 0);
    bson_destroy(&filter);
    bson_destroy(&update);
}

void sd_mongo_ops_create(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_event_t *ev, const sd_origin_t *origin,
                         const sd_cover_t *cover)
{
    char key[192];
    event_key(key, sizeof key, ev->occurred_at_ms, ev->event_id);
    int covered = ev->task_kind == SD_TASK_SCENARIO_GENERATION && cover && cover->known &&
                  ev->occurred_at_ms <= cover->save.at_ms;
    int fresh = recent(ctx, ev->occurred_at_ms);
    entry_t e = {.create = ev, .cause = origin, .has_at = 1, .type = SD_CHANGE_CREATED,
                 .reason = SD_REASON_TASK_CREATED};
    if (covered) {
        e.removes = 1;
        e.removed_reason = SD_REASON_SCENARIO_SAVED;
        e.removed_by = &cover->save;
    }
    /* A new document: created, visible unless covered or already old. */
    e.emitted = !covered && fresh;
    add_insert(bulk, ctx, ev->task_id, set_new_create, ev, &e, ev->occurred_at_ms, 1);

    bson_t filter, update;
    /* An existing document this create now defines. */
#define CREATE_OP(live_cond, recent_cond, new_live)                                       \
    do {                                                                                  \
        open_filter(&filter, ev->task_id);                                                \
        append_key_beats(&filter, "ck", "$gt", key);                                      \
        if ((live_cond) >= 0)                                                             \
            append_live(&filter, live_cond);                                              \
        if ((recent_cond) >= 0)                                                           \
            append_recent(&filter, ctx, "status_at", recent_cond);                        \
        build_update(&update, ctx, set_create, ev, new_live, &e, ev->occurred_at_ms, 1);  \
        add_op(bulk, ctx, &filter, &update, 0, 0);                                             \
        bson_destroy(&filter);                                                            \
        bson_destroy(&update);                                                            \
    } while (0)

    if (covered) {
        e.emitted = 1;
        e.type = SD_CHANGE_REMOVED;
        e.reason = SD_REASON_SCENARIO_SAVED;
        e.cause = &cover->save;
        CREATE_OP(1, -1, 0);
        e.emitted = 0;
        CREATE_OP(0, -1, -1);
        return;
    }
    if (!fresh) { /* visible only through a recent status; else hidden */
        e.emitted = 1;
        e.type = SD_CHANGE_EXPIRED;
        e.reason = SD_REASON_TTL;
        e.has_at = 0;
        CREATE_OP(1, 0, 0);
        e.has_at = 1;
    }
    e.emitted = 1;
    e.type = SD_CHANGE_CREATED;
    e.reason = SD_REASON_TASK_CREATED;
    CREATE_OP(-1, fresh ? -1 : 1, 1);
    if (!fresh) {
        e.emitted = 0;
        CREATE_OP(0, 0, -1);
    }
#undef CREATE_OP
}

void sd_mongo_ops_status(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_intent_t *in, const sd_origin_t *origin)
{
    const sd_event_t *ev = in->event;
    char key[192];
    event_key(key, sizeof key, ev->occurred_at_ms, ev->event_id);
    int fresh = recent(ctx, ev->occurred_at_ms);
    entry_t e = {.status = in, .cause = origin, .has_at = 1};
    add_insert(bulk, ctx, ev->task_id, set_status, in, &e, ev->occurred_at_ms, 1);

    bson_t filter, update, ne;
    /* has_create: 1 created, 0 not, -1 either; version0: 1, 0, -1 likewise */
#define STATUS_OP(has_create, visible_after, live_cond, version0, new_live)               \
    do {                                                                                  \
        open_filter(&filter, ev->task_id);                                                \
        append_key_beats(&filter, "sk", "$lt", key);                                      \
        if ((has_create) == 1) {                                                          \
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "ck", &ne);                               \
            BSON_APPEND_NULL(&ne, "$ne");                                                 \
            bson_append_document_end(&filter, &ne);                                       \
        } else if ((has_create) == 0) {                                                   \
            BSON_APPEND_NULL(&filter, "ck");                                              \
        }                                                                                 \
        if ((visible_after) >= 0 && !fresh)                                               \
            append_recent(&filter, ctx, "created_at", visible_after);                     \
        if ((live_cond) >= 0)                                                             \
            append_live(&filter, live_cond);                                              \
        if ((version0) == 1)                                                              \
            BSON_APPEND_INT64(&filter, "version", 0);                                     \
        else if ((version0) == 0) {                                                       \
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "version", &ne);                          \
            BSON_APPEND_INT64(&ne, "$gt", 0);                                             \
            bson_append_document_end(&filter, &ne);                                       \
        }                                                                                 \
        build_update(&update, ctx, set_status, in, new_live, &e, ev->occurred_at_ms, 1);  \
        add_op(bulk, ctx, &filter, &update, 0, 0);                                             \
        bson_destroy(&filter);                                                            \
        bson_destroy(&update);                                                            \
    } while (0)

    /* Visible afterwards: the first change is the creation. */
    e.emitted = 1;
    e.type = SD_CHANGE_CREATED;
    e.reason = SD_REASON_TASK_CREATED;
    STATUS_OP(1, 1, -1, 1, 1);
    e.type = SD_CHANGE_STATUS_CHANGED;
    e.reason = in->reason;
    STATUS_OP(1, 1, -1, 0, 1);
    if (!fresh) {
        /* Shown until now, hidden by its age. */
        e.type = SD_CHANGE_EXPIRED;
        e.reason = SD_REASON_TTL;
        e.has_at = 0;
        STATUS_OP(1, 0, 1, -1, 0);
        e.has_at = 1;
        e.emitted = 0;
        STATUS_OP(1, 0, 0, -1, -1);
    }
    e.emitted = 0;
    STATUS_OP(0, -1, -1, -1, -1); /* no create yet: remembered for it */
#undef STATUS_OP
}

void sd_mongo_ops_remove(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const sd_intent_t *in, const sd_origin_t *origin)
{
    const sd_event_t *ev = in->event;
    entry_t e = {.cause = origin, .has_at = 1, .removes = 1, .removed_reason = in->reason,
                 .removed_by = origin, .type = SD_CHANGE_REMOVED, .reason = in->reason};
    add_insert(bulk, ctx, ev->task_id, NULL, NULL, &e, ev->occurred_at_ms, 0);

    bson_t filter, update;
    for (int live = 1; live >= 0; live--) {
        e.emitted = live;
        open_filter(&filter, ev->task_id);
        append_live(&filter, live);
        build_update(&update, ctx, NULL, NULL, live ? 0 : -1, &e, ev->occurred_at_ms, 0);
        add_op(bulk, ctx, &filter, &update, 0, 0);
        bson_destroy(&filter);
        bson_destroy(&update);
    }
}

void sd_mongo_ops_cover(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                        const char *short_id, const char *task_id, const sd_origin_t *save)
{
    entry_t e = {.cause = save, .has_at = 1, .removes = 1,
                 .removed_reason = SD_REASON_SCENARIO_SAVED, .removed_by = save,
                 .type = SD_CHANGE_REMOVED, .reason = SD_REASON_SCENARIO_SAVED};
    for (int live = 1; live >= 0; live--) {
        bson_t filter, update, lte;
        bson_init(&filter);
        if (task_id)
            BSON_APPEND_UTF8(&filter, "_id", task_id);
        BSON_APPEND_UTF8(&filter, "short_id", short_id);
        BSON_APPEND_UTF8(&filter, "task_type", SG);
        BSON_APPEND_NULL(&filter, "removed");
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "created_at", &lte);
        BSON_APPEND_DATE_TIME(&lte, "$lte", save->at_ms);
        bson_append_document_end(&filter, &lte);
        append_live(&filter, live);
        e.emitted = live;
        build_update(&update, ctx, NULL, NULL, live ? 0 : -1, &e, save->at_ms, 0);
        add_op(bulk, ctx, &filter, &update, 0, task_id == NULL);
        bson_destroy(&filter);
        bson_destroy(&update);
    }
}

void sd_mongo_expired_filter(bson_t *f, const sd_mongo_ctx_t *ctx)
{
    bson_t lte;
    bson_init(f);
    BSON_APPEND_BOOL(f, "live", true);
    BSON_APPEND_NULL(f, "removed");
    BSON_APPEND_DOCUMENT_BEGIN(f, "created_at", &lte);
    BSON_APPEND_DATE_TIME(&lte, "$lte", live_since(ctx));
    bson_append_document_end(f, &lte);
    append_recent(f, ctx, "status_at", 0);
}

void sd_mongo_ops_expire(mongoc_bulk_operation_t *bulk, sd_mongo_ctx_t *ctx,
                         const char *const *task_ids, size_t n)
{
    /* The cause (the event of the last change) and the time are read off
     * the log when folding, so one update fits every document. */
    entry_t e = {.emitted = 1, .type = SD_CHANGE_EXPIRED, .reason = SD_REASON_TTL};
    bson_t filter, update, in, arr;
    sd_mongo_expired_filter(&filter, ctx);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    char key[24];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%zu", i);
        BSON_APPEND_UTF8(&arr, key, task_ids[i]);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    build_update(&update, ctx, NULL, NULL, 0, &e, ctx->now_ms, 0);
    add_op(bulk, ctx, &filter, &update, 0, 1);
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
