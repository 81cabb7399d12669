/* sessiond run: the daemon. */
#include <stdio.h>
#include <string.h>

#include "sessiond/commands.h"
#include "sessiond/http.h"
#include "sessiond/log.h"
#include "sessiond/pipeline_cli.h"
#include "sessiond/service.h"

static const char usage[] =
    "usage: sessiond run --brokers HOSTS|embedded --store URI [options]\n"
    "\n"
    "Consumes task events, keeps the sessions in the store and publishes every\n"
    "session change.  SIGTERM or SIGINT: finish or abort the batch in flight,\n"
    "commit, leave the group and exit 0; a second signal exits at once.\n"
    "--brokers embedded runs librdkafka's mock cluster in this process.\n"
    "HTTP (--http-addr): /healthz, /readyz, /metrics and the session API.\n"
    "exit status: 0 stopped by a signal, 1 fatal error, 2 usage or configuration\n";

static sd_err_t start_embedded(sd_embedded_t **out, const sd_pipeline_config_t *cfg,
                               int64_t partitions, sd_error_t *err)
{
    sd_err_t rc = sd_embedded_start(3, out, err);
    const char *named[] = {cfg->output_topic, cfg->dlq_topic};
    for (size_t i = 0; rc == SD_OK && i < cfg->n_inputs + 2; i++) {
        const char *topic = i < cfg->n_inputs ? cfg->inputs[i] : named[i - cfg->n_inputs];
        if (topic[0] != '^')
            rc = sd_embedded_create_topic(*out, topic, (int)partitions, err);
    }
    if (rc != SD_OK)
        return rc;
    sd_log(SD_LOG_INFO, "embedded", "embedded broker started: it keeps nothing on disk",
           "bootstrap=%s brokers=3 partitions=%lld", sd_embedded_bootstraps(*out),
           (long long)partitions);
    return SD_OK;
}

/* systemd's Type=notify: ready once the member is in its group, whether or
 * not it was given partitions (a group may have more members than the
 * input has partitions). */
static void tell_service_manager(void *arg, int partitions)
{
    (void)arg;
    char status[64];
    snprintf(status, sizeof status, "in the group, %d partitions assigned", partitions);
    sd_service_ready(status);
}

/* What the options cannot say alone: an embedded broker's partitions, and
 * a rejoin that does not come before the stall it follows. */
static sd_err_t check_options(const sd_pipeline_cli_t *c, int64_t partitions, sd_error_t *err)
{
    if (partitions < 1)
        return sd_error_set(err, SD_ERR_INVALID, "partitions", "--partitions must be at least 1");
    if (c->cfg.rejoin_after_ms && c->cfg.rejoin_after_ms < c->cfg.stall_ms)
        return sd_error_set(err, SD_ERR_INVALID, "rejoin-after",
                            "--rejoin-after (%lld ms) must not be shorter than --stall-timeout "
                            "(%lld ms): a member says it is stalled before it gives its "
                            "partitions back",
                            (long long)c->cfg.rejoin_after_ms, (long long)c->cfg.stall_ms);
    return SD_OK;
}

/* Checks the brokers, opens the store, starts the HTTP server (unless
 * http_addr is "off") and runs the pipeline until it is stopped.  Returns
 * SD_OK once stopped by a signal, or the error that stopped it. */
static sd_err_t serve(sd_pipeline_cli_t *c, const char *http_addr, const char *http_token,
                      sd_error_t *err)
{
    sd_store_t *store = NULL;
    sd_http_t *http = NULL;
    sd_pipeline_stats_t stats = {0};
    sd_http_config_t http_cfg = {.addr = http_addr,
                                 .token = http_token && *http_token ? http_token : NULL,
                                 .store = &c->store,
                                 .stats = &stats,
                                 .kafka = &c->cfg.kafka,
                                 .input_topic = c->cfg.inputs[0],
                                 .now_ms = c->cfg.now_ms,
                                 .clock_arg = c->cfg.clock_arg};
    sd_err_t rc;
    if ((rc = sd_pipeline_cli_preflight(c, 1, 1, err)) != SD_OK)
        goto done;
    if ((rc = sd_pipeline_cli_open_store(c, &store, err)) != SD_OK)
        goto done;
    if (strcmp(http_addr, "off") != 0 && (rc = sd_http_start(&http_cfg, &http, err)) != SD_OK)
        goto done;
    c->cfg.on_assigned = tell_service_manager;
    rc = sd_pipeline_run(&c->cfg, store, sd_pipeline_cli_trap_signals(), &stats, err);
done:
    sd_http_stop(http);
    sd_store_close(store);
    return rc;
}

int sd_cmd_run(int argc, char **argv)
{
    sd_pipeline_cli_t c;
    sd_pipeline_cli_init(&c, "sessiond");
    int64_t partitions = 4;
    const char *http_addr = "127.0.0.1:8080", *http_token = NULL;
    c.cfg.sweep_interval_ms = 60000;
    c.cfg.stall_ms = 60000;
    c.cfg.rejoin_after_ms = 300000;
    const sd_option_t opts[] = {
        SD_PIPELINE_OPTIONS(&c),
        {"group", SD_OPT_STRING, &c.cfg.group, "G", "consumer group (default sessiond)", NULL},
        {"partitions", SD_OPT_INT, &partitions, "N",
         "embedded broker: partitions per topic (default 4)", NULL},
        {"sweep-interval", SD_OPT_DURATION_OFF, &c.cfg.sweep_interval_ms, "D",
         "how often to publish expiry events for sessions past their TTL (default 60s; "
         "0: never, another member sweeps)", NULL},
        {"stall-timeout", SD_OPT_DURATION_OFF, &c.cfg.stall_ms, "D",
         "not ready after D holding partitions without progress (default 60s; 0: never)",
         NULL},
        {"rejoin-after", SD_OPT_DURATION_OFF, &c.cfg.rejoin_after_ms, "D",
         "give the partitions back (leave the group and join again) after D without progress "
         "(default 5m; 0: never)", NULL},
        {"http-addr", SD_OPT_STRING, &http_addr, "HOST:PORT",
         "HTTP health, metrics and API (default 127.0.0.1:8080; port 0: any; off)", NULL},
        {"http-token", SD_OPT_STRING, &http_token, "T",
         "bearer token DELETE requires (set it in the environment, not on the command line)",
         NULL},
    };
    sd_error_t err = {0};
    size_t n_pos;
    int help = 0, status = 2;
    sd_embedded_t *embedded = NULL;
    if (sd_options_parse(opts, sizeof opts / sizeof opts[0], &c.props, argc, argv, usage, NULL, 0,
                         &n_pos, &help, &err) != SD_OK ||
        (!help && (sd_pipeline_cli_finish(&c, &err) != SD_OK ||
                   check_options(&c, partitions, &err) != SD_OK))) {
        fprintf(stderr, "sessiond run: %s\n", err.message);
        goto done;
    }
    if (help) {
        status = 0;
        goto done;
    }
    if (strcmp(c.brokers, "embedded") == 0) {
        if (start_embedded(&embedded, &c.cfg, partitions, &err) != SD_OK) {
            fprintf(stderr, "sessiond run: %s\n", err.message);
            goto done;
        }
        c.cfg.kafka.brokers = sd_embedded_bootstraps(embedded);
        c.cfg.kafka.embedded = 1;
    }
    status = 0;
    if (serve(&c, http_addr, http_token, &err) != SD_OK) {
        fprintf(stderr, "sessiond run: %s\n", err.message);
        status = 1;
    }
done:
    sd_embedded_stop(embedded);
    sd_pipeline_cli_free(&c);
    return status;
}
