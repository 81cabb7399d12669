/* Applying batches to MongoDB (see mongo_store.c for the connection).
 *
 * Concurrency between a create and a save of the same short_id, applied
 * by two processes at once, is settled without transactions, by
 * mark-then-scan and insert-then-check:
 *   - a save first records itself in the markers collection (an upsert
 *     that keeps the latest save), then removes the scenario sessions it
 *     covers;
 *   - a scenario create first upserts its session (covered already if a
 *     marker it read before says so), then reads the markers again and
 *     removes the session if a save now covers it.
 * Whichever order the four steps interleave in, one of the two checks
 * sees the other's write, so the session ends removed.  Each step is a
 * conditional update and idempotent, so a retried batch converges.  This
 * works on standalone servers, replica sets and sharded clusters alike,
 * needs no transaction, and costs two reads per batch that has scenario
 * creates.
 *
 * A batch costs a bounded number of commands whatever its size: markers
 * (if it has saves), the marker read (if it has scenario creates), one
 * ordered bulk write of every session operation, one read-back of the
 * touched documents, and the marker check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/mongo_store.h"
#include "mongo_codes.h"

/* Codes that say this document can never be written: dead-letter it. */
static int event_code(uint32_t code)
{
    return code == SD_MONGO_BAD_VALUE || code == SD_MONGO_DOLLAR_PREFIXED_FIELD_NAME ||
           code == SD_MONGO_BSON_OBJECT_TOO_LARGE ||
           code == SD_MONGO_DOCUMENT_TOO_LARGE_AFTER_UPDATE || code == SD_MONGO_KEY_TOO_LONG;
}

/* The first write error of a bulk reply: its operation index and code. */
static int first_write_error(const bson_t *reply, size_t *index, uint32_t *code, const char **msg)
{
    bson_iter_t it, errors, one;
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &errors) || !bson_iter_next(&errors) ||
        !bson_iter_recurse(&errors, &one))
        return 0;
    *msg = "";
    while (bson_iter_next(&one)) {
        if (strcmp(bson_iter_key(&one), "index") == 0)
            *index = (size_t)bson_iter_as_int64(&one);
        else if (strcmp(bson_iter_key(&one), "code") == 0)
            *code = (uint32_t)bson_iter_as_int64(&one);
        else if (strcmp(bson_iter_key(&one), "errmsg") == 0)
            *msg = bson_iter_utf8(&one, NULL);
    }
    return 1;
}

typedef struct mongo_batch {
    sd_mongo_store_t *s;
    sd_mongo_ctx_t ctx;
    const sd_store_item_t *items;
    size_t n;
    sd_apply_result_t *out;
    size_t *op_start; /* first operation of item i in the current bulk */
    const sd_store_item_t **by_event; /* the batch's events, sorted by event id */
    size_t n_events;
    bson_t **covers; /* marker documents read for scenario creates */
    size_t n_covers;
} mongo_batch_t;

static const char *doc_id(const bson_t *doc)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it)
               ? bson_iter_utf8(&it, NULL)
               : "";
}

static int by_doc_id(const void *a, const void *b)
{
    return strcmp(doc_id(*(bson_t *const *)a), doc_id(*(bson_t *const *)b));
}

static int id_vs_doc(const void *id, const void *doc)
{
    return strcmp(id, doc_id(*(bson_t *const *)doc));
}

/* The marker of short_id among markers sorted by read_markers, or NULL. */
static const bson_t *find_marker(bson_t **markers, size_t n, const char *short_id)
{
    bson_t **found = n ? bsearch(short_id, markers, n, sizeof *markers, id_vs_doc) : NULL;
    return found ? *found : NULL;
}

static const sd_cover_t *find_cover(mongo_batch_t *b, const char *short_id, sd_cover_t *buf)
{
    const bson_t *marker = find_marker(b->covers, b->n_covers, short_id);
    if (!marker)
        return NULL;
    sd_mongo_marker_cover(marker, buf);
    return buf;
}

static sd_origin_t origin_of(const sd_store_item_t *item)
{
    const sd_event_t *ev = item->intent.event;
    return (sd_origin_t){ev->event_id, ev->occurred_at_ms, item->topic, item->partition,
                         item->offset};
}

