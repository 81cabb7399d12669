/* HTTP for operators and API clients.  libmicrohttpd runs each
 * connection on a thread of its own, so that a request waiting on a store
 * or broker that went silent holds up no other: /healthz and /readyz never
 * wait on either (readiness reads the pipeline's counters and the store
 * watch, store_watch.h).  The API's store handle and producer are used by
 * one request at a time (the `api` lock). */
#define _POSIX_C_SOURCE 200809L
#include "sessiond/http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sessiond/clock.h"
#include "sessiond/event.h"
#include "sessiond/log.h"
#include "sessiond/metrics.h"
#include "sessiond/session_json.h"
#include "sessiond/timefmt.h"
#include "path.h"
#include "store_watch.h"

#define TASK_PREFIX "/api/v1/sessions/task/"
#define SHORT_PREFIX "/api/v1/sessions/"
#define SEGMENT_MAX 2048 /* bytes of a decoded id, NUL included */

struct sd_http {
    sd_http_config_t cfg;
    struct MHD_Daemon *daemon;
    sd_store_watch_t *watch;
    pthread_mutex_t api;       /* store and producer */
    pthread_mutex_t live_lock; /* the live sample below */
    sd_store_t *store;
    sd_producer_t *producer;
    int64_t started_ms;
    int port;
    /* live sessions by task type, sampled for /metrics */
    sd_type_count_t *live;
    size_t n_live;
    int live_known;
    int64_t live_sampled; /* monotonic ms; 0: never */
};

#define LIVE_SAMPLE_MS 15000

static int64_t now_ms(const sd_http_t *h) { return h->cfg.now_ms(h->cfg.clock_arg); }

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body /* owned; NULL: out of memory */)
{
    if (!body)
        return MHD_NO; /* libmicrohttpd closes the connection */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, DELETE");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, char *body)
{
    return reply(c, status, "application/json", body);
}

static enum MHD_Result reply_error(const sd_http_t *h, struct MHD_Connection *c,
                                   unsigned status, const char *message, const char *detail)
{
    return reply_json(c, status, sd_error_json(message, detail, now_ms(h)));
}

/* Counting live sessions reads the whole collection's index: at most one
 * count per LIVE_SAMPLE_MS, whatever the scrape interval.  A failed count
 * drops the sample (the family is left out) until the store answers.
 * Called with the api lock held; the sample changes under live_lock. */
static void sample_live(sd_http_t *h)
{
    int64_t mono = sd_monotonic_ms();
    if (h->live_sampled && mono - h->live_sampled < LIVE_SAMPLE_MS)
        return;
    h->live_sampled = mono;
    sd_type_count_t *live = NULL;
    size_t n_live = 0;
    sd_error_t err;
    int known = sd_store_count_by_type(h->store, now_ms(h), &live, &n_live, &err) == SD_OK;
    if (!known) {
        sd_log(SD_LOG_WARN, "http", "cannot count live sessions for /metrics", "error=%s",
               SD_LOG_Q(err.message));
        live = NULL;
        n_live = 0;
    }
    pthread_mutex_lock(&h->live_lock);
    free(h->live);
    h->live = live;
    h->n_live = n_live;
    h->live_known = known;
    pthread_mutex_unlock(&h->live_lock);
}

static const char *not_ready_reason(sd_http_t *h, char *buf, size_t cap);

/* The live sample is taken only when no API request holds the store: a
 * scrape never waits on it (the last sample stays).  sessiond_ready is
 * what /readyz would answer, decided by the same function. */
static enum MHD_Result get_metrics(sd_http_t *h, struct MHD_Connection *c)
{
    if (pthread_mutex_trylock(&h->api) == 0) {
        sample_live(h);
        pthread_mutex_unlock(&h->api);
    }
    char buf[640];
    int ready = not_ready_reason(h, buf, sizeof buf) == NULL;
    pthread_mutex_lock(&h->live_lock);
    sd_metrics_input_t in = {h->cfg.stats, h->started_ms, sd_monotonic_ms(), SESSIOND_VERSION,
                             h->live_known, h->live, h->n_live, ready};
    char *text = sd_metrics_render(&in);
    pthread_mutex_unlock(&h->live_lock);
    return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
}

static char *status_json(const char *status, const char *reason)
{
    json_t *o = json_pack("{s:s}", "status", status);
    if (o && reason)
        json_object_set_new(o, "reason", json_string(reason));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* Ready: the store answers, Kafka is not failing, no outage is being
 * waited out, the consumer is in the group (holding partitions, or none
 * because the group has more members than them), and it makes progress
 * on the partitions it holds (stats.h).  Otherwise the reason, in buf. */
static const char *not_ready_reason(sd_http_t *h, char *buf, size_t cap)
{
    const sd_pipeline_stats_t *s = h->cfg.stats;
    int64_t stalled = sd_stats_stalled_ms(s, sd_monotonic_ms());
    const char *store = sd_store_watch_problem(h->watch, buf, cap);
    if (store)
        return store;
    if (!atomic_load(&s->kafka_ok)) {
        sd_stats_kafka_problem(h->cfg.stats, buf, cap);
        return buf;
    }
    if (atomic_load(&s->paused))
        return "paused while waiting out an outage";
    if (atomic_load(&s->rebalances) == 0)
        return "joining the consumer group";
    if (atomic_load(&s->partitions_lost))
        return "joining the consumer group again: its partitions were lost";
    if (stalled) {
        snprintf(buf, cap, "no progress for %lld s on the %d partitions it holds",
                 (long long)(stalled / 1000), atomic_load(&s->assigned_partitions));
        return buf;
    }
    return NULL;
}

static enum MHD_Result get_sessions(sd_http_t *h, struct MHD_Connection *c, const char *key,
                                    int by_task)
{
    sd_session_list_t list;
    sd_error_t err;
    int64_t now = now_ms(h);
    pthread_mutex_lock(&h->api);
    sd_err_t rc = by_task ? sd_store_get(h->store, key, now, &list, &err)
                          : sd_store_list_by_short_id(h->store, key, now, &list, &err);
    pthread_mutex_unlock(&h->api);
    if (rc != SD_OK) {
        sd_log(SD_LOG_WARN, "http", "store read failed", "error=%s", SD_LOG_Q(err.message));
        return reply_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "store unavailable", err.message);
    }
    enum MHD_Result ok;
    if (list.count == 0)
        ok = reply_error(h, c, MHD_HTTP_NOT_FOUND, "session not found", key);
    else if (by_task)
        ok = reply_json(c, MHD_HTTP_OK, sd_session_by_task_id_json(&list.items[0], now));
    else
        ok = reply_json(c, MHD_HTTP_OK,
                        sd_sessions_by_short_id_json(key, list.items, list.count, now));
    sd_session_list_free(&list);
    return ok;
}

/* Compares digests so the time taken says nothing about the token. */
static int token_matches(const char *expected, const char *given)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)expected, strlen(expected), a);
    SHA256((const unsigned char *)given, strlen(given), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

static int new_event_id(char out[37])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* UUID version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
    return 0;
}

