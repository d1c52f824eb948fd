#!/usr/bin/env bash
# make e2e-stream: the seed's failure chain, end to end, on loopback, with the
# daemon users run.
#   ffmpeg -> Icecast primary and backup
#   two satd daemons (cmd/satd, only [stream] besides the web form on its own
#   port, dvbapi off) relaying [primary, backup], URL auth against a backend
#   answering in 200 ms, sharing a re-admission token key (token-keys,
#   readmit-ttl, readmit-redirect) and trusting HAProxy's PROXY protocol
#   header (proxy-protocol-from: HAProxy connects from 127.0.0.2; curl's
#   direct status requests from 127.0.0.1 need no header)
#   HAProxy in front, health-checking /readyz, send-proxy-v2
#   N listeners (bench/stream/icyload), each from its own loopback address,
#   following the 302 to their token URL and keeping its cookie; most
#   reconnect to the redirected URL, every 10th to the URL it started with,
#   carrying the cookie, as ffmpeg 5.1 and mpv do.
# Then: kill the primary ingest (nobody may disconnect), kill one relay (its
# listeners come back through HAProxy on their tokens: no synchronous backend
# call for a token holder, the backend told of every re-admission with
# readmit=1). No WWW-Authenticate anywhere. Every port is asked of the kernel,
# every wait is bounded, every process is stopped on exit. Prints its figures;
# exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/stream/lib.sh
N=${N:-2000}
RAMP=${RAMP:-25}           # seconds over which the listeners arrive
BOUND=${BOUND:-30}         # hang guard: every dropped listener back within this many seconds
ORIGINAL_EVERY=${ORIGINAL_EVERY:-10} # these reconnect to their first URL with the cookie
# RELAY_LOG=debug raises the relays' log level; KEEP=1 keeps $WORK.
WORK=$(mktemp -d /tmp/e2e-stream.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT INT TERM
need haproxy
raise_fds

read -r P_PRIMARY P_BACKUP P_AUTH P_LB P_R1 P_R2 P_W1 P_W2 <<<"$(free_ports 8)"
echo "== ports: ingests $P_PRIMARY $P_BACKUP, auth $P_AUTH, haproxy $P_LB, relays $P_R1 $P_R2 (web $P_W1 $P_W2)"

echo "== build"
go build -o "$WORK/bin/" ./cmd/satd ./bench/stream/icyload ./bench/stream/authsrv

echo "== ingests, encoders, auth backend"
start_icecast primary "$P_PRIMARY"
start_icecast backup "$P_BACKUP"
sleep 1
start_ffmpeg "icecast://source:benchsrc@127.0.0.1:$P_PRIMARY/live" 440
PID_FF_PRIMARY=${PIDS[-1]}
start_ffmpeg "icecast://source:benchsrc@127.0.0.1:$P_BACKUP/live" 440
wait_stream "http://127.0.0.1:$P_PRIMARY/live" 20
wait_stream "http://127.0.0.1:$P_BACKUP/live" 20
# 200 ms a decision, 32 at once: the relays' handlers (2 x 12) never make it
# refuse, so a first admission is a real decision, not a fail-open.
"$WORK/bin/authsrv" -addr "127.0.0.1:$P_AUTH" -delay 200ms -limit 32 -log "$WORK/auth-calls.log" 2>"$WORK/auth.log" &
PIDS+=($!)

echo "== two satd daemons as relays"
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
relay_port() { if [ "$1" = 1 ]; then echo "$P_R1"; else echo "$P_R2"; fi; }
for i in 1 2; do
	web=$P_W1
	[ "$i" = 2 ] && web=$P_W2
	mkdir -p "$WORK/relay$i-state"
	cat >"$WORK/relay$i.toml" <<TOML
[global]
state_dir = "$WORK/relay$i-state"
[log]
level = "${RELAY_LOG:-warn}"
[web]
listen = "127.0.0.1:$web"
[dvbapi]
enabled = false
[stream]
enabled = true
listen = "127.0.0.1:$(relay_port $i)"
drain-delay = "0s"
proxy-protocol-from = ["127.0.0.2"]
[[stream.mount]]
mount-name = "/live"
upstream = ["http://127.0.0.1:$P_PRIMARY/live", "http://127.0.0.1:$P_BACKUP/live"]
retry-base = "250ms"
retry-max = "5s"
[stream.mount.authentication]
type = "url"
listener_add = "http://127.0.0.1:$P_AUTH/auth"
listener_remove = "http://127.0.0.1:$P_AUTH/auth"
on-error = "open"
timeout = "10s"
handlers = 12
token-keys = ["$KEY"]
readmit-ttl = "1h"
readmit-redirect = true
TOML
	"$WORK/bin/satd" -config "$WORK/relay$i.toml" >"$WORK/relay$i.log" 2>&1 &
	PIDS+=($!)
	eval "PID_RELAY$i=$!"
done
wait_http "http://127.0.0.1:$P_R1/readyz" 30
wait_http "http://127.0.0.1:$P_R2/readyz" 30

echo "== haproxy"
cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  retries 3
  option redispatch
frontend radio
  bind 127.0.0.1:$P_LB
  default_backend relays
backend relays
  balance roundrobin
  source 127.0.0.2
  option httpchk GET /readyz
  http-check expect status 200
  server relay1 127.0.0.1:$P_R1 send-proxy-v2 check inter 1s fall 2 rise 3
  server relay2 127.0.0.1:$P_R2 send-proxy-v2 check inter 1s fall 2 rise 3
CFG
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_LB/readyz" 20

# status RELAY_PORT: "auth_calls async_calls readmits fail_opens unreported" of /live.
status() {
	curl -s -m 5 "http://127.0.0.1:$1/status.json" | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["mounts"] if m["name"] == "/live"][0]
print(m["auth_calls"], m["auth_async_calls"], m["readmits"], m["auth_fail_opens"], m["auth_readmits_unreported"])'
}
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2" | head -1; }

