/* --brokers embedded: librdkafka's mock cluster inside this process.  It
 * needs a client instance to live in; a bare producer serves.  It keeps
 * nothing on disk and retains at most 5 MiB or 100,000 batches per
 * partition (SPEC §6). */
#include <stdlib.h>

#include "sessiond/kafka.h"

#define PARTITION_BUDGET ((size_t)4 * 1024 * 1024)

int sd_embedded_partitions_for(size_t bytes)
{
    size_t n = bytes / PARTITION_BUDGET + 1;
    return n < 8 ? 8 : (int)n;
}

struct sd_embedded {
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *cluster;
};

sd_err_t sd_embedded_start(int brokers, sd_embedded_t **out, sd_error_t *err)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The host client talks to nobody: silence its "no bootstrap" notice.
     * The mock brokers' sockets take the host's settings: without Nagle,
     * a response written in two parts is not held back ~40 ms for the
     * client's delayed ACK. */
    if (rd_kafka_conf_set(conf, "log_level", "3", why, sizeof why) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "socket.nagle.disable", "true", why, sizeof why) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return sd_error_set(err, SD_ERR_FATAL, "embedded", "%s", why);
    }
    sd_embedded_t *e = calloc(1, sizeof *e);
    if (!e) {
        rd_kafka_conf_destroy(conf);
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory starting the embedded broker");
    }
    sd_err_t rc = sd_kafka_new(SD_KAFKA_PRODUCER, conf, "embedded",
                               "the embedded broker's host client", &e->host, err);
    if (rc != SD_OK) {
        free(e);
        return rc;
    }
    e->cluster = rd_kafka_mock_cluster_new(e->host, brokers);
    if (!e->cluster) {
        rd_kafka_destroy(e->host);
        free(e);
        return sd_error_set(err, SD_ERR_FATAL, "embedded",
                            "cannot start the embedded broker's %d brokers", brokers);
    }
    *out = e;
    return SD_OK;
}

sd_err_t sd_embedded_create_topic(sd_embedded_t *e, const char *topic, int partitions,
                                  sd_error_t *err)
{
    rd_kafka_resp_err_t rc = rd_kafka_mock_topic_create(e->cluster, topic, partitions, 1);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sd_error_set(err, SD_ERR_FATAL, "embedded", "cannot create topic %s: %s", topic,
                            rd_kafka_err2str(rc));
    return SD_OK;
}

const char *sd_embedded_bootstraps(const sd_embedded_t *e)
{
    return rd_kafka_mock_cluster_bootstraps(e->cluster);
}

rd_kafka_mock_cluster_t *sd_embedded_cluster(sd_embedded_t *e) { return e->cluster; }

void sd_embedded_stop(sd_embedded_t *e)
{
    if (!e)
        return;
    rd_kafka_mock_cluster_destroy(e->cluster);
    rd_kafka_destroy(e->host);
    free(e);
}
