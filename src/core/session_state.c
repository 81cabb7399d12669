/* Transitions of one session's stored state (see the header).
 *
 * Every field is a join over the events seen: the defining create is the
 * minimum (created_at, created_by), the status the maximum
 * (status_at, status_by), removal is sticky.  That makes each transition
 * idempotent and the end state independent of arrival order.  What is
 * *published* depends on order (a change is emitted when the visible
 * session changes), which `live` and `version` track. */
#include "sessiond/session_state.h"

#include <assert.h>
#include <string.h>

int sd_state_key_cmp(int64_t at_a, const char *id_a, int64_t at_b, const char *id_b)
{
    if (at_a != at_b)
        return at_a < at_b ? -1 : 1;
    return strcmp(id_a, id_b);
}

int64_t sd_state_updated_at(const sd_state_t *st)
{
    if (st->has_status && st->status_at > st->created_at)
        return st->status_at;
    return st->created_at;
}

int sd_state_visible(const sd_state_t *st, sd_state_clock_t clock)
{
    return st->has_create && !st->removed &&
           sd_state_updated_at(st) + clock.ttl_ms > clock.now_ms;
}

sd_session_t sd_state_session(const sd_state_t *st)
{
    return (sd_session_t){
        .task_id = st->task_id,
        .short_id = st->short_id,
        .task_type = st->task_type,
        .user_id = st->user_id,
        .metadata_json = st->metadata_json,
        .status = st->has_status ? st->status : SD_STATUS_ACTIVE,
        .created_at_ms = st->created_at,
        .updated_at_ms = sd_state_updated_at(st),
    };
}

static void emit_change(sd_emit_t *emit, sd_change_type_t type, sd_reason_t reason,
                        const sd_origin_t *cause, int64_t at)
{
    emit->emitted = 1;
    emit->type = type;
    emit->reason = reason;
    emit->cause = *cause;
    emit->occurred_at_ms = at;
}

static void expired_cause(sd_origin_t *cause, const char *event_id)
{
    *cause = (sd_origin_t){.event_id = event_id};
}

/* After a state change caused by `origin` with `reason`: publish whatever
 * changed in what clients see. */
static void settle(sd_state_t *st, sd_reason_t reason, const sd_origin_t *origin,
                   sd_state_clock_t clock, sd_emit_t *emit)
{
    int visible = sd_state_visible(st, clock);
    int64_t version = st->version;
    if (st->live && !visible) {
        st->live = 0;
        st->version++;
        if (st->removed) {
            emit_change(emit, SD_CHANGE_REMOVED, st->removed_reason, &st->removed_by,
                        st->removed_by.at_ms);
        } else {
            sd_origin_t cause;
            expired_cause(&cause, origin->event_id);
            emit_change(emit, SD_CHANGE_EXPIRED, SD_REASON_TTL, &cause,
                        sd_state_updated_at(st) + clock.ttl_ms);
        }
    } else if (visible) {
        /* The first published change of a session is always its creation. */
        int creation = reason == SD_REASON_TASK_CREATED || st->version == 0;
        st->live = 1;
        st->version++;
        emit_change(emit, creation ? SD_CHANGE_CREATED : SD_CHANGE_STATUS_CHANGED,
                    creation ? SD_REASON_TASK_CREATED : reason, origin, origin->at_ms);
    }
    /* What is published follows what clients see: live is visibility, and
     * the version moves by one exactly when a change is emitted. */
    assert(st->live == visible);
    assert(st->version == version + (emit->emitted ? 1 : 0));
    (void)version;
}

static void remove_state(sd_state_t *st, sd_reason_t reason, const sd_origin_t *by)
{
    st->removed = 1;
    st->removed_reason = reason;
    st->removed_by = *by;
}

static int apply_create(sd_state_t *st, const sd_event_t *ev, const sd_cover_t *cover)
{
    if (st->has_create && sd_state_key_cmp(st->created_at, st->created_by,
                                           ev->occurred_at_ms, ev->event_id) <= 0)
        return 0;
    st->has_create = 1;
    st->created_by = ev->event_id;
    st->created_at = ev->occurred_at_ms;
    st->short_id = ev->short_id;
    st->task_type = ev->task_type;
    st->user_id = ev->user_id;
    st->metadata_json = ev->metadata_json;
    if (ev->task_kind == SD_TASK_SCENARIO_GENERATION && cover && cover->known &&
        ev->occurred_at_ms <= cover->save.at_ms)
        remove_state(st, SD_REASON_SCENARIO_SAVED, &cover->save);
    return 1;
}

static int apply_status(sd_state_t *st, const sd_intent_t *in)
{
    const sd_event_t *ev = in->event;
    if (st->has_status && sd_state_key_cmp(st->status_at, st->status_by,
                                           ev->occurred_at_ms, ev->event_id) >= 0)
        return 0;
    st->has_status = 1;
    st->status = in->status;
    st->status_at = ev->occurred_at_ms;
    st->status_by = ev->event_id;
    return 1;
}

int sd_state_apply(sd_state_t *st, const sd_intent_t *in, const sd_origin_t *origin,
                   const sd_cover_t *cover, sd_state_clock_t clock, sd_emit_t *emit)
{
    memset(emit, 0, sizeof *emit);
    if (in->kind == SD_INTENT_EXPIRE)
        return sd_state_expire(st, clock, origin, emit);
    if (st->removed)
        return 0;
    int changed = 0;
    switch (in->kind) {
    case SD_INTENT_CREATE:
        changed = apply_create(st, in->event, cover);
        break;
    case SD_INTENT_SET_STATUS:
        changed = apply_status(st, in);
        break;
    case SD_INTENT_REMOVE:
        remove_state(st, in->reason, origin);
        changed = 1;
        break;
    case SD_INTENT_IGNORE:
    case SD_INTENT_SAVE:
    case SD_INTENT_EXPIRE:
        return 0;
    }
    if (changed)
        settle(st, in->reason, origin, clock, emit);
    return changed;
}

int sd_state_cover(sd_state_t *st, const sd_origin_t *save, sd_state_clock_t clock,
                   sd_emit_t *emit)
{
    memset(emit, 0, sizeof *emit);
    if (st->removed || !st->has_create || !st->task_type ||
        strcmp(st->task_type, "scenario_generation") != 0 || st->created_at > save->at_ms)
        return 0;
    remove_state(st, SD_REASON_SCENARIO_SAVED, save);
    settle(st, SD_REASON_SCENARIO_SAVED, save, clock, emit);
    assert(!st->live); /* removal is sticky: a covered session is never seen again */
    return 1;
}

int sd_state_expire(sd_state_t *st, sd_state_clock_t clock, const sd_origin_t *by,
                    sd_emit_t *emit)
{
    memset(emit, 0, sizeof *emit);
    if (!st->live || st->removed || sd_state_visible(st, clock))
        return 0;
    assert(st->has_create); /* only a created session was ever live */
    st->live = 0;
    st->version++;
    sd_origin_t cause;
    if (by) {
        cause = *by;
    } else { /* sessiond 0.1's sweeper named the event of the last
              * change, ties going to the status */
        int by_status = st->has_status && st->status_at >= st->created_at;
        expired_cause(&cause, by_status ? st->status_by : st->created_by);
    }
    emit_change(emit, SD_CHANGE_EXPIRED, SD_REASON_TTL, &cause,
                sd_state_updated_at(st) + clock.ttl_ms);
    return 1;
}
