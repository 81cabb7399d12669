/* The product's failpoints: none (pipeline_int.h).  The test build's
 * sessiond-testhooks links failpoint.c in their place, so this file must
 * define nothing else. */
#include "pipeline_int.h"

void pl_failpoint_arm(void) {}

void pl_failpoint(const pipeline_t *p, const char *where, long n, size_t n_msgs)
{
    (void)p;
    (void)where;
    (void)n;
    (void)n_msgs;
}
