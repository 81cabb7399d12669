/* sessiond replay: re-consume the input topics into the store. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/commands.h"
#include "sessiond/kafka_admin.h"
#include "sessiond/log.h"
#include "sessiond/pipeline_cli.h"
#include "sessiond/timefmt.h"

static const char usage[] =
    "usage: sessiond replay --brokers HOSTS --store URI --from earliest|RFC3339\n"
    "                       [--emit none|changes] [--group G --reset] [options]\n"
    "\n"
    "Reads the input topics again from --from up to where they ended when the\n"
    "replay began, applies every event to the store, prints a summary and exits.\n"
    "Applying is idempotent: replaying into a store that saw the events changes\n"
    "nothing; replaying into an empty store rebuilds it.\n"
    "\n"
    "The replay reads as a consumer group of its own, sessiond-replay-<host>-<pid>,\n"
    "leaving the live group and other replays alone; --group G --reset instead\n"
    "moves a stopped group G: it reads as G and commits as it goes, so G resumes\n"
    "where the replay ended.  Either way it refuses to run while its group has\n"
    "other members.\n"
    "\n"
    "--emit none (default) only rebuilds the store; --emit changes publishes what\n"
    "`run` would: changes (with their deterministic change_id) for downstream\n"
    "consumers to rebuild from, and dead letters.  --from TIME looks offsets up\n"
    "by time, which needs a Kafka broker (librdkafka's mock cluster cannot).\n"
    "exit status: 0 caught up, 1 error or interrupted, 2 usage or configuration\n";

static void print_summary(const sd_pipeline_stats_t *s, int emit, long to_read)
{
    printf("sessiond replay: %s\n", atomic_load(&s->caught_up) ? "caught up" : "interrupted");
    printf("  %-16s %ld of %ld\n", "events read", atomic_load(&s->events), to_read);
    printf("  %-16s %ld\n", "applied", atomic_load(&s->applied));
    printf("  %-16s %ld\n", "unchanged", atomic_load(&s->unchanged));
    printf("  %-16s %ld\n", "ignored", sd_stats_ignored(s));
    printf("  %-16s %ld%s\n", "dead-lettered", atomic_load(&s->dead_lettered),
           emit ? "" : " (invalid; not re-sent with --emit none)");
    printf("  %-16s %ld\n", "changes emitted", sd_stats_changes(s));
    fflush(stdout);
}

/* What the options cannot say alone: a start, an emit mode, --group only
 * with --reset, and brokers that hold the topics. */
static sd_err_t check_options(const sd_pipeline_cli_t *c, const char *from, const char *emit,
                              const char *group, int reset, int64_t *from_ms, sd_error_t *err)
{
    if (!from)
        return sd_error_set(err, SD_ERR_INVALID, "from",
                            "--from earliest or --from RFC3339 is required");
    if (strcmp(from, "earliest") != 0 &&
        sd_time_parse_rfc3339(from, strlen(from), from_ms, err) != SD_OK)
        return sd_error_set(err, SD_ERR_INVALID, "from",
                            "--from is earliest or an RFC 3339 time such as "
                            "2026-11-20T00:00:00Z, not '%s'",
                            from);
    if (strcmp(emit, "none") && strcmp(emit, "changes"))
        return sd_error_set(err, SD_ERR_INVALID, "emit", "--emit is none or changes");
    if (!group != !reset)
        return sd_error_set(err, SD_ERR_INVALID, "reset",
                            group ? "--group %s moves that group's offsets: add --reset to confirm"
                                  : "--reset needs --group G%s",
                            group ? group : "");
    if (strcmp(c->brokers, "embedded") == 0)
        return sd_error_set(err, SD_ERR_INVALID, "brokers",
                            "an embedded broker starts empty: replay needs the brokers that hold "
                            "the topics");
    return SD_OK;
}

/* Applies the range the replay's source reads (c->cfg.replay) to the
 * store, prints the summary and returns the exit status. */
static int replay(sd_pipeline_cli_t *c, long to_read)
{
    sd_error_t err = {0};
    sd_store_t *store;
    if (sd_pipeline_cli_open_store(c, &store, &err) != SD_OK) {
        fprintf(stderr, "sessiond replay: %s\n", err.message);
        return 1;
    }
    sd_pipeline_stats_t stats = {0};
    sd_err_t rc = sd_pipeline_run(&c->cfg, store, sd_pipeline_cli_trap_signals(), &stats, &err);
    sd_store_close(store);
    print_summary(&stats, c->cfg.replay->emit, to_read);
    if (rc != SD_OK)
        fprintf(stderr, "sessiond replay: %s\n", err.message);
    else if (!atomic_load(&stats.caught_up))
        fprintf(stderr, "sessiond replay: interrupted before catching up; replaying again is "
                        "safe\n");
    return rc == SD_OK && atomic_load(&stats.caught_up) ? 0 : 1;
}

int sd_cmd_replay(int argc, char **argv)
{
    sd_pipeline_cli_t c;
    sd_pipeline_cli_init(&c, NULL); /* the group is set below */
    const char *from = NULL, *emit = "none", *group = NULL;
    int reset = 0;
    const sd_option_t opts[] = {
        SD_PIPELINE_OPTIONS(&c),
        {"from", SD_OPT_STRING, &from, "WHEN", "earliest, or an RFC 3339 time", NULL},
        {"emit", SD_OPT_STRING, &emit, "WHAT", "none (default) or changes", NULL},
        {"group", SD_OPT_STRING, &group, "G",
         "replay as the stopped group G and move its offsets (needs --reset)", NULL},
        {"reset", SD_OPT_FLAG, &reset, NULL, "confirms that --group G's offsets move", NULL},
    };
    sd_error_t err = {0};
    size_t n_pos;
    int help = 0, status = 2;
    int64_t from_ms = SD_FROM_EARLIEST;
    char own_group[200];
    sd_replay_bounds_t bounds = {0};
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], &c.props, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK)
        goto done;
    if (help) {
        status = 0;
        goto done;
    }
    c.cfg.group = group ? group : sd_pipeline_cli_replay_group(own_group, sizeof own_group);
    if (sd_pipeline_cli_finish(&c, &err) != SD_OK ||
        check_options(&c, from, emit, group, reset, &from_ms, &err) != SD_OK)
        goto done;

    /* The policy: the replay source over this range, producing or not. */
    status = 1;
    bounds.emit = strcmp(emit, "changes") == 0;
    if (!bounds.emit)
        c.cfg.delivery = SD_DELIVERY_AT_LEAST_ONCE; /* nothing to produce: no transactions */
    long to_read;
    if (sd_pipeline_cli_replay_range(&c, from_ms, bounds.emit, &bounds, &to_read, &err) != SD_OK)
        goto done;
    sd_log(SD_LOG_INFO, "replay", "replaying", "from=%s partitions=%d events=%ld group=%s emit=%s",
           from, bounds.end->cnt, to_read, c.cfg.group, emit);
    c.cfg.replay = &bounds;
    status = replay(&c, to_read);
done:
    if (err.message[0] && !c.cfg.replay) /* a step before the replay failed */
        fprintf(stderr, "sessiond replay: %s\n", err.message);
    if (bounds.start)
        rd_kafka_topic_partition_list_destroy(bounds.start);
    if (bounds.end)
        rd_kafka_topic_partition_list_destroy(bounds.end);
    sd_pipeline_cli_free(&c);
    return status;
}
