/* sessiond as a child process of a test: started with arguments and
 * extra environment, its output in a log file, waited for or killed. */
#ifndef SESSIOND_PROCFX_H
#define SESSIOND_PROCFX_H

#include <sys/types.h>

typedef struct fx_proc {
    pid_t pid;
    char log[512];
    int exited;
    int status; /* from waitpid */
} fx_proc_t;

/* The sessiond binary under test: $SESSIOND_BIN. */
const char *fx_sessiond_bin(void);

/* Runs `sessiond args…` (NULL-terminated) with the extra "K=V" entries of
 * env (NULL-terminated, may be NULL); stdout and stderr go to log. */
void fx_proc_start(fx_proc_t *p, const char *const *args, const char *const *env,
                   const char *log);

/* Waits up to timeout_ms for it to end; returns whether it did. */
int fx_proc_wait(fx_proc_t *p, long timeout_ms);

/* Exit status if it exited, 128+signal if killed, -1 if running. */
int fx_proc_exit_code(const fx_proc_t *p);

void fx_proc_kill(fx_proc_t *p, int sig);

/* Waits up to timeout_ms for text to appear in its log. */
int fx_proc_log_has(const fx_proc_t *p, const char *text, long timeout_ms);

/* The whole file, NUL-terminated; caller frees.  "" when missing. */
char *fx_read_file(const char *path);

#endif