echo "== $N listeners through haproxy, arriving over ${RAMP}s"
"$WORK/bin/icyload" -addr "127.0.0.1:$P_LB" -path /live -n "$N" -ramp "${RAMP}s" -dur 600s -users -reconnect -follow \
	-ownaddr -cookies -original-every "$ORIGINAL_EVERY" -gapsample 200 -pathsout "$WORK/paths.txt" >"$WORK/load.log" 2>&1 &
LOAD=$!
PIDS+=($LOAD)
mark() { kill -USR1 $LOAD; sleep 0.5; grep '^mark' "$WORK/load.log" | tail -1; }
# wait_until SECONDS CONDITION: mark every second until CONDITION (evaluated
# with the mark line in $m) holds; the last mark is left in $m.
wait_until() {
	local i
	for ((i = 0; i < $1; i++)); do
		m=$(mark)
		eval "$2" && return 0
		sleep 0.5
	done
	return 1
}
for ((i = 0; i < 100; i++)); do # its signal handlers are set before this line
	grep -q '^issued connects' "$WORK/load.log" && break
	sleep 0.2
done
t_load=$(date +%s)
wait_until $((RAMP + 60)) '[ "$(get admitted "$m")" -ge "$N" ] && [ "$(get active "$m")" -ge "$N" ]' ||
	{ echo "FAIL: not every listener admitted: $m"; exit 1; }
