#include "sessiond/kafka_admin.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/clock.h"

#define SD_ADMIN_TIMEOUT_MS 15000

sd_err_t sd_kafka_admin_open(const sd_kafka_settings_t *ks, rd_kafka_t **out, sd_error_t *err)
{
    /* a group only so it may assign partitions; it never joins it */
    static const char *const role[] = {"group.id", "sessiond-admin", "enable.auto.commit",
                                       "false", NULL};
    rd_kafka_conf_t *conf;
    sd_err_t rc = sd_kafka_conf(ks, SD_KAFKA_CONSUMER, role, &conf, err);
    if (rc != SD_OK)
        return rc;
    return sd_kafka_new(SD_KAFKA_CONSUMER, conf, "brokers", "a Kafka client", out, err);
}

/* The partitions of md's topics that topics[] names (a name, or a "^regex"
 * pattern compiled in res[]), sorted, into *out; each name or pattern must
 * match a topic.  On failure *out is untouched. */
static sd_err_t match_partitions(const struct rd_kafka_metadata *md, const char *const *topics,
                                 size_t n, const regex_t *res,
                                 rd_kafka_topic_partition_list_t **out, sd_error_t *err)
{
    int *matched = calloc(n + 1, sizeof *matched);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    sd_err_t rc = SD_OK;
    if (!matched) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory");
        goto done;
    }
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        int wanted = 0;
        for (size_t i = 0; !mt->err && i < n; i++)
            if (topics[i][0] == '^' ? regexec(&res[i], mt->topic, 0, NULL, 0) == 0
                                    : strcmp(mt->topic, topics[i]) == 0)
                wanted = matched[i] = 1;
        for (int p = 0; wanted && p < mt->partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, mt->topic, mt->partitions[p].id);
    }
    for (size_t i = 0; i < n; i++)
        if (!matched[i]) {
            rc = sd_error_set(err, SD_ERR_FATAL, "input-topics",
                              "no topic on the cluster matches '%s'", topics[i]);
            goto done;
        }
    rd_kafka_topic_partition_list_sort(list, NULL, NULL);
    *out = list;
    list = NULL;
done:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    free(matched);
    return rc;
}

/* Every partition of the wanted topics (names, or "^regex" patterns,
 * compiled once) into *out; each name or pattern must match a topic. */
static sd_err_t list_partitions(rd_kafka_t *rk, const char *const *topics, size_t n,
                                rd_kafka_topic_partition_list_t **out, sd_error_t *err)
{
    regex_t *res = calloc(n + 1, sizeof *res);
    size_t compiled = 0; /* the patterns among topics[0, compiled) are in res */
    const struct rd_kafka_metadata *md = NULL;
    sd_err_t rc = SD_OK;
    if (!res) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory");
        goto done;
    }
    for (; compiled < n; compiled++)
        if (topics[compiled][0] == '^' &&
            regcomp(&res[compiled], topics[compiled], REG_EXTENDED | REG_NOSUB) != 0) {
            rc = sd_error_set(err, SD_ERR_FATAL, "input-topics",
                              "'%s' is not a valid regular expression", topics[compiled]);
            goto done;
        }
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 1, NULL, &md, SD_ADMIN_TIMEOUT_MS);
    if (kerr) {
        md = NULL;
        rc = sd_error_set(err, SD_ERR_TRANSIENT, "brokers", "cannot read the cluster's topics: %s",
                          rd_kafka_err2str(kerr));
        goto done;
    }
    rc = match_partitions(md, topics, n, res, out, err);
done:
    if (md)
        rd_kafka_metadata_destroy(md);
    for (size_t i = 0; i < compiled; i++)
        if (topics[i][0] == '^')
            regfree(&res[i]);
    free(res);
    return rc;
}

/* The timestamp of the last message of a partition, or -1. */
static int64_t last_timestamp(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t end)
{
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(at, topic, partition)->offset = end - 1;
    int64_t ts = -1;
    if (rd_kafka_assign(rk, at) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int waited = 0; ts < 0 && waited < SD_ADMIN_TIMEOUT_MS; waited += 100) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (m && !m->err)
                ts = rd_kafka_message_timestamp(m, NULL);
            if (m)
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(rk, NULL);
    }
    rd_kafka_topic_partition_list_destroy(at);
    return ts;
}

