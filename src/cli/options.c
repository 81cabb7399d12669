#include "sessiond/options.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/timefmt.h"

extern char **environ;

void sd_options_env_name(const char *flag, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "SESSIOND_");
    for (const char *p = flag; *p && o + 1 < cap; p++)
        out[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[o < cap ? o : cap - 1] = '\0';
}

/* "0", "0s", "0ms"…: a duration option's "off". */
static int is_zero_duration(const char *value)
{
    static const char *const units[] = {"", "ms", "s", "m", "h", "d"};
    char *end;
    if (strtoll(value, &end, 10) != 0 || end == value || *value == '-' || *value == '+')
        return 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i]) == 0)
            return 1;
    return 0;
}

static sd_err_t assign(const sd_option_t *o, const char *value, const char *source,
                       sd_error_t *err)
{
    switch (o->kind) {
    case SD_OPT_STRING:
        *(const char **)o->target = value;
        return SD_OK;
    case SD_OPT_FLAG:
        *(int *)o->target = !(value && (!strcmp(value, "0") || !strcmp(value, "false")));
        return SD_OK;
    case SD_OPT_INT: {
        char *end;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || v < 0)
            return sd_error_set(err, SD_ERR_INVALID, o->name,
                                "%s wants a whole number, not \"%s\"", source, value);
        *(int64_t *)o->target = v;
        return SD_OK;
    }
    case SD_OPT_DURATION:
    case SD_OPT_DURATION_OFF:
        if (o->kind == SD_OPT_DURATION_OFF && is_zero_duration(value)) {
            *(int64_t *)o->target = 0;
            return SD_OK;
        }
        if (sd_duration_parse(value, (int64_t *)o->target, err) != SD_OK) {
            char why[sizeof err->message];
            snprintf(why, sizeof why, "%s", err->message);
            return sd_error_set(err, SD_ERR_INVALID, o->name, "%s: %s", source, why);
        }
        return SD_OK;
    }
    return SD_OK;
}

static sd_err_t props_add(sd_props_t *props, const char *kv, int owned, sd_error_t *err)
{
    const char **items = realloc(props->items, (props->count + 1) * sizeof *items);
    if (!items)
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading options");
    props->items = items;
    if (owned) {
        char **o = realloc(props->owned, (props->n_owned + 1) * sizeof *o);
        if (!o)
            return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading options");
        props->owned = o;
        props->owned[props->n_owned++] = (char *)kv;
    }
    props->items[props->count++] = kv;
    return SD_OK;
}

/* SESSIOND_X_SASL_PASSWORD=v -> "sasl.password=v" */
static sd_err_t props_from_env(sd_props_t *props, sd_error_t *err)
{
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "SESSIOND_X_", 11) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t klen = (size_t)(eq - *e) - 11;
        char *kv = malloc(klen + strlen(eq) + 1);
        if (!kv)
            return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory reading options");
        for (size_t i = 0; i < klen; i++) {
            char c = (*e)[11 + i];
            kv[i] = c == '_' ? '.' : (char)tolower((unsigned char)c);
        }
        strcpy(kv + klen, eq);
        sd_err_t rc = props_add(props, kv, 1, err);
        if (rc != SD_OK) {
            free(kv);
            return rc;
        }
    }
    return SD_OK;
}

#define HELP_COLUMN 26 /* characters of the flag column */

/* "  flag" padded to the help column, counting characters, not bytes (a
 * metavar may hold "…"), then the text. */
static void help_line(const char *flag, const char *text)
{
    size_t chars = 0;
    for (const char *p = flag; *p; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    printf("  %s%*s %s\n", flag, chars < HELP_COLUMN ? (int)(HELP_COLUMN - chars) : 0, "",
           text);
}

void sd_options_help(const sd_option_t *opts, size_t n, int with_props, const char *usage)
{
    printf("%s\noptions (each also read from the environment variable shown):\n", usage);
    for (size_t i = 0; i < n; i++) {
        char flag[64], env[80], twins[200];
        snprintf(flag, sizeof flag, "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        sd_options_env_name(opts[i].name, env, sizeof env);
        snprintf(twins, sizeof twins, "[%s%s%s]", env, opts[i].fallback_env ? ", or " : "",
                 opts[i].fallback_env ? opts[i].fallback_env : "");
        help_line(flag, opts[i].help);
        help_line("", twins);
    }
    if (with_props) {
        help_line("-X key=value", "a librdkafka property (SASL, TLS, …); repeatable");
        help_line("", "[SESSIOND_X_SASL_PASSWORD=… for -X sasl.password=…]");
    }
    help_line("--help", "this text");
}

sd_err_t sd_options_parse(const sd_option_t *opts, size_t n, sd_props_t *props, int argc,
                          char **argv, const char *usage, const char **positional,
                          size_t max_positional, size_t *n_positional, int *help_shown,
                          sd_error_t *err)
{
    *help_shown = 0;
    *n_positional = 0;
    sd_err_t rc;
    /* The environment first, so flags override it. */
    for (size_t i = 0; i < n; i++) {
        char env[80];
        sd_options_env_name(opts[i].name, env, sizeof env);
        const char *v = getenv(env), *source = env;
        if ((!v || !*v) && opts[i].fallback_env) {
            v = getenv(opts[i].fallback_env);
            source = opts[i].fallback_env;
        }
        if (v && *v && (rc = assign(&opts[i], v, source, err)) != SD_OK)
            return rc;
    }
    if (props && (rc = props_from_env(props, err)) != SD_OK)
        return rc;

    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            sd_options_help(opts, n, props != NULL, usage);
            *help_shown = 1;
            return SD_OK;
        }
        if (props && !strncmp(arg, "-X", 2)) {
            const char *kv = arg[2] ? arg + 2 : (a + 1 < argc ? argv[++a] : NULL);
            if (!kv || !strchr(kv, '='))
                return sd_error_set(err, SD_ERR_INVALID, "X", "-X wants key=value");
            if ((rc = props_add(props, kv, 0, err)) != SD_OK)
                return rc;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
            if (!strcmp(arg, "--")) {
                a++;
                for (; a < argc; a++)
                    if (*n_positional < max_positional)
                        positional[(*n_positional)++] = argv[a];
                break;
            }
            if (*n_positional == max_positional)
                return sd_error_set(err, SD_ERR_INVALID, "", "unexpected argument '%s'", arg);
            positional[(*n_positional)++] = arg;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const sd_option_t *o = NULL;
        for (size_t i = 0; i < n && !o; i++)
            if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
                o = &opts[i];
        if (!o)
            return sd_error_set(err, SD_ERR_INVALID, "", "unknown option '%s' (see --help)", arg);
        const char *value = eq ? eq + 1 : NULL;
        if (o->kind != SD_OPT_FLAG && !value) {
            if (a + 1 >= argc)
                return sd_error_set(err, SD_ERR_INVALID, o->name, "--%s needs a value", o->name);
            value = argv[++a];
        }
        char source[80];
        snprintf(source, sizeof source, "--%s", o->name);
        if ((rc = assign(o, value, source, err)) != SD_OK)
            return rc;
    }
    return SD_OK;
}

void sd_props_free(sd_props_t *props)
{
    for (size_t i = 0; i < props->n_owned; i++)
        free(props->owned[i]);
    free(props->owned);
    free(props->items);
    memset(props, 0, sizeof *props);
}
