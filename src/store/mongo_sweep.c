/* Sweeping on MongoDB (the document: mongo_ops.c).
 *
 * A sweep finds the documents that are live by their flags, whose TTL
 * passed and that have no recent expiry event (expiry_sent_at), and folds
 * each one's log for its version.  Documents the fold shows were never
 * visible (a create older than the TTL) are flagged expired on the spot,
 * so later sweeps do not read them again.  Marking what was published is
 * one update.
 *
 * Documents left by sessiond 0.1 with an expiry it had not delivered
 * (unsent_expiry) are first put back as they were before that expiry, so
 * the log makes it again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/mongo_store.h"

#define UNDO_LIMIT 1000 /* 0.1 documents put back per sweep */

static const char *doc_id(const bson_t *doc)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it)
               ? bson_iter_utf8(&it, NULL)
               : NULL;
}

/* The document's log without its last entry, if that entry is the expiry
 * of sweep batch; else 0. */
static int log_without_expiry_of(const bson_t *doc, const char *batch, bson_t *log_out)
{
    bson_iter_t it, log, field;
    if (!bson_iter_init_find(&it, doc, "log") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &log))
        return 0;
    const uint8_t *data = NULL;
    uint32_t len = 0;
    uint32_t count = 0;
    while (bson_iter_next(&log))
        count++;
    if (count == 0 || !bson_iter_recurse(&it, &log))
        return 0;
    bson_init(log_out);
    char key[24];
    for (uint32_t i = 0; bson_iter_next(&log); i++) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&log))
            break;
        bson_iter_document(&log, &len, &data);
        bson_t entry;
        if (!bson_init_static(&entry, data, len))
            break;
        if (i + 1 == count) {
            const char *k = NULL, *b = NULL;
            if (bson_iter_init_find(&field, &entry, "k") && BSON_ITER_HOLDS_UTF8(&field))
                k = bson_iter_utf8(&field, NULL);
            if (bson_iter_init_find(&field, &entry, "b") && BSON_ITER_HOLDS_UTF8(&field))
                b = bson_iter_utf8(&field, NULL);
            if (k && b && strcmp(k, "x") == 0 && strcmp(b, batch) == 0)
                return 1;
            break;
        }
        snprintf(key, sizeof key, "%u", i);
        bson_append_document(log_out, key, -1, &entry);
    }
    bson_destroy(log_out);
    return 0;
}

/* One conditional update of the document id while it still carries batch
 * as its unsent expiry.  When that expiry is still the last thing that
 * happened to the session, it is taken back: the log is set to what it
 * was before, under a filter (still expired, not removed) that any change
 * since the read would have made false.  Otherwise only the flag goes (a
 * later change superseded it, as 0.1 would have found). */
static void undo_one(mongoc_bulk_operation_t *bulk, const bson_t *doc, const char *batch)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, part, log;
    BSON_APPEND_UTF8(&filter, "_id", doc_id(doc));
    BSON_APPEND_UTF8(&filter, "unsent_expiry", batch);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &part);
    BSON_APPEND_UTF8(&part, "unsent_expiry", "");
    bson_append_document_end(&update, &part);
    if (log_without_expiry_of(doc, batch, &log)) {
        BSON_APPEND_BOOL(&filter, "expired", true);
        BSON_APPEND_NULL(&filter, "removed");
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &part);
        BSON_APPEND_BOOL(&part, "expired", false);
        BSON_APPEND_ARRAY(&part, "log", &log);
        bson_append_document_end(&update, &part);
        bson_destroy(&log);
    }
    bson_error_t error;
    (void)mongoc_bulk_operation_update_one_with_opts(bulk, &filter, &update, NULL, &error);
    bson_destroy(&filter);
    bson_destroy(&update);
}