/* Publishes one event keyed by task_id and waits until the broker has it,
 * under the api lock (the producer is shared by every connection). */
static sd_err_t publish_and_wait(sd_http_t *h, const char *task_id, const char *json,
                                 sd_error_t *err)
{
    pthread_mutex_lock(&h->api);
    sd_err_t rc = sd_producer_send(h->producer, h->cfg.input_topic, task_id, json, strlen(json),
                                   NULL, 0, err);
    if (rc != SD_OK)
        goto done;
    rc = sd_producer_flush(h->producer, 10000, err);
done:
    pthread_mutex_unlock(&h->api);
    return rc;
}

static enum MHD_Result delete_session(sd_http_t *h, struct MHD_Connection *c,
                                      const char *task_id)
{
    if (h->cfg.token) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !token_matches(h->cfg.token, auth + 7))
            return reply_error(h, c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                               "DELETE needs Authorization: Bearer <SESSIOND_HTTP_TOKEN>");
    }
    char event_id[37], at[SD_TIME_BUFSZ];
    if (new_event_id(event_id))
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no random bytes", NULL);
    sd_time_format(now_ms(h), at);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "schema", "task-event/v1", "event_id",
                           event_id, "event_type", "session.delete_requested", "task_id",
                           task_id, "occurred_at", at);
    char *json = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!json)
        return MHD_NO;
    sd_event_t parsed;
    sd_error_t err;
    if (sd_event_parse(json, strlen(json), &parsed, &err) != SD_OK) { /* e.g. too long an id */
        free(json);
        return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "invalid task_id", err.message);
    }
    sd_event_clear(&parsed);
    sd_err_t rc = publish_and_wait(h, task_id, json, &err);
    free(json);
    if (rc != SD_OK)
        return reply_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot publish", err.message);
    sd_log(SD_LOG_INFO, "http", "delete requested", "task_id=%s event_id=%s", task_id, event_id);
    json_t *body = json_pack("{s:s, s:s, s:s}", "event_id", event_id, "task_id", task_id,
                             "status", "accepted");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return reply_json(c, MHD_HTTP_ACCEPTED, text);
}

