/* The failpoints of the test build (pipeline_int.h): only sessiond-testhooks
 * links this file; the product's are failpoint_none.c.
 *
 * SESSIOND_FAILPOINT=WHERE:N[:stop] kills the process with SIGKILL right
 * after the Nth batch's store write (after-store), or after its changes are
 * delivered (exactly-once: inside the open transaction) but before its
 * offsets are committed (after-produce), or after the Nth sweep that
 * published expiry events delivered them, before the store marks them
 * (after-expiry-produce); with `:stop` it stops there with SIGSTOP instead,
 * as a long pause would, until SIGCONT. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/log.h"

/* The armed failpoint: one pipeline per process runs with it. */
static char fail_where[32];
static long fail_n = -1; /* none */
static int fail_signal = SIGKILL;

void pl_failpoint_arm(void)
{
    fail_n = -1;
    const char *fail = getenv("SESSIOND_FAILPOINT");
    if (!fail || !*fail)
        return;
    char action[8] = "kill";
    int fields = sscanf(fail, "%31[a-z-]:%ld:%7s", fail_where, &fail_n, action);
    int armed = fields >= 2 && (!strcmp(action, "kill") || !strcmp(action, "stop"));
    fail_signal = strcmp(action, "stop") == 0 ? SIGSTOP : SIGKILL;
    if (!armed)
        fail_n = -1;
    sd_log(SD_LOG_WARN, "pipeline",
           armed ? "failpoint armed (testing only)" : "SESSIOND_FAILPOINT ignored: not WHERE:N[:stop]",
           "failpoint=%s", fail);
}

void pl_failpoint(const pipeline_t *p, const char *where, long n, size_t n_msgs)
{
    if (fail_n != n || strcmp(fail_where, where) != 0)
        return;
    /* "after produce" means on the brokers: a transaction's messages are
     * otherwise sent only by its commit. */
    if (strcmp(where, "after-produce") == 0)
        rd_kafka_flush(sd_producer_handle(p->producer), 10000);
    sd_log(SD_LOG_WARN, "pipeline",
           fail_signal == SIGSTOP ? "failpoint: stopping the process"
                                  : "failpoint: killing the process",
           "at=%s n=%ld messages=%zu", where, n, n_msgs);
    raise(fail_signal);
}
