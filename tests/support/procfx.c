#define _POSIX_C_SOURCE 200809L
#include "procfx.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *fx_sessiond_bin(void)
{
    const char *bin = getenv("SESSIOND_BIN");
    ck_assert_msg(bin && *bin, "SESSIOND_BIN names the sessiond binary under test");
    return bin;
}

void fx_proc_start(fx_proc_t *p, const char *const *args, const char *const *env,
                   const char *log)
{
    memset(p, 0, sizeof *p);
    snprintf(p->log, sizeof p->log, "%s", log);
    const char *argv[64] = {fx_sessiond_bin()};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    /* The environment is built before fork: the child of a threaded
     * process may only call async-signal-safe functions before exec. */
    extern char **environ;
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (env && env[n_extra])
        n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof *envp);
    ck_assert_ptr_nonnull(envp);
    size_t k = 0;
    for (size_t i = 0; i < n_extra; i++)
        envp[k++] = (char *)env[i];
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        int overridden = 0;
        for (size_t x = 0; eq && x < n_extra && !overridden; x++)
            overridden = strncmp(env[x], environ[i], (size_t)(eq - environ[i]) + 1) == 0;
        if (!overridden)
            envp[k++] = environ[i];
    }
    fflush(NULL);
    p->pid = fork();
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
}

int fx_proc_wait(fx_proc_t *p, long timeout_ms)
{
    for (long waited = 0; !p->exited; waited += 20) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->exited = 1;
            break;
        }
        ck_assert_msg(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        if (waited >= timeout_ms)
            return 0;
        nap_ms(20);
    }
    return 1;
}

int fx_proc_exit_code(const fx_proc_t *p)
{
    if (!p->exited)
        return -1;
    return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : 128 + WTERMSIG(p->status);
}

void fx_proc_kill(fx_proc_t *p, int sig)
{
    if (!p->exited)
        kill(p->pid, sig);
}

char *fx_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    if (f) {
        size_t got;
        while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
            len += got;
            if (cap - len < 1024) {
                text = realloc(text, cap *= 2);
                ck_assert_ptr_nonnull(text);
            }
        }
        fclose(f);
    }
    text[len] = '\0';
    return text;
}

int fx_proc_log_has(const fx_proc_t *p, const char *text, long timeout_ms)
{
    for (long waited = 0;; waited += 50) {
        char *log = fx_read_file(p->log);
        int found = strstr(log, text) != NULL;
        free(log);
        if (found)
            return 1;
        if (waited >= timeout_ms)
            return 0;
        nap_ms(50);
    }
}
