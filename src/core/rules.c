/* What each event asks of the store (SPEC §3).  The decision uses only the
 * event itself, so it is the same whatever the store holds and in whatever
 * order events arrive; the store turns intents into changes.
 *
 * A terminal event is judged by its own task_type: only a
 * scenario_generation terminal keeps the session (and sets its status); any
 * other terminal removes it, also when it arrives before the create. */
#include "sessiond/rules.h"

#include <string.h>

static sd_status_t terminal_status(sd_event_type_t type)
{
    switch (type) {
    case SD_EVENT_TASK_COMPLETED: return SD_STATUS_COMPLETED;
    case SD_EVENT_TASK_FAILED: return SD_STATUS_FAILED;
    default: return SD_STATUS_CANCELLED;
    }
}

static sd_reason_t terminal_reason(sd_event_type_t type)
{
    switch (type) {
    case SD_EVENT_TASK_COMPLETED: return SD_REASON_TASK_COMPLETED;
    case SD_EVENT_TASK_FAILED: return SD_REASON_TASK_FAILED;
    default: return SD_REASON_TASK_CANCELLED;
    }
}

sd_intent_t sd_rules_intent(const sd_event_t *ev)
{
    sd_intent_t in = {.kind = SD_INTENT_IGNORE, .event = ev};

    switch (ev->type) {
    case SD_EVENT_TASK_CREATED:
        if (ev->task_kind == SD_TASK_SCRAPING)
            in.ignored = SD_IGNORE_SCRAPING;
        else if (!ev->short_id)
            in.ignored = SD_IGNORE_NO_SHORT_ID;
        else {
            in.kind = SD_INTENT_CREATE;
            in.reason = SD_REASON_TASK_CREATED;
        }
        break;
    case SD_EVENT_TASK_COMPLETED:
    case SD_EVENT_TASK_FAILED:
    case SD_EVENT_TASK_CANCELLED:
        in.reason = terminal_reason(ev->type);
        if (ev->task_kind == SD_TASK_SCRAPING) {
            in.ignored = SD_IGNORE_SCRAPING; /* it never had a session */
        } else if (ev->task_kind == SD_TASK_SCENARIO_GENERATION) {
            in.kind = SD_INTENT_SET_STATUS;
            in.status = terminal_status(ev->type);
        } else {
            in.kind = SD_INTENT_REMOVE;
        }
        break;
    case SD_EVENT_SCENARIO_SAVED:
        in.kind = SD_INTENT_SAVE;
        in.reason = SD_REASON_SCENARIO_SAVED;
        break;
    case SD_EVENT_SESSION_DELETE_REQUESTED:
        in.kind = SD_INTENT_REMOVE;
        in.reason = SD_REASON_MANUAL;
        break;
    case SD_EVENT_SESSION_EXPIRY_DUE:
        in.kind = SD_INTENT_EXPIRE;
        in.reason = SD_REASON_TTL;
        break;
    }
    return in;
}

const char *sd_intent_kind_name(sd_intent_kind_t kind)
{
    switch (kind) {
    case SD_INTENT_IGNORE: return "ignore";
    case SD_INTENT_CREATE: return "create";
    case SD_INTENT_SET_STATUS: return "set_status";
    case SD_INTENT_REMOVE: return "remove";
    case SD_INTENT_SAVE: return "save";
    case SD_INTENT_EXPIRE: return "expire";
    }
    return "?";
}

const char *sd_status_name(sd_status_t status)
{
    switch (status) {
    case SD_STATUS_ACTIVE: return "active";
    case SD_STATUS_COMPLETED: return "completed";
    case SD_STATUS_FAILED: return "failed";
    case SD_STATUS_CANCELLED: return "cancelled";
    }
    return "?";
}

const char *sd_reason_name(sd_reason_t reason)
{
    switch (reason) {
    case SD_REASON_TASK_CREATED: return "task.created";
    case SD_REASON_TASK_COMPLETED: return "task.completed";
    case SD_REASON_TASK_FAILED: return "task.failed";
    case SD_REASON_TASK_CANCELLED: return "task.cancelled";
    case SD_REASON_SCENARIO_SAVED: return "scenario.saved";
    case SD_REASON_MANUAL: return "manual";
    case SD_REASON_TTL: return "ttl";
    }
    return "?";
}

const char *sd_ignore_name(sd_ignore_t ignored)
{
    switch (ignored) {
    case SD_IGNORE_NONE: return "none";
    case SD_IGNORE_NO_SHORT_ID: return "no_short_id";
    case SD_IGNORE_SCRAPING: return "scraping";
    }
    return "?";
}

int sd_status_from_name(const char *name, sd_status_t *out)
{
    for (int st = SD_STATUS_ACTIVE; st <= SD_STATUS_CANCELLED; st++)
        if (name && strcmp(name, sd_status_name((sd_status_t)st)) == 0) {
            *out = (sd_status_t)st;
            return 0;
        }
    return -1;
}

int sd_reason_from_name(const char *name, sd_reason_t *out)
{
    for (int r = SD_REASON_TASK_CREATED; r <= SD_REASON_TTL; r++)
        if (name && strcmp(name, sd_reason_name((sd_reason_t)r)) == 0) {
            *out = (sd_reason_t)r;
            return 0;
        }
    return -1;
}
