/* Where a batch's messages come from: the policies the loop asks at fixed
 * points (pipeline_int.h), so that it has no branch for either.
 *
 * The live source reads the group's partitions from their committed
 * offsets until the pipeline is stopped; it sweeps, watches its progress
 * and produces what it applies.
 *
 * A replay (`sessiond replay`) reads every input partition from given
 * offsets up to given ends (the high watermarks when it began) and is then
 * finished.  It must be its group's only member: it owns every input
 * partition from its first assignment on, and stops with an error if the
 * group hands it fewer or takes any away.  At a partition's end it pauses
 * it, so what arrived since the replay began stays for the live group.  It
 * neither sweeps nor watches its progress, and produces only when asked
 * to (emit). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"

/* ---- live ---- */

static sd_err_t live_check(pipeline_t *p, sd_error_t *err)
{
    (void)p;
    (void)err;
    return SD_OK;
}

static int live_finished(const pipeline_t *p)
{
    (void)p;
    return 0;
}

static void live_revoked(pipeline_t *p) { (void)p; }

static int live_take(pipeline_t *p, const rd_kafka_message_t *m)
{
    (void)p;
    return !m->err;
}

static void live_rewound(pipeline_t *p, rd_kafka_topic_partition_list_t *start)
{
    (void)p;
    (void)start;
}

static const pl_source_t live = {
    .partition_eof = 0,
    .watched = 1,
    .check = live_check,
    .finished = live_finished,
    .assigned = pl_start_at_stable_offsets,
    .revoked = live_revoked,
    .take = live_take,
    .rewound = live_rewound,
};

/* ---- replay ---- */

#define REPLAY_JOIN_S 60 /* to own every input partition by */

struct pl_replay {
    const sd_replay_bounds_t *bounds;
    int started;       /* every partition assigned */
    int64_t deadline;  /* monotonic ms to have started by */
    int *done;         /* per partition of bounds->end: read up to its end */
    char refused[300]; /* why the replay cannot go on, or "" */
};

/* The partition's index in bounds->end, or -1. */
static int replay_index(const struct pl_replay *r, const char *topic, int32_t partition)
{
    const rd_kafka_topic_partition_list_t *end = r->bounds->end;
    for (int i = 0; i < end->cnt; i++)
        if (end->elems[i].partition == partition && strcmp(end->elems[i].topic, topic) == 0)
            return i;
    return -1;
}

static void replay_mark_done(struct pl_replay *r, int i)
{
    if (i < 0 || r->done[i])
        return;
    r->done[i] = 1;
    const rd_kafka_topic_partition_t *e = &r->bounds->end->elems[i];
    sd_log(SD_LOG_DEBUG, "replay", "partition caught up", "topic=%s partition=%d end=%lld",
           e->topic, (int)e->partition, (long long)e->offset);
}

static sd_err_t replay_check(pipeline_t *p, sd_error_t *err)
{
    const struct pl_replay *r = p->replay;
    if (r->refused[0])
        return sd_error_set(err, SD_ERR_FATAL, "group", "%s", r->refused);
    if (!r->started && sd_monotonic_ms() > r->deadline)
        return sd_error_set(err, SD_ERR_FATAL, "group",
                            "consumer group %s did not hand every input partition to the "
                            "replay within %d s: does it have other members?",
                            p->cfg->group, REPLAY_JOIN_S);
    return SD_OK;
}

static int replay_finished(const pipeline_t *p)
{
    const struct pl_replay *r = p->replay;
    if (!r->started)
        return 0;
    for (int i = 0; i < r->bounds->end->cnt; i++)
        if (!r->done[i])
            return 0;
    return 1;
}

/* Every input partition from the first assignment on, each from its start
 * offset, or the group has other members and the replay must not go on. */
static void replay_assigned(pipeline_t *p, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    (void)rk;
    struct pl_replay *r = p->replay;
    int all = !r->started && parts->cnt == r->bounds->end->cnt;
    for (int i = 0; all && i < parts->cnt; i++)
        all = replay_index(r, parts->elems[i].topic, parts->elems[i].partition) >= 0;
    if (!all) {
        snprintf(r->refused, sizeof r->refused,
                 "consumer group %s has other members (is `sessiond run` still running with "
                 "it?): stop them, or replay with a group of its own",
                 p->cfg->group);
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int k = replay_index(r, parts->elems[i].topic, parts->elems[i].partition);
        parts->elems[i].offset = r->bounds->start->elems[k].offset;
        if (r->bounds->start->elems[k].offset >= r->bounds->end->elems[k].offset)
            replay_mark_done(r, k);
    }
    r->started = 1;
}

static void replay_revoked(pipeline_t *p)
{
    struct pl_replay *r = p->replay;
    if (!r->refused[0])
        snprintf(r->refused, sizeof r->refused,
                 "consumer group %s gained a member during the replay: what was applied is "
                 "committed; stop the other member and replay again",
                 p->cfg->group);
}

/* A message below its partition's end is taken; at the end (a message, a
 * transaction marker or the partition's EOF) the partition is paused. */
static int replay_take(pipeline_t *p, const rd_kafka_message_t *m)
{
    struct pl_replay *r = p->replay;
    int i = replay_index(r, rd_kafka_topic_name(m->rkt), m->partition);
    if (i < 0)
        return 0;
    int64_t end = r->bounds->end->elems[i].offset;
    int take = m->offset < end && !m->err;
    if (m->offset + take >= end) {
        replay_mark_done(r, i);
        rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, rd_kafka_topic_name(m->rkt), m->partition);
        rd_kafka_pause_partitions(p->consumer, one);
        rd_kafka_topic_partition_list_destroy(one);
    }
    return take;
}

/* A rewound batch's partitions are not caught up after all: read them
 * again, paused or not. */
static void replay_rewound(pipeline_t *p, rd_kafka_topic_partition_list_t *start)
{
    struct pl_replay *r = p->replay;
    for (int i = 0; i < start->cnt; i++) {
        int k = replay_index(r, start->elems[i].topic, start->elems[i].partition);
        if (k >= 0)
            r->done[k] = 0;
    }
    rd_kafka_resume_partitions(p->consumer, start);
}

static const pl_source_t replay_source = {
    .partition_eof = 1,
    .watched = 0,
    .check = replay_check,
    .finished = replay_finished,
    .assigned = replay_assigned,
    .revoked = replay_revoked,
    .take = replay_take,
    .rewound = replay_rewound,
};

/* ---- choosing ---- */

sd_err_t pl_source_open(pipeline_t *p, sd_error_t *err)
{
    const sd_replay_bounds_t *bounds = p->cfg->replay;
    if (!bounds) {
        p->source = &live;
        p->emit = 1;
        return SD_OK;
    }
    struct pl_replay *r = calloc(1, sizeof *r);
    if (r)
        r->done = calloc((size_t)bounds->end->cnt + 1, sizeof *r->done);
    if (!r || !r->done) {
        free(r);
        return sd_error_set(err, SD_ERR_FATAL, "", "out of memory starting the replay");
    }
    r->bounds = bounds;
    r->deadline = sd_monotonic_ms() + REPLAY_JOIN_S * 1000;
    p->replay = r;
    p->source = &replay_source;
    p->emit = bounds->emit;
    return SD_OK;
}

void pl_source_close(pipeline_t *p)
{
    if (p->replay)
        free(p->replay->done);
    free(p->replay);
    p->replay = NULL;
}
