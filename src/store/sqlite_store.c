/* The store contract on one SQLite file (WAL mode).
 *
 * A batch is one write transaction (BEGIN IMMEDIATE): SQLite serialises
 * writers, so reading a row, applying sd_state_apply() and writing it back
 * is atomic here, and two processes sharing the file take turns per batch.
 * Each row keeps the JSON of its latest published change, which is what a
 * redelivered event re-publishes, and when the sweeper last published an
 * expiry event for it (expiry_sent_at, cleared by any change).
 *
 * Layout (user_version 3): task ids are random (UUIDs), so rows live in a
 * rowid table in the order sessions were first seen, where a batch's
 * writes mostly fall on the last pages, and only the index on task_id
 * takes random writes.  The sweep's and the purge's indexes are partial
 * (live rows by updated_at, tombstones by purge_at), and a write touches
 * only the columns, hence the indexes, its transition changed.  Files of
 * the first layout (a WITHOUT ROWID table keyed by task_id) and of the
 * second (sessiond 0.1's expiry flag) are rewritten into this one when
 * opened (sqlite_schema.c). */
#define _POSIX_C_SOURCE 200809L
#include "sqlite_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"

/* A visible session: created, not removed, TTL not passed (?1 = now - ttl). */
#define VISIBLE "created_by IS NOT NULL AND removed_reason IS NULL AND updated_at > ?1"

/* ---- rows <-> sd_state_t ---- */

/* A loaded row: the state plus a copy of its strings. */
typedef struct row {
    sd_state_t st;
    int64_t id;          /* 0: no row yet */
    const char *read_by; /* the defining create as read: a write after
                            another create rewrites the create's columns */
    int64_t purge_at;
    int cause_is_latest; /* the event load_row was given caused the kept change */
    char *strings;
} row_t;

static const char *col_text(sqlite3_stmt *stmt, int col, char **cursor)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    if (!t)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(stmt, col) + 1;
    memcpy(*cursor, t, n);
    *cursor += n;
    return *cursor - n;
}

static void read_row(sqlite3_stmt *q, row_t *row)
{
    size_t size = 0;
    for (int c = 0; c <= COL_REMOVED_OFFSET; c++) /* every text column is among these */
        size += (size_t)sqlite3_column_bytes(q, c) + 1;
    char *cursor = row->strings = malloc(size);
    if (!cursor)
        return;
    sd_state_t *st = &row->st;
    st->task_id = col_text(q, COL_TASK_ID, &cursor);
    st->short_id = col_text(q, COL_SHORT_ID, &cursor);
    st->task_type = col_text(q, COL_TASK_TYPE, &cursor);
    st->user_id = col_text(q, COL_USER_ID, &cursor);
    st->metadata_json = col_text(q, COL_METADATA, &cursor);
    st->has_create = sqlite3_column_type(q, COL_CREATED_BY) != SQLITE_NULL;
    st->created_at = sqlite3_column_int64(q, COL_CREATED_AT);
    st->created_by = col_text(q, COL_CREATED_BY, &cursor);
    st->has_status = sqlite3_column_type(q, COL_STATUS_BY) != SQLITE_NULL;
    if (sd_status_from_name((const char *)sqlite3_column_text(q, COL_STATUS), &st->status) != 0)
        st->status = SD_STATUS_ACTIVE;
    st->status_at = sqlite3_column_int64(q, COL_STATUS_AT);
    st->status_by = col_text(q, COL_STATUS_BY, &cursor);
    st->removed = sd_reason_from_name((const char *)sqlite3_column_text(q, COL_REMOVED_REASON),
                                      &st->removed_reason) == 0;
    st->removed_by.event_id = col_text(q, COL_REMOVED_BY, &cursor);
    st->removed_by.at_ms = sqlite3_column_int64(q, COL_REMOVED_AT);
    st->removed_by.topic = col_text(q, COL_REMOVED_TOPIC, &cursor);
    st->removed_by.partition = sqlite3_column_int(q, COL_REMOVED_PARTITION);
    st->removed_by.offset = sqlite3_column_int64(q, COL_REMOVED_OFFSET);
    st->live = sqlite3_column_int(q, COL_LIVE);
    st->version = sqlite3_column_int64(q, COL_VERSION);
    row->purge_at = sqlite3_column_int64(q, COL_PURGE_AT);
    row->id = sqlite3_column_int64(q, COL_ID);
    row->read_by = st->created_by;
}

