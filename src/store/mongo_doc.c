/* Reading the MongoDB store's documents: metadata between JSON and BSON,
 * save markers, and the fold of a session's log into the changes it
 * published (see the document layout in mongo_ops.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/mongo_ops.h"
#include "sessiond/store_backend.h"

/* ---- JSON <-> BSON for metadata: a plain walk, so keys such as "$date"
 * stay what the producer wrote instead of turning into extended JSON. ---- */

static void append_json(bson_t *b, const char *key, json_t *v);

static void append_json_children(bson_t *b, json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child) append_json(b, k, child);
    } else {
        size_t i;
        json_t *child;
        char index[24];
        json_array_foreach(v, i, child)
        {
            snprintf(index, sizeof index, "%zu", i);
            append_json(b, index, child);
        }
    }
}

static void append_json(bson_t *b, const char *key, json_t *v)
{
    bson_t child;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        BSON_APPEND_DOCUMENT_BEGIN(b, key, &child);
        append_json_children(&child, v);
        bson_append_document_end(b, &child);
        break;
    case JSON_ARRAY:
        BSON_APPEND_ARRAY_BEGIN(b, key, &child);
        append_json_children(&child, v);
        bson_append_array_end(b, &child);
        break;
    case JSON_STRING:
        bson_append_utf8(b, key, -1, json_string_value(v), (int)json_string_length(v));
        break;
    case JSON_INTEGER:
        BSON_APPEND_INT64(b, key, json_integer_value(v));
        break;
    case JSON_REAL:
        BSON_APPEND_DOUBLE(b, key, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        BSON_APPEND_BOOL(b, key, json_is_true(v));
        break;
    case JSON_NULL:
        BSON_APPEND_NULL(b, key);
        break;
    }
}

void sd_mongo_append_metadata(bson_t *b, const char *key, const char *metadata_json)
{
    json_t *v = metadata_json ? json_loads(metadata_json, 0, NULL) : NULL;
    if (json_is_object(v))
        append_json(b, key, v);
    else
        BSON_APPEND_NULL(b, key);
    json_decref(v);
}

static json_t *bson_value_json(const bson_iter_t *it);

static json_t *bson_children_json(const bson_iter_t *it, int as_array)
{
    bson_iter_t child;
    json_t *out = as_array ? json_array() : json_object();
    if (!bson_iter_recurse(it, &child))
        return out;
    while (bson_iter_next(&child)) {
        json_t *v = bson_value_json(&child);
        if (as_array)
            json_array_append_new(out, v);
        else
            json_object_set_new(out, bson_iter_key(&child), v);
    }
    return out;
}

static json_t *bson_value_json(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOCUMENT: return bson_children_json(it, 0);
    case BSON_TYPE_ARRAY: return bson_children_json(it, 1);
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        return json_stringn(s, len);
    }
    case BSON_TYPE_INT32: return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64: return json_integer(bson_iter_int64(it));
    case BSON_TYPE_DOUBLE: return json_real(bson_iter_double(it));
    case BSON_TYPE_BOOL: return json_boolean(bson_iter_bool(it));
    default: return json_null();
    }
}

/* Compact JSON text of a metadata subdocument, or NULL; caller frees. */
static char *metadata_text(const bson_iter_t *it)
{
    if (bson_iter_type(it) != BSON_TYPE_DOCUMENT)
        return NULL;
    json_t *v = bson_value_json(it);
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return text;
}

static const char *doc_utf8(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it) &&
        BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

static int64_t doc_int(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it)) {
        if (BSON_ITER_HOLDS_DATE_TIME(&it))
            return bson_iter_date_time(&it);
        if (BSON_ITER_HOLDS_NUMBER(&it))
            return bson_iter_as_int64(&it);
    }
    return 0;
}

static int doc_has(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it) &&
           !BSON_ITER_HOLDS_NULL(&it);
}

void sd_mongo_marker_cover(const bson_t *doc, sd_cover_t *cover)
{
    memset(cover, 0, sizeof *cover);
    cover->save.event_id = doc_utf8(doc, "by");
    if (!cover->save.event_id)
        return;
    cover->known = 1;
    cover->save.at_ms = doc_int(doc, "saved_at");
    cover->save.topic = doc_utf8(doc, "topic");
    cover->save.partition = (int32_t)doc_int(doc, "partition");
    cover->save.offset = doc_int(doc, "offset");
}

/* ---- reading documents back ---- */

