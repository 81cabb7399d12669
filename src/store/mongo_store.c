/* The store contract on MongoDB (mongo-c-driver): connection, error
 * classes, reads and indexes.  Batches are applied in mongo_batch.c. */
#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/mongo_store.h"
#include "mongo_codes.h"

static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;

/* The driver's own default handler writes to stdout, where sessiond's
 * output goes: send its warnings and errors to stderr instead. */
static void driver_log(mongoc_log_level_t level, const char *domain, const char *message,
                       void *data)
{
    (void)data;
    if (level <= MONGOC_LOG_LEVEL_WARNING)
        fprintf(stderr, "sessiond: mongodb driver %s: %s: %s\n", mongoc_log_level_str(level),
                domain, message);
}

static void init_mongoc(void)
{
    mongoc_init();
    mongoc_log_set_handler(driver_log, NULL);
    atexit(mongoc_cleanup);
}

/* ---- error classes ---- */

static int transient_code(uint32_t code)
{
    static const uint32_t codes[] = {
        SD_MONGO_HOST_UNREACHABLE,
        SD_MONGO_HOST_NOT_FOUND,
        SD_MONGO_MAX_TIME_MS_EXPIRED,
        SD_MONGO_WRITE_CONCERN_FAILED,
        SD_MONGO_NETWORK_TIMEOUT,
        SD_MONGO_SHUTDOWN_IN_PROGRESS,
        SD_MONGO_WRITE_CONFLICT,
        SD_MONGO_PRIMARY_STEPPED_DOWN,
        SD_MONGO_EXCEEDED_TIME_LIMIT,
        SD_MONGO_SOCKET_EXCEPTION,
        SD_MONGO_NOT_WRITABLE_PRIMARY,
        SD_MONGO_INTERRUPTED_AT_SHUTDOWN,
        SD_MONGO_INTERRUPTED_DUE_TO_REPL_STATE_CHANGE,
        SD_MONGO_NOT_PRIMARY_NO_SECONDARY_OK,
        SD_MONGO_NOT_PRIMARY_OR_SECONDARY,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i] == code)
            return 1;
    return 0;
}

/* A connection that could not be made or went silent, as the driver
 * reports it after a failed server check: in the client domain, with a
 * stream's code ("socket timeout calling hello", a cut found by
 * faults.partition). */
static int connection_failed(const bson_error_t *e)
{
    if (e->domain != MONGOC_ERROR_CLIENT)
        return 0;
    switch (e->code) {
    case MONGOC_ERROR_STREAM_NAME_RESOLUTION:
    case MONGOC_ERROR_STREAM_SOCKET:
    case MONGOC_ERROR_STREAM_CONNECT:
    case MONGOC_ERROR_STREAM_NOT_ESTABLISHED:
    case MONGOC_ERROR_CLIENT_NOT_READY:
        return 1;
    default:
        return 0;
    }
}