static void bind_opt_text(sqlite3_stmt *q, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, i);
}

/* Loads task_id's row, if any, into row (its strings are the caller's to
 * free), and whether event_id (NULL: none) caused the change it keeps. */
static sd_err_t load_row(sqlite_store_t *s, const char *task_id, const char *event_id,
                         row_t *row, sd_error_t *err)
{
    memset(row, 0, sizeof *row);
    sqlite3_stmt *q = s->load;
    sqlite3_bind_text(q, 1, task_id, -1, SQLITE_STATIC);
    bind_opt_text(q, 2, event_id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        read_row(q, row);
        row->cause_is_latest = sqlite3_column_int(q, LOAD_CAUSE_COLUMN);
        if (!row->strings) {
            sqlite3_reset(q);
            return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading task %s", task_id);
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlite_store_error(s, err, "reading a session");
    if (!row->id)
        row->st.task_id = task_id;
    return SD_OK;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Writes the row; change_json / cause are the latest published change when
 * this write published one. */
static sd_err_t store_row(sqlite_store_t *s, const row_t *row, int64_t event_at, int64_t now,
                          const char *change_json, const char *cause, sd_error_t *err)
{
    const sd_state_t *st = &row->st;
    const sd_store_config_t *cfg = &s->base.cfg;
    /* The statements share parameter numbers (enum sqlite_row_param):
     * update_state leaves the create's columns alone, insert_row has no id. */
    sqlite3_stmt *q = !row->id                      ? s->insert_row
                      : row->read_by == st->created_by ? s->update_state
                                                     : s->update_row;
    int64_t purge_at = max64(row->purge_at,
                             max64(event_at + cfg->session_ttl_ms, now) + cfg->retention_ms);
    bind_opt_text(q, PARAM_TASK_ID, st->task_id);
    bind_opt_text(q, PARAM_SHORT_ID, st->short_id);
    bind_opt_text(q, PARAM_TASK_TYPE, st->task_type);
    bind_opt_text(q, PARAM_USER_ID, st->user_id);
    bind_opt_text(q, PARAM_METADATA, st->metadata_json);
    if (st->has_create)
        sqlite3_bind_int64(q, PARAM_CREATED_AT, st->created_at);
    else
        sqlite3_bind_null(q, PARAM_CREATED_AT);
    bind_opt_text(q, PARAM_CREATED_BY, st->has_create ? st->created_by : NULL);
    sqlite3_bind_text(q, PARAM_STATUS,
                      sd_status_name(st->has_status ? st->status : SD_STATUS_ACTIVE), -1,
                      SQLITE_STATIC);
    if (st->has_status)
        sqlite3_bind_int64(q, PARAM_STATUS_AT, st->status_at);
    else
        sqlite3_bind_null(q, PARAM_STATUS_AT);
    bind_opt_text(q, PARAM_STATUS_BY, st->has_status ? st->status_by : NULL);
    bind_opt_text(q, PARAM_REMOVED_REASON, st->removed ? sd_reason_name(st->removed_reason) : NULL);
    bind_opt_text(q, PARAM_REMOVED_BY, st->removed ? st->removed_by.event_id : NULL);
    sqlite3_bind_int64(q, PARAM_REMOVED_AT, st->removed_by.at_ms);
    bind_opt_text(q, PARAM_REMOVED_TOPIC, st->removed ? st->removed_by.topic : NULL);
    sqlite3_bind_int(q, PARAM_REMOVED_PARTITION, st->removed_by.partition);
    sqlite3_bind_int64(q, PARAM_REMOVED_OFFSET, st->removed_by.offset);
    if (st->has_create)
        sqlite3_bind_int64(q, PARAM_UPDATED_AT, sd_state_updated_at(st));
    else
        sqlite3_bind_null(q, PARAM_UPDATED_AT);
    sqlite3_bind_int(q, PARAM_LIVE, st->live);
    sqlite3_bind_int64(q, PARAM_VERSION, st->version);
    bind_opt_text(q, PARAM_LAST_CHANGE, change_json);
    bind_opt_text(q, PARAM_LAST_CAUSE, cause);
    sqlite3_bind_int64(q, PARAM_PURGE_AT, purge_at);
    if (row->id)
        sqlite3_bind_int64(q, PARAM_ID, row->id);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE)
        return sqlite_store_error(s, err, "writing a session");
    return SD_OK;
}

/* ---- save markers ---- */

typedef struct mark {
    sd_cover_t cover;
    char *strings;
} mark_t;

static sd_err_t load_mark(sqlite_store_t *s, const char *short_id, mark_t *m, sd_error_t *err)
{
    memset(m, 0, sizeof *m);
    sqlite3_stmt *q = s->load_mark;
    sqlite3_bind_text(q, 1, short_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        size_t size = (size_t)sqlite3_column_bytes(q, 1) + sqlite3_column_bytes(q, 2) + 2;
        char *cursor = m->strings = malloc(size);
        if (!cursor) {
            sqlite3_reset(q);
            return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading a save");
        }
        m->cover.known = 1;
        m->cover.save.at_ms = sqlite3_column_int64(q, 0);
        m->cover.save.event_id = col_text(q, 1, &cursor);
        m->cover.save.topic = col_text(q, 2, &cursor);
        m->cover.save.partition = sqlite3_column_int(q, 3);
        m->cover.save.offset = sqlite3_column_int64(q, 4);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlite_store_error(s, err, "reading a save");
    return SD_OK;
}

/* ---- apply ---- */

typedef struct batch {
    sqlite_store_t *s;
    int64_t now;
    sd_state_clock_t clock;
    sd_apply_result_t *out;
    const char **emitted_tasks; /* task_ids that published in this batch */
    size_t n_emitted, cap_emitted;
} batch_t;

static sd_err_t note_emitted(batch_t *b, const char *task_id)
{
    if (b->n_emitted == b->cap_emitted) {
        size_t ncap = b->cap_emitted ? 2 * b->cap_emitted : 64;
        const char **n = realloc(b->emitted_tasks, ncap * sizeof *n);
        if (!n)
            return SD_ERR_NOMEM;
        b->emitted_tasks = n;
        b->cap_emitted = ncap;
    }
    /* Points into the change list's copy, which lives as long as the batch. */
    b->emitted_tasks[b->n_emitted++] = task_id;
    return SD_OK;
}

static int emitted_in_batch(const batch_t *b, const char *task_id)
{
    for (size_t i = 0; i < b->n_emitted; i++)
        if (strcmp(b->emitted_tasks[i], task_id) == 0)
            return 1;
    return 0;
}

/* Stores a transition's outcome and records its change, if any. */
static sd_err_t commit_transition(batch_t *b, row_t *row, const sd_emit_t *emit,
                                  int64_t event_at, int *emitted, sd_error_t *err)
{
    char *json = NULL;
    sd_err_t rc = SD_OK;
    sd_change_t change;
    if (emit->emitted) {
        change = sd_store_change_of(&row->st, emit);
        size_t len;
        if ((rc = sd_change_to_json(&change, &json, &len, err)) != SD_OK)
            return rc;
    }
    rc = store_row(b->s, row, event_at, b->now, json, emit->emitted ? emit->cause.event_id : NULL,
                   err);
    if (rc != SD_OK || !emit->emitted) {
        free(json);
        return rc;
    }
    /* The list takes the text too: the change is published as stored. */
    if (sd_change_list_add_json(&b->out->changes, &change, json) != SD_OK ||
        note_emitted(b, b->out->changes.items[b->out->changes.count - 1].session.task_id))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory recording a change");
    *emitted = 1;
    return SD_OK;
}

/* Applies an event of one task.  *redelivered says whether the row's kept
 * change was this event's when read: only then may it need publishing
 * again (republish), and only then is it looked up a second time. */
static sd_err_t apply_to_task(batch_t *b, const sd_store_item_t *item, int *emitted,
                              int *redelivered, sd_error_t *err)
{
    const sd_event_t *ev = item->intent.event;
    sd_origin_t origin = {ev->event_id, ev->occurred_at_ms, item->topic, item->partition,
                          item->offset};
    row_t row;
    mark_t mark = {0};
    sd_emit_t emit;
    sd_err_t rc = load_row(b->s, ev->task_id, ev->event_id, &row, err);
    *redelivered = row.cause_is_latest;
    if (rc != SD_OK)
        goto done;
    if (item->intent.kind == SD_INTENT_CREATE && ev->task_kind == SD_TASK_SCENARIO_GENERATION &&
        (rc = load_mark(b->s, ev->short_id, &mark, err)) != SD_OK)
        goto done;
    if (sd_state_apply(&row.st, &item->intent, &origin, &mark.cover, b->clock, &emit))
        rc = commit_transition(b, &row, &emit, ev->occurred_at_ms, emitted, err);
done:
    free(mark.strings);
    free(row.strings);
    return rc;
}

static sd_err_t apply_save(batch_t *b, const sd_store_item_t *item, int *emitted,
                           sd_error_t *err)
{
    sqlite_store_t *s = b->s;
    const sd_event_t *ev = item->intent.event;
    const sd_store_config_t *cfg = &s->base.cfg;
    sd_origin_t save = {ev->event_id, ev->occurred_at_ms, item->topic, item->partition,
                        item->offset};

    /* Keep the latest save: later (saved_at, saved_by) replaces the marker. */
    sqlite3_stmt *q = s->save_mark;
    sqlite3_bind_text(q, 1, ev->short_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, ev->occurred_at_ms);
    sqlite3_bind_text(q, 3, ev->event_id, -1, SQLITE_STATIC);
    bind_opt_text(q, 4, item->topic);
    sqlite3_bind_int(q, 5, item->partition);
    sqlite3_bind_int64(q, 6, item->offset);
    sqlite3_bind_int64(q, 7, max64(ev->occurred_at_ms, b->now) + cfg->retention_ms);
    int step = sqlite3_step(q);
    sqlite3_reset(q);
    if (step != SQLITE_DONE)
        return sqlite_store_error(s, err, "recording a save");

    /* Collect first: rows are rewritten while we go. */
    q = s->scan_save;
    sqlite3_bind_text(q, 1, ev->short_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, ev->occurred_at_ms);
    char **tasks = NULL;
    size_t n = 0, cap = 0;
    sd_err_t rc = SD_OK;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nt = realloc(tasks, cap * sizeof *nt);
            if (!nt) {
                rc = SD_ERR_NOMEM;
                break;
            }
            tasks = nt;
        }
        if (!(tasks[n] = strdup((const char *)sqlite3_column_text(q, 0)))) {
            rc = SD_ERR_NOMEM;
            break;
        }
        n++;
    }
    sqlite3_reset(q);
    if (rc == SD_OK && step != SQLITE_DONE)
        rc = sqlite_store_error(s, err, "finding sessions a save covers");
    else if (rc == SD_ERR_NOMEM)
        rc = sd_error_set(err, rc, "", "out of memory applying a save");

    for (size_t i = 0; i < n && rc == SD_OK; i++) {
        row_t row;
        if ((rc = load_row(s, tasks[i], NULL, &row, err)) != SD_OK)
            break;
        sd_emit_t emit;
        if (sd_state_cover(&row.st, &save, b->clock, &emit))
            rc = commit_transition(b, &row, &emit, ev->occurred_at_ms, emitted, err);
        free(row.strings);
    }
    for (size_t i = 0; i < n; i++)
        free(tasks[i]);
    free(tasks);
    return rc;
}

/* Publishes a change kept in a row's last_change (column col of q) again
 * if item caused it: the kept text itself, the bytes first published, as
 * commit_transition hands a new change's text on (it is parsed only for
 * its cause, key and headers). */
static sd_err_t add_kept_change(batch_t *b, sqlite3_stmt *q, int col,
                                const sd_store_item_t *item, sd_error_t *err)
{
    const char *text = (const char *)sqlite3_column_text(q, col);
    size_t len = (size_t)sqlite3_column_bytes(q, col);
    sd_change_t change;
    char *storage;
    sd_err_t rc = sd_change_from_json(text, len, &change, &storage, err);
    if (rc != SD_OK)
        return rc;
    if (!sd_store_item_caused(item, &change.cause)) {
        free(storage);
        return SD_OK;
    }
    char *json = strndup(text, len);
    if (!json || sd_change_list_add_json(&b->out->changes, &change, json) != SD_OK ||
        note_emitted(b, b->out->changes.items[b->out->changes.count - 1].session.task_id))
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory re-publishing");
    free(storage);
    return rc;
}

/* A redelivered message re-publishes the latest change it caused, unless
 * this batch changed that session since.  Called after the batch's own
 * writes, for the items that changed nothing and, for an event of one
 * task, found its row's kept change to be its own when it read the row
 * (a replay's events all change nothing: this saves them a second
 * lookup); a save is looked up by short_id every time. */
static sd_err_t republish(batch_t *b, const sd_store_item_t *item, sd_error_t *err)
{
    const sd_event_t *ev = item->intent.event;
    int by_short = item->intent.kind == SD_INTENT_SAVE;
    sqlite3_stmt *q = by_short ? b->s->latest_by_short : b->s->latest;
    sqlite3_bind_text(q, 1, by_short ? ev->short_id : ev->task_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ev->event_id, -1, SQLITE_STATIC);
    sd_err_t rc = SD_OK;
    int step;
    while (rc == SD_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        if (!emitted_in_batch(b, (const char *)sqlite3_column_text(q, 0)))
            rc = add_kept_change(b, q, 1, item, err);
    }
    if (rc == SD_OK && step != SQLITE_DONE)
        rc = sqlite_store_error(b->s, err, "reading the latest change");
    sqlite3_reset(q);
    return rc;
}

static sd_err_t sqlite_apply(sd_store_t *base, const sd_store_item_t *items, size_t n,
                             int64_t now_ms, sd_apply_result_t *out, sd_error_t *err)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    batch_t b = {.s = s, .now = now_ms, .out = out,
                 .clock = {now_ms, base->cfg.session_ttl_ms}};
    /* Which unchanged items may be redeliveries, to look up once the
     * batch's own changes are known. */
    unsigned char *redelivered = calloc(n ? n : 1, 1);
    if (!redelivered)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory applying a batch");
    sd_err_t rc;
    if ((rc = sqlite_store_exec(s, "BEGIN IMMEDIATE", err)) != SD_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const sd_store_item_t *item = &items[i];
        /* a save covers sessions found by short_id: any may be a redelivery */
        int emitted = 0, maybe_redelivered = 1;
        switch (item->intent.kind) {
        case SD_INTENT_IGNORE:
            out->status[i] = SD_APPLY_IGNORED;
            continue;
        case SD_INTENT_SAVE:
            rc = apply_save(&b, item, &emitted, err);
            break;
        default:
            rc = apply_to_task(&b, item, &emitted, &maybe_redelivered, err);
            break;
        }
        if (rc != SD_OK)
            goto done;
        out->status[i] = emitted ? SD_APPLY_CHANGED : SD_APPLY_UNCHANGED;
        redelivered[i] = !emitted && maybe_redelivered;
    }
    for (size_t i = 0; i < n; i++)
        if (redelivered[i] && (rc = republish(&b, &items[i], err)) != SD_OK)
            goto done;
    rc = sqlite_store_exec(s, "COMMIT", err);
done:
    free(redelivered);
    free(b.emitted_tasks);
    if (rc != SD_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- reads ---- */

static sd_err_t sqlite_list(sd_store_t *base, const char *by, const char *value,
                            int64_t now_ms, sd_session_list_t *out, sd_error_t *err)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " ROW_COLUMNS " FROM sessions WHERE " VISIBLE
             "%s%s%s ORDER BY task_id", by ? " AND " : "", by ? by : "", by ? " = ?2" : "");
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return sqlite_store_error(s, err, "preparing a read");
    sqlite_assert_row_columns(q, 0);
    sqlite3_bind_int64(q, 1, now_ms - base->cfg.session_ttl_ms);
    if (by)
        sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    memset(out, 0, sizeof *out);
    sd_err_t rc = SD_OK;
    int step;
    while (rc == SD_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        row_t row = {0};
        read_row(q, &row);
        sd_session_t session = sd_state_session(&row.st);
        if (!row.strings || sd_session_list_add(out, &session) != SD_OK)
            rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory listing sessions");
        free(row.strings);
    }
    if (rc == SD_OK && step != SQLITE_DONE)
        rc = sqlite_store_error(s, err, "listing sessions");
    sqlite3_finalize(q);
    if (rc != SD_OK)
        sd_session_list_free(out);
    return rc;
}

