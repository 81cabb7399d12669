#define _POSIX_C_SOURCE 200809L
#include "sessiond/config.h"

#include <time.h>

int64_t sd_config_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
