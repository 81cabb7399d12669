#!/usr/bin/python3
"""Makes sessiond's event validator and the published JSON Schemas agree.

The JSON Schemas in schemas/ are what producers and consumers read; the C
validator is what actually decides.  This test treats the schema (checked by
python3-jsonschema, plus a JSON loader as strict as jansson) as the oracle and
compares `sessiond validate` against it:

  1. both schemas are valid Draft 2020-12 schemas;
  2. every stored example gets the same verdict from both sides, the one its
     directory promises, and invalid ones the reason listed in expected.tsv;
  3. a seeded run of mutated events, written to one JSON-lines file, gets the
     same per-line verdicts and the same first failing field from both;
  4. session changes (the stored examples, and those printed by
     --changes-cmd when given) match session-change.v1.json and carry the
     change_id the schema documents.

Run with Debian's interpreter, the only one here that has jsonschema:

  /usr/bin/python3 tests/unit/schema_oracle.py --sessiond build/sessiond \
      --schemas schemas [--changes-cmd CMD] [--seed N] [--cases N]
"""

import argparse
import copy
import datetime
import hashlib
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

MAX_MESSAGE_BYTES = 1024 * 1024
# jansson's JSON_PARSER_MAX_DEPTH: the top-level value is at depth 1 and no
# value, scalars included, may sit deeper than this.
MAX_JSON_DEPTH = 2048
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

# The order in which sessiond checks an event; it reports only the first
# failing field.  "" stands for the message as a whole and always comes first.
FIELD_ORDER = ("", "schema", "event_id", "event_type", "occurred_at", "task_id",
               "task_type", "short_id", "user_id", "metadata")
EVENT_TYPES = ("task.created", "task.completed", "task.failed", "task.cancelled",
               "scenario.saved", "session.delete_requested", "session.expiry_due")
KNOWN_TASK_TYPES = ("image_analysis", "scenario_generation", "video_generation",
                    "finalize_short", "save_scenario", "content_analysis",
                    "data_extraction", "scraping")

SUBPROCESS_TIMEOUT = 300


# --------------------------------------------------------------------------
# A JSON loader that rejects what jansson (with JSON_REJECT_DUPLICATES)
# rejects.  Python's json module is more lenient in several ways, and a
# message the oracle parses but sessiond cannot would show up as a bogus
# disagreement, or worse, hide a real one.

class NotJson(Exception):
    """The bytes are not a JSON text sessiond can parse."""


def _reject_duplicates(pairs):
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise NotJson("duplicate object key %r" % key)
        seen.add(key)
    return dict(pairs)


def _int64(text):
    # Checking the digit count first keeps Python's int() from refusing
    # very long literals (its 4300-digit limit) with a ValueError.
    digits = text.lstrip("-")
    if len(digits) > 19:
        raise NotJson("integer out of 64-bit range")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise NotJson("integer out of 64-bit range")
    return value


def _finite_real(text):
    # strtod overflows to HUGE_VAL on 1e400 and jansson refuses that; an
    # underflow to 0 or a subnormal is accepted by both.
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise NotJson("real number overflow")
    return value


def _no_constants(name):
    raise NotJson("%s is not JSON" % name)


# NUL cannot be stored in jansson strings or keys; a surrogate left in a
# decoded Python string can only come from an unpaired \uXXXX escape, since
# paired escapes are combined and strict UTF-8 decoding refuses encoded ones.
_FORBIDDEN_CHARS = re.compile("[\x00\ud800-\udfff]")


def _check_strings_and_depth(value):
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise NotJson("nested deeper than %d" % MAX_JSON_DEPTH)
        if isinstance(item, str):
            if _FORBIDDEN_CHARS.search(item):
                raise NotJson("NUL or unpaired surrogate in a string")
        elif isinstance(item, dict):
            for key, child in item.items():
                if _FORBIDDEN_CHARS.search(key):
                    raise NotJson("NUL or unpaired surrogate in a key")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def load_json_strictly(data):
    """Parses bytes as jansson would, or raises NotJson."""
    # json.loads(bytes) would guess UTF-16/32, strip a BOM and let encoded
    # surrogates through ("surrogatepass"), so decode ourselves, strictly.
    if data.startswith(b"\xef\xbb\xbf"):
        raise NotJson("starts with a UTF-8 byte-order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJson("invalid UTF-8: %s" % exc) from None
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates,
                           parse_int=_int64, parse_float=_finite_real,
                           parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise NotJson(str(exc)) from None
    except RecursionError:
        # Only reachable far beyond MAX_JSON_DEPTH (see main's recursion limit).
        raise NotJson("nested deeper than %d" % MAX_JSON_DEPTH) from None
    _check_strings_and_depth(value)
    return value


# --------------------------------------------------------------------------
# date-time format.  Debian ships no rfc3339-validator, so jsonschema would
# silently skip "format": "date-time".  This checker is written from the
# rules in the schema's description, not from the C code, on purpose.

_RFC3339 = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.\d+)?"
    r"(?:[Zz]|(?P<sign>[+-])(?P<off_hour>\d{2}):(?P<off_minute>\d{2}))",
    re.ASCII)  # \d must not match other scripts' digits