static sd_err_t read_due(sqlite_store_t *s, int64_t now_ms, int64_t resend_before_ms,
                         size_t limit, sd_expiry_list_t *out, sd_error_t *err)
{
    sqlite3_stmt *q = s->due;
    sqlite3_bind_int64(q, 1, now_ms - s->base.cfg.session_ttl_ms);
    sqlite3_bind_int64(q, 2, resend_before_ms);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)limit);
    sd_err_t rc = SD_OK;
    int step;
    while (rc == SD_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        sd_expiry_due_t due = {(const char *)sqlite3_column_text(q, 0),
                               sqlite3_column_int64(q, 1), sqlite3_column_int64(q, 2)};
        if (sd_expiry_list_add(out, &due) != SD_OK)
            rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory sweeping");
    }
    if (rc == SD_OK && step != SQLITE_DONE)
        rc = sqlite_store_error(s, err, "finding sessions due to expire");
    sqlite3_reset(q);
    return rc;
}

/* Reads what is due and purges tombstones and save markers whose
 * retention ran out, in one write transaction. */
static sd_err_t sqlite_due_expiries(sd_store_t *base, int64_t now_ms, int64_t resend_before_ms,
                                    size_t limit, sd_expiry_list_t *out, sd_error_t *err)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    char purge[256];
    snprintf(purge, sizeof purge,
             "DELETE FROM sessions WHERE live = 0 AND purge_at <= %lld;"
             "DELETE FROM saves WHERE purge_at <= %lld;",
             (long long)now_ms, (long long)now_ms);
    sd_err_t rc;
    if ((rc = sqlite_store_exec(s, "BEGIN IMMEDIATE", err)) != SD_OK)
        goto done;
    if ((rc = read_due(s, now_ms, resend_before_ms, limit, out, err)) != SD_OK)
        goto done;
    if ((rc = sqlite_store_exec(s, purge, err)) != SD_OK)
        goto done;
    rc = sqlite_store_exec(s, "COMMIT", err);
