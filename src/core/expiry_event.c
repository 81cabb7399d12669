#include "sessiond/expiry_event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sessiond/event.h"
#include "sessiond/json_write.h"

sd_err_t sd_expiry_event_id(const char *task_id, int64_t version,
                            char out[SD_EXPIRY_EVENT_ID_BUFSZ], sd_error_t *err)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, version);
    const char *parts[] = {"session.expiry_due", task_id, v};
    memcpy(out, SD_EXPIRY_EVENT_ID_PREFIX, sizeof SD_EXPIRY_EVENT_ID_PREFIX - 1);
    return sd_digest_hex(parts, 3, out + sizeof SD_EXPIRY_EVENT_ID_PREFIX - 1, err);
}

sd_err_t sd_expiry_event_json(const sd_expiry_due_t *due, int64_t ttl_ms, char **out,
                              size_t *len, sd_error_t *err)
{
    char id[SD_EXPIRY_EVENT_ID_BUFSZ];
    sd_err_t rc = sd_expiry_event_id(due->task_id, due->version, id, err);
    if (rc != SD_OK)
        return rc;
    sd_jbuf_t b = {0};
    sd_jbuf_lit(&b, "{\"schema\":\"" SD_EVENT_SCHEMA "\",\"event_id\":\"");
    sd_jbuf_lit(&b, id);
    sd_jbuf_lit(&b, "\",\"event_type\":\"session.expiry_due\",\"occurred_at\":");
    sd_jbuf_time(&b, due->updated_at_ms + ttl_ms);
    sd_jbuf_lit(&b, ",\"task_id\":");
    sd_jbuf_string(&b, due->task_id);
    sd_jbuf_lit(&b, ",\"session_version\":");
    sd_jbuf_int(&b, due->version);
    sd_jbuf_lit(&b, "}");
    if (!(*out = sd_jbuf_take(&b, len)))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory writing an expiry event");
    return SD_OK;
}
