/* Sessions as the seed service's API shows them (SPEC §8), shared by
 * `sessiond sessions` and the HTTP API. */
#ifndef SESSIOND_SESSION_JSON_H
#define SESSIOND_SESSION_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/change.h"

/* {"short_id": S, "sessions": [...], "total_sessions": N, "timestamp": now}
 * Returns malloc'd text, or NULL when out of memory. */
char *sd_sessions_by_short_id_json(const char *short_id, const sd_session_t *sessions,
                                   size_t n, int64_t now_ms);

/* {"task_id": T, "session": {...}, "timestamp": now} */
char *sd_session_by_task_id_json(const sd_session_t *session, int64_t now_ms);

/* {"error": message, "detail": detail, "timestamp": now} */
char *sd_error_json(const char *message, const char *detail, int64_t now_ms);

#endif
