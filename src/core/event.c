#include "sessiond/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/timefmt.h"

static const char *const event_type_names[SD_EVENT_TYPE_COUNT] = {
    "task.created", "task.completed", "task.failed",
    "task.cancelled", "scenario.saved", "session.delete_requested",
};

static const char *const task_type_names[SD_TASK_TYPE_COUNT] = {
    "", "image_analysis", "scenario_generation", "video_generation",
    "finalize_short", "save_scenario", "content_analysis", "data_extraction",
    "scraping", "other",
};

const char *sd_event_type_name(sd_event_type_t type)
{
    return (unsigned)type < SD_EVENT_TYPE_COUNT ? event_type_names[type] : "?";
}

int sd_event_type_from_name(const char *name, sd_event_type_t *out)
{
    for (int i = 0; i < SD_EVENT_TYPE_COUNT; i++)
        if (strcmp(name, event_type_names[i]) == 0) {
            *out = (sd_event_type_t)i;
            return 0;
        }
    return -1;
}

sd_task_type_t sd_task_type_from_name(const char *name)
{
    if (!name)
        return SD_TASK_NONE;
    for (int i = SD_TASK_NONE + 1; i < SD_TASK_OTHER; i++)
        if (strcmp(name, task_type_names[i]) == 0)
            return (sd_task_type_t)i;
    return SD_TASK_OTHER;
}