typedef void (*fill_fn)(mongo_batch_t *b, mongoc_bulk_operation_t *bulk);

/* Runs a bulk; a duplicate key on an upsert (another writer inserted the
 * same document first) is "already there": the bulk is run again, and its
 * conditional updates then apply to that document. */
static sd_err_t run_bulk(mongo_batch_t *b, mongoc_collection_t *coll, fill_fn fill,
                         const char *doing, sd_error_t *err)
{
    for (int attempt = 0;; attempt++) {
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "ordered", true);
        mongoc_write_concern_append(b->s->wc, &opts);
        mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
        bson_destroy(&opts);
        b->ctx.ops = 0;
        fill(b, bulk);
        if (b->ctx.ops == 0) {
            mongoc_bulk_operation_destroy(bulk);
            return SD_OK;
        }
        bson_t reply;
        bson_error_t error;
        uint32_t ok = mongoc_bulk_operation_execute(bulk, &reply, &error);
        mongoc_bulk_operation_destroy(bulk);
        if (ok) {
            bson_destroy(&reply);
            return SD_OK;
        }
        size_t index = 0;
        uint32_t code = 0;
        const char *msg = NULL;
        int has_write_error = first_write_error(&reply, &index, &code, &msg);
        sd_err_t rc = SD_OK;
        if (has_write_error && code == SD_MONGO_DUPLICATE_KEY && attempt < 5) {
            rc = SD_OK; /* retry */
        } else if (has_write_error && event_code(code) && b->op_start) {
            size_t item = 0;
            while (item + 1 < b->n && b->op_start[item + 1] <= index)
                item++;
            b->out->status[item] = SD_APPLY_REJECTED;
            sd_error_set(&b->out->errors[item], SD_ERR_EVENT, "",
                         "MongoDB cannot store this event's session (code %u): %s", code, msg);
        } else {
            rc = sd_mongo_classify(b->s, &error, &reply, doing, err);
        }
        bson_destroy(&reply);
        if (rc != SD_OK)
            return rc;
    }
}

static void fill_markers(mongo_batch_t *b, mongoc_bulk_operation_t *bulk)
{
    for (size_t i = 0; i < b->n; i++) {
        b->op_start[i] = b->ctx.ops;
        if (b->items[i].intent.kind == SD_INTENT_SAVE && b->out->status[i] != SD_APPLY_REJECTED) {
            sd_origin_t o = origin_of(&b->items[i]);
            sd_mongo_ops_marker(bulk, &b->ctx, b->items[i].intent.event->short_id, &o);
        }
    }
}

static void fill_sessions(mongo_batch_t *b, mongoc_bulk_operation_t *bulk)
{
    for (size_t i = 0; i < b->n; i++) {
        const sd_store_item_t *item = &b->items[i];
        const sd_event_t *ev = item->intent.event;
        sd_origin_t o = origin_of(item);
        sd_cover_t buf;
        b->op_start[i] = b->ctx.ops;
        if (b->out->status[i] == SD_APPLY_REJECTED)
            continue;
        switch (item->intent.kind) {
        case SD_INTENT_CREATE:
            sd_mongo_ops_create(bulk, &b->ctx, ev, &o,
                                ev->task_kind == SD_TASK_SCENARIO_GENERATION
                                    ? find_cover(b, ev->short_id, &buf)
                                    : NULL);
            break;
        case SD_INTENT_SET_STATUS:
            sd_mongo_ops_status(bulk, &b->ctx, &item->intent, &o);
            break;
        case SD_INTENT_REMOVE:
            sd_mongo_ops_remove(bulk, &b->ctx, &item->intent, &o);
            break;
        case SD_INTENT_SAVE:
            sd_mongo_ops_cover(bulk, &b->ctx, ev->short_id, NULL, &o);
            break;
        case SD_INTENT_EXPIRE:
            sd_mongo_ops_expire(bulk, &b->ctx, ev->task_id, &o);
            break;
        case SD_INTENT_IGNORE:
            break;
        }
    }
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int by_event_id(const void *a, const void *b)
{
    return strcmp((*(const sd_store_item_t *const *)a)->intent.event->event_id,
                  (*(const sd_store_item_t *const *)b)->intent.event->event_id);
}

/* Sorts and removes duplicates; returns the new count. */
static size_t distinct(const char **v, size_t n)
{
    qsort(v, n, sizeof *v, by_string);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
            v[k++] = v[i];
    return k;
}

static sd_err_t read_markers(mongo_batch_t *b, const char **short_ids, size_t n,
                             bson_t ***out, size_t *n_out, sd_error_t *err)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return SD_OK;
    bson_t filter = BSON_INITIALIZER;
    sd_mongo_append_in(&filter, "_id", short_ids, n);
    sd_err_t rc = sd_mongo_find_docs(b->s, b->s->markers, &filter, NULL, out, n_out,
                            "reading scenario saves", err);
    bson_destroy(&filter);
    /* by short_id, for find_marker: a batch has thousands of creates */
    if (rc == SD_OK && *n_out > 1)
        qsort(*out, *n_out, sizeof **out, by_doc_id);
    return rc;
}

