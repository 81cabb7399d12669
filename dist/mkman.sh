#!/bin/sh
# Writes the man page sessiond(1) on stdout: the hand-written sections of
# TEMPLATE (dist/sessiond.1.in as CMake configured it), with its COMMANDS
# comment line replaced by every command's --help: the option tables' own
# words, so the page cannot drift from them.
#   mkman.sh SESSIOND TEMPLATE > sessiond.1
set -eu
bin=$1
template=$2

# One command's --help as a subsection: its synopsis, its description
# (blank lines start paragraphs, "exit status:" a line of its own), then
# each option as a tagged paragraph with its environment twin beneath.
# Text is made roff-safe (backslashes, a leading dot or quote, "…", and
# the hyphens of flags, which a shell wants as minus signs) after the
# flag column is cut from it.
command_section() { # NAME SUMMARY
  printf '.SS %s\n' "$1"
  { printf '%s\n' "$2"; "$bin" "$1" --help; } | awk '
    function esc(s) {
      gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); gsub(/…/, "\\[u2026]", s)
      if (s ~ /^[.'\'']/) s = "\\&" s
      return s
    }
    NR == 1 { print esc($0); next }
    NR == 2 { sub(/^usage: /, ""); synopsis = $0; next }
    NR > 2 && !described && /^ / { sub(/^ +/, ""); synopsis = synopsis " " $0; next }
    !described { printf ".PP\n.B \"%s\"\n", esc(synopsis); described = 1 }
    /^options \(each also read/ { in_opts = 1; print ".PP\nOptions:"; next }
    !in_opts && /^$/ { print ".PP"; next }
    !in_opts && /^exit status:/ { print ".br" }
    !in_opts { print esc($0); next }
    # an option line: two spaces, the flag column of 26 characters, a space
    /^  [^ ]/ {
      flag = substr($0, 3, 26); text = substr($0, 30)
      sub(/ +$/, "", flag)
      n = index(flag, " ")
      if (n) printf ".TP\n.BI \"%s \" \"%s\"\n", esc(substr(flag, 1, n - 1)), esc(substr(flag, n + 1))
      else printf ".TP\n.B \"%s\"\n", esc(flag)
      print esc(text)
      next
    }
    # the twin, "[SESSIOND_FOO]", beneath its flag
    /^ +\[/ { sub(/^ +\[/, ""); sub(/\]$/, ""); printf ".br\nEnvironment: %s\n", esc($0); next }
    { sub(/^ +/, ""); print esc($0) }
  '
}

commands() {
  "$bin" --help | sed -n 's/^  \([a-z]*\)  *\(.*\)$/\1 \2/p' | while read -r name summary; do
    command_section "$name" "$summary"
  done
}

body=$(commands)
# through the environment: awk -v would read the escapes in the body
SESSIOND_MAN_BODY=$body awk '
  /^\.\\" COMMANDS:/ { print ENVIRON["SESSIOND_MAN_BODY"]; found = 1; next }
  { print }
  END { if (!found) { print "mkman.sh: no COMMANDS line in the template" > "/dev/stderr"; exit 1 } }
' "$template"