def is_leap_year(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year, month):
    if month == 2:
        return 29 if is_leap_year(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _day_number(year, month, day):
    # datetime.date stops at year 1; the Gregorian calendar repeats every 400
    # years (146097 days), so year 0 is computed as year 400.
    if year < 400:
        return datetime.date(year + 400, month, day).toordinal() - 146097
    return datetime.date(year, month, day).toordinal()


_FIRST_MINUTE = _day_number(0, 1, 1) * 1440
_END_MINUTE = (_day_number(9999, 12, 31) + 1) * 1440


def is_rfc3339_date_time(value):
    if not isinstance(value, str):
        return True  # format only constrains strings
    match = _RFC3339.fullmatch(value)
    if not match:
        return False
    part = {name: int(text) for name, text in match.groupdict().items()
            if text is not None and name != "sign"}
    if not 1 <= part["month"] <= 12:
        return False
    if not 1 <= part["day"] <= days_in_month(part["year"], part["month"]):
        return False
    if part["hour"] > 23 or part["minute"] > 59 or part["second"] > 60:
        return False
    offset = 0
    if match.group("sign"):
        if part["off_hour"] > 23 or part["off_minute"] > 59:
            return False
        offset = part["off_hour"] * 60 + part["off_minute"]
        if match.group("sign") == "-":
            offset = -offset
    # Offsets are whole minutes and a second (even a leap second 60) stays
    # inside its minute, so the UTC range check works on minutes.
    utc_minute = (_day_number(part["year"], part["month"], part["day"]) * 1440
                  + part["hour"] * 60 + part["minute"] - offset)
    return _FIRST_MINUTE <= utc_minute < _END_MINUTE


# --------------------------------------------------------------------------
# Validators

def _max_compact_json_bytes(validator, limit, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    size = len(json.dumps(instance, separators=(",", ":"),
                          ensure_ascii=False).encode())
    if size > limit:
        yield ValidationError("over %d bytes (%d bytes as compact JSON)"
                              % (limit, size))


OracleValidator = jsonschema.validators.extend(
    Draft202012Validator, {"x-maxCompactJsonBytes": _max_compact_json_bytes})


def make_validator(schema):
    checker = FormatChecker(formats=())
    checker.checks("date-time")(is_rfc3339_date_time)
    return OracleValidator(schema, format_checker=checker)


def _fields_of(error):
    """The top-level event fields a schema error is about ("" = the whole)."""
    if error.absolute_path:
        return {str(error.absolute_path[0])}
    if error.validator == "required":
        return {name for name in error.validator_value
                if name not in error.instance}
    return {""}


class Verdict:
    def __init__(self, valid, field=None, detail=""):
        self.valid = valid
        self.field = field    # first failing field in FIELD_ORDER, if invalid
        self.detail = detail

    def __str__(self):
        if self.valid:
            return "valid"
        return "invalid (%s: %s)" % (self.field or "<message>", self.detail)


def _field_rank(field):
    return FIELD_ORDER.index(field) if field in FIELD_ORDER else len(FIELD_ORDER)


def judge_event(validator, data):
    """The oracle's verdict on one message (bytes, without newline)."""
    if len(data) > MAX_MESSAGE_BYTES:
        return Verdict(False, "", "over 1 MiB (%d bytes)" % len(data))
    try:
        event = load_json_strictly(data)
    except NotJson as exc:
        return Verdict(False, "", "not JSON: %s" % exc)
    failures = []
    for error in validator.iter_errors(event):
        for field in _fields_of(error):
            failures.append((_field_rank(field), field, error.message))
    if not failures:
        return Verdict(True)
    _, field, message = min(failures, key=lambda f: f[0])
    return Verdict(False, field, message[:200])


def expected_change_id(change):
    try:
        parts = (change["cause"]["event_id"], change["session"]["task_id"],
                 change["change_type"])
    except (KeyError, TypeError):
        return None
    if not all(isinstance(p, str) for p in parts):
        return None
    digest = hashlib.sha256(b"\0".join(p.encode() for p in parts)).digest()
    return digest[:16].hex()


def change_problems(validator, change):
    """What is wrong with one session change, as a list of strings."""
    problems = ["%s: %s" % ("/".join(map(str, e.absolute_path)) or "<change>",
                            e.message[:200])
                for e in validator.iter_errors(change)]
    want = expected_change_id(change)
    if not problems and want != change.get("change_id"):
        problems.append("change_id %s is not sha256(event_id, task_id, "
                        "change_type) = %s" % (change.get("change_id"), want))
    return problems


# --------------------------------------------------------------------------
# Running sessiond

_FIELD_PREFIX = re.compile(r"(%s): (.*)" % "|".join(FIELD_ORDER[1:]), re.S)
_LINE_REPORT = re.compile(r"line (\d+): (.*)", re.S)


class Report:
    """One line of `sessiond validate` output."""

    def __init__(self, file, line, field, reason, text):
        self.file, self.line, self.field = file, line, field
        self.reason, self.text = reason, text


def run_validate(sessiond, paths, stdin=None):
    """Runs `sessiond validate PATHS`.

    Returns (exit code, reports, junk, stderr); junk holds the stdout lines
    that are not reports.  stderr is free-form (summaries, usage) and only
    shown when something else is wrong."""
    proc = subprocess.run([sessiond, "validate"] + list(paths), input=stdin,
                          capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    # Reasons can quote raw input bytes (jansson's "near '...'"), which need
    # not be UTF-8.
    out = proc.stdout.decode("utf-8", "replace")
    reports, junk = [], []
    for text in out.split("\n"):
        if not text:
            continue
        rest, file = text, None
        if len(paths) > 1:
            file = next((p for p in paths if text.startswith(p + ": line ")), None)
            if file is None:
                junk.append(text)
                continue
            rest = text[len(file) + 2:]
        match = _LINE_REPORT.fullmatch(rest)
        if not match:
            junk.append(text)
            continue
        field_match = _FIELD_PREFIX.fullmatch(match.group(2))
        field, reason = (field_match.groups() if field_match
                         else ("", match.group(2)))
        reports.append(Report(file, int(match.group(1)), field, reason, text))
    return proc.returncode, reports, junk, proc.stderr.decode("utf-8", "replace")[:500]


def describe_run(code, reports, junk, stderr, limit=5):
    shown = [r.text[:300] for r in reports[:limit]] + junk[:limit]
    more = len(reports) + len(junk) - len(shown)
    return "sessiond: exit %d, stdout %s%s%s" % (
        code, shown or "empty", " and %d more" % more if more > 0 else "",
        ", stderr %r" % stderr.strip() if stderr.strip() else "")


# --------------------------------------------------------------------------
# Mutations

ASCII_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/"
# Characters JSON must escape, and characters that take 2 to 4 UTF-8 bytes
# (a combining mark, a BOM and U+2028 inside a string are legal too).
ESCAPED_CHARS = " \"\\\t\n\r/\x01\x1f\x7f"
MULTIBYTE_CHARS = "éßжΩ中東😀🎬\u0301\ufeff\u2028\uffff"
STRING_LENGTHS = (0, 1, 2, 127, 128, 129, 255, 256, 257)
WRONG_TYPE_VALUES = (0, -7, 3.25, True, False, [], ["x"], {}, {"k": "v"}, "text")
BAD_EVENT_TYPES = ("task.started", "Task.Created", "task.created ", "", "task",
                   "session.deleted", "scenario_saved")
SCHEMA_VALUES = ("task-event/v1", None, "task-event/v2", "", "task-event/V1",
                 "task-event/v1 ", "session-change/v1")
EDGE_YEARS = (0, 1, 4, 100, 400, 1900, 1970, 2000, 2024, 2025, 2100, 9999)
# Tokens put where a JSON value goes (inside metadata); some are legal JSON.
RAW_VALUE_TOKENS = (b"9223372036854775807", b"9223372036854775808",
                    b"-9223372036854775808", b"-9223372036854775809",
                    b"123456789012345678901234567890", b"1e400", b"-1e400",
                    b"1e-400", b"1.5E+3", b"-0", b"NaN", b"Infinity", b"-Infinity",
                    b"01", b"1.", b".5", b"true", b"nul", b"\"\"")
# Escapes put inside a string; some are legal (the pair, \u00e9, \/).
RAW_ESCAPES = (b"\\u0000", b"\\ud800", b"\\udfff", b"\\udc00\\ud800",
               b"\\ud83d\\ude00", b"\\u00e9", b"\\/", b"\\x41", b"\\U0041", b"\\")
# Bytes put inside a string; only the last (a plain UTF-8 "é") is legal.
RAW_BYTES = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
             b"\xe4\xb8", b"\x00", b"\x01", b"\x80", b"\xc3\xa9")
TRAILERS = (b" x", b"}", b",", b" {}", b"\x00", b" \t", b"\r", b"  ")
MARK = "@@ORACLE-RAW@@"


class Mutator:
    def __init__(self, rng, bases):
        self.rng = rng
        self.bases = bases  # [(name, event dict)]

    # -- values ------------------------------------------------------------

    def random_string(self, length):
        rng = self.rng
        alphabet = rng.choice((ASCII_CHARS, ASCII_CHARS + ESCAPED_CHARS,
                               MULTIBYTE_CHARS, ASCII_CHARS + MULTIBYTE_CHARS))
        return "".join(rng.choice(alphabet) for _ in range(length))

    def random_json(self, depth=0):
        rng = self.rng
        kind = rng.randrange(8 if depth < 3 else 5)
        if kind == 0:
            return rng.randint(INT64_MIN, INT64_MAX)
        if kind == 1:
            return rng.choice((0.5, -1.25, 3.0, 1e-7, 6.02e23))
        if kind == 2:
            return self.random_string(rng.randrange(12))
        if kind == 3:
            return rng.choice((True, False))
        if kind == 4:
            return None
        if kind in (5, 6):
            return {self.random_string(rng.randrange(1, 8)): self.random_json(depth + 1)
                    for _ in range(rng.randrange(4))}
        return [self.random_json(depth + 1) for _ in range(rng.randrange(4))]

    def sized_metadata(self, size):
        """An object whose compact JSON is exactly size bytes."""
        # Floats stay out: Python and jansson print reals differently
        # (0.1 vs 0.10000000000000001), so sizes with reals near the limit
        # are not comparable.
        fill = self.rng.choice("aéж中😀\n\x01\"")
        per = len(json.dumps(fill, ensure_ascii=False).encode()) - 2
        metadata = {"blob": "", "n": self.rng.randint(-1000, 1000)}
        room = size - len(json.dumps(metadata, separators=(",", ":"),
                                     ensure_ascii=False).encode())
        count, rest = divmod(room, per)
        metadata["blob"] = fill * count + "a" * rest
        return metadata

    def timestamp(self):
        """A timestamp: well formed, at the edge of the range, or broken."""
        rng = self.rng
        year = rng.choice((rng.randint(0, 9999), rng.choice(EDGE_YEARS)))
        month = rng.randint(1, 12)
        day = rng.choice((rng.randint(1, days_in_month(year, month)),
                          days_in_month(year, month)))
        hour, minute = rng.randint(0, 23), rng.randint(0, 59)
        second = 60 if rng.random() < 0.08 else rng.randint(0, 59)
        offset = rng.choice(("Z", "z", "%s%02d:%02d" % (rng.choice("+-"),
                                                         rng.randint(0, 23),
                                                         rng.randint(0, 59))))
        style = rng.random()
        if style < 0.15:  # near year 0000 or 9999, where the offset decides
            if rng.random() < 0.5:
                year, month, day, hour = 0, 1, 1, rng.randint(0, 2)
                offset = "+%02d:%02d" % (rng.randint(0, 3), rng.randint(0, 59))
            else:
                year, month, day, hour = 9999, 12, 31, rng.randint(21, 23)
                offset = "-%02d:%02d" % (rng.randint(0, 3), rng.randint(0, 59))
        digits = rng.choice((0, 0, 1, 3, 6, 9, 30))
        parts = {"date": "%04d-%02d-%02d" % (year, month, day),
                 "sep": rng.choice("TTTt"),
                 "time": "%02d:%02d:%02d" % (hour, minute, second),
                 "frac": ".%0*d" % (digits, rng.randrange(10 ** digits)) if digits else "",
                 "offset": offset}
        if style > 0.6:
            self.break_timestamp(parts, year, month)
        return "".join(parts[k] for k in ("date", "sep", "time", "frac", "offset"))

    def break_timestamp(self, parts, year, month):
        rng = self.rng
        y, m, d = parts["date"].split("-")
        defect = rng.randrange(22)
        if defect == 0:
            parts["date"] = "%s-%s-%02d" % (y, m, days_in_month(year, month) + 1)
        elif defect == 1:
            parts["date"] = "%s-%s-%s" % (y, rng.choice(("00", "13", "99")), d)
        elif defect == 2:
            parts["date"] = "%s-%s-%s" % (y, m, rng.choice(("00", "32")))
        elif defect == 3:
            parts["time"] = "24" + parts["time"][2:]
        elif defect == 4:
            parts["time"] = parts["time"][:3] + "60" + parts["time"][5:]
        elif defect == 5:
            parts["time"] = parts["time"][:6] + rng.choice(("61", "99"))
        elif defect == 6:
            parts["sep"] = rng.choice((" ", "_", "", "TT"))
        elif defect == 7:
            parts["time"], parts["frac"] = parts["time"][:5], ""
        elif defect == 8:
            parts["offset"] = ""
        elif defect == 9:
            parts["offset"] = rng.choice(("+0100", "-0530", "+01", "+1:00", "+01:0"))
        elif defect == 10:
            parts["offset"] = rng.choice(("+24:00", "-25:00", "+01:60", "+99:99"))
        elif defect == 11:
            parts["frac"] = rng.choice((".", ",5", ".5.5", ".a"))
        elif defect == 12:
            parts["date"] = rng.choice(("26", "02026", "-2026", "+2026")) + "-%s-%s" % (m, d)
        elif defect == 13:
            parts["date"] = "%s-%d-%d" % (y, int(m), int(d))
        elif defect == 14:  # digits of other scripts look like digits
            parts["date"] = parts["date"].replace("2", rng.choice("٢２𝟐"), 1)
        elif defect == 15:
            parts["offset"] += rng.choice(("\n", " ", "Z", "x"))
        elif defect == 16:
            parts["date"] = rng.choice((" ", "\t", "\n")) + parts["date"]
        elif defect == 17:
            parts["offset"] = rng.choice(("UTC", " UTC", "GMT", "Zulu", "+00:00Z"))
        elif defect == 18:
            parts["time"] = parts["time"].replace(":", rng.choice(("", ".", "-")), 1)
        elif defect == 19:
            parts["date"] = parts["date"].replace("-", rng.choice(("", "/", ".")), 1)
        elif defect == 20:
            parts["time"] = "%d:%s" % (int(parts["time"][:2]), parts["time"][3:])
        else:
            parts["offset"] = parts["offset"].replace(":", "") or "z"

    # -- field-level operations -------------------------------------------

    def op_drop(self, event):
        field = self.rng.choice(FIELD_ORDER[1:])
        event.pop(field, None)
        return "drop %s" % field

    def op_null(self, event):
        field = self.rng.choice(FIELD_ORDER[1:])
        event[field] = None
        return "%s=null" % field

    def op_wrong_type(self, event):
        field = self.rng.choice(FIELD_ORDER[1:])
        event[field] = copy.deepcopy(self.rng.choice(WRONG_TYPE_VALUES))
        return "%s=%s" % (field, json.dumps(event[field]))

    def op_string(self, event):
        field = self.rng.choice(("event_id", "task_id", "task_type", "short_id",
                                 "user_id", "user_id", "event_id"))
        event[field] = self.random_string(self.rng.choice(STRING_LENGTHS))
        return "%s=<%d chars>" % (field, len(event[field]))

    def op_event_type(self, event):
        event["event_type"] = self.rng.choice(EVENT_TYPES * 2 + BAD_EVENT_TYPES)
        return "event_type=%r" % event["event_type"]

    def op_task_type(self, event):
        event["task_type"] = self.rng.choice(KNOWN_TASK_TYPES + (
            "voice_over", "Image_Analysis", "scraping ", "x" * 128, "тип"))
        return "task_type=%r" % event["task_type"][:20]

    def op_schema(self, event):
        event["schema"] = self.rng.choice(SCHEMA_VALUES)
        return "schema=%r" % (event["schema"],)

    def op_timestamp(self, event):
        event["occurred_at"] = self.timestamp()
        return "occurred_at=%r" % event["occurred_at"]

    def op_metadata(self, event):
        event["metadata"] = {self.random_string(self.rng.randrange(1, 10)):
                             self.random_json() for _ in range(self.rng.randrange(6))}
        return "metadata=<random>"

    def op_big_metadata(self, event):
        size = self.rng.choice((16383, 16384, 16384, 16385, 16386, 40000))
        event["metadata"] = self.sized_metadata(size)
        return "metadata=<%d bytes>" % size

    def op_extra_fields(self, event):
        names = []
        for _ in range(self.rng.randint(1, 3)):
            name = self.rng.choice(("priority", "trace", "schema_version", "Event_ID",
                                    "event_id ", "", "données", "x" * 300))
            event[name] = self.random_json()
            names.append(name[:12])
        return "extra %s" % names

    FIELD_OPS = ((op_drop, 3), (op_null, 3), (op_wrong_type, 3), (op_string, 5),
                 (op_event_type, 3), (op_task_type, 2), (op_schema, 1),
                 (op_timestamp, 6), (op_metadata, 2), (op_big_metadata, 2),
                 (op_extra_fields, 2))

    # -- raw (text-level) operations --------------------------------------
    # Each returns (description, function from the serialized bytes to the
    # final bytes), after possibly planting MARK in the event.

    def _string_field(self, event):
        fields = [f for f in ("event_id", "task_id", "short_id", "user_id", "task_type")
                  if isinstance(event.get(f), str)]
        return self.rng.choice(fields) if fields else None

    def raw_in_string(self, event, choices, what):
        field = self._string_field(event)
        if field is None:
            return None
        raw = self.rng.choice(choices)
        cut = self.rng.randint(0, len(event[field]))
        event[field] = event[field][:cut] + MARK + event[field][cut:]
        return ("%s in %s: %r" % (what, field, raw),
                lambda data: data.replace(MARK.encode(), raw))

    def raw_escape(self, event):
        return self.raw_in_string(event, RAW_ESCAPES, "escape")

    def raw_bytes(self, event):
        return self.raw_in_string(event, RAW_BYTES, "bytes")

    def raw_value(self, event):
        token = self.rng.choice(RAW_VALUE_TOKENS)
        event["metadata"] = {"value": MARK}
        return ("metadata value %r" % token,
                lambda data: data.replace(b'"%s"' % MARK.encode(), token))

    def raw_deep(self, event):
        # The event is depth 1, metadata 2, so n arrays reach depth n + 2 and
        # n objects holding a number put it at depth n + 3.
        n = self.rng.choice((2045, 2046, 2047, 2048))
        if self.rng.random() < 0.5:
            nested = b"[" * n + b"]" * n
        else:
            nested = b'{"a":' * n + b"1" + b"}" * n
        event["metadata"] = {"deep": MARK}
        return ("metadata nested %d deep" % n,
                lambda data: data.replace(b'"%s"' % MARK.encode(), nested))

    def raw_duplicate_key(self, event):
        key = self.rng.choice(sorted(event))
        pair = json.dumps({key: "duplicate"})[1:-1].encode() + b","
        return ("duplicate key %r" % key[:20], lambda data: data[:1] + pair + data[1:])

    def raw_truncate(self, event):
        fraction = self.rng.random()
        return ("truncated", lambda data: data[:max(1, int(len(data) * fraction))]
                if len(data) > 1 else data)

    def raw_trailer(self, event):
        tail = self.rng.choice(TRAILERS)
        return ("trailing %r" % tail, lambda data: data + tail)

    def raw_leading(self, event):
        head = self.rng.choice((b" ", b"\t", b"\xef\xbb\xbf", b"\r"))
        return ("leading %r" % head, lambda data: head + data)

    def raw_not_object(self, event):
        value = self.rng.choice((42, -1.5, "task.created", [event], None, True, [], ""))
        return ("top level %s" % type(value).__name__,
                lambda data: json.dumps(value, ensure_ascii=False).encode())

    RAW_OPS = ((raw_escape, 3), (raw_bytes, 3), (raw_value, 3), (raw_deep, 1),
               (raw_duplicate_key, 2), (raw_truncate, 2), (raw_trailer, 2),
               (raw_leading, 1), (raw_not_object, 1))

    # -- one case ----------------------------------------------------------

    def _pick(self, weighted):
        ops, weights = zip(*weighted)
        return self.rng.choices(ops, weights)[0]

    def case(self):
        """Returns (line bytes without newline, description)."""
        rng = self.rng
        name, base = rng.choice(self.bases)
        event = copy.deepcopy(base)
        steps = [name]
        for _ in range(rng.choices((1, 2, 3), (6, 3, 1))[0]):
            steps.append(self._pick(self.FIELD_OPS)(self, event))
        finish = None
        if rng.random() < 0.3:
            planted = self._pick(self.RAW_OPS)(self, event)
            if planted:
                steps.append(planted[0])
                finish = planted[1]
        if rng.random() < 0.3:
            keys = list(event)
            rng.shuffle(keys)
            event = {key: event[key] for key in keys}
        separators = rng.choice(((",", ":"), (", ", ": ")))
        data = json.dumps(event, ensure_ascii=rng.random() < 0.3,
                          separators=separators).encode()
        if finish:
            data = finish(data)
        return data, "; ".join(steps)


def sized_line(base, size):
    """A valid event padded by an unknown field to exactly size bytes."""
    event = dict(base, padding="")
    room = size - len(json.dumps(event, separators=(",", ":")).encode())
    event["padding"] = "p" * room
    data = json.dumps(event, separators=(",", ":")).encode()
    assert len(data) == size
    return data


# --------------------------------------------------------------------------
# The test

class Tally:
    def __init__(self, seed):
        self.passed = self.failed = 0
        self.seed = seed

    def ok(self):
        self.passed += 1

    def fail(self, what, *details):
        self.failed += 1
        print("FAIL %s" % what)
        for detail in details:
            print("    %s" % detail)

    def check(self, condition, what, *details):
        if condition:
            self.ok()
        else:
            self.fail(what, *details)


def shorten(data, limit=160):
    text = repr(data[:limit])
    return text + (" ... (%d bytes)" % len(data) if len(data) > limit else "")


def read_example(path):
    """The one line an example file holds (without its newline)."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.endswith(b"\n") or data.count(b"\n") != 1:
        return None
    return data[:-1]


def list_json(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".json"))


def check_schemas(tally, schemas):
    for name, schema in schemas.items():
        try:
            Draft202012Validator.check_schema(schema)
            tally.ok()
        except jsonschema.SchemaError as exc:
            tally.fail("%s is not a valid 2020-12 schema" % name, exc.message)
            continue
        # The examples inside a schema are documentation too.
        validator = make_validator(schema)
        for number, example in enumerate(schema.get("examples", ()), 1):
            errors = [e.message[:200] for e in validator.iter_errors(example)]
            tally.check(not errors, "%s: examples[%d] is invalid" % (name, number), *errors)


def check_valid_examples(tally, sessiond, validator, directory):
    names = list_json(directory)
    for name in names:
        path = os.path.join(directory, name)
        data = read_example(path)
        if data is None:
            tally.fail("valid/%s: must hold exactly one newline-terminated line" % name)
            continue
        verdict = judge_event(validator, data)
        run = run_validate(sessiond, [path])
        code, reports, junk, _ = run
        tally.check(verdict.valid and code == 0 and not reports and not junk,
                    "valid/%s" % name, "oracle: %s" % verdict, describe_run(*run))
    paths = [os.path.join(directory, n) for n in names]
    run = run_validate(sessiond, paths)
    code, reports, junk, _ = run
    tally.check(code == 0 and not reports and not junk,
                "sessiond validate with all %d valid examples at once" % len(paths),
                describe_run(*run))


def read_expected(path):
    expected = {}
    with open(path, encoding="utf-8") as f:
        for number, row in enumerate(f, 1):
            row = row.rstrip("\n")
            if not row:
                continue
            cells = row.split("\t")
            if len(cells) != 3 or not cells[2]:
                raise SystemExit("%s:%d: want FILE<TAB>FIELD<TAB>REASON" % (path, number))
            expected[cells[0]] = (cells[1], cells[2])
    return expected


def check_invalid_examples(tally, sessiond, validator, directory):
    expected = read_expected(os.path.join(directory, "expected.tsv"))
    names = list_json(directory)
    for name in sorted(set(expected) - set(names)):
        tally.fail("invalid/expected.tsv names %s, which does not exist" % name)
    for name in names:
        path = os.path.join(directory, name)
        data = read_example(path)
        if data is None:
            tally.fail("invalid/%s: must hold exactly one newline-terminated line" % name)
            continue
        if name not in expected:
            tally.fail("invalid/%s has no row in expected.tsv" % name)
            continue
        field, reason = expected[name]
        verdict = judge_event(validator, data)
        run = run_validate(sessiond, [path])
        code, reports, junk, _ = run
        problems = []
        if verdict.valid:
            problems.append("the oracle finds it valid")
        elif verdict.field != field:
            problems.append("the oracle blames %r, expected.tsv %r" % (verdict.field, field))
        if code != 1:
            problems.append("sessiond exits %d, not 1" % code)
        if len(reports) != 1 or junk:
            problems.append("sessiond should print exactly one report")
        elif (reports[0].line, reports[0].field) != (1, field) or reason not in reports[0].reason:
            problems.append("sessiond's report does not match line 1, %r, %r"
                            % (field, reason))
        tally.check(not problems, "invalid/%s" % name, *problems,
                    "oracle: %s" % verdict, describe_run(*run))
    # With several files every report names its file.
    paths = [os.path.join(directory, n) for n in names if n in expected]
    run = run_validate(sessiond, paths)
    code, reports, junk, _ = run
    by_file = {}
    for report in reports:
        by_file.setdefault(report.file, []).append(report)
    wrong = [os.path.basename(p) for p in paths
             if len(by_file.get(p, ())) != 1
             or by_file[p][0].field != expected[os.path.basename(p)][0]]
    tally.check(code == 1 and not wrong and not junk,
                "sessiond validate with all %d invalid examples at once" % len(paths),
                "files without exactly one matching report: %s" % wrong[:10],
                describe_run(*run))


def check_mutations(tally, sessiond, validator, valid_dir, cases, workdir):
    bases = []
    for name in list_json(valid_dir):
        data = read_example(os.path.join(valid_dir, name))
        if data is not None:
            bases.append((name, load_json_strictly(data)))
    if not bases:
        tally.fail("no valid examples to mutate")
        return
    mutator = Mutator(random.Random(tally.seed), bases)
    lines = [mutator.case() for _ in range(cases)]
    small = min((b for b in bases), key=lambda b: len(json.dumps(b[1])))[1]
    lines.append((sized_line(small, MAX_MESSAGE_BYTES), "exactly 1 MiB"))
    lines.append((sized_line(small, MAX_MESSAGE_BYTES + 1), "1 MiB + 1 byte"))

    path = os.path.join(workdir, "mutations.jsonl")
    with open(path, "wb") as f:
        f.write(b"".join(data + b"\n" for data, _ in lines))
    verdicts = [judge_event(validator, data) for data, _ in lines]
    print("schema_oracle: %d mutated lines, %d valid by the schema"
          % (len(lines), sum(v.valid for v in verdicts)))

    run = run_validate(sessiond, [path])
    code, reports, junk, stderr = run
    by_line = {}
    for report in reports:
        by_line.setdefault(report.line, []).append(report)
    for number, ((data, how), verdict) in enumerate(zip(lines, verdicts), 1):
        got = by_line.pop(number, [])
        if verdict.valid:
            agree = not got
        else:
            agree = len(got) == 1 and got[0].field == verdict.field
        tally.check(agree, "mutation line %d (%s)" % (number, how),
                    "line: %s" % shorten(data), "oracle: %s" % verdict,
                    "sessiond: %s" % ([r.text[:300] for r in got] or "valid"))
    for number, extra in sorted(by_line.items()):
        tally.fail("sessiond reports line %d, which does not exist" % number,
                   extra[0].text[:300])
    any_invalid = not all(v.valid for v in verdicts)
    tally.check(code == (1 if any_invalid else 0) and not junk,
                "sessiond validate exit code on the mutation file",
                "exit %d; stdout lines that are not reports: %s; stderr %r"
                % (code, junk[:5], stderr.strip()))

    # The same bytes through stdin must give the same answer.
    with open(path, "rb") as f:
        stdin_code, stdin_reports, stdin_junk, _ = run_validate(sessiond, ["-"], f.read())
    tally.check((stdin_code, [r.text for r in stdin_reports], stdin_junk)
                == (code, [r.text for r in reports], junk),
                "sessiond validate - (stdin) differs from the same file",
                "file: exit %d, %d reports; stdin: exit %d, %d reports"
                % (code, len(reports), stdin_code, len(stdin_reports)))


def check_cli_edges(tally, sessiond, workdir):
    # A fixed event, so that a broken example cannot make this check fail.
    good = (b'{"event_id":"e1","event_type":"scenario.saved",'
            b'"occurred_at":"2026-03-14T09:41:07Z","short_id":"sh_1"}')
    path = os.path.join(workdir, "blank-lines.jsonl")
    with open(path, "wb") as f:
        # Whitespace-only lines are blank too, so CRLF files work.
        f.write(b"\n" + good + b"\n \t\r\n" + b"{}\n" + good + b"\r\n")
    run = run_validate(sessiond, [path])
    code, reports, junk, _ = run
    tally.check(code == 1 and [(r.line, r.field) for r in reports] == [(4, "event_id")]
                and not junk,
                "blank lines are skipped but counted in line numbers",
                "expected one report, for line 4 (event_id)", describe_run(*run))
    run = run_validate(sessiond, [os.path.join(workdir, "no-such-file.jsonl")])
    tally.check(run[0] == 2, "a missing file is an I/O error (exit 2)", describe_run(*run))


def check_change_schema_rejects(tally, validator, example):
    """The change schema's rules must actually bite.

    example is a valid session.created change whose cause came from a topic;
    each case breaks one rule of it."""
    def with_(path, value):
        change = copy.deepcopy(example)
        target = change
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return change

    expired = with_(("change_type",), "session.expired")
    expired["reason"] = "ttl"
    cases = [
        ("created for a terminal reason", with_(("reason",), "task.completed")),
        ("unknown change_type", with_(("change_type",), "session.updated")),
        ("uppercase change_id", with_(("change_id",), example["change_id"].upper())),
        ("version 0", with_(("version",), 0)),
        ("occurred_at without milliseconds", with_(("occurred_at",), "2026-03-14T09:26:53Z")),
        ("occurred_at with an offset", with_(("occurred_at",), "2026-03-14T09:26:53.589+00:00")),
        ("created_at on February 30", with_(("session", "created_at"), "2026-02-30T00:00:00.000Z")),
        ("session without user_id", with_(("session", "user_id"), KeyError)),
        ("cause without offset", with_(("cause", "offset"), KeyError)),
        ("status outside the enum", with_(("session", "status"), "done")),
        ("expiry with a topic", expired),
    ]
    status_changed = with_(("change_type",), "session.status_changed")
    status_changed["reason"] = "task.failed"
    cases.append(("status_changed to active on task.failed", status_changed))
    removed = with_(("change_type",), "session.removed")
    removed["reason"] = "ttl"
    cases.append(("removed for ttl", removed))
    for what, change in cases:
        tally.check(not validator.is_valid(change),
                    "session-change schema accepts a change with %s" % what)
    tally.check(validator.is_valid(dict(example, added_in_v1_1={"x": 1})),
                "session-change schema rejects an unknown extra field")


def check_changes(tally, validator, source, lines):
    """Checks session changes given as JSON lines.

    Returns (number of changes, the valid ones)."""
    # Only each change on its own: the command may print samples rather than
    # a stream, so per-session ordering is the pipeline tests' business.
    count, valid = 0, []
    for number, data in enumerate(lines, 1):
        if not data.strip():
            continue
        count += 1
        where = "%s line %d" % (source, number)
        try:
            change = load_json_strictly(data)
        except NotJson as exc:
            tally.fail("%s: not JSON" % where, str(exc), shorten(data))
            continue
        problems = change_problems(validator, change)
        tally.check(not problems, where, *problems, shorten(data))
        if not problems:
            valid.append(change)
    return count, valid


def check_change_examples(tally, validator, directory):
    seen = {}
    for name in list_json(directory):
        data = read_example(os.path.join(directory, name))
        if data is None:
            tally.fail("changes/%s: must hold exactly one newline-terminated line" % name)
            continue
        _, valid = check_changes(tally, validator, "changes/%s" % name, [data])
        for change in valid:
            seen.setdefault(change["change_type"], change)
    missing = {"session.created", "session.status_changed", "session.removed",
               "session.expired"} - set(seen)
    tally.check(not missing, "changes/ has no example of %s" % sorted(missing))
    created = seen.get("session.created")
    if created and created["cause"]["topic"] is not None:
        check_change_schema_rejects(tally, validator, created)
    else:
        tally.fail("changes/ needs a session.created example read from a topic")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessiond", required=True, help="the sessiond binary")
    parser.add_argument("--schemas", required=True, help="the schemas/ directory")
    parser.add_argument("--changes-cmd", help="a command that prints session changes "
                        "as JSON lines (split like a shell would)")
    parser.add_argument("--seed", type=int, help="replay the mutations of this seed")
    parser.add_argument("--cases", type=int, default=500, help="mutated events (500)")
    args = parser.parse_args()

    # Parsing and encoding values nested MAX_JSON_DEPTH deep recurses that
    # deep inside json; the default limit (1000) would make the oracle fail
    # where jansson succeeds.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * MAX_JSON_DEPTH + 1000))

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10 ** 9)
    tally = Tally(seed)
    print("schema_oracle: seed %d (replay with --seed %d)" % (seed, seed))

    schemas = {}
    for name in ("task-event.v1.json", "session-change.v1.json"):
        with open(os.path.join(args.schemas, name), encoding="utf-8") as f:
            schemas[name] = json.load(f)
    check_schemas(tally, schemas)
    events = make_validator(schemas["task-event.v1.json"])
    changes = make_validator(schemas["session-change.v1.json"])

    examples = os.path.join(args.schemas, "examples")
    valid_dir = os.path.join(examples, "valid")
    with tempfile.TemporaryDirectory(prefix="schema_oracle.") as workdir:
        check_valid_examples(tally, args.sessiond, events, valid_dir)
        check_invalid_examples(tally, args.sessiond, events,
                               os.path.join(examples, "invalid"))
        check_mutations(tally, args.sessiond, events, valid_dir, args.cases, workdir)
        check_cli_edges(tally, args.sessiond, workdir)

    check_change_examples(tally, changes, os.path.join(examples, "changes"))

    if args.changes_cmd:
        proc = subprocess.run(shlex.split(args.changes_cmd), capture_output=True,
                              timeout=SUBPROCESS_TIMEOUT)
        tally.check(proc.returncode == 0, "--changes-cmd exited %d" % proc.returncode,
                    proc.stderr.decode("utf-8", "replace")[-500:])
        count, _ = check_changes(tally, changes, "--changes-cmd output",
                                 proc.stdout.split(b"\n"))
        tally.check(count > 0, "--changes-cmd printed no session changes")

    if tally.failed:
        print("schema_oracle: seed was %d (replay with --seed %d)" % (seed, seed))
    print("schema_oracle: %d passed, %d failed" % (tally.passed, tally.failed))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