sd_err_t sd_mongo_classify(sd_mongo_store_t *s, const bson_error_t *e, const bson_t *reply,
                         const char *doing, sd_error_t *err)
{
    if (e->domain == MONGOC_ERROR_SERVER_SELECTION)
        return sd_error_set(err, SD_ERR_TRANSIENT, "store",
                            "no MongoDB server reachable at %s while %s: %s", s->hosts, doing,
                            e->message);
    if (e->domain == MONGOC_ERROR_STREAM || connection_failed(e))
        return sd_error_set(err, SD_ERR_TRANSIENT, "store",
                            "connection to MongoDB at %s lost while %s: %s", s->hosts, doing,
                            e->message);
    if ((e->domain == MONGOC_ERROR_CLIENT && e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
        e->code == SD_MONGO_AUTHENTICATION_FAILED)
        return sd_error_set(err, SD_ERR_FATAL, "store",
                            "MongoDB authentication failed for user '%s' at %s: check the "
                            "user, password and authSource of the store URI",
                            s->user, s->hosts);
    if (e->code == SD_MONGO_UNAUTHORIZED)
        return sd_error_set(err, SD_ERR_FATAL, "store",
                            "MongoDB user '%s' at %s may not %s (database %s): grant it "
                            "readWrite there", s->user, s->hosts, doing, s->database);
    if (transient_code(e->code) ||
        (reply && (mongoc_error_has_label(reply, "RetryableWriteError") ||
                   mongoc_error_has_label(reply, "TransientTransactionError"))))
        return sd_error_set(err, SD_ERR_TRANSIENT, "store",
                            "MongoDB at %s is not available for writes while %s (code %u): %s",
                            s->hosts, doing, e->code, e->message);
    return sd_error_set(err, SD_ERR_FATAL, "store", "MongoDB at %s failed while %s (code %u): %s",
                        s->hosts, doing, e->code, e->message);
}

/* ---- reads ---- */

/* Appends to *docs every document matching filter (copies). */
sd_err_t sd_mongo_find_docs(sd_mongo_store_t *s, mongoc_collection_t *coll, const bson_t *filter,
                          const bson_t *opts, bson_t ***docs, size_t *n, const char *doing,
                          sd_error_t *err)
{
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    sd_err_t rc = SD_OK;
    while (mongoc_cursor_next(cursor, &doc)) {
        bson_t **grown = realloc(*docs, (*n + 1) * sizeof *grown);
        if (!grown) {
            rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory while %s", doing);
            break;
        }
        *docs = grown;
        (*docs)[(*n)++] = bson_copy(doc);
    }
    bson_error_t error;
    const bson_t *reply;
    if (rc == SD_OK && mongoc_cursor_error_document(cursor, &error, &reply))
        rc = sd_mongo_classify(s, &error, reply, doing, err);
    mongoc_cursor_destroy(cursor);
    return rc;
}

void sd_mongo_free_docs(bson_t **docs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
    free(docs);
}

/* ---- reads, sweep, counts ---- */

static sd_err_t mongo_list(sd_store_t *base, const char *by, const char *value, int64_t now_ms,
                           sd_session_list_t *out, sd_error_t *err)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    sd_mongo_ctx_t ctx = {"", now_ms, base->cfg.session_ttl_ms, base->cfg.retention_ms, 0};
    bson_t filter, opts = BSON_INITIALIZER, sort;
    sd_mongo_visible_filter(&filter, &ctx, by, value);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sort);
    BSON_APPEND_INT32(&sort, "log", 0);
    bson_append_document_end(&opts, &sort);
    bson_t **docs = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    sd_err_t rc = sd_mongo_find_docs(s, s->sessions, &filter, &opts, &docs, &n, "listing sessions", err);
    for (size_t i = 0; rc == SD_OK && i < n; i++)
        rc = sd_mongo_doc_session(docs[i], out, err);
    sd_mongo_free_docs(docs, n);
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (rc != SD_OK)
        sd_session_list_free(out);
    return rc;
}

