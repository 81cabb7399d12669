#include "sessiond/service.h"

#include <stdio.h>

#ifdef SESSIOND_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

int sd_service_can_notify(void)
{
#ifdef SESSIOND_HAVE_SYSTEMD
    return 1;
#else
    return 0;
#endif
}

/* sd_notify's failures are not ours to act on: a manager that cannot be
 * told treats the service as it would any that never said anything. */
void sd_service_ready(const char *status)
{
#ifdef SESSIOND_HAVE_SYSTEMD
    char msg[256];
    snprintf(msg, sizeof msg, "READY=1%s%s", status ? "\nSTATUS=" : "", status ? status : "");
    (void)sd_notify(0, msg);
#else
    (void)status;
#endif
}

