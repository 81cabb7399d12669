/* Settings shared by the commands: environment first, flags override. */
#ifndef SESSIOND_CONFIG_H
#define SESSIOND_CONFIG_H

#include <stdint.h>

#include "sessiond/store.h"

/* Store settings from SESSIOND_STORE (or MONGODB_URI), SESSIOND_DATABASE
 * (or MONGODB_DATABASE), SESSIOND_COLLECTION, SESSIOND_WRITE_CONCERN and
 * SESSIOND_SESSION_TTL.  Strings point into the environment. */
sd_err_t sd_config_store_from_env(sd_store_config_t *cfg, sd_error_t *err);

/* Sets one store setting from a flag (--store, --database, --collection,
 * --write-concern, --session-ttl); returns 1 if name was one of them. */
int sd_config_store_flag(sd_store_config_t *cfg, const char *name, const char *value,
                         sd_err_t *rc, sd_error_t *err);

/* Help text for those flags. */
extern const char sd_config_store_help[];

/* Wall-clock now in UTC milliseconds. */
int64_t sd_config_now_ms(void);

#endif
