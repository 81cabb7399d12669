/* Applies one batch to the MongoDB store and reports how each attempt
 * ended, for mongo_faults.py, which plays the server (python3-mockupdb).
 *
 *   fault_client URI EVENTS ATTEMPTS
 *
 * Prints one JSON line per attempt:
 *   {"attempt":1,"rc":"transient","message":"…","commands":3}
 * and stops after the first success. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/rules.h"
#include "sessiond/store.h"

/* A batch with every kind of work: scenario creates (marker reads),
 * other creates, terminals and a save (marker write and scan). */
static size_t make_batch(size_t n, sd_event_t *events, sd_store_item_t *items)
{
    for (size_t i = 0; i < n; i++) {
        char json[512];
        if (i == 0)
            snprintf(json, sizeof json,
                     "{\"event_id\":\"e%zu\",\"event_type\":\"scenario.saved\",\"short_id\":\"s0\","
                     "\"occurred_at\":\"2026-03-01T12:00:00Z\"}", i);
        else if (i % 7 == 0)
            snprintf(json, sizeof json,
                     "{\"event_id\":\"e%zu\",\"event_type\":\"task.completed\",\"task_id\":\"t%zu\","
                     "\"task_type\":\"image_analysis\",\"occurred_at\":\"2026-03-01T12:30:00Z\"}",
                     i, i - 1);
        else
            snprintf(json, sizeof json,
                     "{\"event_id\":\"e%zu\",\"event_type\":\"task.created\",\"task_id\":\"t%zu\","
                     "\"task_type\":\"%s\",\"short_id\":\"s%zu\","
                     "\"occurred_at\":\"2026-03-01T11:00:00Z\"}",
                     i, i, i % 5 == 0 ? "scenario_generation" : "image_analysis", i % 3);
        sd_error_t err;
        if (sd_event_parse(json, strlen(json), &events[i], &err) != SD_OK) {
            fprintf(stderr, "fault_client: %s\n", err.message);
            exit(2);
        }
        items[i] = (sd_store_item_t){sd_rules_intent(&events[i]), "task-events", 0, (int64_t)i};
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: fault_client URI EVENTS ATTEMPTS\n");
        return 2;
    }
    size_t n = (size_t)atol(argv[2]);
    int attempts = atoi(argv[3]);
    sd_event_t *events = calloc(n, sizeof *events);
    sd_store_item_t *items = calloc(n, sizeof *items);
    make_batch(n, events, items);

    sd_store_config_t cfg = {.uri = argv[1], .database = "faults", .write_concern = "1",
                             .timeout_ms = 1500};
    sd_store_t *store = NULL;
    sd_error_t err;
    sd_err_t rc = sd_store_open(&cfg, &store, &err);
    for (int a = 1; a <= attempts; a++) {
        uint64_t before = store ? sd_store_io(store).round_trips : 0;
        if (rc == SD_OK) {
            sd_apply_result_t result;
            rc = sd_store_apply(store, items, n, INT64_C(1772366400000), &result, &err);
            if (rc == SD_OK)
                sd_apply_result_free(&result);
        }
        json_t *line = json_pack("{s:i, s:s, s:s, s:I}", "attempt", a, "rc",
                                 rc == SD_OK ? "ok" : sd_err_name(rc), "message",
                                 rc == SD_OK ? "" : err.message, "commands",
                                 (json_int_t)(store ? sd_store_io(store).round_trips - before : 0));
        char *text = json_dumps(line, JSON_COMPACT);
        puts(text);
        fflush(stdout);
        free(text);
        json_decref(line);
        if (rc == SD_OK || !store)
            break;
        rc = SD_OK;
    }
    sd_store_close(store);
    for (size_t i = 0; i < n; i++)
        sd_event_clear(&events[i]);
    free(events);
    free(items);
    return 0;
}