static sd_err_t start_at_time(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *start,
                              const rd_kafka_topic_partition_list_t *end, int64_t from_ms,
                              sd_error_t *err)
{
    for (int i = 0; i < start->cnt; i++)
        start->elems[i].offset = from_ms;
    rd_kafka_resp_err_t kerr = rd_kafka_offsets_for_times(rk, start, SD_ADMIN_TIMEOUT_MS);
    for (int i = 0; !kerr && i < start->cnt; i++)
        kerr = start->elems[i].err;
    if (kerr)
        return sd_error_set(err, SD_ERR_FATAL, "from", "cannot look offsets up by time: %s",
                            rd_kafka_err2str(kerr));
    for (int i = 0; i < start->cnt; i++) {
        rd_kafka_topic_partition_t *s = &start->elems[i];
        if (s->offset >= 0)
            continue;
        /* "Nothing at or after the time" — unless the partition's last
         * message is that recent: then the broker did not look (the mock
         * cluster answers every time lookup with "nothing"). */
        s->offset = end->elems[i].offset;
        int64_t last = s->offset > 0 ? last_timestamp(rk, s->topic, s->partition, s->offset) : -1;
        if (last >= from_ms)
            return sd_error_set(err, SD_ERR_FATAL, "from",
                                "the broker found no message of %s [%d] at or after the time, "
                                "yet its last one is from after it: it cannot look offsets up "
                                "by time, and --from TIME needs a Kafka broker that can "
                                "(librdkafka's mock cluster cannot); use --from earliest",
                                s->topic, (int)s->partition);
    }
    return SD_OK;
}

sd_err_t sd_kafka_replay_range(rd_kafka_t *rk, const char *const *topics, size_t n_topics,
                               int64_t from_ms, rd_kafka_topic_partition_list_t **start,
                               rd_kafka_topic_partition_list_t **end, sd_error_t *err)
{
    *start = *end = NULL;
    sd_err_t rc;
    if ((rc = list_partitions(rk, topics, n_topics, end, err)) != SD_OK)
        goto done;
    *start = rd_kafka_topic_partition_list_copy(*end);
    for (int i = 0; i < (*end)->cnt; i++) {
        rd_kafka_topic_partition_t *e = &(*end)->elems[i];
        int64_t low, high;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            rk, e->topic, e->partition, &low, &high, SD_ADMIN_TIMEOUT_MS);
        if (kerr) {
            rc = sd_error_set(err, SD_ERR_TRANSIENT, "brokers",
                              "cannot read the offsets of %s [%d]: %s", e->topic,
                              (int)e->partition, rd_kafka_err2str(kerr));
            goto done;
        }
        e->offset = high;
        (*start)->elems[i].offset = low;
    }
    if (from_ms != SD_FROM_EARLIEST)
        rc = start_at_time(rk, *start, *end, from_ms, err);
done:
    if (rc != SD_OK) {
        if (*start)
            rd_kafka_topic_partition_list_destroy(*start);
        if (*end)
            rd_kafka_topic_partition_list_destroy(*end);
        *start = *end = NULL;
    }
    return rc;
}

sd_err_t sd_kafka_group_members(rd_kafka_t *rk, const char *group, int *members,
                                sd_error_t *err)
{
    sd_err_t rc = SD_OK;
    const struct rd_kafka_group_list *list;
    rd_kafka_resp_err_t kerr = rd_kafka_list_groups(rk, group, &list, SD_ADMIN_TIMEOUT_MS);
    *members = -1;
    if (kerr == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE) {
        rc = SD_OK;
    } else if (kerr) {
        rc = sd_error_set(err, SD_ERR_TRANSIENT, "group", "cannot describe consumer group %s: %s",
                          group, rd_kafka_err2str(kerr));
    } else {
        *members = 0;
        for (int i = 0; i < list->group_cnt; i++)
            if (strcmp(list->groups[i].group, group) == 0)
                *members = list->groups[i].member_cnt;
        rd_kafka_group_list_destroy(list);
    }
    return rc;
}

/* The answer to one CreateTopics or DeleteTopics request on q: SD_OK when
 * every topic's result is success or `tolerated`, else SD_ERR_FATAL naming
 * the first topic refused. */
