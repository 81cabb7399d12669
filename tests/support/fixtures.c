#include "fixtures.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void sd_fx_event(sd_event_t *ev, const char *fmt, ...)
{
    char json[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(json, sizeof json, fmt, ap);
    va_end(ap);
    ck_assert_msg(n > 0 && (size_t)n < sizeof json, "fixture JSON too long");

    sd_error_t err;
    sd_err_t rc = sd_event_parse(json, (size_t)n, ev, &err);
    ck_assert_msg(rc == SD_OK, "fixture %s is invalid: %s: %s", json, err.field,
                  err.message);
}

int sd_fx_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
