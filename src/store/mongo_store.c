#include "sessiond/store_backend.h"

sd_err_t sd_mongo_store_open(const sd_store_config_t *cfg, sd_store_t **out, sd_error_t *err)
{
    (void)cfg;
    *out = NULL;
    return sd_error_set(err, SD_ERR_FATAL, "store", "mongodb store not built yet");
}
