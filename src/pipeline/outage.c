/* Waiting out outages: a store or broker that is away pauses every
 * assigned partition, and the pipeline backs off (doubling, with jitter, up
 * to --backoff-max) while it keeps serving the group. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <stdlib.h>

#include "sessiond/clock.h"
#include "sessiond/log.h"

static void pause_all(pipeline_t *p)
{
    if (p->paused || !p->consumer)
        return;
    rd_kafka_topic_partition_list_t *parts;
    if (rd_kafka_assignment(p->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(p->consumer, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    p->paused = 1;
    atomic_store(&p->stats->paused, 1);
}

void pl_resume_all(pipeline_t *p)
{
    if (!p->paused)
        return;
    rd_kafka_topic_partition_list_t *parts;
    if (rd_kafka_assignment(p->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_resume_partitions(p->consumer, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    p->paused = 0;
    p->backoff_ms = 0;
    atomic_store(&p->stats->paused, 0);
    sd_log(SD_LOG_INFO, "pipeline", "resumed", NULL);
}

/* Pauses the partitions and waits the next backoff step while serving
 * the group.  A message that still arrives is put back (rewound). */
void pl_back_off(pipeline_t *p, const char *what, const sd_error_t *err)
{
    pause_all(p);
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : 100;
    if (p->backoff_ms > p->cfg->backoff_max_ms)
        p->backoff_ms = p->cfg->backoff_max_ms;
    int64_t wait = p->backoff_ms / 2 + rand() % (p->backoff_ms / 2 + 1); /* jitter */
    sd_log(SD_LOG_WARN, "pipeline", what, "retry_in_ms=%lld error=%s", (long long)wait,
           SD_LOG_Q(err->message));
    for (int64_t waited = 0; waited < wait && !*p->stop; waited += 100) {
        if (!p->consumer) { /* not in the group yet */
            sd_sleep_ms(100);
            continue;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 100);
        if (m && !m->err) {
            rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(at, rd_kafka_topic_name(m->rkt), m->partition)
                ->offset = m->offset;
            rd_kafka_error_t *e = rd_kafka_seek_partitions(p->consumer, at, 5000);
            if (e)
                rd_kafka_error_destroy(e);
            rd_kafka_topic_partition_list_destroy(at);
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
}
