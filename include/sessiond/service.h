/* Telling the service manager how the daemon is doing (systemd's
 * Type=notify, through libsystemd's sd_notify).  Built without libsystemd
 * (SESSIOND_SYSTEMD=OFF, or libsystemd-dev missing), or run outside a
 * notify-type unit (no NOTIFY_SOCKET), every call does nothing. */
#ifndef SESSIOND_SERVICE_H
#define SESSIOND_SERVICE_H

/* 1 when this build can notify systemd, else 0. */
int sd_service_can_notify(void);

/* READY=1, with STATUS= the given text (may be NULL): the consumer has
 * its first assignment.  Safe to call again; systemd takes the first. */
void sd_service_ready(const char *status);

#endif