echo "all admitted after $(($(date +%s) - t_load)) s: $m"
sleep 5
before=$(mark)
echo "before ingest kill: $before"
echo "== kill the primary ingest (Icecast and its encoder)"
kill -9 "$PID_primary" 2>/dev/null || true
kill "$PID_FF_PRIMARY" 2>/dev/null || true
sleep 15
after=$(mark)
cp "$WORK/paths.txt.mark" "$WORK/paths-at-kill.txt"
read -r s1_calls s1_async _ s1_fo _ <<<"$(status "$P_R1")"
read -r s2_calls _ s2_readmits _ s2_unrep <<<"$(status "$P_R2")"
echo "after ingest kill:  $after"
echo "== kill relay 1"
t_kill=$(date +%s%3N)
kill -9 "$PID_RELAY1"
d0=$(get disconnects "$after")
wait_until $((BOUND + 30)) '[ "$(get active "$m")" -ge "$N" ] && [ "$(get disconnects "$m")" -gt "$d0" ] &&
	[ $(($(get reconnects "$m") - $(get reconnects "$after"))) -ge $(($(get disconnects "$m") - d0)) ]' ||
	echo "not every listener back: $m"
final=$m
echo "after relay kill:   $final ($(($(date +%s%3N) - t_kill)) ms)"
# The re-admission reports go out in the background (verify-rate): wait,
# bounded, until the backend heard of every token re-admission.
tok=$(($(get token_reconnects "$final") - $(get token_reconnects "$after")))
for ((i = 0; i < 60; i++)); do
	reports=$(awk -v t="$t_kill" -v p="$P_R2" '$1 >= t && $2 == "readmit" && $3 == p' "$WORK/auth-calls.log" | wc -l)
	[ "$reports" -ge "$tok" ] && break
	sleep 0.5
done
read -r e2_calls e2_async e2_readmits e2_fo e2_unrep <<<"$(status "$P_R2")"
kill -TERM $LOAD
wait $LOAD || true
grep -v '^mark\|^t=' "$WORK/load.log"
counts=$(curl -s -m 2 "http://127.0.0.1:$P_AUTH/count")
echo "auth backend: $counts"

# Token holders at the kill (their reconnect URL carries readmit=): users
# whose listener_add calls after the kill were anything but readmit reports.
awk '/readmit=|\tcookie$/{print "user" NR-1}' "$WORK/paths-at-kill.txt" | LC_ALL=C sort >"$WORK/holders.txt"
holders=$(wc -l <"$WORK/holders.txt")
awk -v t="$t_kill" '$1 >= t && $2 == "add" {print $4}' "$WORK/auth-calls.log" | LC_ALL=C sort >"$WORK/adds-after.txt"
holder_calls=$(LC_ALL=C join "$WORK/holders.txt" "$WORK/adds-after.txt" | wc -l)

d_ingest=$(($(get disconnects "$after") - $(get disconnects "$before")))
d_relay=$(($(get disconnects "$final") - d0))
reconn=$(($(get reconnects "$final") - $(get reconnects "$after")))
plain=$((reconn - tok))
cookie=$(get cookie_reconnects "$(grep '^result disconnects' "$WORK/load.log")")
ch=$(get challenges "$(grep '^result codes' "$WORK/load.log")")
gap=$(get max_silence_gap "$(grep '^result bytes' "$WORK/load.log")")
rline=$(grep '^result disconnects' "$WORK/load.log")
rp50=$(get reconnect_p50 "$rline")
rp99=$(get reconnect_p99 "$rline")
rmax=$(get reconnect_max "$rline")
first_calls=$((s1_calls + s2_calls))
readmit_calls=$((e2_calls - s2_calls))
all_reports=$(get readmits "$counts")
verify_later=$((s1_async + e2_async - all_reports))
((verify_later < 0)) && verify_later=0
fail_opens=$((s1_fo + e2_fo))
wwwauth=$(cat "$WORK"/relay*.log | grep -ci www-authenticate || true)
# Behind send-proxy-v2 the backend must see each listener's own address
# (127.1.x.y), never HAProxy's (127.0.0.2); no PROXY header may be refused.
add_calls=$(awk '$2 == "add"' "$WORK/auth-calls.log" | wc -l)
proxy_ips=$(awk '$2 == "add" && $5 ~ /^127\.1\./' "$WORK/auth-calls.log" | wc -l)
proxy_errs=$(cat "$WORK"/relay*.log | grep -c "proxy-protocol-from address closed" || true)

