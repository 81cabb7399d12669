#include "fixtures.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fx_event(sd_event_t *ev, const char *fmt, ...)
{
    char json[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(json, sizeof json, fmt, ap);
    va_end(ap);
    ck_assert_msg(n > 0 && (size_t)n < sizeof json, "fixture JSON too long");

    sd_error_t err;
    sd_err_t rc = sd_event_parse(json, (size_t)n, ev, &err);
    ck_assert_msg(rc == SD_OK, "fixture %s is invalid: %s: %s", json, err.field,
                  err.message);
}

int fx_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void fx_events_add_json(fx_events_t *evs, const char *json)
{
    if (evs->count == evs->cap) {
        evs->cap = evs->cap ? evs->cap * 2 : 64;
        evs->items = realloc(evs->items, evs->cap * sizeof *evs->items);
        ck_assert_ptr_nonnull(evs->items);
    }
    fx_event(&evs->items[evs->count++], "%s", json);
}

void fx_events_free(fx_events_t *evs)
{
    for (size_t i = 0; i < evs->count; i++)
        sd_event_clear(&evs->items[i]);
    free(evs->items);
    memset(evs, 0, sizeof *evs);
}

static const char *at(long minute)
{
    static char buf[8][40];
    static int next;
    char *b = buf[next++ % 8];
    long m = minute < 0 ? 0 : minute;
    snprintf(b, 40, "2026-03-%02ldT%02ld:%02ld:00Z", 1 + m / 1440, m / 60 % 24, m % 60);
    return b;
}

void fx_create(fx_events_t *e, const char *id, const char *task, const char *type,
               const char *short_id, long minute)
{
    char json[512], short_field[200] = "";
    if (short_id)
        snprintf(short_field, sizeof short_field, "\"short_id\":\"%s\",", short_id);
    snprintf(json, sizeof json,
             "{\"event_id\":\"%s\",\"event_type\":\"task.created\",\"task_id\":\"%s\","
             "\"task_type\":\"%s\",%s\"user_id\":\"u-%s\",\"metadata\":{\"by\":\"%s\"},"
             "\"occurred_at\":\"%s\"}",
             id, task, type, short_field, id, id, at(minute));
    fx_events_add_json(e, json);
}

void fx_terminal(fx_events_t *e, const char *id, const char *event_type, const char *task,
                 const char *type, long minute)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"event_id\":\"%s\",\"event_type\":\"%s\",\"task_id\":\"%s\","
             "\"task_type\":\"%s\",\"occurred_at\":\"%s\"}",
             id, event_type, task, type, at(minute));
    fx_events_add_json(e, json);
}

void fx_save(fx_events_t *e, const char *id, const char *short_id, long minute)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"event_id\":\"%s\",\"event_type\":\"scenario.saved\",\"short_id\":\"%s\","
             "\"occurred_at\":\"%s\"}", id, short_id, at(minute));
    fx_events_add_json(e, json);
}

void fx_delete(fx_events_t *e, const char *id, const char *task, long minute)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"event_id\":\"%s\",\"event_type\":\"session.delete_requested\","
             "\"task_id\":\"%s\",\"occurred_at\":\"%s\"}", id, task, at(minute));
    fx_events_add_json(e, json);
}