/* Short_ids of the batch's scenario creates, distinct; caller frees. */
static const char **scenario_short_ids(mongo_batch_t *b, size_t *n)
{
    const char **ids = malloc((b->n + 1) * sizeof *ids);
    *n = 0;
    if (!ids)
        return NULL;
    for (size_t i = 0; i < b->n; i++) {
        const sd_intent_t *in = &b->items[i].intent;
        if (in->kind == SD_INTENT_CREATE && in->event->task_kind == SD_TASK_SCENARIO_GENERATION &&
            b->out->status[i] != SD_APPLY_REJECTED)
            ids[(*n)++] = in->event->short_id;
    }
    *n = distinct(ids, *n);
    return ids;
}

/* The documents this batch touched: its tasks, and those its saves cover. */
static sd_err_t read_back(mongo_batch_t *b, bson_t ***docs, size_t *n_docs, sd_error_t *err)
{
    const char **tasks = malloc((b->n + 1) * sizeof *tasks);
    const char **shorts = malloc((b->n + 1) * sizeof *shorts);
    const char **saves = malloc((b->n + 1) * sizeof *saves);
    size_t nt = 0, ns = 0, nv = 0;
    sd_err_t rc = SD_OK;
    *docs = NULL;
    *n_docs = 0;
    if (!tasks || !shorts || !saves) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading back a batch");
        goto done;
    }
    for (size_t i = 0; i < b->n; i++) {
        const sd_intent_t *in = &b->items[i].intent;
        if (in->kind == SD_INTENT_IGNORE || b->out->status[i] == SD_APPLY_REJECTED)
            continue;
        if (in->kind == SD_INTENT_SAVE) {
            shorts[ns++] = in->event->short_id;
            saves[nv++] = in->event->event_id;
        } else {
            tasks[nt++] = in->event->task_id;
        }
    }
    nt = distinct(tasks, nt);
    ns = distinct(shorts, ns);
    nv = distinct(saves, nv);
    if (nt + ns == 0)
        goto done;

    bson_t filter = BSON_INITIALIZER, or_, a, c;
    BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or_);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "0", &a);
    sd_mongo_append_in(&a, "_id", tasks, nt);
    bson_append_document_end(&or_, &a);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "1", &c);
    sd_mongo_append_in(&c, "short_id", shorts, ns);
    sd_mongo_append_in(&c, "removed.by", saves, nv);
    bson_append_document_end(&or_, &c);
    bson_append_array_end(&filter, &or_);
    rc = sd_mongo_find_docs(b->s, b->s->sessions, &filter, NULL, docs, n_docs,
                   "reading sessions back", err);
    bson_destroy(&filter);
done:
    free(tasks);
    free(shorts);
    free(saves);
    return rc;
}

/* Of the session documents docs, those that are open scenario_generation
 * sessions of one of the batch's short ids (shorts, sorted): into open[]
 * with their short ids in open_shorts[].  Returns how many. */
