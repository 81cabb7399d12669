/* Reference model of SPEC §3: a set of events plus "now" -> the visible
 * sessions.  Deliberately naive and independent of src/core/rules.c, so the
 * stores and the pipeline can be checked against it: the test suites do,
 * and `sessiond demo` gives its verdict with it. */
#ifndef SESSIOND_MODEL_H
#define SESSIOND_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/change.h"
#include "sessiond/event.h"

#define SD_MODEL_DEFAULT_TTL_MS (INT64_C(7) * 24 * 3600 * 1000)

/* Visible sessions sorted by task_id.  Strings are borrowed from the events
 * given to sd_model_visible(), which must outlive the result. */
typedef struct sd_model_result {
    sd_session_t *sessions;
    size_t count;
} sd_model_result_t;

/* Events may repeat (same event_id = same event) and come in any order.
 * Returns 0, or -1 when out of memory. */
int sd_model_visible(const sd_event_t *events, size_t n, int64_t now_ms,
                     int64_t ttl_ms, sd_model_result_t *out);

void sd_model_result_free(sd_model_result_t *result);

/* Returns the session of task_id, or NULL when none is visible. */
const sd_session_t *sd_model_find(const sd_model_result_t *result,
                                  const char *task_id);

/* Whether the sessions a store lists (sorted by task_id, as
 * sd_store_list_all() gives them) are the model's, every field compared,
 * metadata as JSON values.  Returns 1 if so; otherwise 0, with why (cap
 * bytes) naming the first session that differs and how. */
int sd_model_matches(const sd_session_t *got, size_t n_got, const sd_model_result_t *want,
                     char *why, size_t cap);

#endif
