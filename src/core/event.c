#include "sessiond/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/json_scan.h"
#include "sessiond/timefmt.h"

static const char *const event_type_names[SD_EVENT_TYPE_COUNT] = {
    "task.created", "task.completed", "task.failed",
    "task.cancelled", "scenario.saved", "session.delete_requested",
    "session.expiry_due",
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

/* Index of the name of len bytes (not NUL-terminated) in names, or -1. */
static int name_index(const char *const *names, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(name, names[i], len) == 0)
            return i;
    return -1;
}

static int event_type_from(const char *name, size_t len, sd_event_type_t *out)
{
    int i = name_index(event_type_names, SD_EVENT_TYPE_COUNT, name, len);
    if (i < 0)
        return -1;
    *out = (sd_event_type_t)i;
    return 0;
}

int sd_event_type_from_name(const char *name, sd_event_type_t *out)
{
    return event_type_from(name, strlen(name), out);
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

/* The fields sessiond reads, in the order they are checked: the first
 * problem in this order is the one reported. */
typedef enum field_id {
    F_SCHEMA, F_EVENT_ID, F_EVENT_TYPE, F_OCCURRED_AT, F_TASK_ID, F_TASK_TYPE,
    F_SHORT_ID, F_USER_ID, F_METADATA, F_COUNT
} field_id_t;

static const char *const field_names[F_COUNT] = {
    "schema", "event_id", "event_type", "occurred_at", "task_id", "task_type",
    "short_id", "user_id", "metadata",
};

/* A field as found in the message, from either reader.  JSON null counts
 * as absent everywhere, so producers that serialise unset optionals as
 * null are accepted. */
typedef struct field {
    const char *type;  /* NULL when absent or null, else the JSON type's name */
    const char *value; /* strings: the value; metadata: its compact JSON */
    size_t len;
} field_t;

typedef struct fields {
    field_t f[F_COUNT];
    char *owned; /* metadata text dumped by jansson */
} fields_t;

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

static sd_err_t string_field(const fields_t *in, field_id_t id, int required,
                             size_t min_chars, size_t max_chars, sd_error_t *err)
{
    const field_t *f = &in->f[id];
    const char *name = field_names[id];
    if (!f->type)
        return required ? sd_error_set(err, SD_ERR_INVALID, name, "is required")
                        : SD_OK;
    if (strcmp(f->type, "string") != 0)
        return sd_error_set(err, SD_ERR_INVALID, name,
                            "must be a string (got %s)", f->type);
    size_t chars = utf8_chars(f->value, f->len);
    if (chars < min_chars)
        return sd_error_set(err, SD_ERR_INVALID, name, "must not be empty");
    if (chars > max_chars)
        return sd_error_set(err, SD_ERR_INVALID, name,
                            "longer than %zu characters (got %zu)", max_chars,
                            chars);
    return SD_OK;
}

static int is_task_event(sd_event_type_t type)
{
    return type <= SD_EVENT_TASK_CANCELLED;
}

/* Copies a field into the event's storage and returns where it landed. */
static const char *keep(char **cursor, const field_t *f)
{
    if (!f->type)
        return NULL;
    char *at = *cursor;
    memcpy(at, f->value, f->len);
    at[f->len] = '\0';
    *cursor += f->len + 1;
    return at;
}

static sd_err_t validate(const fields_t *in, sd_event_t *ev, sd_error_t *err)
{
    const field_t *f = in->f;
    sd_err_t rc;

    if ((rc = string_field(in, F_SCHEMA, 0, 0, SIZE_MAX, err)))
        return rc;
    if (f[F_SCHEMA].type && (f[F_SCHEMA].len != strlen(SD_EVENT_SCHEMA) ||
                             memcmp(f[F_SCHEMA].value, SD_EVENT_SCHEMA, f[F_SCHEMA].len)))
        return sd_error_set(err, SD_ERR_INVALID, "schema",
                            "unsupported value \"%.*s\" (expected \"" SD_EVENT_SCHEMA "\")",
                            (int)(f[F_SCHEMA].len < 64 ? f[F_SCHEMA].len : 64),
                            f[F_SCHEMA].value);
    if ((rc = string_field(in, F_EVENT_ID, 1, 1, SD_EVENT_MAX_ID_CHARS, err)))
        return rc;
    if ((rc = string_field(in, F_EVENT_TYPE, 1, 0, SIZE_MAX, err)))
        return rc;
    if (event_type_from(f[F_EVENT_TYPE].value, f[F_EVENT_TYPE].len, &ev->type) != 0)
        return sd_error_set(err, SD_ERR_INVALID, "event_type",
                            "unknown value \"%.*s\" (expected one of task.created, "
                            "task.completed, task.failed, task.cancelled, "
                            "scenario.saved, session.delete_requested, "
                            "session.expiry_due)",
                            (int)(f[F_EVENT_TYPE].len < 64 ? f[F_EVENT_TYPE].len : 64),
                            f[F_EVENT_TYPE].value);
    if ((rc = string_field(in, F_OCCURRED_AT, 1, 0, SIZE_MAX, err)))
        return rc;
    if (sd_time_parse_rfc3339(f[F_OCCURRED_AT].value, f[F_OCCURRED_AT].len,
                              &ev->occurred_at_ms, err) != SD_OK) {
        if (err)
            snprintf(err->field, sizeof err->field, "occurred_at");
        return SD_ERR_INVALID;
    }
    if ((rc = string_field(in, F_TASK_ID, ev->type != SD_EVENT_SCENARIO_SAVED, 1,
                           SD_EVENT_MAX_ID_CHARS, err)) ||
        (rc = string_field(in, F_TASK_TYPE, is_task_event(ev->type), 1,
                           SD_EVENT_MAX_ID_CHARS, err)) ||
        (rc = string_field(in, F_SHORT_ID, ev->type == SD_EVENT_SCENARIO_SAVED, 1,
                           SD_EVENT_MAX_ID_CHARS, err)) ||
        (rc = string_field(in, F_USER_ID, 0, 0, SD_EVENT_MAX_USER_CHARS, err)))
        return rc;

    const field_t *metadata = &f[F_METADATA];
    if (metadata->type) {
        if (strcmp(metadata->type, "object") != 0)
            return sd_error_set(err, SD_ERR_INVALID, "metadata",
                                "must be an object (got %s)", metadata->type);
        if (metadata->len > SD_EVENT_MAX_METADATA_BYTES)
            return sd_error_set(err, SD_ERR_INVALID, "metadata",
                                "over 16 KiB (%zu bytes as compact JSON)",
                                metadata->len);
    }

    /* One allocation holds every string the event keeps. */
    size_t total = 0;
    for (int i = F_EVENT_ID; i < F_COUNT; i++)
        total += f[i].type && i != F_EVENT_TYPE && i != F_OCCURRED_AT ? f[i].len + 1 : 0;
    char *cursor = ev->storage = malloc(total ? total : 1);
    if (!ev->storage)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory parsing an event");
    ev->event_id = keep(&cursor, &f[F_EVENT_ID]);
    ev->task_id = keep(&cursor, &f[F_TASK_ID]);
    ev->task_type = keep(&cursor, &f[F_TASK_TYPE]);
    ev->short_id = keep(&cursor, &f[F_SHORT_ID]);
    ev->user_id = keep(&cursor, &f[F_USER_ID]);
    ev->metadata_json = keep(&cursor, metadata);
    ev->task_kind = sd_task_type_from_name(ev->task_type);
    return SD_OK;
}

/* ---- the fast reader ---- */

typedef struct scanned {
    fields_t *out;
    sd_jvalue_t metadata_value; /* its blanks are removed once the scan vouched */
} scanned_t;

static const char *jkind_name(sd_jkind_t kind)
{
    switch (kind) {
    case SD_JSTRING: return "string";
    case SD_JNUMBER: return "number";
    case SD_JOBJECT: return "object";
    case SD_JARRAY: return "array";
    case SD_JTRUE:
    case SD_JFALSE: return "boolean";
    case SD_JNULL: return "null";
    }
    return "unknown";
}

static int on_member(void *arg, const char *key, size_t key_len, const sd_jvalue_t *v)
{
    scanned_t *sc = arg;
    int i = name_index(field_names, F_COUNT, key, key_len);
    if (i < 0 || v->kind == SD_JNULL)
        return 0; /* unknown fields are ignored (forward compatibility) */
    field_t *f = &sc->out->f[i];
    f->type = jkind_name(v->kind);
    f->value = v->text;
    f->len = v->len;
    if (i == F_METADATA && v->kind == SD_JOBJECT) {
        sc->metadata_value = *v;
        f->len = v->len - v->blanks;
    }
    return 0;
}

/* 1 and *out filled when the fast reader vouches for the message. */
static int read_scanned(const char *buf, size_t len, fields_t *out, sd_error_t *err,
                        sd_err_t *rc)
{
    scanned_t sc = {.out = out};
    if (!sd_json_scan_object(buf, len, on_member, &sc))
        return 0;
    *rc = SD_OK;
    if (sc.metadata_value.blanks) { /* metadata must be kept compact */
        if (!(out->owned = malloc(out->f[F_METADATA].len + 1))) {
            *rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory parsing an event");
            return 1;
        }
        sd_json_copy_compact(&sc.metadata_value, out->owned);
        out->f[F_METADATA].value = out->owned;
    }
    return 1;
}

/* ---- jansson, for everything else ---- */

static sd_err_t read_tree(json_t *root, fields_t *out, sd_error_t *err)
{
    for (int i = 0; i < F_COUNT; i++) {
        json_t *v = json_object_get(root, field_names[i]);
        if (!v || json_is_null(v))
            continue;
        field_t *f = &out->f[i];
        f->type = json_type_name(v);
        if (json_is_string(v)) {
            f->value = json_string_value(v);
            f->len = json_string_length(v);
        } else if (i == F_METADATA && json_is_object(v)) {
            if (!(out->owned = json_dumps(v, JSON_COMPACT)))
                return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory parsing an event");
            f->value = out->owned;
            f->len = strlen(out->owned);
        }
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

    fields_t fields = {0};
    sd_err_t rc;
    json_t *root = NULL;
    if (!read_scanned(buf, len, &fields, err, &rc)) {
        json_error_t jerr;
        root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
            char text[sizeof jerr.text * 4];
            printable(jerr.text, text, sizeof text);
            rc = sd_error_set(err, SD_ERR_INVALID, "", "not JSON: %s (line %d, column %d)",
                              text, jerr.line, jerr.column);
            goto done;
        }
        if (!json_is_object(root)) {
            rc = sd_error_set(err, SD_ERR_INVALID, "", "not an object (got %s)",
                              json_type_name(root));
            goto done;
        }
        rc = read_tree(root, &fields, err);
    }
    if (rc != SD_OK)
        goto done;
    rc = validate(&fields, ev, err);
done:
    free(fields.owned);
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
