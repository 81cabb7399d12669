/* SPEC §3 as pure code: what a validated event asks the store to do. */
#ifndef SESSIOND_RULES_H
#define SESSIOND_RULES_H

#include "sessiond/event.h"

typedef enum sd_intent_kind {
    SD_INTENT_IGNORE,     /* nothing to store; `ignored` says why (counted) */
    SD_INTENT_CREATE,     /* create the session unless removed, covered by a
                             save, or defined by an earlier create */
    SD_INTENT_SET_STATUS, /* scenario_generation terminal: latest
                             (occurred_at, event_id) status wins */
    SD_INTENT_REMOVE,     /* terminal of other types, manual delete */
    SD_INTENT_SAVE,       /* remove scenario_generation sessions of short_id
                             created at or before occurred_at; remember it */
    SD_INTENT_EXPIRE,     /* publish the expiry of a live session whose TTL
                             passed by the applier's clock; else nothing */
} sd_intent_kind_t;

typedef enum sd_status {
    SD_STATUS_ACTIVE,
    SD_STATUS_COMPLETED,
    SD_STATUS_FAILED,
    SD_STATUS_CANCELLED,
} sd_status_t;

/* Why a change happened: the `reason` of a session change (SPEC §5). */
typedef enum sd_reason {
    SD_REASON_TASK_CREATED,
    SD_REASON_TASK_COMPLETED,
    SD_REASON_TASK_FAILED,
    SD_REASON_TASK_CANCELLED,
    SD_REASON_SCENARIO_SAVED,
    SD_REASON_MANUAL,
    SD_REASON_TTL,
} sd_reason_t;

typedef enum sd_ignore {
    SD_IGNORE_NONE,
    SD_IGNORE_NO_SHORT_ID,    /* task.created without short_id */
    SD_IGNORE_SCRAPING,       /* scraping tasks never have sessions */
} sd_ignore_t;

typedef struct sd_intent {
    sd_intent_kind_t kind;
    sd_reason_t reason;      /* meaningful unless kind == SD_INTENT_IGNORE */
    sd_status_t status;      /* SD_INTENT_SET_STATUS only */
    sd_ignore_t ignored;     /* SD_INTENT_IGNORE only */
    const sd_event_t *event; /* the cause; borrowed */
} sd_intent_t;

sd_intent_t sd_rules_intent(const sd_event_t *ev);

const char *sd_intent_kind_name(sd_intent_kind_t kind);
const char *sd_status_name(sd_status_t status);
const char *sd_reason_name(sd_reason_t reason);
const char *sd_ignore_name(sd_ignore_t ignored);

/* Name -> value; return 0, or -1 when name is NULL or unknown. */
int sd_status_from_name(const char *name, sd_status_t *out);
int sd_reason_from_name(const char *name, sd_reason_t *out);

#endif
