/* Option groups shared by the commands (see options.h for the twins). */
#ifndef SESSIOND_CONFIG_H
#define SESSIOND_CONFIG_H

#include <stdint.h>

#include "sessiond/options.h"
#include "sessiond/store.h"

/* The store's options, writing into an sd_store_config_t *cfg. */
#define SD_STORE_OPTIONS(cfg)                                                               \
    {"store", SD_OPT_STRING, &(cfg)->uri, "URI",                                            \
     "sqlite:PATH, mongodb://… or mongodb+srv://…", "MONGODB_URI"},                          \
    {"database", SD_OPT_STRING, &(cfg)->database, "NAME",                                   \
     "MongoDB database (default: the URI's, else sessions)", "MONGODB_DATABASE"},            \
    {"collection", SD_OPT_STRING, &(cfg)->collection, "NAME",                               \
     "MongoDB collection (default sessions)", NULL},                                         \
    {"write-concern", SD_OPT_STRING, &(cfg)->write_concern, "W",                            \
     "majority (default) or a number of nodes", NULL},                                       \
    {"session-ttl", SD_OPT_DURATION, &(cfg)->session_ttl_ms, "D",                           \
     "sessions expire D after their last change (default 7d)", NULL}

/* The clock the rules see, in UTC milliseconds: the wall clock, or the
 * time SESSIOND_NOW holds (RFC 3339), frozen, for tests and for comparing
 * stores "as of" one instant. */
int64_t sd_config_now_ms(void);

/* SD_ERR_INVALID when SESSIOND_NOW is set but not an RFC 3339 time. */
sd_err_t sd_config_check_clock(sd_error_t *err);

#endif