static sd_err_t run(sd_mongo_store_t *s, mongoc_bulk_operation_t *bulk, const char *doing,
                    sd_error_t *err)
{
    bson_t reply;
    bson_error_t error;
    sd_err_t rc = mongoc_bulk_operation_execute(bulk, &reply, &error)
                      ? SD_OK
                      : sd_mongo_classify(s, &error, &reply, doing, err);
    bson_destroy(&reply);
    return rc;
}

static sd_err_t undo_unsent(sd_mongo_store_t *s, sd_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, exists;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "unsent_expiry", &exists);
    BSON_APPEND_BOOL(&exists, "$exists", true);
    bson_append_document_end(&filter, &exists);
    BSON_APPEND_INT64(&opts, "limit", UNDO_LIMIT);
    bson_t **docs = NULL;
    size_t n = 0;
    sd_err_t rc = sd_mongo_find_docs(s, s->sessions, &filter, &opts, &docs, &n,
                                     "finding expiries sessiond 0.1 left undelivered", err);
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (rc != SD_OK || n == 0)
        goto done;
    bson_t bulk_opts = BSON_INITIALIZER;
    mongoc_write_concern_append(s->wc, &bulk_opts);
    mongoc_bulk_operation_t *bulk =
        mongoc_collection_create_bulk_operation_with_opts(s->sessions, &bulk_opts);
    bson_destroy(&bulk_opts);
    for (size_t i = 0; i < n; i++) {
        bson_iter_t it;
        if (!doc_id(docs[i]) || !bson_iter_init_find(&it, docs[i], "unsent_expiry") ||
            !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        undo_one(bulk, docs[i], bson_iter_utf8(&it, NULL));
    }
    rc = run(s, bulk, "taking back expiries sessiond 0.1 left undelivered", err);
    mongoc_bulk_operation_destroy(bulk);
done:
    sd_mongo_free_docs(docs, n);
    return rc;
}

/* {expiry_sent_at: null} or {expiry_sent_at: {$lte: resend_before}} */
static void append_unsent_or_stale(bson_t *f, int64_t resend_before_ms)
{
    bson_t or_, a, b, lte;
    BSON_APPEND_ARRAY_BEGIN(f, "$or", &or_);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "0", &a);
    BSON_APPEND_NULL(&a, "expiry_sent_at");
    bson_append_document_end(&or_, &a);
    BSON_APPEND_DOCUMENT_BEGIN(&or_, "1", &b);
    BSON_APPEND_DOCUMENT_BEGIN(&b, "expiry_sent_at", &lte);
    BSON_APPEND_DATE_TIME(&lte, "$lte", resend_before_ms);
    bson_append_document_end(&b, &lte);
    bson_append_document_end(&or_, &b);
    bson_append_array_end(f, &or_);
}

/* Flags as expired those of ids still matching the sweep's filter: their
 * fold says no change of theirs is visible. */
static sd_err_t flag_never_visible(sd_mongo_store_t *s, const sd_mongo_ctx_t *ctx,
                                   const char *const *ids, size_t n, sd_error_t *err)
{
    if (n == 0)
        return SD_OK;
    bson_t filter, update = BSON_INITIALIZER, opts = BSON_INITIALIZER, set, reply;
    sd_mongo_expired_filter(&filter, ctx);
    sd_mongo_append_in(&filter, "_id", ids, n);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_BOOL(&set, "expired", true);
    bson_append_document_end(&update, &set);
    mongoc_write_concern_append(s->wc, &opts);
    bson_error_t error;
    sd_err_t rc = mongoc_collection_update_many(s->sessions, &filter, &update, &opts, &reply,
                                                &error)
                      ? SD_OK
                      : sd_mongo_classify(s, &error, &reply, "flagging expired sessions", err);
    bson_destroy(&filter);
    bson_destroy(&update);
    bson_destroy(&opts);
    bson_destroy(&reply);
    return rc;
}

/* The due sessions among docs, by their folded logs, into out; the ids
 * of those never visible into never[] (borrowed from docs). */
