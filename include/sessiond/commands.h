/* The sessiond subcommands.  Each returns the process exit status. */
#ifndef SESSIOND_COMMANDS_H
#define SESSIOND_COMMANDS_H

/* sessiond validate FILE...|-  : checks JSON-lines task events. */
int sd_cmd_validate(int argc, char **argv);

/* sessiond sessions --short-id S | --task-id T : reads the store. */
int sd_cmd_sessions(int argc, char **argv);

/* sessiond publish FILE|- : validates and publishes events. */
int sd_cmd_publish(int argc, char **argv);

/* sessiond tail : prints session changes. */
int sd_cmd_tail(int argc, char **argv);

/* sessiond run : the daemon. */
int sd_cmd_run(int argc, char **argv);

/* sessiond replay --from earliest|TIME : re-consumes the input into the store. */
int sd_cmd_replay(int argc, char **argv);

/* sessiond demo : the whole daemon on a generated workload, checked. */
int sd_cmd_demo(int argc, char **argv);

/* sessiond bench : throughput, latency and memory on this machine. */
int sd_cmd_bench(int argc, char **argv);

#endif
