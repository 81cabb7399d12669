/* A TCP forwarder the tests put between sessiond and a server, to fail the
 * network in the two ways networks fail:
 *   down  every connection is dropped and new ones are refused (a server
 *         that went away: the client hears of it at once);
 *   cut   every connection stays open and new ones are accepted, but no
 *         byte moves either way until healed (a network that went silent,
 *         as a partition or a dead link: the client hears nothing, and
 *         finds out only from its own timeouts).  Healed, what was held
 *         moves on, as TCP's retransmissions would deliver it. */
#ifndef SESSIOND_PROXY_H
#define SESSIOND_PROXY_H

typedef struct fx_proxy fx_proxy_t;

/* Listens on 127.0.0.1 (a free port) and forwards to host:port; NULL if
 * it cannot listen. */
fx_proxy_t *fx_proxy_start(const char *host, int port);
/* The same on a given port (a broker advertises it); NULL if taken. */
fx_proxy_t *fx_proxy_start_on(int listen_port, const char *host, int port);
int fx_proxy_port(const fx_proxy_t *p);
/* down: drop every connection and refuse new ones; up: forward again. */
void fx_proxy_set_down(fx_proxy_t *p, int down);
/* cut: hold every byte both ways, connections left open; heal: go on. */
void fx_proxy_set_cut(fx_proxy_t *p, int cut);
void fx_proxy_stop(fx_proxy_t *p);

#endif
