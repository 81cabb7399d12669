#include "sessiond/change.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/digest.h"
#include "sessiond/json_write.h"
#include "sessiond/timefmt.h"

const char *sd_change_type_name(sd_change_type_t type)
{
    switch (type) {
    case SD_CHANGE_CREATED: return "session.created";
    case SD_CHANGE_STATUS_CHANGED: return "session.status_changed";
    case SD_CHANGE_REMOVED: return "session.removed";
    case SD_CHANGE_EXPIRED: return "session.expired";
    }
    return "?";
}

sd_err_t sd_change_id(const char *event_id, const char *task_id,
                      sd_change_type_t type, char out[SD_CHANGE_ID_BUFSZ],
                      sd_error_t *err)
{
    const char *parts[] = {event_id, task_id, sd_change_type_name(type)};
    return sd_digest_hex(parts, 3, out, err);
}

sd_err_t sd_change_to_json(const sd_change_t *c, char **out, size_t *out_len,
                           sd_error_t *err)
{
    const sd_session_t *s = &c->session;
    if (!c->cause.event_id || !s->task_id || !s->short_id || !s->task_type)
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "cannot serialise the change of task %s: a field is missing",
                            s->task_id ? s->task_id : "(none)");
    char change_id[SD_CHANGE_ID_BUFSZ];
    sd_err_t rc = sd_change_id(c->cause.event_id, s->task_id, c->type, change_id, err);
    if (rc != SD_OK)
        return rc;

    sd_jbuf_t b = {0};
    sd_jbuf_lit(&b, "{\"schema\":\"" SD_CHANGE_SCHEMA "\",\"change_id\":\"");
    sd_jbuf_lit(&b, change_id);
    sd_jbuf_lit(&b, "\",\"change_type\":\"");
    sd_jbuf_lit(&b, sd_change_type_name(c->type));
    sd_jbuf_lit(&b, "\",\"reason\":\"");
    sd_jbuf_lit(&b, sd_reason_name(c->reason));
    sd_jbuf_lit(&b, "\",\"version\":");
    sd_jbuf_int(&b, c->version);
    sd_jbuf_lit(&b, ",\"occurred_at\":");
    sd_jbuf_time(&b, c->occurred_at_ms);
    sd_jbuf_lit(&b, ",\"session\":{\"task_id\":");
    sd_jbuf_string(&b, s->task_id);
    sd_jbuf_lit(&b, ",\"short_id\":");
    sd_jbuf_string(&b, s->short_id);
    sd_jbuf_lit(&b, ",\"task_type\":");
    sd_jbuf_string(&b, s->task_type);
    sd_jbuf_lit(&b, ",\"user_id\":");
    sd_jbuf_string(&b, s->user_id);
    sd_jbuf_lit(&b, ",\"metadata\":");
    sd_jbuf_lit(&b, s->metadata_json ? s->metadata_json : "null");
    sd_jbuf_lit(&b, ",\"status\":\"");
    sd_jbuf_lit(&b, sd_status_name(s->status));
    sd_jbuf_lit(&b, "\",\"created_at\":");
    sd_jbuf_time(&b, s->created_at_ms);
    sd_jbuf_lit(&b, ",\"updated_at\":");
    sd_jbuf_time(&b, s->updated_at_ms);
    sd_jbuf_lit(&b, "},\"cause\":{\"event_id\":");
    sd_jbuf_string(&b, c->cause.event_id);
    if (c->cause.topic) {
        sd_jbuf_lit(&b, ",\"topic\":");
        sd_jbuf_string(&b, c->cause.topic);
        sd_jbuf_lit(&b, ",\"partition\":");
        sd_jbuf_int(&b, c->cause.partition);
        sd_jbuf_lit(&b, ",\"offset\":");
        sd_jbuf_int(&b, c->cause.offset);
        sd_jbuf_lit(&b, "}}");
    } else {
        sd_jbuf_lit(&b, ",\"topic\":null,\"partition\":null,\"offset\":null}}");
    }
    if (!(*out = sd_jbuf_take(&b, out_len)))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory serialising a change");
    return SD_OK;
}

