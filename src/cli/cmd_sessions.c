#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/commands.h"
#include "sessiond/config.h"
#include "sessiond/session_json.h"
#include "sessiond/store.h"
#include "sessiond/timefmt.h"

static const char usage[] =
    "usage: sessiond sessions [--store URI] (--short-id S | --task-id T)\n"
    "\n"
    "Prints the visible sessions of a short_id, or the session of a task, as\n"
    "JSON in the shapes of the HTTP API.\n"
    "exit status: 0 found, 1 not found, 2 usage or configuration, 3 store unavailable\n";

static int fail(const sd_error_t *err)
{
    fprintf(stderr, "sessiond sessions: %s\n", err->message);
    return err->code == SD_ERR_TRANSIENT ? 3 : 2;
}

int sd_cmd_sessions(int argc, char **argv)
{
    sd_store_config_t cfg = {0};
    const char *short_id = NULL, *task_id = NULL, *at = NULL;
    const sd_option_t opts[] = {
        {"short-id", SD_OPT_STRING, &short_id, "S", "sessions of short_id S", NULL},
        {"task-id", SD_OPT_STRING, &task_id, "T", "the session of task T", NULL},
        {"now", SD_OPT_STRING, &at, "TIME", "show them as at TIME (RFC 3339), not now", NULL},
        SD_STORE_OPTIONS(&cfg),
    };
    sd_error_t err = {0};
    size_t n_pos;
    int help;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], NULL, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK)
        return fail(&err);
    if (help)
        return 0;
    int64_t now = sd_config_now_ms();
    if (at && sd_time_parse_rfc3339(at, strlen(at), &now, &err) != SD_OK) {
        fprintf(stderr, "sessiond sessions: --now: %s\n", err.message);
        return 2;
    }
    if (!short_id == !task_id) {
        fprintf(stderr, "sessiond sessions: give exactly one of --short-id and --task-id\n");
        return 2;
    }
    if (!cfg.uri) {
        fprintf(stderr, "sessiond sessions: no store: use --store URI or SESSIOND_STORE\n");
        return 2;
    }

    sd_store_t *store;
    if (sd_store_open(&cfg, &store, &err) != SD_OK)
        return fail(&err);
    sd_session_list_t list;
    sd_err_t rc = short_id ? sd_store_list_by_short_id(store, short_id, now, &list, &err)
                           : sd_store_get(store, task_id, now, &list, &err);
    sd_store_close(store);
    if (rc != SD_OK)
        return fail(&err);

    char *text;
    int status = 0;
    if (short_id) {
        text = sd_sessions_by_short_id_json(short_id, list.items, list.count, now);
        status = list.count ? 0 : 1;
    } else if (list.count) {
        text = sd_session_by_task_id_json(&list.items[0], now);
    } else {
        text = sd_error_json("session not found", task_id, now);
        status = 1;
    }
    sd_session_list_free(&list);
    if (!text) {
        fprintf(stderr, "sessiond sessions: out of memory\n");
        return 2;
    }
    puts(text);
    free(text);
    return status;
}
