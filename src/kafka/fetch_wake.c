#include "sessiond/fetch_wake.h"

/* The consumer's assignment with each partition's end offset, as its
 * leader answers it now (the last stable offset under read_committed):
 * one ListOffsets request per leader, all at once.  *assigned is NULL, or
 * the caller's to destroy. */
static sd_err_t assignment_ends(rd_kafka_t *consumer, int timeout_ms,
                                rd_kafka_topic_partition_list_t **assigned, sd_error_t *err)
{
    *assigned = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_assignment(consumer, assigned);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && (*assigned)->cnt > 0) {
        for (int i = 0; i < (*assigned)->cnt; i++)
            (*assigned)->elems[i].offset = RD_KAFKA_OFFSET_END;
        rc = rd_kafka_offsets_for_times(consumer, *assigned, timeout_ms);
    }
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
        return SD_OK;
    return sd_error_set(err, SD_ERR_TRANSIENT, "consumer",
                        "cannot ask the partitions' leaders for their offsets: %s",
                        rd_kafka_err2str(rc));
}

sd_err_t sd_fetch_wake(rd_kafka_t *consumer, int timeout_ms, int *partitions, sd_error_t *err)
{
    rd_kafka_topic_partition_list_t *assigned;
    sd_err_t rc = assignment_ends(consumer, timeout_ms, &assigned, err);
    if (partitions)
        *partitions = assigned ? assigned->cnt : 0;
    if (assigned)
        rd_kafka_topic_partition_list_destroy(assigned);
    return rc;
}

/* Where the partitions of `at` that delivered nothing since their
 * assignment (position INVALID) stand: their committed offsets (one
 * request to the coordinator for all), else (auto.offset.reset earliest)
 * the start of their logs.  -1 where that cannot be learned. */
static void fill_unknown_positions(rd_kafka_t *consumer, rd_kafka_topic_partition_list_t *at,
                                   int timeout_ms)
{
    rd_kafka_topic_partition_list_t *unknown = rd_kafka_topic_partition_list_new(at->cnt);
    for (int i = 0; i < at->cnt; i++)
        if (at->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(unknown, at->elems[i].topic, at->elems[i].partition);
    if (unknown->cnt && rd_kafka_committed(consumer, unknown, timeout_ms))
        for (int k = 0; k < unknown->cnt; k++)
            unknown->elems[k].err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int k = 0; k < unknown->cnt; k++) {
        rd_kafka_topic_partition_t *u = &unknown->elems[k];
        int64_t start = -1, low, high;
        if (!u->err && u->offset >= 0)
            start = u->offset;
        else if (!u->err && rd_kafka_query_watermark_offsets(consumer, u->topic, u->partition,
                                                            &low, &high, timeout_ms) == 0)
            start = low;
        rd_kafka_topic_partition_list_find(at, u->topic, u->partition)->offset = start;
    }
    rd_kafka_topic_partition_list_destroy(unknown);
}

sd_err_t sd_fetch_behind(rd_kafka_t *consumer, int timeout_ms, int64_t *behind, sd_error_t *err)
{
    *behind = 0;
    rd_kafka_topic_partition_list_t *assigned, *at = NULL;
    sd_err_t rc = assignment_ends(consumer, timeout_ms, &assigned, err);
    if (rc != SD_OK || assigned->cnt == 0)
        goto done;
    at = rd_kafka_topic_partition_list_copy(assigned);
    rd_kafka_position(consumer, at);
    fill_unknown_positions(consumer, at, timeout_ms);
    for (int i = 0; i < at->cnt; i++) {
        const rd_kafka_topic_partition_t *end = &assigned->elems[i];
        int64_t position = at->elems[i].offset;
        if (end->err) {
            rc = sd_error_set(err, SD_ERR_TRANSIENT, "consumer",
                              "cannot ask the leader of %s [%d] for its offsets: %s", end->topic,
                              (int)end->partition, rd_kafka_err2str(end->err));
            goto done;
        }
        if (position < 0) {
            rc = sd_error_set(err, SD_ERR_TRANSIENT, "consumer",
                              "cannot learn where %s [%d] stands: the group coordinator does "
                              "not answer", end->topic, (int)end->partition);
            goto done;
        }
        if (end->offset > position)
            *behind += end->offset - position;
    }
done:
    if (at)
        rd_kafka_topic_partition_list_destroy(at);
    if (assigned)
        rd_kafka_topic_partition_list_destroy(assigned);
    return rc;
}
