/* Session changes (schemas/session-change.v1.json): ids and serialisation. */
#ifndef SESSIOND_CHANGE_H
#define SESSIOND_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/error.h"
#include "sessiond/rules.h"

#define SD_CHANGE_SCHEMA "session-change/v1"
#define SD_CHANGE_ID_BUFSZ 33 /* 32 hex digits + NUL */

typedef enum sd_change_type {
    SD_CHANGE_CREATED,
    SD_CHANGE_STATUS_CHANGED,
    SD_CHANGE_REMOVED,
    SD_CHANGE_EXPIRED,
} sd_change_type_t;

/* A session as clients see it.  Strings are borrowed from whoever filled the
 * struct; user_id and metadata_json may be NULL. */
typedef struct sd_session {
    const char *task_id;
    const char *short_id;
    const char *task_type;
    const char *user_id;
    const char *metadata_json;
    sd_status_t status;
    int64_t created_at_ms;
    int64_t updated_at_ms;
} sd_session_t;

/* Where the cause was read from; topic NULL when unknown (expiry). */
typedef struct sd_cause {
    const char *event_id;
    const char *topic;
    int32_t partition;
    int64_t offset;
} sd_cause_t;

typedef struct sd_change {
    sd_change_type_t type;
    sd_reason_t reason;
    int64_t version;        /* 1 = created; grows by one per change */
    int64_t occurred_at_ms; /* event time of the cause */
    sd_session_t session;   /* the session after the change (before, when removed) */
    sd_cause_t cause;
} sd_change_t;

/* change_id = lowercase hex of the first 16 bytes of
 * SHA-256(event_id 0x00 task_id 0x00 change_type_name). */
sd_err_t sd_change_id(const char *event_id, const char *task_id,
                      sd_change_type_t type, char out[SD_CHANGE_ID_BUFSZ],
                      sd_error_t *err);

/* Serialises to one line of compact JSON, byte for byte what jansson's
 * JSON_COMPACT would write.  session.metadata_json is written as it is: it
 * must be JSON text (every store hands back what jansson wrote).  *out is
 * malloc'd and owned by the caller; *out_len excludes the terminating NUL. */
sd_err_t sd_change_to_json(const sd_change_t *change, char **out,
                           size_t *out_len, sd_error_t *err);

const char *sd_change_type_name(sd_change_type_t type);
/* Returns 0, or -1 when name is NULL or unknown. */
int sd_change_type_from_name(const char *name, sd_change_type_t *out);



/* Parses what sd_change_to_json wrote.  Strings in *out point into
 * *storage, which the caller frees. */
sd_err_t sd_change_from_json(const char *json, size_t len, sd_change_t *out,
                             char **storage, sd_error_t *err);
#endif
