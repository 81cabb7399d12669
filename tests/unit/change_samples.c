/* Prints one change of every type and shape as JSON lines, for
 * schema_oracle.py to check against schemas/session-change.v1.json. */
#include <stdio.h>
#include <stdlib.h>

#include "sessiond/change.h"

int main(void)
{
    const sd_session_t base = {
        .task_id = "task-7f3a", .short_id = "short-19", .task_type = "scenario_generation",
        .user_id = "user-42", .metadata_json = "{\"prompt\":\"a cat\",\"tags\":[\"x\"]}",
        .status = SD_STATUS_ACTIVE, .created_at_ms = INT64_C(1772366400000),
        .updated_at_ms = INT64_C(1772366400000),
    };
    const sd_cause_t cause = {"evt-1", "task-events", 2, 1041};
    sd_change_t changes[] = {
        {SD_CHANGE_CREATED, SD_REASON_TASK_CREATED, 1, base.created_at_ms, base, cause},
        {SD_CHANGE_STATUS_CHANGED, SD_REASON_TASK_COMPLETED, 2, base.created_at_ms + 5000, base, cause},
        {SD_CHANGE_STATUS_CHANGED, SD_REASON_TASK_FAILED, 2, base.created_at_ms + 5000, base, cause},
        {SD_CHANGE_STATUS_CHANGED, SD_REASON_TASK_CANCELLED, 2, base.created_at_ms + 5000, base, cause},
        {SD_CHANGE_REMOVED, SD_REASON_TASK_COMPLETED, 2, base.created_at_ms + 9000, base, cause},
        {SD_CHANGE_REMOVED, SD_REASON_SCENARIO_SAVED, 3, base.created_at_ms + 9000, base, cause},
        {SD_CHANGE_REMOVED, SD_REASON_MANUAL, 2, base.created_at_ms + 9000, base, cause},
        {SD_CHANGE_EXPIRED, SD_REASON_TTL, 4, base.created_at_ms + 604800000, base,
         {"evt-1", NULL, 0, 0}},
    };
    static const char *const cause_ids[] = {"evt-1", "evt-2", "evt-3", "evt-4",
                                            "evt-5", "evt-6", "evt-7", "evt-8"};
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
        changes[i].cause.event_id = cause_ids[i];
    changes[1].session.status = SD_STATUS_COMPLETED;
    changes[2].session.status = SD_STATUS_FAILED;
    changes[3].session.status = SD_STATUS_CANCELLED;
    changes[6].session.user_id = NULL;
    changes[6].session.metadata_json = NULL;

    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        char *text;
        size_t len;
        sd_error_t err;
        if (sd_change_to_json(&changes[i], &text, &len, &err) != SD_OK) {
            fprintf(stderr, "change_samples: %s\n", err.message);
            return 1;
        }
        puts(text);
        free(text);
    }
    return 0;
}
