#!/bin/sh
# A busy host's process churn for SECONDS: short-lived processes of a few system binaries (what cron jobs, health
# checks and shell-driven services start), at about RATE process starts per second. Each round is one pipeline of
# four processes, a second of two and a sleep (seven starts), then the pause; the benchmark counts the starts
# that really happened (/proc/stat processes).
# usage: busy_host.sh SECONDS [RATE]
seconds=${1:?seconds}
rate=${2:-20}
rounds=$(( seconds * rate / 7 ))
pause=$(awk -v r="$rate" 'BEGIN { printf "%.3f", 7 / r }')
i=0
while [ "$i" -lt "$rounds" ]; do
    ls /usr/bin | sort -r | gzip -c | wc -c >/dev/null
    sed -n 1,5p /etc/passwd | tr a-z A-Z >/dev/null
    sleep "$pause"
    i=$((i + 1))
done
