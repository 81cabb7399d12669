/* Command-line options with environment twins: every long flag --foo-bar
 * may also come from SESSIOND_FOO_BAR (some also from a legacy name such
 * as MONGODB_URI); flags win.  -X key=value (repeatable) passes librdkafka
 * properties; SESSIOND_X_SASL_PASSWORD=… is the twin of
 * -X sasl.password=…. */
#ifndef SESSIOND_OPTIONS_H
#define SESSIOND_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/error.h"

typedef enum sd_opt_kind {
    SD_OPT_STRING,   /* const char ** */
    SD_OPT_INT,      /* int64_t * */
    SD_OPT_DURATION, /* int64_t * milliseconds: 7d, 36h, 30s, 250ms */
    SD_OPT_DURATION_OFF, /* the same, or 0 (any unit): off */
    SD_OPT_FLAG,     /* int *, set to 1 */
} sd_opt_kind_t;

typedef struct sd_option {
    const char *name; /* long flag, without "--" */
    sd_opt_kind_t kind;
    void *target;
    const char *metavar;  /* shown in help; NULL for flags */
    const char *help;
    const char *fallback_env; /* an older variable honoured too, or NULL */
} sd_option_t;

/* -X properties collected from the command line and the environment. */
typedef struct sd_props {
    const char **items; /* "key=value"; owned */
    size_t count;
    char **owned;       /* strings built from the environment */
    size_t n_owned;
} sd_props_t;

/* Parses argv (argv[0] is the command name).  Positional arguments are
 * collected in order into *positional (up to max_positional).  Returns
 * SD_OK, or SD_ERR_INVALID with a message naming the flag or variable.
 * *help_shown is set when --help was given (help printed to stdout). */
sd_err_t sd_options_parse(const sd_option_t *opts, size_t n, sd_props_t *props, int argc,
                          char **argv, const char *usage, const char **positional,
                          size_t max_positional, size_t *n_positional, int *help_shown,
                          sd_error_t *err);

void sd_options_help(const sd_option_t *opts, size_t n, int with_props, const char *usage);

void sd_props_free(sd_props_t *props);

/* The environment twin of a flag: "batch-max" -> "SESSIOND_BATCH_MAX". */
void sd_options_env_name(const char *flag, char *out, size_t cap);

#endif
