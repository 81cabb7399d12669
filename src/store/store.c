#define _POSIX_C_SOURCE 200809L
#include "sessiond/store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/store_backend.h"

sd_err_t sd_store_open(const sd_store_config_t *cfg, sd_store_t **out, sd_error_t *err)
{
    sd_store_config_t c = *cfg;
    *out = NULL;
    if (!c.uri || !*c.uri)
        return sd_error_set(err, SD_ERR_FATAL, "store",
                            "no store given: use sqlite:PATH or mongodb://HOST/");
    if (!c.collection)
        c.collection = "sessions";
    if (!c.write_concern)
        c.write_concern = "majority";
    if (c.session_ttl_ms <= 0)
        c.session_ttl_ms = SD_STORE_DEFAULT_TTL_MS;
    if (c.retention_ms <= 0)
        c.retention_ms = 2 * c.session_ttl_ms;
    if (c.timeout_ms <= 0)
        c.timeout_ms = 10000;
    if (c.retention_ms < c.session_ttl_ms)
        return sd_error_set(err, SD_ERR_FATAL, "retention",
                            "tombstone retention must be at least the session TTL, or "
                            "late events could bring removed sessions back");

    if (strncmp(c.uri, "sqlite:", 7) == 0) {
        if (!c.uri[7])
            return sd_error_set(err, SD_ERR_FATAL, "store", "sqlite: needs a path, as in sqlite:/var/lib/sessiond/sessions.db");
        return sd_sqlite_store_open(&c, c.uri + 7, out, err);
    }
    if (strncmp(c.uri, "mongodb://", 10) == 0 || strncmp(c.uri, "mongodb+srv://", 14) == 0)
        return sd_mongo_store_open(&c, out, err);
    return sd_error_set(err, SD_ERR_FATAL, "store",
                        "unknown store URI scheme (expected sqlite:PATH, mongodb:// or mongodb+srv://)");
}

void sd_store_close(sd_store_t *store)
{
    if (store)
        store->ops->close(store);
}

const char *sd_store_kind(const sd_store_t *store) { return store->ops->kind; }

int64_t sd_store_ttl_ms(const sd_store_t *store) { return store->cfg.session_ttl_ms; }

sd_err_t sd_store_ensure_schema(sd_store_t *store, sd_error_t *err)
{
    return store->ops->ensure_schema(store, err);
}

sd_err_t sd_store_open_ready(const sd_store_config_t *cfg, sd_store_t **out, sd_error_t *err)
{
    sd_err_t rc = sd_store_open(cfg, out, err);
    if (rc != SD_OK)
        return rc;
    if ((rc = sd_store_ensure_schema(*out, err)) != SD_OK) {
        sd_store_close(*out);
        *out = NULL;
    }
    return rc;
}

sd_err_t sd_store_apply(sd_store_t *store, const sd_store_item_t *items, size_t n,
                        int64_t now_ms, sd_apply_result_t *out, sd_error_t *err)
{
    sd_err_t rc = sd_apply_result_init(out, n);
    if (rc != SD_OK)
        return sd_error_set(err, rc, "", "out of memory for a batch of %zu events", n);
    rc = store->ops->apply(store, items, n, now_ms, out, err);
    if (rc != SD_OK)
        sd_apply_result_free(out);
    return rc;
}

sd_err_t sd_store_get(sd_store_t *store, const char *task_id, int64_t now_ms,
                      sd_session_list_t *out, sd_error_t *err)
{
    return store->ops->list(store, "task_id", task_id, now_ms, out, err);
}

sd_err_t sd_store_list_by_short_id(sd_store_t *store, const char *short_id,
                                   int64_t now_ms, sd_session_list_t *out, sd_error_t *err)
{
    return store->ops->list(store, "short_id", short_id, now_ms, out, err);
}

