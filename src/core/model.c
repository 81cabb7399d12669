/* The rules of SPEC §3, written as a direct reading of the text over the
 * whole event set at once (no incremental state, no store):
 *
 *   For each task_id:
 *   - the defining create is the earliest (occurred_at, event_id) among its
 *     task.created events that have a short_id and are not scraping tasks;
 *     without one there is no session;
 *   - session.delete_requested, or a terminal whose task_type is neither
 *     scenario_generation nor scraping, removes it;
 *   - scenario_generation terminals set the status: latest
 *     (occurred_at, event_id) wins;
 *   - a scenario_generation session is removed by any scenario.saved of its
 *     short_id with occurred_at >= its created_at;
 *   - last change = max(created_at, winning status time); the session is
 *     visible only while now < last change + ttl;
 *   - session.expiry_due changes nothing here: it only publishes what the
 *     clock already hides. */
#include "sessiond/model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/rules.h"

static int cmp_time_id(const sd_event_t *a, const sd_event_t *b)
{
    if (a->occurred_at_ms != b->occurred_at_ms)
        return a->occurred_at_ms < b->occurred_at_ms ? -1 : 1;
    return strcmp(a->event_id, b->event_id);
}

static int by_event_id(const void *a, const void *b)
{
    return strcmp((*(const sd_event_t *const *)a)->event_id,
                  (*(const sd_event_t *const *)b)->event_id);
}

static const char *group_key(const sd_event_t *e)
{
    return e->type == SD_EVENT_SCENARIO_SAVED ? e->short_id : e->task_id;
}

/* Saves first (grouped by short_id), then task events grouped by task_id. */
static int by_group(const void *a, const void *b)
{
    const sd_event_t *x = *(const sd_event_t *const *)a;
    const sd_event_t *y = *(const sd_event_t *const *)b;
    int xs = x->type == SD_EVENT_SCENARIO_SAVED, ys = y->type == SD_EVENT_SCENARIO_SAVED;
    if (xs != ys)
        return ys - xs;
    return strcmp(group_key(x), group_key(y));
}

static int by_task_id(const void *a, const void *b)
{
    return strcmp(((const sd_session_t *)a)->task_id,
                  ((const sd_session_t *)b)->task_id);
}

/* Latest save time of short_id among the saves in [saves, saves+n). */
static int latest_save(const sd_event_t *const *saves, size_t n,
                       const char *short_id, int64_t *out)
{
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(saves[i]->short_id, short_id) == 0 &&
            (!found || saves[i]->occurred_at_ms > *out)) {
            *out = saves[i]->occurred_at_ms;
            found = 1;
        }
    return found;
}

static int is_terminal(sd_event_type_t t)
{
    return t == SD_EVENT_TASK_COMPLETED || t == SD_EVENT_TASK_FAILED ||
           t == SD_EVENT_TASK_CANCELLED;
}

static sd_status_t status_of(sd_event_type_t t)
{
    return t == SD_EVENT_TASK_COMPLETED ? SD_STATUS_COMPLETED
           : t == SD_EVENT_TASK_FAILED  ? SD_STATUS_FAILED
                                        : SD_STATUS_CANCELLED;
}

/* Decides one task's session from all its events; returns 1 if visible. */
static int decide(const sd_event_t *const *ev, size_t n,
                  const sd_event_t *const *saves, size_t n_saves,
                  int64_t now_ms, int64_t ttl_ms, sd_session_t *out)
{
    const sd_event_t *create = NULL, *status = NULL;
    int removed = 0;

    for (size_t i = 0; i < n; i++) {
        const sd_event_t *e = ev[i];
        if (e->type == SD_EVENT_TASK_CREATED) {
            if (e->short_id && e->task_kind != SD_TASK_SCRAPING &&
                (!create || cmp_time_id(e, create) < 0))
                create = e;
        } else if (e->type == SD_EVENT_SESSION_DELETE_REQUESTED) {
            removed = 1;
        } else if (is_terminal(e->type)) {
            if (e->task_kind == SD_TASK_SCENARIO_GENERATION) {
                if (!status || cmp_time_id(e, status) > 0)
                    status = e;
            } else if (e->task_kind != SD_TASK_SCRAPING) {
                removed = 1;
            }
        }
    }
    if (!create || removed)
        return 0;

    int64_t saved_at = 0;
    if (create->task_kind == SD_TASK_SCENARIO_GENERATION &&
        latest_save(saves, n_saves, create->short_id, &saved_at) &&
        saved_at >= create->occurred_at_ms)
        return 0;

    int64_t last = create->occurred_at_ms;
    if (status && status->occurred_at_ms > last)
        last = status->occurred_at_ms;
    if (now_ms >= last + ttl_ms)
        return 0;

    *out = (sd_session_t){
        .task_id = create->task_id,
        .short_id = create->short_id,
        .task_type = create->task_type,
        .user_id = create->user_id,
        .metadata_json = create->metadata_json,
        .status = status ? status_of(status->type) : SD_STATUS_ACTIVE,
        .created_at_ms = create->occurred_at_ms,
        .updated_at_ms = last,
    };
    return 1;
}

