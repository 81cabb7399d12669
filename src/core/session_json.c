#include "sessiond/session_json.h"

#include <jansson.h>

#include "sessiond/timefmt.h"

static json_t *time_json(int64_t ms)
{
    char buf[SD_TIME_BUFSZ];
    sd_time_format(ms, buf);
    return json_string(buf);
}

static json_t *session_object(const sd_session_t *s)
{
    json_t *metadata = s->metadata_json ? json_loads(s->metadata_json, 0, NULL) : NULL;
    return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:o, s:o, s:o}", "task_id", s->task_id,
                     "short_id", s->short_id, "task_type", s->task_type, "user_id", s->user_id,
                     "status", sd_status_name(s->status), "created_at",
                     time_json(s->created_at_ms), "updated_at", time_json(s->updated_at_ms),
                     "metadata", metadata ? metadata : json_null());
}

static char *dump(json_t *root)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

char *sd_sessions_by_short_id_json(const char *short_id, const sd_session_t *sessions,
                                   size_t n, int64_t now_ms)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, session_object(&sessions[i]));
    return dump(json_pack("{s:s, s:o, s:I, s:o}", "short_id", short_id, "sessions", list,
                          "total_sessions", (json_int_t)n, "timestamp", time_json(now_ms)));
}

char *sd_session_by_task_id_json(const sd_session_t *session, int64_t now_ms)
{
    return dump(json_pack("{s:s, s:o, s:o}", "task_id", session->task_id, "session",
                          session_object(session), "timestamp", time_json(now_ms)));
}

char *sd_error_json(const char *message, const char *detail, int64_t now_ms)
{
    return dump(json_pack("{s:s, s:s?, s:o}", "error", message, "detail", detail,
                          "timestamp", time_json(now_ms)));
}
