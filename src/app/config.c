#define _POSIX_C_SOURCE 200809L
#include "sessiond/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sessiond/timefmt.h"

const char sd_config_store_help[] =
    "  --store URI           sqlite:PATH, mongodb://… or mongodb+srv://…\n"
    "                        (SESSIOND_STORE, or MONGODB_URI)\n"
    "  --database NAME       MongoDB database (SESSIOND_DATABASE, or MONGODB_DATABASE;\n"
    "                        default: the URI's, else \"sessions\")\n"
    "  --collection NAME     MongoDB collection (SESSIOND_COLLECTION; default sessions)\n"
    "  --write-concern W     majority or a node count (SESSIOND_WRITE_CONCERN; default majority)\n"
    "  --session-ttl D       sessions expire D after their last change, e.g. 7d, 36h\n"
    "                        (SESSIOND_SESSION_TTL; default 7d)\n";

static const char *env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    if (v && *v)
        return v;
    v = fallback ? getenv(fallback) : NULL;
    return v && *v ? v : NULL;
}

int sd_config_store_flag(sd_store_config_t *cfg, const char *name, const char *value,
                         sd_err_t *rc, sd_error_t *err)
{
    *rc = SD_OK;
    if (strcmp(name, "store") == 0)
        cfg->uri = value;
    else if (strcmp(name, "database") == 0)
        cfg->database = value;
    else if (strcmp(name, "collection") == 0)
        cfg->collection = value;
    else if (strcmp(name, "write-concern") == 0)
        cfg->write_concern = value;
    else if (strcmp(name, "session-ttl") == 0) {
        if ((*rc = sd_duration_parse(value, &cfg->session_ttl_ms, err)) != SD_OK)
            snprintf(err->field, sizeof err->field, "session-ttl");
    } else
        return 0;
    return 1;
}

sd_err_t sd_config_store_from_env(sd_store_config_t *cfg, sd_error_t *err)
{
    static const struct {
        const char *flag, *var, *fallback;
    } vars[] = {
        {"store", "SESSIOND_STORE", "MONGODB_URI"},
        {"database", "SESSIOND_DATABASE", "MONGODB_DATABASE"},
        {"collection", "SESSIOND_COLLECTION", NULL},
        {"write-concern", "SESSIOND_WRITE_CONCERN", NULL},
        {"session-ttl", "SESSIOND_SESSION_TTL", NULL},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = env(vars[i].var, vars[i].fallback);
        sd_err_t rc;
        if (v && sd_config_store_flag(cfg, vars[i].flag, v, &rc, err) && rc != SD_OK) {
            snprintf(err->field, sizeof err->field, "%s", vars[i].var);
            return rc;
        }
    }
    return SD_OK;
}

int64_t sd_config_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