int sd_model_visible(const sd_event_t *events, size_t n, int64_t now_ms,
                     int64_t ttl_ms, sd_model_result_t *out)
{
    out->sessions = NULL;
    out->count = 0;
    const sd_event_t **set = malloc((n ? n : 1) * sizeof *set);
    sd_session_t *sessions = malloc((n ? n : 1) * sizeof *sessions);
    if (!set || !sessions) {
        free(set);
        free(sessions);
        return -1;
    }

    /* The set of events: one per event_id. */
    for (size_t i = 0; i < n; i++)
        set[i] = &events[i];
    qsort(set, n, sizeof *set, by_event_id);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (unique == 0 || strcmp(set[unique - 1]->event_id, set[i]->event_id) != 0)
            set[unique++] = set[i];

    qsort(set, unique, sizeof *set, by_group);
    size_t n_saves = 0;
    while (n_saves < unique && set[n_saves]->type == SD_EVENT_SCENARIO_SAVED)
        n_saves++;

    size_t count = 0;
    for (size_t start = n_saves; start < unique;) {
        size_t end = start + 1;
        while (end < unique && strcmp(set[end]->task_id, set[start]->task_id) == 0)
            end++;
        if (decide(set + start, end - start, set, n_saves, now_ms, ttl_ms,
                   &sessions[count]))
            count++;
        start = end;
    }
    free(set);
    qsort(sessions, count, sizeof *sessions, by_task_id);
    out->sessions = sessions;
    out->count = count;
    return 0;
}

void sd_model_result_free(sd_model_result_t *result)
{
    free(result->sessions);
    result->sessions = NULL;
    result->count = 0;
}

const sd_session_t *sd_model_find(const sd_model_result_t *result,
                                  const char *task_id)
{
    sd_session_t key = {.task_id = task_id};
    return bsearch(&key, result->sessions, result->count,
                   sizeof *result->sessions, by_task_id);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Metadata compares as JSON values: a store may keep its keys in another
 * order or its numbers in another spelling. */
static int same_json(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    int same = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}

static int same_session(const sd_session_t *a, const sd_session_t *b)
{
    return same_str(a->task_id, b->task_id) && same_str(a->short_id, b->short_id) &&
           same_str(a->task_type, b->task_type) && same_str(a->user_id, b->user_id) &&
           same_json(a->metadata_json, b->metadata_json) && a->status == b->status &&
           a->created_at_ms == b->created_at_ms && a->updated_at_ms == b->updated_at_ms;
}

/* A session's text, or null: a store may have lost what the model holds. */
static const char *text_or_null(const char *s) { return s ? s : "null"; }

static void describe(const sd_session_t *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "short_id=%s type=%s user=%s status=%s created=%lld updated=%lld metadata=%s",
             text_or_null(s->short_id), text_or_null(s->task_type), text_or_null(s->user_id),
             sd_status_name(s->status), (long long)s->created_at_ms,
             (long long)s->updated_at_ms, text_or_null(s->metadata_json));
}

int sd_model_matches(const sd_session_t *got, size_t n_got, const sd_model_result_t *want,
                     char *why, size_t cap)
{
    for (size_t i = 0, j = 0; i < n_got || j < want->count; i++, j++) {
        int cmp = i == n_got        ? 1
                  : j == want->count ? -1
                                     : strcmp(got[i].task_id, want->sessions[j].task_id);
        if (cmp < 0) {
            snprintf(why, cap, "%s is visible but the model has no such session", got[i].task_id);
            return 0;
        }
        if (cmp > 0) {
            snprintf(why, cap, "the model has %s visible (type %s) but the store does not",
                     want->sessions[j].task_id, want->sessions[j].task_type);
            return 0;
        }
        if (!same_session(&got[i], &want->sessions[j])) {
            char g[512], w[512];
            describe(&got[i], g, sizeof g);
            describe(&want->sessions[j], w, sizeof w);
            snprintf(why, cap, "session %s differs: got %s; want %s", got[i].task_id, g, w);
            return 0;
        }
    }
    return 1;
}
