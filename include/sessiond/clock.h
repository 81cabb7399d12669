/* The monotonic clock, for timing and waiting.  The rules never see it:
 * theirs is the wall clock, or SESSIOND_NOW (sd_config_now_ms()). */
#ifndef SESSIOND_CLOCK_H
#define SESSIOND_CLOCK_H

#include <stdint.h>

int64_t sd_monotonic_us(void);
int64_t sd_monotonic_ms(void);
void sd_sleep_ms(int64_t ms);

#endif
