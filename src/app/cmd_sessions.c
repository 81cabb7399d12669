#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/commands.h"
#include "sessiond/config.h"
#include "sessiond/session_json.h"
#include "sessiond/store.h"
#include "sessiond/timefmt.h"

static const char help_head[] =
    "usage: sessiond sessions [--store URI] (--short-id S | --task-id T)\n"
    "\n"
    "Prints the visible sessions of a short_id, or the session of a task, as\n"
    "JSON in the shapes of the HTTP API.\n"
    "\n"
    "  --short-id S          sessions of short_id S\n"
    "  --task-id T           the session of task T\n"
    "  --now TIME            show them as at TIME (RFC 3339) instead of now\n";
static const char help_tail[] =
    "\nexit status: 0 found, 1 not found, 2 usage or configuration, 3 store unavailable\n";

static int fail(const char *what, const sd_error_t *err)
{
    fprintf(stderr, "sessiond sessions: %s%s%s%s\n", what, err->field[0] ? err->field : "",
            err->field[0] ? ": " : "", err->message);
    return err->code == SD_ERR_TRANSIENT ? 3 : 2;
}

int sd_cmd_sessions(int argc, char **argv)
{
    static const struct option options[] = {
        {"store", required_argument, NULL, 0},    {"database", required_argument, NULL, 0},
        {"collection", required_argument, NULL, 0},
        {"write-concern", required_argument, NULL, 0},
        {"session-ttl", required_argument, NULL, 0},
        {"short-id", required_argument, NULL, 's'}, {"task-id", required_argument, NULL, 't'},
        {"now", required_argument, NULL, 'n'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sd_store_config_t cfg = {0};
    sd_error_t err = {0};
    if (sd_config_store_from_env(&cfg, &err) != SD_OK)
        return fail("", &err);
    const char *short_id = NULL, *task_id = NULL;
    int64_t now = sd_config_now_ms();
    int opt, index;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, &index)) != -1) {
        sd_err_t rc;
        switch (opt) {
        case 0:
            sd_config_store_flag(&cfg, options[index].name, optarg, &rc, &err);
            if (rc != SD_OK)
                return fail("--", &err);
            break;
        case 's': short_id = optarg; break;
        case 't': task_id = optarg; break;
        case 'n':
            if (sd_time_parse_rfc3339(optarg, strlen(optarg), &now, &err) != SD_OK)
                return fail("--now: ", &err);
            break;
        case 'h':
            printf("%s%s%s", help_head, sd_config_store_help, help_tail);
            return 0;
        default:
            fprintf(stderr, "%s%s%s", help_head, sd_config_store_help, help_tail);
            return 2;
        }
    }
    if (!short_id == !task_id || optind != argc) {
        fprintf(stderr, "sessiond sessions: give exactly one of --short-id and --task-id\n");
        return 2;
    }
    if (!cfg.uri) {
        fprintf(stderr, "sessiond sessions: no store: use --store URI or SESSIOND_STORE\n");
        return 2;
    }

    sd_store_t *store;
    if (sd_store_open(&cfg, &store, &err) != SD_OK)
        return fail("", &err);
    sd_session_list_t list;
    sd_err_t rc = short_id ? sd_store_list_by_short_id(store, short_id, now, &list, &err)
                           : sd_store_get(store, task_id, now, &list, &err);
    sd_store_close(store);
    if (rc != SD_OK)
        return fail("", &err);

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