sd_err_t sd_store_list_all(sd_store_t *store, int64_t now_ms, sd_session_list_t *out,
                           sd_error_t *err)
{
    return store->ops->list(store, NULL, NULL, now_ms, out, err);
}

sd_err_t sd_store_due_expiries(sd_store_t *store, int64_t now_ms, int64_t resend_before_ms,
                               size_t limit, sd_expiry_list_t *out, sd_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (limit == 0)
        return sd_error_set(err, SD_ERR_FATAL, "", "a sweep needs a limit above 0");
    sd_err_t rc = store->ops->due_expiries(store, now_ms, resend_before_ms, limit, out, err);
    if (rc != SD_OK)
        sd_expiry_list_free(out);
    assert(rc != SD_OK || out->count <= limit);
    return rc;
}

sd_err_t sd_store_expiries_published(sd_store_t *store, const sd_expiry_list_t *published,
                                     int64_t now_ms, sd_error_t *err)
{
    return published->count ? store->ops->expiries_published(store, published, now_ms, err)
                            : SD_OK;
}

sd_err_t sd_expiry_list_add(sd_expiry_list_t *list, const sd_expiry_due_t *due)
{
    assert(due->task_id && due->version >= 1);
    if (list->count == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 16;
        sd_expiry_due_t *items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return SD_ERR_NOMEM;
        list->items = items;
        list->cap = cap;
    }
    char *task_id = strdup(due->task_id);
    if (!task_id)
        return SD_ERR_NOMEM;
    list->items[list->count] = *due;
    list->items[list->count++].task_id = task_id;
    return SD_OK;
}

void sd_expiry_list_free(sd_expiry_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free((char *)list->items[i].task_id);
    free(list->items);
    memset(list, 0, sizeof *list);
}

sd_err_t sd_store_count_by_type(sd_store_t *store, int64_t now_ms, sd_type_count_t **out,
                                size_t *n, sd_error_t *err)
{
    return store->ops->count_by_type(store, now_ms, out, n, err);
}

sd_err_t sd_store_ping(sd_store_t *store, sd_error_t *err)
{
    return store->ops->ping(store, err);
}

sd_store_io_t sd_store_io(const sd_store_t *store)
{
    return store->ops->io ? store->ops->io(store) : (sd_store_io_t){0};
}

sd_err_t sd_type_count_add(sd_type_count_t **counts, size_t *n, const char *task_type,
                           int64_t live, sd_error_t *err)
{
    sd_type_count_t *grown = realloc(*counts, (*n + 1) * sizeof *grown);
    if (!grown)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory counting sessions");
    *counts = grown;
    snprintf(grown[*n].task_type, sizeof grown[*n].task_type, "%s", task_type ? task_type : "");
    grown[(*n)++].live = live;
    return SD_OK;
}

int sd_store_item_caused(const sd_store_item_t *item, const sd_cause_t *cause)
{
    const sd_event_t *ev = item->intent.event;
    if (!ev || !cause->event_id || strcmp(ev->event_id, cause->event_id) != 0)
        return 0;
    if (!item->topic)
        return 1;
    return cause->topic && strcmp(item->topic, cause->topic) == 0 &&
           item->partition == cause->partition && item->offset == cause->offset;
}

sd_change_t sd_store_change_of(const sd_state_t *st, const sd_emit_t *emit)
{
    sd_change_t c = {
        .type = emit->type,
        .reason = emit->reason,
        .version = st->version,
        .occurred_at_ms = emit->occurred_at_ms,
        .session = sd_state_session(st),
        .cause = {.event_id = emit->cause.event_id, .topic = emit->cause.topic,
                  .partition = emit->cause.partition, .offset = emit->cause.offset},
    };
    return c;
}

/* ---- containers: each item's strings live in one blob it owns ---- */

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *copy_str(char **cursor, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *at = *cursor;
    memcpy(at, s, n);
    *cursor += n;
    return at;
}

