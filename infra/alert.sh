#!/bin/sh
# Run by materia-alert@.service when a materia unit fails (its OnFailure=): writes one line at err
# to the journal naming the unit and why, and, when HEALTHCHECK_PING_URL is set, posts that line
# to <url>/fail (healthchecks.io's convention). systemd passes the failed unit's result in the
# MONITOR_* variables. Reads settings from /etc/materia/materia.env, which may be the broken thing:
# every value is checked here, with a default.
#
#   sh alert.sh UNIT
set -u
unit=${1:?"usage: alert.sh UNIT"}

# How many times to look for the failed run's last error line (a second apart): journald may
# still be storing what the unit printed as it died.
reason_tries_max=3

number_or() { case ${1:-} in '' | *[!0-9]*) echo "$2" ;; *) echo "$1" ;; esac; }
timeout_ms=$(number_or "${HEALTHCHECK_TIMEOUT_MS:-}" 10000)
line_bytes_max=$(number_or "${LOG_LINE_BYTES_MAX:-}" 16384)

if [ -n "${MONITOR_INVOCATION_ID:-}" ]; then match="_SYSTEMD_INVOCATION_ID=$MONITOR_INVOCATION_ID"; else match="_SYSTEMD_UNIT=$unit"; fi
reason=""
tries=0
while [ -z "$reason" ] && [ "$tries" -lt "$reason_tries_max" ]; do
  [ "$tries" -eq 0 ] || sleep 1
  # Read forward and keep the last line: systemd 252's journalctl can miss entries when it seeks
  # (--lines, --after-cursor) with matches.
  reason=$(journalctl --quiet --no-pager --output=cat --priority=err "$match" 2>/dev/null | tail -n 1)
  tries=$((tries + 1))
done

line="$unit failed (${MONITOR_SERVICE_RESULT:-result unknown}, ${MONITOR_EXIT_CODE:-?} ${MONITOR_EXIT_STATUS:-?}): ${reason:-no error line in its journal}"
line=$(printf '%s' "$line" | tr '\n' ' ' | head -c "$line_bytes_max")
echo "<3>$line"

url=${HEALTHCHECK_PING_URL:-}
[ -n "$url" ] || exit 0
# The URL holds the check's secret: it is never logged.
if printf '%s' "$line" | curl --fail --silent --show-error --max-time "$(((timeout_ms + 999) / 1000))" \
  --data-binary @- --output /dev/null "${url%/}/fail"; then
  echo "<6>pinged HEALTHCHECK_PING_URL/fail"
else
  echo "<3>could not ping HEALTHCHECK_PING_URL/fail (curl exit $?)"
  exit 1
fi
