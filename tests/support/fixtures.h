/* Helpers shared by the Check suites. */
#ifndef SESSIOND_FIXTURES_H
#define SESSIOND_FIXTURES_H

#include <check.h>

#include "sessiond/event.h"

/* Parses printf-formatted JSON into ev; fails the running test, naming the
 * field and reason, when the event is invalid. */
void fx_event(sd_event_t *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Runs a suite with Check's normal output; returns the process status. */
int fx_run(Suite *suite);

/* A growable array of parsed events. */
typedef struct fx_events {
    sd_event_t *items;
    size_t count;
    size_t cap;
} fx_events_t;

void fx_events_add_json(fx_events_t *evs, const char *json);
void fx_events_free(fx_events_t *evs);

/* Scripted events at `minute` minutes after 2026-03-01T00:00:00Z (clamped
 * at 0).  Creates carry user_id "u-<id>" and metadata {"by": "<id>"};
 * short_id may be NULL. */
#define FX_T0 INT64_C(1772323200000)
void fx_create(fx_events_t *e, const char *id, const char *task, const char *type,
               const char *short_id, long minute);
void fx_terminal(fx_events_t *e, const char *id, const char *event_type, const char *task,
                 const char *type, long minute);
void fx_save(fx_events_t *e, const char *id, const char *short_id, long minute);
void fx_delete(fx_events_t *e, const char *id, const char *task, long minute);

#endif
