#define _POSIX_C_SOURCE 200809L
#include "kafkafx.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessiond/clock.h"

static int real_broker;

int fx_kafka_kind_set(const char *kind)
{
    if (strcmp(kind, "mock") != 0 && strcmp(kind, "kafka") != 0)
        return -1;
    real_broker = strcmp(kind, "kafka") == 0;
    return 0;
}

const char *fx_kafka_kind(void) { return real_broker ? "kafka" : "mock"; }
int fx_kafka_is_real(void) { return real_broker; }

sd_kafka_settings_t fx_kafka_settings(const fx_kafka_t *k)
{
    return (sd_kafka_settings_t){k->bootstraps, NULL, 0, !k->real};
}

static rd_kafka_t *admin_client(const fx_kafka_t *k)
{
    sd_kafka_settings_t ks = fx_kafka_settings(k);
    static const char *const quiet[] = {"log_level", "3", NULL};
    rd_kafka_conf_t *conf;
    sd_error_t err;
    ck_assert_msg(sd_kafka_conf(&ks, SD_KAFKA_PRODUCER, quiet, &conf, &err) == SD_OK, "%s",
                  err.message);
    char why[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    ck_assert_msg(rk != NULL, "admin client: %s", why);
    return rk;
}

/* Runs one admin request and fails the test on any error but `tolerated`. */
static void admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type, const char *what,
                       const char *topic, rd_kafka_resp_err_t tolerated)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    ck_assert_msg(ev != NULL, "%s %s: no answer within 30 s", what, topic);
    ck_assert_msg(rd_kafka_event_type(ev) == type, "%s %s: unexpected event %s", what, topic,
                  rd_kafka_event_name(ev));
    ck_assert_msg(!rd_kafka_event_error(ev), "%s %s: %s", what, topic,
                  rd_kafka_event_error_string(ev));
    const rd_kafka_topic_result_t **res;
    size_t n;
    if (type == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    else
        res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR || e == tolerated, "%s %s: %s", what,
                      rd_kafka_topic_result_name(res[i]),
                      rd_kafka_topic_result_error_string(res[i]));
    }
    rd_kafka_event_destroy(ev);
}

/* Until every partition of topic has a leader: a new topic's first
 * produce or fetch would otherwise wait out a metadata refresh. */
static void wait_for_leaders(rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    int ready = 0;
    for (int i = 0; i < 100 && !ready; i++) {
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ready = md->topic_cnt == 1 && !md->topics[0].err &&
                    md->topics[0].partition_cnt == partitions;
            for (int p = 0; ready && p < md->topics[0].partition_cnt; p++)
                ready = md->topics[0].partitions[p].leader >= 0 && !md->topics[0].partitions[p].err;
            rd_kafka_metadata_destroy(md);
        }
        if (!ready)
            sd_sleep_ms(100);
    }
    rd_kafka_topic_destroy(t);
    ck_assert_msg(ready, "topic %s: no leader for every partition within 10 s", topic);
}

