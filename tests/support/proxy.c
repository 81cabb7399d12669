#define _POSIX_C_SOURCE 200809L
#include "proxy.h"

#include "sessiond/clock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fx_proxy {
    int listener;
    int port;
    struct sockaddr_in target;
    atomic_int down;
    atomic_int cut;
    atomic_int generation; /* bumped when cut: pumps of older ones close */
    atomic_int stopping;
    atomic_int active; /* pumps running */
    pthread_t acceptor;
};

typedef struct pump {
    fx_proxy_t *p;
    int client, server, generation;
} pump_t;

static void *pump_run(void *arg)
{
    pump_t *u = arg;
    struct pollfd fds[2] = {{u->client, POLLIN, 0}, {u->server, POLLIN, 0}};
    char buf[65536];
    while (!atomic_load(&u->p->stopping) && atomic_load(&u->p->generation) == u->generation) {
        if (atomic_load(&u->p->cut)) { /* silent: nothing read, nothing closed */
            sd_sleep_ms(20);
            continue;
        }
        if (poll(fds, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0 || write(fds[1 - i].fd, buf, (size_t)n) != n)
                goto done;
        }
    }
done:
    close(u->client);
    close(u->server);
    atomic_fetch_sub(&u->p->active, 1);
    free(u);
    return NULL;
}

static void *accept_run(void *arg)
{
    fx_proxy_t *p = arg;
    while (!atomic_load(&p->stopping)) {
        struct pollfd pfd = {p->listener, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int client = accept(p->listener, NULL, NULL);
        if (client < 0)
            continue;
        int server = atomic_load(&p->down) ? -1 : socket(AF_INET, SOCK_STREAM, 0);
        if (server < 0 || connect(server, (struct sockaddr *)&p->target, sizeof p->target)) {
            close(client);
            if (server >= 0)
                close(server);
            continue;
        }
        pump_t *u = malloc(sizeof *u);
        pthread_t t;
        if (!u) {
            close(client);
            close(server);
            continue;
        }
        *u = (pump_t){p, client, server, atomic_load(&p->generation)};
        atomic_fetch_add(&p->active, 1);
        if (pthread_create(&t, NULL, pump_run, u) == 0) {
            pthread_detach(t);
        } else {
            atomic_fetch_sub(&p->active, 1);
            close(client);
            close(server);
            free(u);
        }
    }
    return NULL;
}

fx_proxy_t *fx_proxy_start(const char *host, int port)
{
    return fx_proxy_start_on(0, host, port);
}

fx_proxy_t *fx_proxy_start_on(int listen_port, const char *host, int port)
{
    fx_proxy_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->target.sin_family = AF_INET;
    p->target.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &p->target.sin_addr);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    inet_pton(AF_INET, "127.0.0.1", &me.sin_addr);
    socklen_t len = sizeof me;
    int reuse = 1; /* the port of an earlier test's proxy, in TIME_WAIT */
    p->listener = socket(AF_INET, SOCK_STREAM, 0);
    if (p->listener < 0 ||
        setsockopt(p->listener, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse) || bind(p->listener, (struct sockaddr *)&me, sizeof me) ||
        listen(p->listener, 64) || getsockname(p->listener, (struct sockaddr *)&me, &len) ||
        pthread_create(&p->acceptor, NULL, accept_run, p)) {
        if (p->listener >= 0)
            close(p->listener);
        free(p);
        return NULL;
    }
    p->port = ntohs(me.sin_port);
    return p;
}

int fx_proxy_port(const fx_proxy_t *p) { return p->port; }

void fx_proxy_set_down(fx_proxy_t *p, int down)
{
    atomic_store(&p->down, down);
    if (down)
        atomic_fetch_add(&p->generation, 1);
}

void fx_proxy_set_cut(fx_proxy_t *p, int cut) { atomic_store(&p->cut, cut); }

void fx_proxy_stop(fx_proxy_t *p)
{
    if (!p)
        return;
    atomic_store(&p->stopping, 1);
    pthread_join(p->acceptor, NULL);
    close(p->listener);
    while (atomic_load(&p->active) > 0) { /* each pump notices within 100 ms */
        sd_sleep_ms(20);
    }
    free(p);
}
