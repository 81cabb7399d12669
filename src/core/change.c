#include "sessiond/change.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

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
    static const char hex[] = "0123456789abcdef";
    const char *type_name = sd_change_type_name(type);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    /* NUL separators keep ("ab","c") and ("a","bc") apart. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, event_id, strlen(event_id) + 1) &&
             EVP_DigestUpdate(ctx, task_id, strlen(task_id) + 1) &&
             EVP_DigestUpdate(ctx, type_name, strlen(type_name)) &&
             EVP_DigestFinal_ex(ctx, digest, &digest_len);
    EVP_MD_CTX_free(ctx);
    if (!ok || digest_len < 16)
        return sd_error_set(err, SD_ERR_FATAL, "",
                            "SHA-256 unavailable from libcrypto: cannot derive change ids");
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xF];
    }
    out[32] = '\0';
    return SD_OK;
}

static json_t *time_json(int64_t ms)
{
    char buf[SD_TIME_BUFSZ];
    sd_time_format(ms, buf);
    return json_string(buf);
}

static json_t *nullable_string(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *session_json(const sd_session_t *s)
{
    json_t *metadata = json_null();
    if (s->metadata_json) {
        metadata = json_loads(s->metadata_json, 0, NULL);
        if (!metadata)
            return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o}",
                     "task_id", s->task_id, "short_id", s->short_id,
                     "task_type", s->task_type, "user_id",
                     nullable_string(s->user_id), "metadata", metadata,
                     "status", sd_status_name(s->status), "created_at",
                     time_json(s->created_at_ms), "updated_at",
                     time_json(s->updated_at_ms));
}

static json_t *cause_json(const sd_cause_t *c)
{
    if (!c->topic)
        return json_pack("{s:s, s:n, s:n, s:n}", "event_id", c->event_id,
                         "topic", "partition", "offset");
    return json_pack("{s:s, s:s, s:i, s:I}", "event_id", c->event_id, "topic",
                     c->topic, "partition", (int)c->partition, "offset",
                     (json_int_t)c->offset);
}

sd_err_t sd_change_to_json(const sd_change_t *c, char **out, size_t *out_len,
                           sd_error_t *err)
{
    char change_id[SD_CHANGE_ID_BUFSZ];
    sd_err_t rc = sd_change_id(c->cause.event_id, c->session.task_id, c->type,
                               change_id, err);
    if (rc != SD_OK)
        return rc;

    json_t *session = session_json(&c->session);
    json_t *cause = cause_json(&c->cause);
    json_t *root = NULL;
    if (session && cause)
        root = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:O, s:O}", "schema",
                         SD_CHANGE_SCHEMA, "change_id", change_id,
                         "change_type", sd_change_type_name(c->type), "reason",
                         sd_reason_name(c->reason), "version",
                         (json_int_t)c->version, "occurred_at",
                         time_json(c->occurred_at_ms), "session", session,
                         "cause", cause);
    json_decref(session);
    json_decref(cause);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "cannot serialise the change of task %s: a field "
                            "is missing or metadata is not JSON",
                            c->session.task_id ? c->session.task_id : "(none)");
    *out = text;
    *out_len = strlen(text);
    return SD_OK;
}