echo
echo "== e2e-stream figures"
printf '%-66s %s\n' "listeners (each from its own address, through haproxy)" "$N" \
	"disconnects caused by killing the primary ingest" "$d_ingest" \
	"longest audio gap bridged with silence (200 sampled listeners)" "$gap" \
	"listeners of the killed relay that disconnected / came back" "$d_relay / $reconn" \
	"  back on a re-admission token (of which original URL + cookie) / without" "$tok ($cookie) / $plain" \
	"reconnect time p50 / p99 / max (hang guard ${BOUND} s)" "$rp50 / $rp99 / $rmax" \
	"responses with WWW-Authenticate (load client + relay logs)" "$((ch + wwwauth))" \
	"backend calls with the listener's own address (PROXY v2) / calls" "$proxy_ips / $add_calls" \
	"connections refused for a missing or bad PROXY header (relay logs)" "$proxy_errs" \
	"first admissions: synchronous backend calls / listeners" "$first_calls / $N" \
	"fail-open admissions / verify-later backend calls" "$fail_opens / $verify_later" \
	"token holders at the kill / their backend calls after it" "$holders / $holder_calls" \
	"re-admissions: synchronous backend calls" "$readmit_calls" \
	"token admissions counted by the surviving relay" "$((e2_readmits - s2_readmits))" \
	"re-admission reports to the backend (readmit=1) / token re-admissions" "$reports / $tok" \
	"re-admission reports lost to a full verify queue (auth_readmits_unreported)" "$((e2_unrep - s2_unrep))"
fail=0
[ "$d_ingest" -eq 0 ] || { echo "FAIL: listeners disconnected when the ingest died"; fail=1; }
[ "$((ch + wwwauth))" -eq 0 ] || { echo "FAIL: a response carried WWW-Authenticate"; fail=1; }
[ "$add_calls" -gt 0 ] && [ "$proxy_ips" -eq "$add_calls" ] ||
	{ echo "FAIL: $((add_calls - proxy_ips)) of $add_calls backend calls without the listener's own address"; fail=1; }
[ "$proxy_errs" -eq 0 ] || { echo "FAIL: the relays refused PROXY headers from HAProxy"; fail=1; }
[ "$d_relay" -gt 0 ] || { echo "FAIL: killing a relay disconnected nobody (haproxy balance?)"; fail=1; }
[ "$reconn" -ge "$d_relay" ] || { echo "FAIL: not every dropped listener came back"; fail=1; }
[ "$(get active "$final")" -ge "$N" ] || { echo "FAIL: $(get active "$final") of $N listeners streaming at the end"; fail=1; }
[ "$tok" -gt 0 ] || { echo "FAIL: no listener came back on a token"; fail=1; }
[ "$holder_calls" -eq 0 ] || { echo "FAIL: the backend was asked about $holder_calls token holders after the kill"; fail=1; }
[ "$readmit_calls" -le "$plain" ] || { echo "FAIL: $readmit_calls synchronous calls for $plain re-admissions without a token"; fail=1; }
[ "$reports" -ge "$tok" ] || { echo "FAIL: the backend heard of $reports of $tok token re-admissions"; fail=1; }
[ "$first_calls" -le "$N" ] || { echo "FAIL: $first_calls synchronous calls for $N first admissions"; fail=1; }
awk -v t="$rmax" -v b="$BOUND" 'BEGIN{ if (t ~ /ms$/) exit 0; sub(/s$/,"",t); exit (t+0 <= b) ? 0 : 1 }' ||
	{ echo "FAIL: a reconnect took longer than $BOUND s"; fail=1; }
[ $fail -eq 0 ] && echo "e2e-stream: PASS"
exit $fail
