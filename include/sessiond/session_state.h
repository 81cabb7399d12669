/* The stored state of one task's session and how an intent changes it.
 *
 * Both stores keep exactly this state per task_id and follow exactly these
 * transitions: SQLite by calling sd_state_apply() inside a transaction,
 * MongoDB by conditional update operators whose filters select the same
 * cases (src/store/mongo_ops.c).  The reference model in tests/support is
 * the independent check that the transitions implement SPEC §3. */
#ifndef SESSIOND_SESSION_STATE_H
#define SESSIOND_SESSION_STATE_H

#include <stdint.h>

#include "sessiond/change.h"
#include "sessiond/rules.h"

/* An event's identity and position: what a change names as its cause. */
typedef struct sd_origin {
    const char *event_id;
    int64_t at_ms;     /* occurred_at */
    const char *topic; /* NULL when unknown */
    int32_t partition;
    int64_t offset;
} sd_origin_t;

/* The latest scenario.saved of a short_id, when one is known. */
typedef struct sd_cover {
    int known;
    sd_origin_t save;
} sd_cover_t;

/* Strings are borrowed; whoever fills the state keeps them alive. */
typedef struct sd_state {
    const char *task_id;

    int has_create; /* the defining create: earliest (created_at, created_by) */
    const char *created_by;
    int64_t created_at;
    const char *short_id;
    const char *task_type;
    const char *user_id;
    const char *metadata_json;

    int has_status; /* scenario_generation: latest (status_at, status_by) */
    sd_status_t status;
    int64_t status_at;
    const char *status_by;

    int removed; /* once removed, nothing changes the session again */
    sd_reason_t removed_reason;
    sd_origin_t removed_by;

    int live;        /* the latest published change left the session visible */
    int64_t version; /* number of published changes */
} sd_state_t;

/* What a transition published, if anything. */
typedef struct sd_emit {
    int emitted;
    sd_change_type_t type;
    sd_reason_t reason;
    sd_origin_t cause; /* for session.expired, only event_id is kept */
    int64_t occurred_at_ms;
} sd_emit_t;

typedef struct sd_state_clock {
    int64_t now_ms;
    int64_t ttl_ms;
} sd_state_clock_t;

/* Applies one intent (not SD_INTENT_SAVE: see sd_state_cover) caused by
 * origin (SD_INTENT_EXPIRE: sd_state_expire).  cover is the short_id's latest save, for creates.  Returns 1 if
 * the state changed (the caller must store it), 0 if the event was already
 * reflected.  *emit says whether the change is published. */
int sd_state_apply(sd_state_t *st, const sd_intent_t *in, const sd_origin_t *origin,
                   const sd_cover_t *cover, sd_state_clock_t clock, sd_emit_t *emit);

/* A save of st->short_id at save->at_ms reaching this session. */
int sd_state_cover(sd_state_t *st, const sd_origin_t *save, sd_state_clock_t clock,
                   sd_emit_t *emit);

/* An expiry event (by) reaching the session: publishes session.expired,
 * caused by it, if the session is live and its TTL passed at clock.now,
 * whatever version the event was published for: a session changed since
 * is either not live or has a later updated_at, so a stale expiry event
 * can never expire it early.  by NULL: an expiry that sessiond 0.1's
 * sweeper logged (MongoDB), whose cause is the event of the last change. */
int sd_state_expire(sd_state_t *st, sd_state_clock_t clock, const sd_origin_t *by,
                    sd_emit_t *emit);

/* max(created_at, status_at): the event time of the last change. */
int64_t sd_state_updated_at(const sd_state_t *st);

/* Visible at clock.now: created, not removed, TTL not passed. */
int sd_state_visible(const sd_state_t *st, sd_state_clock_t clock);

/* The session as clients see it (valid while st's strings live). */
sd_session_t sd_state_session(const sd_state_t *st);

/* Orders (at, id) pairs: occurred_at first, then event_id bytewise. */
int sd_state_key_cmp(int64_t at_a, const char *id_a, int64_t at_b, const char *id_b);

#endif
