/* Task events (schemas/task-event.v1.json): parsing and validation. */
#ifndef SESSIOND_EVENT_H
#define SESSIOND_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/error.h"

#define SD_EVENT_MAX_BYTES    (1024 * 1024) /* a whole message */
#define SD_EVENT_MAX_ID_CHARS 128           /* event_id, task_id, task_type, short_id */
#define SD_EVENT_MAX_USER_CHARS 256         /* user_id */
#define SD_EVENT_MAX_METADATA_BYTES (16 * 1024) /* metadata as compact JSON */
#define SD_EVENT_SCHEMA "task-event/v1"

typedef enum sd_event_type {
    SD_EVENT_TASK_CREATED,
    SD_EVENT_TASK_COMPLETED,
    SD_EVENT_TASK_FAILED,
    SD_EVENT_TASK_CANCELLED,
    SD_EVENT_SCENARIO_SAVED,
    SD_EVENT_SESSION_DELETE_REQUESTED,
    SD_EVENT_SESSION_EXPIRY_DUE, /* sessiond's sweeper publishes it (expiry_event.h) */
} sd_event_type_t;
#define SD_EVENT_TYPE_COUNT 7

/* The task types SPEC §2 names.  Any other string is accepted as
 * SD_TASK_OTHER (forward compatibility) and behaves as an ordinary type. */
typedef enum sd_task_type {
    SD_TASK_NONE, /* the event has no task_type */
    SD_TASK_IMAGE_ANALYSIS,
    SD_TASK_SCENARIO_GENERATION,
    SD_TASK_VIDEO_GENERATION,
    SD_TASK_FINALIZE_SHORT,
    SD_TASK_SAVE_SCENARIO,
    SD_TASK_CONTENT_ANALYSIS,
    SD_TASK_DATA_EXTRACTION,
    SD_TASK_SCRAPING,
    SD_TASK_OTHER,
} sd_task_type_t;
#define SD_TASK_TYPE_COUNT 10

/* A validated event.  Every string points into `storage`, which the event
 * owns; absent optional fields (or JSON null) are NULL. */
typedef struct sd_event {
    sd_event_type_t type;
    int64_t occurred_at_ms; /* UTC */
    const char *event_id;
    const char *task_id;
    const char *task_type; /* as given, also when unknown */
    sd_task_type_t task_kind;
    const char *short_id;
    const char *user_id;
    const char *metadata_json; /* compact JSON object text */
    char *storage;
} sd_event_t;

/* Parses and validates one message of len bytes (need not be
 * NUL-terminated).  On SD_ERR_INVALID, err->field names the field ("" for
 * the message as a whole) and err->message the reason; ev is left empty.
 * On success the caller owns ev and releases it with sd_event_clear(). */
sd_err_t sd_event_parse(const char *buf, size_t len, sd_event_t *ev,
                        sd_error_t *err);

void sd_event_clear(sd_event_t *ev);

const char *sd_event_type_name(sd_event_type_t type);
/* Returns 0 and sets *out when name is a known event_type. */
int sd_event_type_from_name(const char *name, sd_event_type_t *out);

/* Known names map to their kind, NULL to SD_TASK_NONE, anything else to
 * SD_TASK_OTHER. */
sd_task_type_t sd_task_type_from_name(const char *name);
/* The canonical name; "other" for SD_TASK_OTHER, "" for SD_TASK_NONE. */
const char *sd_task_type_name(sd_task_type_t kind);

#endif
