/* The expiry event (event_type session.expiry_due): what the sweeper
 * publishes, keyed by task_id to the first input topic, for a live session
 * whose TTL passed.  The member that owns that partition applies it in an
 * ordinary batch (SD_INTENT_EXPIRE), so the session.expired change goes out
 * with that batch's offsets, as every other change does. */
#ifndef SESSIOND_EXPIRY_EVENT_H
#define SESSIOND_EXPIRY_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/digest.h"
#include "sessiond/error.h"

#define SD_EXPIRY_EVENT_ID_PREFIX "expiry-"
#define SD_EXPIRY_EVENT_ID_BUFSZ (sizeof SD_EXPIRY_EVENT_ID_PREFIX - 1 + SD_DIGEST_HEX_BUFSZ)

/* A session the sweeper found due. */
typedef struct sd_expiry_due {
    const char *task_id;
    int64_t version;       /* of the session when found due (>= 1) */
    int64_t updated_at_ms; /* event time of its last change */
} sd_expiry_due_t;

/* "expiry-" and 32 hex digits from (task_id, version): every sweeper that
 * finds the same session due at the same version publishes the same
 * event, and a later expiry of that session (after a revival) another. */
sd_err_t sd_expiry_event_id(const char *task_id, int64_t version,
                            char out[SD_EXPIRY_EVENT_ID_BUFSZ], sd_error_t *err);

/* The event as JSON text (task-event/v1): occurred_at is updated_at + ttl,
 * the moment the session stopped being visible, and session_version the
 * version it was found due at (for people; sessiond does not read it).
 * The caller frees *out. */
sd_err_t sd_expiry_event_json(const sd_expiry_due_t *due, int64_t ttl_ms, char **out,
                              size_t *len, sd_error_t *err);

#endif
