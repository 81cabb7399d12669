/* A TCP forwarder the tests can cut: "the MongoDB server went away". */
#ifndef SESSIOND_PROXY_H
#define SESSIOND_PROXY_H

typedef struct fx_proxy fx_proxy_t;

/* Listens on 127.0.0.1 (a free port) and forwards to host:port. */
fx_proxy_t *fx_proxy_start(const char *host, int port);
int fx_proxy_port(const fx_proxy_t *p);
/* down: drop every connection and refuse new ones; up: forward again. */
void fx_proxy_set_down(fx_proxy_t *p, int down);
void fx_proxy_stop(fx_proxy_t *p);

#endif