static int grow(void **items, char ***blobs, size_t *cap, size_t count, size_t item_size)
{
    if (count < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *ni = realloc(*items, ncap * item_size);
    if (!ni)
        return -1;
    *items = ni;
    char **nb = realloc(*blobs, ncap * sizeof *nb);
    if (!nb)
        return -1;
    *blobs = nb;
    *cap = ncap;
    return 0;
}

static size_t session_size(const sd_session_t *s)
{
    return str_size(s->task_id) + str_size(s->short_id) + str_size(s->task_type) +
           str_size(s->user_id) + str_size(s->metadata_json);
}

static void copy_session(sd_session_t *dst, const sd_session_t *src, char **cursor)
{
    *dst = *src;
    dst->task_id = copy_str(cursor, src->task_id);
    dst->short_id = copy_str(cursor, src->short_id);
    dst->task_type = copy_str(cursor, src->task_type);
    dst->user_id = copy_str(cursor, src->user_id);
    dst->metadata_json = copy_str(cursor, src->metadata_json);
}

sd_err_t sd_change_list_add(sd_change_list_t *list, const sd_change_t *change)
{
    return sd_change_list_add_json(list, change, NULL);
}

sd_err_t sd_change_list_add_json(sd_change_list_t *list, const sd_change_t *change, char *json)
{
    size_t cap = list->cap;
    if (grow((void **)&list->items, &list->blobs, &list->cap, list->count, sizeof *list->items)) {
        free(json);
        return SD_ERR_NOMEM;
    }
    if (list->cap != cap) {
        char **nj = realloc(list->json, list->cap * sizeof *nj);
        if (!nj) {
            list->cap = cap; /* the json array still has the old capacity */
            free(json);
            return SD_ERR_NOMEM;
        }
        list->json = nj;
    }
    size_t size = session_size(&change->session) + str_size(change->cause.event_id) +
                  str_size(change->cause.topic);
    char *blob = malloc(size ? size : 1), *cursor = blob;
    if (!blob) {
        free(json);
        return SD_ERR_NOMEM;
    }
    sd_change_t *dst = &list->items[list->count];
    *dst = *change;
    copy_session(&dst->session, &change->session, &cursor);
    dst->cause.event_id = copy_str(&cursor, change->cause.event_id);
    dst->cause.topic = copy_str(&cursor, change->cause.topic);
    list->json[list->count] = json;
    list->blobs[list->count++] = blob;
    return SD_OK;
}

void sd_change_list_free(sd_change_list_t *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->blobs[i]);
        free(list->json[i]);
    }
    free(list->blobs);
    free(list->json);
    free(list->items);
    memset(list, 0, sizeof *list);
}

sd_err_t sd_session_list_add(sd_session_list_t *list, const sd_session_t *session)
{
    if (grow((void **)&list->items, &list->blobs, &list->cap, list->count, sizeof *list->items))
        return SD_ERR_NOMEM;
    size_t size = session_size(session);
    char *blob = malloc(size ? size : 1), *cursor = blob;
    if (!blob)
        return SD_ERR_NOMEM;
    copy_session(&list->items[list->count], session, &cursor);
    list->blobs[list->count++] = blob;
    return SD_OK;
}

void sd_session_list_free(sd_session_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->blobs[i]);
    free(list->blobs);
    free(list->items);
    memset(list, 0, sizeof *list);
}

sd_err_t sd_apply_result_init(sd_apply_result_t *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->status = calloc(n ? n : 1, sizeof *r->status);
    r->errors = calloc(n ? n : 1, sizeof *r->errors);
    r->count = n;
    if (!r->status || !r->errors) {
        sd_apply_result_free(r);
        return SD_ERR_NOMEM;
    }
    return SD_OK;
}

void sd_apply_result_free(sd_apply_result_t *r)
{
    sd_change_list_free(&r->changes);
    free(r->status);
    free(r->errors);
    r->status = NULL;
    r->errors = NULL;
    r->count = 0;
}