const char *sd_task_type_name(sd_task_type_t kind)
{
    return (unsigned)kind < SD_TASK_TYPE_COUNT ? task_type_names[kind] : "?";
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* A string field as found in the message: NULL value when absent or null. */
typedef struct field {
    const char *value;
    size_t len;
} field_t;

/* JSON null counts as absent everywhere, so producers that serialise unset
 * optionals as null are accepted. */
static json_t *lookup(json_t *root, const char *name)
{
    json_t *v = json_object_get(root, name);
    return json_is_null(v) ? NULL : v;
}

static sd_err_t string_field(json_t *root, const char *name, int required,
                             size_t min_chars, size_t max_chars, field_t *out,
                             sd_error_t *err)
{
    json_t *v = lookup(root, name);
    out->value = NULL;
    out->len = 0;
    if (!v)
        return required ? sd_error_set(err, SD_ERR_INVALID, name, "is required")
                        : SD_OK;
    if (!json_is_string(v))
        return sd_error_set(err, SD_ERR_INVALID, name,
                            "must be a string (got %s)", json_type_name(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    size_t chars = utf8_chars(s, len);
    if (chars < min_chars)
        return sd_error_set(err, SD_ERR_INVALID, name, "must not be empty");
    if (chars > max_chars)
        return sd_error_set(err, SD_ERR_INVALID, name,
                            "longer than %zu characters (got %zu)", max_chars,
                            chars);
    out->value = s;
    out->len = len;
    return SD_OK;
}

static int is_task_event(sd_event_type_t type)
{
    return type <= SD_EVENT_TASK_CANCELLED;
}

/* Copies a field into the event's storage and returns where it landed. */
static const char *keep(char **cursor, const field_t *f)
{
    if (!f->value)
        return NULL;
    char *at = *cursor;
    memcpy(at, f->value, f->len);
    at[f->len] = '\0';
    *cursor += f->len + 1;
    return at;
}

static sd_err_t validate(json_t *root, sd_event_t *ev, sd_error_t *err)
{
    field_t schema, event_id, event_type, occurred_at, task_id, task_type,
        short_id, user_id;
    sd_err_t rc;

    if ((rc = string_field(root, "schema", 0, 0, SIZE_MAX, &schema, err)))
        return rc;
    if (schema.value && strcmp(schema.value, SD_EVENT_SCHEMA) != 0)
        return sd_error_set(err, SD_ERR_INVALID, "schema",
                            "unsupported value \"%.64s\" (expected \"" SD_EVENT_SCHEMA "\")",
                            schema.value);
    if ((rc = string_field(root, "event_id", 1, 1, SD_EVENT_MAX_ID_CHARS,
                           &event_id, err)))
        return rc;
    if ((rc = string_field(root, "event_type", 1, 0, SIZE_MAX, &event_type, err)))
        return rc;
    if (sd_event_type_from_name(event_type.value, &ev->type) != 0)
        return sd_error_set(err, SD_ERR_INVALID, "event_type",
                            "unknown value \"%.64s\" (expected one of task.created, "
                            "task.completed, task.failed, task.cancelled, "
                            "scenario.saved, session.delete_requested)",
                            event_type.value);
    if ((rc = string_field(root, "occurred_at", 1, 0, SIZE_MAX, &occurred_at, err)))
        return rc;
    if (sd_time_parse_rfc3339(occurred_at.value, occurred_at.len,
                              &ev->occurred_at_ms, err) != SD_OK) {
        if (err)
            snprintf(err->field, sizeof err->field, "occurred_at");
        return SD_ERR_INVALID;
    }
    if ((rc = string_field(root, "task_id", ev->type != SD_EVENT_SCENARIO_SAVED,
                           1, SD_EVENT_MAX_ID_CHARS, &task_id, err)))
        return rc;
    if ((rc = string_field(root, "task_type", is_task_event(ev->type), 1,
                           SD_EVENT_MAX_ID_CHARS, &task_type, err)))
        return rc;
    if ((rc = string_field(root, "short_id", ev->type == SD_EVENT_SCENARIO_SAVED,
                           1, SD_EVENT_MAX_ID_CHARS, &short_id, err)))
        return rc;
    if ((rc = string_field(root, "user_id", 0, 0, SD_EVENT_MAX_USER_CHARS,
                           &user_id, err)))
        return rc;

    json_t *metadata = lookup(root, "metadata");
    size_t metadata_len = 0;
    if (metadata) {
        if (!json_is_object(metadata))
            return sd_error_set(err, SD_ERR_INVALID, "metadata",
                                "must be an object (got %s)",
                                json_type_name(metadata));
        metadata_len = json_dumpb(metadata, NULL, 0, JSON_COMPACT);
        if (metadata_len > SD_EVENT_MAX_METADATA_BYTES)
            return sd_error_set(err, SD_ERR_INVALID, "metadata",
                                "over 16 KiB (%zu bytes as compact JSON)",
                                metadata_len);
    }

    /* One allocation holds every string the event keeps. */
    const field_t *kept[] = {&event_id, &task_id, &task_type, &short_id, &user_id};
    size_t total = metadata ? metadata_len + 1 : 0;
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        total += kept[i]->value ? kept[i]->len + 1 : 0;
    char *cursor = ev->storage = malloc(total ? total : 1);
    if (!ev->storage)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory parsing an event");
    ev->event_id = keep(&cursor, &event_id);
    ev->task_id = keep(&cursor, &task_id);
    ev->task_type = keep(&cursor, &task_type);
    ev->short_id = keep(&cursor, &short_id);
    ev->user_id = keep(&cursor, &user_id);
    ev->task_kind = sd_task_type_from_name(ev->task_type);
    if (metadata) {
        json_dumpb(metadata, cursor, metadata_len, JSON_COMPACT);
        cursor[metadata_len] = '\0';
        ev->metadata_json = cursor;
    }
    return SD_OK;
}

/* jansson quotes the offending input; escape control bytes so the reason
 * is safe in a terminal, a log line and a Kafka header. */
static void printable(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 5 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

sd_err_t sd_event_parse(const char *buf, size_t len, sd_event_t *ev,
                        sd_error_t *err)
{
    memset(ev, 0, sizeof *ev);
    if (len > SD_EVENT_MAX_BYTES)
        return sd_error_set(err, SD_ERR_INVALID, "", "over 1 MiB (%zu bytes)", len);

    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &jerr);
    if (!root) {
        char text[sizeof jerr.text * 4];
        printable(jerr.text, text, sizeof text);
        return sd_error_set(err, SD_ERR_INVALID, "",
                            "not JSON: %s (line %d, column %d)", text, jerr.line,
                            jerr.column);
    }
    sd_err_t rc;
    if (!json_is_object(root))
        rc = sd_error_set(err, SD_ERR_INVALID, "", "not an object (got %s)",
                          json_type_name(root));
    else
        rc = validate(root, ev, err);
    json_decref(root);
    if (rc != SD_OK)
        sd_event_clear(ev);
    return rc;
}

void sd_event_clear(sd_event_t *ev)
{
    free(ev->storage);
    memset(ev, 0, sizeof *ev);
}