static const char *iter_utf8(const bson_iter_t *parent, const char *key)
{
    bson_iter_t it;
    if (bson_iter_recurse(parent, &it) && bson_iter_find(&it, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

static int64_t iter_int(const bson_iter_t *parent, const char *key, int *found)
{
    bson_iter_t it;
    if (bson_iter_recurse(parent, &it) && bson_iter_find(&it, key)) {
        if (found)
            *found = !BSON_ITER_HOLDS_NULL(&it);
        if (BSON_ITER_HOLDS_DATE_TIME(&it))
            return bson_iter_date_time(&it);
        if (BSON_ITER_HOLDS_NUMBER(&it))
            return bson_iter_as_int64(&it);
        return 0;
    }
    if (found)
        *found = 0;
    return 0;
}

/* One log entry as the transition it records. */
typedef struct logged {
    char kind;
    sd_origin_t cause;
    sd_event_t event;   /* what sd_state_apply() reads of the cause */
    sd_intent_t intent;
    sd_cover_t cover;
    int64_t now;
    const char *batch;
} logged_t;

static int read_origin(const bson_iter_t *parent, sd_origin_t *o)
{
    int has_at;
    o->event_id = iter_utf8(parent, "e");
    o->at_ms = iter_int(parent, "at", &has_at);
    o->topic = iter_utf8(parent, "topic");
    o->partition = (int32_t)iter_int(parent, "partition", NULL);
    o->offset = iter_int(parent, "offset", NULL);
    return o->event_id && has_at ? 0 : -1;
}

/* Reads an entry; *metadata receives the create's metadata text (owned). */
static int read_entry(const bson_iter_t *entry, const char *task_id, logged_t *l,
                      char **metadata)
{
    memset(l, 0, sizeof *l);
    *metadata = NULL;
    const char *kind = iter_utf8(entry, "k");
    if (!kind || !BSON_ITER_HOLDS_DOCUMENT(entry))
        return -1;
    l->kind = kind[0];
    l->batch = iter_utf8(entry, "b");
    l->now = iter_int(entry, "n", NULL);
    if (l->kind == 'x' && !iter_utf8(entry, "e"))
        return 0; /* sessiond 0.1's sweeper: no cause */
    if (read_origin(entry, &l->cause))
        return -1;
    l->event = (sd_event_t){.event_id = l->cause.event_id, .occurred_at_ms = l->cause.at_ms,
                            .task_id = task_id};
    l->intent.event = &l->event;
    bson_iter_t part;
    if (l->kind == 'c') {
        if (!bson_iter_recurse(entry, &part) || !bson_iter_find(&part, "c") ||
            !BSON_ITER_HOLDS_DOCUMENT(&part))
            return -1;
        l->event.type = SD_EVENT_TASK_CREATED;
        l->event.short_id = iter_utf8(&part, "short_id");
        l->event.task_type = iter_utf8(&part, "task_type");
        l->event.task_kind = sd_task_type_from_name(l->event.task_type);
        l->event.user_id = iter_utf8(&part, "user_id");
        bson_iter_t md;
        if (bson_iter_recurse(&part, &md) && bson_iter_find(&md, "metadata") &&
            BSON_ITER_HOLDS_DOCUMENT(&md) && !(*metadata = metadata_text(&md)))
            return -2;
        l->event.metadata_json = *metadata;
        l->intent.kind = SD_INTENT_CREATE;
        l->intent.reason = SD_REASON_TASK_CREATED;
        if (bson_iter_recurse(entry, &part) && bson_iter_find(&part, "cv") &&
            BSON_ITER_HOLDS_DOCUMENT(&part)) {
            l->cover.known = read_origin(&part, &l->cover.save) == 0;
            if (!l->cover.known)
                return -1;
        }
        return l->event.short_id && l->event.task_type ? 0 : -1;
    }
    if (l->kind == 's') {
        l->intent.kind = SD_INTENT_SET_STATUS;
        if (sd_status_from_name(iter_utf8(entry, "st"), &l->intent.status) ||
            sd_reason_from_name(iter_utf8(entry, "rs"), &l->intent.reason))
            return -1;
        return 0;
    }
    if (l->kind == 'r') {
        l->intent.kind = SD_INTENT_REMOVE;
        return sd_reason_from_name(iter_utf8(entry, "rs"), &l->intent.reason) ? -1 : 0;
    }
    return l->kind == 'v' || l->kind == 'x' ? 0 : -1;
}

size_t sd_mongo_first_of_event(const sd_store_item_t *const *by_event, size_t n,
                               const char *event_id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(by_event[mid]->intent.event->event_id, event_id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Whether one of the items (sorted by event id) is the message that
 * caused the change (sd_store_item_caused). */
static int redelivered(const sd_store_item_t *const *by_event, size_t n, const sd_cause_t *cause)
{
    size_t lo = sd_mongo_first_of_event(by_event, n, cause->event_id);
    for (; lo < n && strcmp(by_event[lo]->intent.event->event_id, cause->event_id) == 0; lo++)
        if (sd_store_item_caused(by_event[lo], cause))
            return 1;
    return 0;
}

/* Replays a document's log: the same transitions, in the order the server
 * applied them, with the clock each batch had, decide what was published.
 * Appends to *mine the changes of ctx->batch_id's entries (if mine is not
 * NULL) and leaves the latest published change in *latest (0 or 1 item). */
static sd_err_t replay_log(const bson_t *doc, const sd_mongo_ctx_t *ctx, sd_change_list_t *mine,
                           sd_change_list_t *latest, sd_error_t *err)
{
    bson_iter_t it, log;
    const char *task_id = doc_utf8(doc, "_id");
    if (!task_id || !bson_iter_init_find(&it, doc, "log") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &log))
        return SD_OK; /* not one of ours: nothing to publish */

    sd_state_t st = {.task_id = task_id};
    char **metadata = NULL; /* the state points into these */
    size_t n_metadata = 0;
    sd_err_t rc = SD_OK;
    while (rc == SD_OK && bson_iter_next(&log)) {
        logged_t l;
        char *md;
        int bad = read_entry(&log, task_id, &l, &md);
        if (md) {
            char **grown = realloc(metadata, (n_metadata + 1) * sizeof *grown);
            if (!grown) {
                free(md);
                bad = -2;
            } else {
                metadata = grown;
                metadata[n_metadata++] = md;
            }
        }
        if (bad) {
            rc = bad == -2 ? sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading %s", task_id)
                           : sd_error_set(err, SD_ERR_FATAL, "store",
                                          "session %s has a malformed log entry: was it written "
                                          "by another program?", task_id);
            break;
        }
        sd_state_clock_t clock = {l.now, ctx->ttl_ms};
        sd_emit_t emit;
        if (l.kind == 'v')
            sd_state_cover(&st, &l.cause, clock, &emit);
        else if (l.kind == 'x')
            sd_state_expire(&st, clock, l.cause.event_id ? &l.cause : NULL, &emit);
        else
            sd_state_apply(&st, &l.intent, &l.cause, &l.cover, clock, &emit);
        if (!emit.emitted)
            continue;
        /* Copied: replaying on changes the state the change points into. */
        sd_change_t change = sd_store_change_of(&st, &emit);
        int is_mine = mine && l.batch && strcmp(l.batch, ctx->batch_id) == 0;
        sd_change_list_free(latest);
        if ((is_mine && sd_change_list_add(mine, &change) != SD_OK) ||
            sd_change_list_add(latest, &change) != SD_OK)
            rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading changes");
    }
    for (size_t i = 0; i < n_metadata; i++)
        free(metadata[i]);
    free(metadata);
    return rc;
}

sd_err_t sd_mongo_doc_changes(const bson_t *doc, const sd_mongo_ctx_t *ctx,
                              const sd_store_item_t *const *by_event, size_t n_events,
                              sd_change_list_t *out, int *republished, sd_error_t *err)
{
    *republished = 0;
    size_t before = out->count;
    sd_change_list_t latest = {0};
    sd_err_t rc = replay_log(doc, ctx, out, &latest, err);
    if (rc == SD_OK && out->count == before && latest.count &&
        redelivered(by_event, n_events, &latest.items[0].cause)) {
        if (sd_change_list_add(out, &latest.items[0]) != SD_OK)
            rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading changes");
        *republished = 1;
    }
    sd_change_list_free(&latest);
    return rc;
}

sd_err_t sd_mongo_doc_latest(const bson_t *doc, const sd_mongo_ctx_t *ctx,
                             sd_change_list_t *latest, sd_error_t *err)
{
    return replay_log(doc, ctx, NULL, latest, err);
}

sd_err_t sd_mongo_doc_session(const bson_t *doc, sd_session_list_t *out, sd_error_t *err)
{
    bson_iter_t it;
    sd_state_t st = {.task_id = doc_utf8(doc, "_id"), .has_create = 1};
    st.short_id = doc_utf8(doc, "short_id");
    st.task_type = doc_utf8(doc, "task_type");
    st.user_id = doc_utf8(doc, "user_id");
    st.created_at = doc_int(doc, "created_at");
    st.has_status = doc_has(doc, "status_at");
    if (sd_status_from_name(doc_utf8(doc, "status"), &st.status) != 0)
        st.status = SD_STATUS_ACTIVE;
    st.status_at = doc_int(doc, "status_at");
    char *metadata = NULL;
    if (bson_iter_init_find(&it, doc, "metadata"))
        metadata = metadata_text(&it);
    st.metadata_json = metadata;
    sd_session_t session = sd_state_session(&st);
    sd_err_t rc = SD_OK;
    if (!st.task_id || !st.short_id || !st.task_type)
        rc = sd_error_set(err, SD_ERR_FATAL, "store", "session %s lacks its create fields",
                          st.task_id ? st.task_id : "(no _id)");
    else if (sd_session_list_add(out, &session) != SD_OK)
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory listing sessions");
    free(metadata);
    return rc;
}