static size_t open_scenario_sessions(bson_t **docs, size_t n_docs, const char **shorts,
                                     size_t n_shorts, bson_t **open, const char **open_shorts)
{
    size_t n_open = 0;
    for (size_t i = 0; i < n_docs; i++) {
        bson_iter_t it;
        const char *type = NULL, *short_id = NULL;
        int is_open = 0;
        if (!bson_iter_init(&it, docs[i]))
            continue;
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            if (!strcmp(k, "task_type") && BSON_ITER_HOLDS_UTF8(&it))
                type = bson_iter_utf8(&it, NULL);
            else if (!strcmp(k, "short_id") && BSON_ITER_HOLDS_UTF8(&it))
                short_id = bson_iter_utf8(&it, NULL);
            else if (!strcmp(k, "removed"))
                is_open = BSON_ITER_HOLDS_NULL(&it);
        }
        if (is_open && type && short_id && !strcmp(type, "scenario_generation") &&
            bsearch(&short_id, shorts, n_shorts, sizeof *shorts, by_string)) {
            open[n_open] = docs[i];
            open_shorts[n_open++] = short_id;
        }
    }
    return n_open;
}

/* Removes, in one ordered bulk write, each open session a save marker
 * covers (created no later than the save).  *fixed says whether it wrote. */
static sd_err_t remove_covered(mongo_batch_t *b, bson_t **open, size_t n_open, bson_t **markers,
                               size_t n_markers, int *fixed, sd_error_t *err)
{
    mongoc_bulk_operation_t *bulk = NULL;
    sd_err_t rc = SD_OK;
    for (size_t i = 0; i < n_open; i++) {
        bson_iter_t it;
        const char *task_id = NULL, *short_id = NULL;
        int64_t created_at = 0;
        if (bson_iter_init_find(&it, open[i], "_id"))
            task_id = bson_iter_utf8(&it, NULL);
        if (bson_iter_init_find(&it, open[i], "short_id"))
            short_id = bson_iter_utf8(&it, NULL);
        if (bson_iter_init_find(&it, open[i], "created_at"))
            created_at = bson_iter_date_time(&it);
        const bson_t *marker = short_id ? find_marker(markers, n_markers, short_id) : NULL;
        sd_cover_t cover;
        if (!marker)
            continue;
        sd_mongo_marker_cover(marker, &cover);
        if (!cover.known || created_at > cover.save.at_ms)
            continue;
        if (!bulk) {
            bson_t opts = BSON_INITIALIZER;
            BSON_APPEND_BOOL(&opts, "ordered", true);
            mongoc_write_concern_append(b->s->wc, &opts);
            bulk = mongoc_collection_create_bulk_operation_with_opts(b->s->sessions, &opts);
            bson_destroy(&opts);
        }
        sd_mongo_ops_cover(bulk, &b->ctx, short_id, task_id, &cover.save);
    }
    if (bulk) {
        bson_t reply;
        bson_error_t error;
        if (!mongoc_bulk_operation_execute(bulk, &reply, &error))
            rc = sd_mongo_classify(b->s, &error, &reply, "removing sessions a save covers", err);
        bson_destroy(&reply);
        *fixed = rc == SD_OK;
        mongoc_bulk_operation_destroy(bulk);
    }
    return rc;
}

/* Insert-then-check: a scenario session this batch created that a save
 * (possibly one applied concurrently) covers is removed now.  *fixed says
 * whether any was, so the caller reads them again. */
static sd_err_t check_covers(mongo_batch_t *b, bson_t **docs, size_t n_docs, int *fixed,
                             sd_error_t *err)
{
    *fixed = 0;
    size_t n_shorts, n_open = 0, n_markers = 0;
    const char **shorts = scenario_short_ids(b, &n_shorts);
    bson_t **open = malloc((n_docs + 1) * sizeof *open);
    const char **open_shorts = malloc((n_docs + 1) * sizeof *open_shorts);
    bson_t **markers = NULL;
    sd_err_t rc = SD_OK;
    if (!shorts || !open || !open_shorts) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory checking saves");
        goto done;
    }
    n_open = open_scenario_sessions(docs, n_docs, shorts, n_shorts, open, open_shorts);
    if (n_open == 0)
        goto done;
    if ((rc = read_markers(b, open_shorts, distinct(open_shorts, n_open), &markers, &n_markers,
                           err)) != SD_OK)
        goto done;
    rc = remove_covered(b, open, n_open, markers, n_markers, fixed, err);
