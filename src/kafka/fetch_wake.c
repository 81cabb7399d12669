#include "sessiond/fetch_wake.h"

sd_err_t sd_fetch_wake(rd_kafka_t *consumer, int timeout_ms, int *partitions, sd_error_t *err)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (partitions)
        *partitions = 0;
    rd_kafka_resp_err_t rc = rd_kafka_assignment(consumer, &assigned);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && assigned->cnt > 0) {
        /* The latest offset is answered from the leader's memory; librdkafka
         * sends one request per leader, all at once. */
        for (int i = 0; i < assigned->cnt; i++)
            assigned->elems[i].offset = RD_KAFKA_OFFSET_END;
        rc = rd_kafka_offsets_for_times(consumer, assigned, timeout_ms);
        if (partitions)
            *partitions = assigned->cnt;
    }
    if (assigned)
        rd_kafka_topic_partition_list_destroy(assigned);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sd_error_set(err, SD_ERR_TRANSIENT, "consumer",
                            "cannot ask the partitions' leaders for their offsets: %s",
                            rd_kafka_err2str(rc));
    return SD_OK;
}
