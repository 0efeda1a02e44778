#!/usr/bin/env bash
# stage.sh FILE NAME CMD...: runs one stage of `make test`, printing its name and wall time,
# and appends "NAME<TAB>seconds<TAB>ok|FAILED" to FILE. Exits with the command's status.
file=$1 name=$2
shift 2
echo "== $name"
start=$(date +%s)
"$@"
rc=$?
secs=$(($(date +%s) - start))
status=ok
[ $rc = 0 ] || status=FAILED
printf '%s\t%d s\t%s\n' "$name" "$secs" "$status" >>"$file"
echo "== $name: ${secs} s, $status"
exit $rc