done:
    if (rc != SD_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static sd_err_t sqlite_expiries_published(sd_store_t *base, const sd_expiry_list_t *published,
                                          int64_t now_ms, sd_error_t *err)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sd_err_t rc;
    if ((rc = sqlite_store_exec(s, "BEGIN IMMEDIATE", err)) != SD_OK)
        goto done;
    for (size_t i = 0; i < published->count; i++) {
        sqlite3_bind_text(s->mark_sent, 1, published->items[i].task_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->mark_sent, 2, published->items[i].version);
        sqlite3_bind_int64(s->mark_sent, 3, now_ms);
        if (sqlite3_step(s->mark_sent) != SQLITE_DONE)
            rc = sqlite_store_error(s, err, "marking expiry events published");
        sqlite3_reset(s->mark_sent);
        if (rc != SD_OK)
            goto done;
    }
    rc = sqlite_store_exec(s, "COMMIT", err);
done:
    if (rc != SD_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static sd_err_t sqlite_count_by_type(sd_store_t *base, int64_t now_ms, sd_type_count_t **out,
                                     size_t *n, sd_error_t *err)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *q;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT task_type, COUNT(*) FROM sessions WHERE " VISIBLE
                           " GROUP BY task_type ORDER BY task_type", -1, &q, NULL) != SQLITE_OK)
        return sqlite_store_error(s, err, "preparing a count");
    sqlite3_bind_int64(q, 1, now_ms - base->cfg.session_ttl_ms);
    sd_err_t rc = SD_OK;
    int step = SQLITE_DONE;
    while (rc == SD_OK && (step = sqlite3_step(q)) == SQLITE_ROW)
        rc = sd_type_count_add(out, n, (const char *)sqlite3_column_text(q, 0),
                               sqlite3_column_int64(q, 1), err);
    if (rc == SD_OK && step != SQLITE_DONE)
        rc = sqlite_store_error(s, err, "counting sessions");
    sqlite3_finalize(q);
    if (rc != SD_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static sd_err_t sqlite_ping(sd_store_t *base, sd_error_t *err)
{
    return sqlite_store_exec((sqlite_store_t *)base, "SELECT 1", err);
}

static void sqlite_close(sd_store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sd_sqlite_checkpointer_detach(s->checkpointer);
    sqlite3_stmt *stmts[] = {s->load,      s->insert_row, s->update_row,      s->update_state,
                             s->load_mark, s->save_mark,  s->scan_save,       s->latest,
                             s->latest_by_short,          s->due,             s->mark_sent};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        sqlite3_finalize(stmts[i]);
    sqlite3_close_v2(s->db);
    free(s);
}

static const sd_store_ops_t sqlite_ops = {
    .kind = "sqlite",
    .ensure_schema = sqlite_store_ensure_schema,
    .apply = sqlite_apply,
    .list = sqlite_list,
    .due_expiries = sqlite_due_expiries,
    .expiries_published = sqlite_expiries_published,
    .count_by_type = sqlite_count_by_type,
    .ping = sqlite_ping,
    .close = sqlite_close,
};

/* One connection to path in WAL mode, waiting up to timeout_ms for other
 * processes.  Of several opening a new file at once, one sets WAL mode
 * while another may hold a view of the file from before, and waits for a
 * lock that its own view keeps from being granted ("database is locked"
 * after the whole busy timeout): the mode is asked for with a short wait,
 * and on SQLITE_BUSY the connection is opened again, with a fresh view,
 * until the deadline. */
static sd_err_t open_wal(const char *path, int timeout_ms, sqlite3 **out, sd_error_t *err)
{
    int64_t deadline = sd_monotonic_ms() + timeout_ms;
    for (int attempt = 0;; attempt++) {
        sqlite3 *db = NULL;
        /* NOMUTEX: a handle is used by one thread at a time (store.h), so
         * SQLite need not lock the connection around every call. */
        int rc = sqlite3_open_v2(path, &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 NULL);
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(db, 100);
            rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(db, timeout_ms);
            *out = db;
            return SD_OK;
        }
        int busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        if (!busy || sd_monotonic_ms() >= deadline) {
            sd_error_set(err, busy ? SD_ERR_TRANSIENT : SD_ERR_FATAL, "store",
                         "cannot open sqlite database %s: %s%s", path,
                         db ? sqlite3_errmsg(db) : "out of memory",
                         busy ? " (another process holds it locked)" : "");
            sqlite3_close(db);
            return busy ? SD_ERR_TRANSIENT : SD_ERR_FATAL;
        }
        sqlite3_close(db);
        sd_sleep_ms(10 + rand() % (10 + 10 * (attempt < 10 ? attempt : 10)));
    }
}