int sd_change_type_from_name(const char *name, sd_change_type_t *out)
{
    for (int t = SD_CHANGE_CREATED; t <= SD_CHANGE_EXPIRED; t++)
        if (name && strcmp(name, sd_change_type_name((sd_change_type_t)t)) == 0) {
            *out = (sd_change_type_t)t;
            return 0;
        }
    return -1;
}

static int time_from(const char *s, int64_t *out)
{
    return sd_time_parse_rfc3339(s, strlen(s), out, NULL) == SD_OK ? 0 : -1;
}

/* Appends s to the storage being built; returns its offset or -1 for NULL. */
static long stash(char **buf, size_t *used, size_t *cap, const char *s)
{
    if (!s)
        return -1;
    size_t n = strlen(s) + 1;
    if (*used + n > *cap) {
        size_t ncap = (*cap + n) * 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -2;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *used, s, n);
    *used += n;
    return (long)(*used - n);
}

sd_err_t sd_change_from_json(const char *json, size_t len, sd_change_t *out,
                             char **storage, sd_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    *storage = NULL;
    if (!root)
        return sd_error_set(err, SD_ERR_INVALID, "", "change is not JSON: %s", jerr.text);

    const char *type = NULL, *reason = NULL, *occurred = NULL, *task_id = NULL,
               *short_id = NULL, *task_type = NULL, *status = NULL, *event_id = NULL,
               *created = NULL, *updated = NULL;
    json_t *user_id = NULL, *metadata = NULL, *topic = NULL, *partition = NULL,
           *offset = NULL;
    json_int_t version = 0;
    memset(out, 0, sizeof *out);
    int bad = json_unpack(root, "{s:s, s:s, s:I, s:s, s:{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s}, s:{s:s, s:o, s:o, s:o}}",
                          "change_type", &type, "reason", &reason, "version", &version,
                          "occurred_at", &occurred, "session", "task_id", &task_id,
                          "short_id", &short_id, "task_type", &task_type, "user_id",
                          &user_id, "metadata", &metadata, "status", &status,
                          "created_at", &created, "updated_at", &updated, "cause",
                          "event_id", &event_id, "topic", &topic, "partition", &partition,
                          "offset", &offset);
    if (bad || sd_change_type_from_name(type, &out->type) ||
        sd_reason_from_name(reason, &out->reason) ||
        sd_status_from_name(status, &out->session.status) ||
        time_from(occurred, &out->occurred_at_ms) ||
        time_from(created, &out->session.created_at_ms) ||
        time_from(updated, &out->session.updated_at_ms)) {
        json_decref(root);
        return sd_error_set(err, SD_ERR_INVALID, "", "not a session-change/v1 message");
    }
    out->version = version;
    out->cause.partition = (int32_t)json_integer_value(partition);
    out->cause.offset = json_integer_value(offset);

    int has_metadata = json_is_object(metadata);
    char *metadata_text = has_metadata ? json_dumps(metadata, JSON_COMPACT) : NULL;
    char *buf = NULL;
    size_t used = 0, cap = 0;
    long at[7] = {
        stash(&buf, &used, &cap, task_id),
        stash(&buf, &used, &cap, short_id),
        stash(&buf, &used, &cap, task_type),
        stash(&buf, &used, &cap, json_string_value(user_id)),
        stash(&buf, &used, &cap, metadata_text),
        stash(&buf, &used, &cap, event_id),
        stash(&buf, &used, &cap, json_string_value(topic)),
    };
    int out_of_memory = has_metadata && !metadata_text;
    for (int i = 0; i < 7; i++)
        out_of_memory |= at[i] == -2;
    free(metadata_text);
    json_decref(root);
    if (out_of_memory) {
        free(buf);
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory parsing a change");
    }
    const char **fields[7] = {&out->session.task_id, &out->session.short_id,
                              &out->session.task_type, &out->session.user_id,
                              &out->session.metadata_json, &out->cause.event_id,
                              &out->cause.topic};
    for (int i = 0; i < 7; i++)
        *fields[i] = at[i] >= 0 ? buf + at[i] : NULL;
    *storage = buf;
    return SD_OK;
}