static sd_err_t mongo_count_by_type(sd_store_t *base, int64_t now_ms, sd_type_count_t **out,
                                    size_t *n, sd_error_t *err)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    sd_mongo_ctx_t ctx = {"", now_ms, base->cfg.session_ttl_ms, base->cfg.retention_ms, 0};
    bson_t match;
    sd_mongo_visible_filter(&match, &ctx, NULL, NULL);
    bson_t pipeline = BSON_INITIALIZER, stages, stage, body, sum;
    BSON_APPEND_ARRAY_BEGIN(&pipeline, "pipeline", &stages);
    BSON_APPEND_DOCUMENT_BEGIN(&stages, "0", &stage);
    BSON_APPEND_DOCUMENT(&stage, "$match", &match);
    bson_append_document_end(&stages, &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stages, "1", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$group", &body);
    BSON_APPEND_UTF8(&body, "_id", "$task_type");
    BSON_APPEND_DOCUMENT_BEGIN(&body, "n", &sum);
    BSON_APPEND_INT32(&sum, "$sum", 1);
    bson_append_document_end(&body, &sum);
    bson_append_document_end(&stage, &body);
    bson_append_document_end(&stages, &stage);
    bson_append_array_end(&pipeline, &stages);
    bson_destroy(&match);

    mongoc_cursor_t *cursor =
        mongoc_collection_aggregate(s->sessions, MONGOC_QUERY_NONE, &pipeline, NULL, NULL);
    bson_destroy(&pipeline);
    *out = NULL;
    *n = 0;
    const bson_t *doc;
    sd_err_t rc = SD_OK;
    while (rc == SD_OK && mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        const char *type = bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it)
                               ? bson_iter_utf8(&it, NULL)
                               : NULL;
        int64_t live = bson_iter_init_find(&it, doc, "n") ? bson_iter_as_int64(&it) : 0;
        rc = sd_type_count_add(out, n, type, live, err);
    }
    bson_error_t error;
    const bson_t *reply;
    if (rc == SD_OK && mongoc_cursor_error_document(cursor, &error, &reply))
        rc = sd_mongo_classify(s, &error, reply, "counting sessions", err);
    mongoc_cursor_destroy(cursor);
    if (rc != SD_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static sd_err_t mongo_ping(sd_store_t *base, sd_error_t *err)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bson_error_t error;
    bool ok = mongoc_client_command_simple(s->client, "admin", &cmd, NULL, &reply, &error);
    sd_err_t rc = ok ? SD_OK : sd_mongo_classify(s, &error, &reply, "pinging", err);
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

/* One ascending index per field, then the TTL index on ttl_field, then,
 * if given, an index of the documents that have partial_field. */
static sd_err_t create_indexes(sd_mongo_store_t *s, mongoc_collection_t *coll,
                               const char *const *fields, size_t n, const char *ttl_field,
                               const char *partial_field, sd_error_t *err)
{
    bson_t cmd = BSON_INITIALIZER, indexes, index, key, partial, exists;
    BSON_APPEND_UTF8(&cmd, "createIndexes", mongoc_collection_get_name(coll));
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    char pos[24], name[64];
    for (size_t i = 0; i <= n + (partial_field != NULL); i++) {
        const char *field = i < n ? fields[i] : i == n ? ttl_field : partial_field;
        snprintf(pos, sizeof pos, "%zu", i);
        snprintf(name, sizeof name, "%s_1", field);
        BSON_APPEND_DOCUMENT_BEGIN(&indexes, pos, &index);
        BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
        BSON_APPEND_INT32(&key, field, 1);
        bson_append_document_end(&index, &key);
        BSON_APPEND_UTF8(&index, "name", name);
        if (i == n) /* purge_at holds the moment itself */
            BSON_APPEND_INT32(&index, "expireAfterSeconds", 0);
        if (i > n) { /* few documents have it: index only those */
            BSON_APPEND_DOCUMENT_BEGIN(&index, "partialFilterExpression", &partial);
            BSON_APPEND_DOCUMENT_BEGIN(&partial, field, &exists);
            BSON_APPEND_BOOL(&exists, "$exists", true);
            bson_append_document_end(&partial, &exists);
            bson_append_document_end(&index, &partial);
        }
        bson_append_document_end(&indexes, &index);
    }
    bson_append_array_end(&cmd, &indexes);
    bson_t opts = BSON_INITIALIZER, reply;
    mongoc_write_concern_append(s->wc, &opts);
    bson_error_t error;
    bool ok = mongoc_collection_write_command_with_opts(coll, &cmd, &opts, &reply, &error);
    sd_err_t rc = ok ? SD_OK : sd_mongo_classify(s, &error, &reply, "creating indexes", err);
    bson_destroy(&cmd);
    bson_destroy(&opts);
    bson_destroy(&reply);
    return rc;
}

static sd_err_t mongo_ensure_schema(sd_store_t *base, sd_error_t *err)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    static const char *const session_fields[] = {"short_id", "task_type", "status",
                                                 "created_at", "user_id"};
    sd_err_t rc =
        create_indexes(s, s->sessions, session_fields, 5, "purge_at", "unsent_expiry", err);
    return rc == SD_OK ? create_indexes(s, s->markers, NULL, 0, "purge_at", NULL, err) : rc;
}

static sd_store_io_t mongo_io(const sd_store_t *base)
{
    const sd_mongo_store_t *s = (const sd_mongo_store_t *)base;
    return (sd_store_io_t){s->commands, s->documents, s->bytes_sent, s->bytes_received};
}

static void mongo_close(sd_store_t *base)
{
    sd_mongo_store_t *s = (sd_mongo_store_t *)base;
    mongoc_collection_destroy(s->sessions);
    mongoc_collection_destroy(s->markers);
    mongoc_write_concern_destroy(s->wc);
    mongoc_client_destroy(s->client);
    free(s);
}

static const sd_store_ops_t mongo_ops = {
    .kind = "mongodb",
    .ensure_schema = mongo_ensure_schema,
    .apply = sd_mongo_apply,
    .list = mongo_list,
    .due_expiries = sd_mongo_due_expiries,
    .expiries_published = sd_mongo_expiries_published,
    .count_by_type = mongo_count_by_type,
    .ping = mongo_ping,
    .io = mongo_io,
    .close = mongo_close,
};

static void on_command_started(const mongoc_apm_command_started_t *event)
{
    sd_mongo_store_t *s = mongoc_apm_command_started_get_context(event);
    s->commands++;
    s->bytes_sent += mongoc_apm_command_started_get_command(event)->len;
}

/* Documents a write command changed, from its reply: insert and delete
 * say n; update says nModified plus its upserts. */