static sd_err_t fold_due(const bson_t *const *docs, size_t n, const sd_mongo_ctx_t *ctx,
                         sd_expiry_list_t *out, const char **never, size_t *n_never,
                         sd_error_t *err)
{
    sd_err_t rc = SD_OK;
    for (size_t i = 0; rc == SD_OK && i < n; i++) {
        sd_change_list_t latest = {0};
        rc = sd_mongo_doc_latest(docs[i], ctx, &latest, err);
        const sd_change_t *c = latest.count ? &latest.items[0] : NULL;
        if (rc == SD_OK && c &&
            (c->type == SD_CHANGE_CREATED || c->type == SD_CHANGE_STATUS_CHANGED)) {
            sd_expiry_due_t due = {c->session.task_id, c->version, c->session.updated_at_ms};
            if (sd_expiry_list_add(out, &due) != SD_OK)
                rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory sweeping");
        } else if (rc == SD_OK && doc_id(docs[i])) {
            never[(*n_never)++] = doc_id(docs[i]);
        }
        sd_change_list_free(&latest);
    }
    return rc;
}

sd_err_t sd_mongo_due_expiries(sd_store_t *base, int64_t now_ms, int64_t resend_before_ms,
                               size_t limit, sd_expiry_list_t *out, sd_error_t *err)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    sd_mongo_ctx_t ctx = {"", now_ms, base->cfg.session_ttl_ms, base->cfg.retention_ms, 0};
    bson_t **docs = NULL;
    const char **never = NULL;
    size_t n = 0, n_never = 0;
    bson_t filter, opts = BSON_INITIALIZER;
    sd_mongo_expired_filter(&filter, &ctx);
    append_unsent_or_stale(&filter, resend_before_ms);
    BSON_APPEND_INT64(&opts, "limit", (int64_t)limit);
    sd_err_t rc;
    if ((rc = undo_unsent(s, err)) != SD_OK)
        goto done;
    if ((rc = sd_mongo_find_docs(s, s->sessions, &filter, &opts, &docs, &n,
                                 "finding sessions due to expire", err)) != SD_OK)
        goto done;
    if (!(never = malloc((n + 1) * sizeof *never))) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory sweeping");
        goto done;
    }
    if ((rc = fold_due((const bson_t *const *)docs, n, &ctx, out, never, &n_never, err)) != SD_OK)
        goto done;
    rc = flag_never_visible(s, &ctx, never, n_never, err);
done:
    bson_destroy(&filter);
    bson_destroy(&opts);
    free(never);
    sd_mongo_free_docs(docs, n);
    return rc;
}

sd_err_t sd_mongo_expiries_published(sd_store_t *base, const sd_expiry_list_t *published,
                                     int64_t now_ms, sd_error_t *err)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    const char **ids = malloc((published->count + 1) * sizeof *ids);
    if (!ids)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory marking expiry events");
    for (size_t i = 0; i < published->count; i++)
        ids[i] = published->items[i].task_id;
    /* By task_id, not version: a session changed since is either expired
     * (not matched) or visible for its TTL again, and the next sweep to
     * find it due comes after the mark went stale or was cleared. */
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, opts = BSON_INITIALIZER,
           part, reply;
    sd_mongo_append_in(&filter, "_id", ids, published->count);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "expired", &part);
    BSON_APPEND_BOOL(&part, "$ne", true);
    bson_append_document_end(&filter, &part);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &part);
    BSON_APPEND_DATE_TIME(&part, "expiry_sent_at", now_ms);
    bson_append_document_end(&update, &part);
    mongoc_write_concern_append(s->wc, &opts);
    bson_error_t error;
    sd_err_t rc = mongoc_collection_update_many(s->sessions, &filter, &update, &opts, &reply,
                                                &error)
                      ? SD_OK
                      : sd_mongo_classify(s, &error, &reply, "marking expiry events published",
                                          err);
    bson_destroy(&filter);
    bson_destroy(&update);
    bson_destroy(&opts);
    bson_destroy(&reply);
    free(ids);
    return rc;
}
