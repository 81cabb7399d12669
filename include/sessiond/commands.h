/* The sessiond subcommands.  Each returns the process exit status. */
#ifndef SESSIOND_COMMANDS_H
#define SESSIOND_COMMANDS_H

/* sessiond validate FILE...|-  : checks JSON-lines task events. */
int sd_cmd_validate(int argc, char **argv);

#endif