static sd_err_t topics_answer(rd_kafka_queue_t *q, int creating, rd_kafka_resp_err_t tolerated,
                              sd_error_t *err)
{
    const char *what = creating ? "create" : "delete";
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, SD_ADMIN_TIMEOUT_MS + 5000);
    if (!ev)
        return sd_error_set(err, SD_ERR_TRANSIENT, "brokers",
                            "no answer to the request to %s topics within %d s", what,
                            (SD_ADMIN_TIMEOUT_MS + 5000) / 1000);
    sd_err_t rc = SD_OK;
    if (rd_kafka_event_error(ev)) {
        rc = sd_error_set(err, SD_ERR_FATAL, "brokers", "cannot %s topics: %s", what,
                          rd_kafka_event_error_string(ev));
    } else {
        const rd_kafka_topic_result_t **res;
        size_t n;
        res = creating ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
                       : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        for (size_t i = 0; rc == SD_OK && i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != tolerated)
                rc = sd_error_set(err, SD_ERR_FATAL, "brokers", "cannot %s topic %s: %s", what,
                                  rd_kafka_topic_result_name(res[i]),
                                  rd_kafka_topic_result_error_string(res[i]));
        }
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* Until every partition of the topics has a leader (a new topic's first
 * produce or fetch would otherwise wait out a metadata refresh), or the
 * bound passes. */
static sd_err_t wait_for_leaders(rd_kafka_t *rk, const char *const *topics, size_t n,
                                 int partitions, sd_error_t *err)
{
    int64_t deadline = sd_monotonic_ms() + SD_ADMIN_TIMEOUT_MS;
    while (sd_monotonic_ms() < deadline) {
        const struct rd_kafka_metadata *md;
        size_t led = 0;
        if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int t = 0; t < md->topic_cnt; t++) {
                const struct rd_kafka_metadata_topic *mt = &md->topics[t];
                int ok = !mt->err && mt->partition_cnt == partitions;
                for (int p = 0; ok && p < mt->partition_cnt; p++)
                    ok = mt->partitions[p].leader >= 0;
                for (size_t i = 0; ok && i < n; i++)
                    led += strcmp(mt->topic, topics[i]) == 0;
            }
            rd_kafka_metadata_destroy(md);
        }
        if (led == n)
            return SD_OK;
        sd_sleep_ms(100);
    }
    return sd_error_set(err, SD_ERR_TRANSIENT, "brokers",
                        "the new topics have no leader for every partition within %d s",
                        SD_ADMIN_TIMEOUT_MS / 1000);
}

sd_err_t sd_kafka_create_topics(rd_kafka_t *rk, const char *const *topics, size_t n,
                                int partitions, sd_error_t *err)
{
    rd_kafka_NewTopic_t **nt = calloc(n, sizeof *nt);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    sd_err_t rc = SD_OK;
    char why[256];
    if (!nt || !q) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (!(nt[i] = rd_kafka_NewTopic_new(topics[i], partitions, -1, why, sizeof why))) {
            rc = sd_error_set(err, SD_ERR_INVALID, "", "cannot ask for topic %s: %s", topics[i],
                              why);
            goto done;
        }
    rd_kafka_CreateTopics(rk, nt, n, NULL, q);
    if ((rc = topics_answer(q, 1, RD_KAFKA_RESP_ERR_NO_ERROR, err)) != SD_OK)
        goto done;
    rc = wait_for_leaders(rk, topics, n, partitions, err);
done:
    for (size_t i = 0; nt && i < n; i++)
        if (nt[i])
            rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
}

sd_err_t sd_kafka_delete_topics(rd_kafka_t *rk, const char *const *topics, size_t n,
                                sd_error_t *err)
{
    rd_kafka_DeleteTopic_t **del = calloc(n, sizeof *del);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    sd_err_t rc = SD_OK;
    if (!del || !q) {
        rc = sd_error_set(err, SD_ERR_NOMEM, "", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        del[i] = rd_kafka_DeleteTopic_new(topics[i]);
    rd_kafka_DeleteTopics(rk, del, n, NULL, q);
    rc = topics_answer(q, 0, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, err);
done:
    for (size_t i = 0; del && i < n; i++)
        if (del[i])
            rd_kafka_DeleteTopic_destroy(del[i]);
    free(del);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
}