static void on_command_succeeded(const mongoc_apm_command_succeeded_t *event)
{
    sd_mongo_store_t *s = mongoc_apm_command_succeeded_get_context(event);
    const char *name = mongoc_apm_command_succeeded_get_command_name(event);
    const bson_t *reply = mongoc_apm_command_succeeded_get_reply(event);
    s->bytes_received += reply->len;
    int update = strcmp(name, "update") == 0;
    if (!update && strcmp(name, "insert") != 0 && strcmp(name, "delete") != 0)
        return;
    bson_iter_t it, upserted;
    if (bson_iter_init_find(&it, reply, update ? "nModified" : "n"))
        s->documents += (uint64_t)bson_iter_as_int64(&it);
    if (update && bson_iter_init_find(&it, reply, "upserted") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &upserted))
        while (bson_iter_next(&upserted))
            s->documents++;
}

static void describe_hosts(sd_mongo_store_t *s, const mongoc_uri_t *uri)
{
    size_t used = 0;
    s->hosts[0] = '\0';
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri); h; h = h->next)
        used += (size_t)snprintf(s->hosts + used, used < sizeof s->hosts ? sizeof s->hosts - used : 0,
                                 "%s%s", used ? "," : "", h->host_and_port);
    if (!s->hosts[0] && mongoc_uri_get_srv_hostname(uri))
        snprintf(s->hosts, sizeof s->hosts, "%s (SRV)", mongoc_uri_get_srv_hostname(uri));
}

sd_err_t sd_mongo_store_open(const sd_store_config_t *cfg, sd_store_t **out, sd_error_t *err)
{
    pthread_once(&mongoc_once, init_mongoc);
    *out = NULL;
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(cfg->uri, &error);
    if (!uri) /* the driver's message does not repeat the URI, so no password leaks */
        return sd_error_set(err, SD_ERR_FATAL, "store", "invalid MongoDB URI: %s", error.message);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_RETRYWRITES))
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYWRITES, true);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, cfg->timeout_ms);
    /* A request on a connection that went silent (no reset, no answer)
     * waits this long before it fails and is retried; the driver's
     * default is 5 minutes.  Three store timeouts leave a majority write
     * its wtimeout (the same timeout) and then some. */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 3 * cfg->timeout_ms);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, "sessiond");

    sd_mongo_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        mongoc_uri_destroy(uri);
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory opening MongoDB");
    }
    s->base.ops = &mongo_ops;
    s->base.cfg = *cfg;
    describe_hosts(s, uri);
    snprintf(s->user, sizeof s->user, "%s",
             mongoc_uri_get_username(uri) ? mongoc_uri_get_username(uri) : "");
    const char *database = cfg->database ? cfg->database
                           : mongoc_uri_get_database(uri) ? mongoc_uri_get_database(uri)
                                                          : "sessions";
    snprintf(s->database, sizeof s->database, "%s", database);

    s->client = mongoc_client_new_from_uri_with_error(uri, &error);
    mongoc_uri_destroy(uri);
    if (!s->client) {
        sd_error_set(err, SD_ERR_FATAL, "store", "cannot use MongoDB at %s: %s", s->hosts,
                     error.message);
        free(s);
        return SD_ERR_FATAL;
    }
    mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
    mongoc_apm_callbacks_t *callbacks = mongoc_apm_callbacks_new();
    mongoc_apm_set_command_started_cb(callbacks, on_command_started);
    mongoc_apm_set_command_succeeded_cb(callbacks, on_command_succeeded);
    mongoc_client_set_apm_callbacks(s->client, callbacks, s);
    mongoc_apm_callbacks_destroy(callbacks);

    s->wc = mongoc_write_concern_new();
    if (strcmp(cfg->write_concern, "majority") == 0) {
        mongoc_write_concern_set_w(s->wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
    } else {
        char *end;
        long w = strtol(cfg->write_concern, &end, 10);
        if (*end || w < 0 || w > 50) {
            sd_error_set(err, SD_ERR_FATAL, "write_concern",
                         "write concern must be \"majority\" or a number of nodes, not \"%s\"",
                         cfg->write_concern);
            mongo_close(&s->base);
            return SD_ERR_FATAL;
        }
        mongoc_write_concern_set_w(s->wc, (int32_t)w);
    }
    mongoc_write_concern_set_wtimeout_int64(s->wc, cfg->timeout_ms);
    mongoc_client_set_write_concern(s->client, s->wc);

    char markers[160];
    snprintf(markers, sizeof markers, "%s_saves", cfg->collection);
    s->sessions = mongoc_client_get_collection(s->client, s->database, cfg->collection);
    s->markers = mongoc_client_get_collection(s->client, s->database, markers);
    *out = &s->base;
    return SD_OK;
}