void fx_kafka_create_topic(fx_kafka_t *k, const char *topic, int partitions)
{
    sd_error_t err;
    if (!k->real) {
        ck_assert_msg(sd_embedded_create_topic(k->mock, topic, partitions, &err) == SD_OK, "%s",
                      err.message);
        return;
    }
    rd_kafka_t *rk = admin_client(k);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    char why[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, why, sizeof why);
    ck_assert_msg(nt != NULL, "%s", why);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "create topic", topic,
               RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_NewTopic_destroy(nt);
    wait_for_leaders(rk, topic, partitions);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static void create_topics(fx_kafka_t *k, int partitions)
{
    k->partitions = partitions;
    snprintf(k->input, sizeof k->input, "%stask-events", k->prefix);
    k->inputs[0] = k->input;
    snprintf(k->output, sizeof k->output, "%ssession-changes", k->prefix);
    snprintf(k->dlq, sizeof k->dlq, "%stask-events.dlq", k->prefix);
    fx_kafka_create_topic(k, k->input, partitions);
    fx_kafka_create_topic(k, k->output, partitions);
    fx_kafka_create_topic(k, k->dlq, partitions);
}

/* Names unique to this process and call: Check runs each test in a
 * process of its own, and tests of several suites share the broker (the
 * clock tells apart processes of earlier runs that had the same pid). */
static void set_prefix(fx_kafka_t *k)
{
    static int calls;
    snprintf(k->prefix, sizeof k->prefix, "sd%d-%lx-%d.", (int)getpid(),
             (unsigned long)sd_monotonic_ms() & 0xfffff, ++calls);
}

static fx_kafka_t *new_kafka(int real)
{
    fx_kafka_t *k = calloc(1, sizeof *k);
    ck_assert_ptr_nonnull(k);
    k->real = real;
    return k;
}

static fx_kafka_t *new_mock(int partitions)
{
    fx_kafka_t *k = new_kafka(0);
    sd_error_t err;
    ck_assert_msg(sd_embedded_start(3, &k->mock, &err) == SD_OK, "%s", err.message);
    snprintf(k->bootstraps, sizeof k->bootstraps, "%s", sd_embedded_bootstraps(k->mock));
    create_topics(k, partitions);
    return k;
}

/* The bootstrap address of the shared broker. */
static void shared_bootstraps(char *out, size_t cap)
{
    const char *given = getenv("SESSIOND_TEST_KAFKA");
    if (given && *given) {
        snprintf(out, cap, "%s", given);
        return;
    }
    const char *dir = getenv("SESSIOND_TEST_KAFKA_DIR");
    ck_assert_msg(dir && *dir, "no Apache Kafka broker: the ctest fixture kafka.start sets "
                               "SESSIOND_TEST_KAFKA_DIR (or set SESSIOND_TEST_KAFKA=HOST:PORT)");
    char path[600];
    snprintf(path, sizeof path, "%s/bootstrap", dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s is missing: did the ctest fixture kafka.start pass?", path);
    ck_assert_msg(fgets(out, (int)cap, f) != NULL, "%s is empty", path);
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
}

fx_kafka_t *fx_kafka_start(int partitions)
{
    if (!real_broker)
        return new_mock(partitions);
    fx_kafka_t *k = new_kafka(1);
    shared_bootstraps(k->bootstraps, sizeof k->bootstraps);
    set_prefix(k);
    create_topics(k, partitions);
    return k;
}

/* scripts/kafka.sh CMD k->dir; for start and restart, the bootstrap
 * address it prints.  The broker is of $SESSIOND_KAFKA_VERSION, as the
 * shared one. */
static void kafka_sh(fx_kafka_t *k, const char *cmd)
{
    const char *script = getenv("SESSIOND_TEST_KAFKA_SH");
    ck_assert_msg(script && *script, "SESSIOND_TEST_KAFKA_SH names scripts/kafka.sh");
    char line[1200];
    snprintf(line, sizeof line, "'%s' %s '%s'", script, cmd, k->dir);
    fflush(NULL);
    FILE *p = popen(line, "r");
    ck_assert_msg(p != NULL, "cannot run %s", line);
    char out[256] = "";
    if (!fgets(out, sizeof out, p))
        out[0] = '\0';
    int status = pclose(p);
    ck_assert_msg(status == 0, "%s failed (exit status %d; its message is above)", line, status);
    if (strcmp(cmd, "stop") != 0) {
        out[strcspn(out, "\r\n")] = '\0';
        ck_assert_msg(out[0], "%s printed no bootstrap address", line);
        snprintf(k->bootstraps, sizeof k->bootstraps, "%s", out);
    }
}

fx_kafka_t *fx_kafka_start_private(int partitions)
{
    if (!real_broker)
        return new_mock(partitions);
    fx_kafka_t *k = new_kafka(1);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(k->dir, sizeof k->dir, "%s/sessiond-kafka-%d", tmp, (int)getpid());
    kafka_sh(k, "start");
    create_topics(k, partitions);
    return k;
}

static pid_t private_pid(const fx_kafka_t *k)
{
    char path[600];
    snprintf(path, sizeof path, "%s/pid", k->dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s is missing", path);
    int pid = 0;
    ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
    fclose(f);
    return (pid_t)pid;
}

void fx_kafka_pause(fx_kafka_t *k)
{
    if (!k->real) {
        for (int b = 1; b <= 3; b++)
            rd_kafka_mock_broker_set_down(sd_embedded_cluster(k->mock), b);
        return;
    }
    ck_assert_msg(k->dir[0], "only a private broker can be paused");
    ck_assert_int_eq(kill(private_pid(k), SIGSTOP), 0);
}

void fx_kafka_resume(fx_kafka_t *k)
{
    if (!k->real) {
        for (int b = 1; b <= 3; b++)
            rd_kafka_mock_broker_set_up(sd_embedded_cluster(k->mock), b);
        return;
    }
    ck_assert_int_eq(kill(private_pid(k), SIGCONT), 0);
}

void fx_kafka_restart(fx_kafka_t *k)
{
    ck_assert_msg(k->real && k->dir[0], "only a private Apache Kafka broker restarts");
    char before[256];
    snprintf(before, sizeof before, "%s", k->bootstraps);
    kafka_sh(k, "restart");
    ck_assert_str_eq(k->bootstraps, before);
}

/* s, kept as long as k (once, however often it is asked for). */
static const char *keep_name(fx_kafka_t *k, const char *s)
{
    for (int i = 0; i < k->n_names; i++)
        if (strcmp(k->names[i], s) == 0)
            return k->names[i];
    ck_assert_int_lt(k->n_names, (int)(sizeof k->names / sizeof k->names[0]));
    snprintf(k->names[k->n_names], sizeof k->names[0], "%s", s);
    return k->names[k->n_names++];
}

const char *fx_kafka_name(fx_kafka_t *k, const char *base)
{
    char want[128];
    snprintf(want, sizeof want, "%s%s", k->prefix, base);
    return keep_name(k, want);
}

const char *fx_kafka_pattern(fx_kafka_t *k, const char *tail)
{
    char regex[128] = "^";
    size_t n = 1;
    for (const char *c = k->prefix; *c && n + 4 < sizeof regex; c++)
        n += (size_t)snprintf(regex + n, sizeof regex - n,
                              strchr(".-", *c) ? "[%c]" : "%c", *c);
    snprintf(regex + n, sizeof regex - n, "%s", tail);
    return keep_name(k, regex);
}

rd_kafka_mock_cluster_t *fx_kafka_mock(fx_kafka_t *k)
{
    return k->mock ? sd_embedded_cluster(k->mock) : NULL;
}

void fx_kafka_stop(fx_kafka_t *k)
{
    if (!k)
        return;
    if (k->mock) {
        sd_embedded_stop(k->mock);
    } else if (k->dir[0]) {
        kafka_sh(k, "stop");
        char line[600];
        snprintf(line, sizeof line, "rm -rf '%s'", k->dir);
        ck_assert_int_eq(system(line), 0);
    } else {
        /* The shared broker outlives the test: leave it as it was. */
        rd_kafka_t *rk = admin_client(k);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_DeleteTopic_t *del[3] = {rd_kafka_DeleteTopic_new(k->input),
                                          rd_kafka_DeleteTopic_new(k->output),
                                          rd_kafka_DeleteTopic_new(k->dlq)};
        rd_kafka_DeleteTopics(rk, del, 3, NULL, q);
        admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "delete topics", k->input,
                   RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
        rd_kafka_DeleteTopic_destroy_array(del, 3);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
    }
    free(k);
}