done:
    sd_mongo_free_docs(markers, n_markers);
    free(shorts);
    free(open);
    free(open_shorts);
    return rc;
}

static void new_batch_id(char out[25])
{
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, out);
}

/* Publishes what the read-back documents say and sets the statuses. */
static sd_err_t collect_changes(mongo_batch_t *b, bson_t **docs, size_t n_docs, sd_error_t *err)
{
    for (size_t d = 0; d < n_docs; d++) {
        size_t before = b->out->changes.count;
        int republished;
        sd_err_t rc = sd_mongo_doc_changes(docs[d], &b->ctx, b->by_event, b->n_events,
                                           &b->out->changes, &republished, err);
        if (rc != SD_OK)
            return rc;
        if (republished)
            continue;
        /* Every item of a change's event (a duplicate has two) changed. */
        for (size_t c = before; c < b->out->changes.count; c++) {
            const char *id = b->out->changes.items[c].cause.event_id;
            for (size_t k = sd_mongo_first_of_event(b->by_event, b->n_events, id);
                 k < b->n_events && strcmp(b->by_event[k]->intent.event->event_id, id) == 0;
                 k++) {
                size_t i = (size_t)(b->by_event[k] - b->items);
                if (b->out->status[i] == SD_APPLY_UNCHANGED)
                    b->out->status[i] = SD_APPLY_CHANGED;
            }
        }
    }
    return SD_OK;
}

sd_err_t sd_mongo_apply(sd_store_t *base, const sd_store_item_t *items, size_t n,
                            int64_t now_ms, sd_apply_result_t *out, sd_error_t *err)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    char batch_id[25];
    new_batch_id(batch_id);
    mongo_batch_t b = {.s = s, .items = items, .n = n, .out = out,
                       .ctx = {batch_id, now_ms, base->cfg.session_ttl_ms,
                               base->cfg.retention_ms, 0}};
    b.op_start = calloc(n + 1, sizeof *b.op_start);
    b.by_event = malloc((n + 1) * sizeof *b.by_event);
    bson_t **docs = NULL;
    size_t n_docs = 0;
    sd_err_t rc = SD_OK;
    if (!b.op_start || !b.by_event) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for a batch of %zu", n);
        goto done;
    }
    int has_save = 0;
    for (size_t i = 0; i < n; i++) {
        out->status[i] = items[i].intent.kind == SD_INTENT_IGNORE ? SD_APPLY_IGNORED
                                                                  : SD_APPLY_UNCHANGED;
        has_save |= items[i].intent.kind == SD_INTENT_SAVE;
        if (items[i].intent.kind != SD_INTENT_IGNORE)
            b.by_event[b.n_events++] = &items[i];
    }
    qsort(b.by_event, b.n_events, sizeof *b.by_event, by_event_id);

    /* Mark: saves first, so creates and scans below see them. */
    if (has_save && (rc = run_bulk(&b, s->markers, fill_markers, "recording scenario saves",
                                   err)) != SD_OK)
        goto done;
    size_t n_shorts;
    const char **shorts = scenario_short_ids(&b, &n_shorts);
    if (!shorts) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for a batch of %zu", n);
        goto done;
    }
    rc = read_markers(&b, shorts, n_shorts, &b.covers, &b.n_covers, err);
    free(shorts);
    if (rc != SD_OK)
        goto done;
    if ((rc = run_bulk(&b, s->sessions, fill_sessions, "writing sessions", err)) != SD_OK)
        goto done;
    /* Read back; when the check removed sessions, read those again. */
    for (int fixed = 1, round = 0; fixed && round < 3; round++) {
        sd_mongo_free_docs(docs, n_docs);
        docs = NULL;
        n_docs = 0;
        if ((rc = read_back(&b, &docs, &n_docs, err)) != SD_OK ||
            (rc = check_covers(&b, docs, n_docs, &fixed, err)) != SD_OK)
            goto done;
    }
    rc = collect_changes(&b, docs, n_docs, err);
done:
    sd_mongo_free_docs(docs, n_docs);
    sd_mongo_free_docs(b.covers, b.n_covers);
    free(b.op_start);
    free(b.by_event);
    return rc;
}