/* Whether url is prefix and one more non-empty segment. */
static int last_segment(const char *url, const char *prefix)
{
    size_t n = strlen(prefix);
    return !strncmp(url, prefix, n) && url[n] && !strchr(url + n, '/');
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **state)
{
    (void)version;
    (void)upload_data;
    sd_http_t *h = cls;
    /* No route takes a body: skip whatever is sent, answer at its end. */
    static int seen;
    if (!*state) {
        *state = &seen;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    int get = strcmp(method, "GET") == 0, del = strcmp(method, "DELETE") == 0;
    if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/metrics")) {
        if (!get)
            return reply_error(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", method);
        if (!strcmp(url, "/healthz"))
            return reply_json(c, MHD_HTTP_OK, status_json("ok", NULL));
        if (!strcmp(url, "/metrics"))
            return get_metrics(h, c);
        char buf[640];
        const char *why = not_ready_reason(h, buf, sizeof buf);
        return reply_json(c, why ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                          status_json(why ? "not ready" : "ready", why));
    }
    /* Routed on the path as sent, then the id decoded: an id may hold a
     * "/" (sent as %2F). */
    int by_task = last_segment(url, TASK_PREFIX);
    int by_short = !by_task && last_segment(url, SHORT_PREFIX);
    if (by_task || by_short) {
        const char *raw = url + strlen(by_task ? TASK_PREFIX : SHORT_PREFIX);
        char id[SEGMENT_MAX];
        if (sd_http_decode_segment(raw, strlen(raw), id, sizeof id) < 0)
            return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "invalid path",
                               "an id must be percent-encoded UTF-8 text, at most 2 KiB");
        if (get)
            return get_sessions(h, c, id, by_task);
        if (del && by_task)
            return delete_session(h, c, id);
        return reply_error(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", method);
    }
    return reply_error(h, c, MHD_HTTP_NOT_FOUND, "not found",
                       sd_http_utf8(url, strlen(url)) ? url : NULL);
}

/* libmicrohttpd would decode the path before it reaches on_request (and
 * the query's values, which no route reads): keep it as sent. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static sd_err_t parse_addr(const char *addr, struct sockaddr_in *sa, sd_error_t *err)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || (size_t)(colon - addr) >= sizeof host || colon[1] == '\0' || *end ||
        port < 0 || port > 65535)
        return sd_error_set(err, SD_ERR_INVALID, "http-addr",
                            "--http-addr is HOST:PORT (IPv4) or off, not '%s'", addr);
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa->sin_addr) != 1)
        return sd_error_set(err, SD_ERR_INVALID, "http-addr",
                            "--http-addr wants an IPv4 address, not '%s'", host);
    return SD_OK;
}

sd_err_t sd_http_start(const sd_http_config_t *cfg, sd_http_t **out, sd_error_t *err)
{
    struct sockaddr_in sa;
    sd_err_t rc = parse_addr(cfg->addr, &sa, err);
    if (rc != SD_OK)
        return rc;
    sd_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory");
    h->cfg = *cfg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_mutex_init(&h->api, NULL);
    pthread_mutex_init(&h->live_lock, NULL);
    if ((rc = sd_store_open(cfg->store, &h->store, err)) != SD_OK)
        goto done;
    if ((rc = sd_store_watch_start(cfg->store, &h->watch, err)) != SD_OK)
        goto done;
    if ((rc = sd_producer_new(cfg->kafka, NULL, &h->producer, err)) != SD_OK)
        goto done;
    h->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO, 0, NULL,
        NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
    if (!h->daemon) {
        rc = sd_error_set(err, SD_ERR_FATAL, "http-addr",
                          "cannot listen on %s (in use? --http-addr off disables HTTP)", cfg->addr);
        goto done;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(sa.sin_port);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
    sd_log(SD_LOG_INFO, "http", "listening", "addr=%s:%d", host, h->port);
    *out = h;
done:
    if (rc != SD_OK)
        sd_http_stop(h);
    return rc;
}

void sd_http_stop(sd_http_t *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    sd_store_watch_stop(h->watch);
    sd_producer_destroy(h->producer);
    sd_store_close(h->store);
    free(h->live);
    pthread_mutex_destroy(&h->api);
    pthread_mutex_destroy(&h->live_lock);
    free(h);
}
