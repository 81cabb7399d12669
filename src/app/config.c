#define _POSIX_C_SOURCE 200809L
#include "sessiond/config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sessiond/timefmt.h"

sd_err_t sd_config_check_clock(sd_error_t *err)
{
    const char *at = getenv("SESSIOND_NOW");
    int64_t ms;
    if (at && *at && sd_time_parse_rfc3339(at, strlen(at), &ms, err) != SD_OK)
        return sd_error_set(err, SD_ERR_INVALID, "SESSIOND_NOW",
                            "SESSIOND_NOW is not an RFC 3339 time: '%s'", at);
    return SD_OK;
}

int64_t sd_config_now_ms(void)
{
    /* Read once: the frozen clock holds for the whole process. */
    static int frozen = -1;
    static int64_t frozen_ms;
    if (frozen < 0) {
        const char *at = getenv("SESSIOND_NOW");
        sd_error_t err;
        frozen = at && *at && sd_time_parse_rfc3339(at, strlen(at), &frozen_ms, &err) == SD_OK;
    }
    if (frozen)
        return frozen_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
