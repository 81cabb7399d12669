#define _POSIX_C_SOURCE 200809L
#include "sessiond/config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sessiond/timefmt.h"

/* SESSIOND_NOW, read once: the frozen clock holds for the whole process. */
typedef enum { CLOCK_UNREAD, CLOCK_WALL, CLOCK_FROZEN, CLOCK_INVALID } clock_kind_t;

static clock_kind_t frozen_clock(int64_t *ms)
{
    static clock_kind_t kind = CLOCK_UNREAD;
    static int64_t frozen_ms;
    if (kind == CLOCK_UNREAD) {
        const char *at = getenv("SESSIOND_NOW");
        sd_error_t err;
        kind = !at || !*at ? CLOCK_WALL
               : sd_time_parse_rfc3339(at, strlen(at), &frozen_ms, &err) == SD_OK ? CLOCK_FROZEN
                                                                                  : CLOCK_INVALID;
    }
    *ms = frozen_ms;
    return kind;
}

sd_err_t sd_config_check_clock(sd_error_t *err)
{
    int64_t ms;
    if (frozen_clock(&ms) == CLOCK_INVALID)
        return sd_error_set(err, SD_ERR_INVALID, "SESSIOND_NOW",
                            "SESSIOND_NOW is not an RFC 3339 time: '%s'", getenv("SESSIOND_NOW"));
    return SD_OK;
}

int64_t sd_config_now_ms(void)
{
    int64_t ms;
    if (frozen_clock(&ms) == CLOCK_FROZEN)
        return ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
