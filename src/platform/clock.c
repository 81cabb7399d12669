#define _POSIX_C_SOURCE 200809L
#include "sessiond/clock.h"

#include <time.h>

int64_t sd_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sd_monotonic_ms(void) { return sd_monotonic_us() / 1000; }

void sd_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