sd_err_t sd_sqlite_store_open(const sd_store_config_t *cfg, const char *path,
                              sd_store_t **out, sd_error_t *err)
{
    sqlite_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory opening %s", path);
    s->base.ops = &sqlite_ops;
    s->base.cfg = *cfg;
    sd_err_t rc = open_wal(path, cfg->timeout_ms, &s->db, err);
    if (rc != SD_OK) {
        free(s);
        return rc;
    }

    /* WAL: readers never block the writer.  FULL: a commit is on the disk
     * when it returns (the WAL is synced), so a batch's input offsets,
     * committed to Kafka after it, never run ahead of what a power loss
     * leaves (NORMAL would leave the last commits to the next checkpoint:
     * docs/guarantees.md; the cost, one fsync per batch: docs/benchmarks.md).
     * Checkpoints run on a thread of their own (sqlite_checkpoint.h); after
     * one the WAL file is cut back to 64 MiB.  Measured with random ids at
     * 500,000 events: an 8 MiB page cache (16 MiB was no faster; 256 MiB and
     * 1 GiB, the whole file, 3-6 % faster: random ids cost the pages written,
     * not those read), 4 KiB pages (2 KiB and 8 KiB were slower), and no
     * mmap, whose pages would count in the process's resident memory. */
    if ((rc = sqlite_store_exec(s, "PRAGMA synchronous=FULL; PRAGMA cache_size=-8192;"
                                   " PRAGMA journal_size_limit=67108864;",
                                err)) != SD_OK)
        goto done;
    if ((rc = sd_sqlite_checkpointer_attach(s->db, sqlite3_db_filename(s->db, "main"),
                                            &s->checkpointer, err)) != SD_OK)
        goto done;
    /* statements need the tables: a file is usable once open */
    if ((rc = sqlite_store_ensure_schema(&s->base, err)) != SD_OK)
        goto done;
    *out = &s->base;
done:
    if (rc != SD_OK)
        sqlite_close(&s->base);
    return rc;
}
