/* Applies a JSON-lines file of events to a store, for CLI tests:
 *   store_load URI DATABASE FILE NOW */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/store.h"
#include "sessiond/timefmt.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: store_load URI DATABASE FILE NOW\n");
        return 2;
    }
    sd_error_t err;
    int64_t now;
    if (sd_time_parse_rfc3339(argv[4], strlen(argv[4]), &now, &err) != SD_OK)
        return fprintf(stderr, "store_load: NOW: %s\n", err.message), 2;
    FILE *in = fopen(argv[3], "r");
    if (!in)
        return perror(argv[3]), 2;
    sd_event_t events[1024];
    sd_store_item_t items[1024];
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0 && n < 1024) {
        if (sd_event_parse(line, (size_t)len, &events[n], &err) != SD_OK)
            return fprintf(stderr, "store_load: %s: %s\n", err.field, err.message), 2;
        items[n] = (sd_store_item_t){sd_rules_intent(&events[n]), NULL, 0, 0};
        n++;
    }
    free(line);
    fclose(in);

    sd_store_config_t cfg = {.uri = argv[1], .database = argv[2], .write_concern = "1"};
    sd_store_t *store;
    sd_apply_result_t result;
    if (sd_store_open(&cfg, &store, &err) != SD_OK ||
        sd_store_ensure_schema(store, &err) != SD_OK ||
        sd_store_apply(store, items, n, now, &result, &err) != SD_OK)
        return fprintf(stderr, "store_load: %s\n", err.message), 1;
    sd_apply_result_free(&result);
    sd_store_close(store);
    for (size_t i = 0; i < n; i++)
        sd_event_clear(&events[i]);
    return 0;
}
