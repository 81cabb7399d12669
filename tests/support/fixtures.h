/* Helpers shared by the Check suites. */
#ifndef SESSIOND_FIXTURES_H
#define SESSIOND_FIXTURES_H

#include <check.h>

#include "sessiond/event.h"

/* Parses printf-formatted JSON into ev; fails the running test, naming the
 * field and reason, when the event is invalid. */
void sd_fx_event(sd_event_t *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Runs a suite with Check's normal output; returns the process status. */
int sd_fx_run(Suite *suite);

#endif
