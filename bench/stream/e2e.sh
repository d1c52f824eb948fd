#!/usr/bin/env bash
# make e2e-stream: the seed's failure chain, end to end, on loopback.
#   ffmpeg -> Icecast primary (:18001) and backup (:18002)
#   two satd relays (:18101, :18102) pulling [primary, backup], URL auth
#   against a backend answering in 200 ms with at most 20 requests at once
#   HAProxy (:18100) in front, health-checking /readyz
#   2,000 listeners (Go load client) through HAProxy.
# Then: kill the primary ingest (no listener may disconnect; the audio gap is
# reported), kill one relay (its listeners must reconnect through HAProxy
# within seconds, no WWW-Authenticate anywhere, auth calls <= distinct
# uncached listeners). Prints its figures; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/stream/lib.sh
N=${N:-2000}
WORK=$(mktemp -d /tmp/e2e-stream.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT INT TERM
need haproxy
raise_fds

echo "== build"
go build -o "$WORK/bin/" ./bench/stream/streamrelay ./bench/stream/icyload ./bench/stream/authsrv

echo "== ingests, encoders, auth backend"
start_icecast primary 18001
start_icecast backup 18002
sleep 1
start_ffmpeg icecast://source:benchsrc@127.0.0.1:18001/live 440
PID_FF_PRIMARY=${PIDS[-1]}
start_ffmpeg icecast://source:benchsrc@127.0.0.1:18002/live 440
wait_stream http://127.0.0.1:18001/live 20
wait_stream http://127.0.0.1:18002/live 20
"$WORK/bin/authsrv" -addr 127.0.0.1:18080 -delay 200ms -limit 20 2>"$WORK/auth.log" &
PIDS+=($!)

echo "== two satd relays"
for i in 1 2; do
	cat >"$WORK/relay$i.toml" <<TOML
[stream]
enabled = true
listen = "127.0.0.1:1810$i"
drain-delay = "0s"
[[stream.mount]]
mount-name = "/live"
upstream = ["http://127.0.0.1:18001/live", "http://127.0.0.1:18002/live"]
retry-base = "250ms"
retry-max = "5s"
[stream.mount.authentication]
type = "url"
listener_add = "http://127.0.0.1:18080/auth"
listener_remove = "http://127.0.0.1:18080/auth"
on-error = "open"
timeout = "2s"
TOML
	"$WORK/bin/streamrelay" -config "$WORK/relay$i.toml" 2>"$WORK/relay$i.log" &
	PIDS+=($!)
	eval "PID_RELAY$i=$!"
done
wait_http http://127.0.0.1:18101/readyz 20
wait_http http://127.0.0.1:18102/readyz 20

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
  bind 127.0.0.1:18100
  default_backend relays
backend relays
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  server relay1 127.0.0.1:18101 check inter 1s fall 2 rise 3
  server relay2 127.0.0.1:18102 check inter 1s fall 2 rise 3
CFG
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
wait_stream http://127.0.0.1:18100/live 20

DUR=75
echo "== $N listeners through haproxy for ${DUR}s"
"$WORK/bin/icyload" -addr 127.0.0.1:18100 -path /live -n "$N" -ramp 5s -dur ${DUR}s -users -reconnect -gapsample 200 \
	>"$WORK/load.log" 2>&1 &
LOAD=$!
PIDS+=($LOAD)
sleep 20
mark() { kill -USR1 $LOAD; sleep 0.3; grep '^mark' "$WORK/load.log" | tail -1; }
before=$(mark)
echo "before ingest kill: $before"
echo "== kill the primary ingest (Icecast :18001 and its encoder)"
kill -9 "$PID_primary" "$PID_FF_PRIMARY" 2>/dev/null || true
sleep 15
after=$(mark)
echo "after ingest kill:  $after"
echo "== kill relay 1"
kill -9 "$PID_RELAY1"
sleep 20
final=$(mark)
echo "after relay kill:   $final"
wait $LOAD || true
cat "$WORK/load.log" | grep -v '^mark'
counts=$(curl -s -m 2 http://127.0.0.1:18080/count)
echo "auth backend: $counts"

get() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
d_ingest=$(($(get disconnects "$after") - $(get disconnects "$before")))
d_relay=$(($(get disconnects "$final") - $(get disconnects "$after")))
ch=$(get challenges "$(grep '^result codes' "$WORK/load.log")")
gap=$(get max_silence_gap "$(grep '^result bytes' "$WORK/load.log")")
rp99=$(get reconnect_p99 "$(grep '^result disconnects' "$WORK/load.log")")
rmax=$(get reconnect_max "$(grep '^result disconnects' "$WORK/load.log")")
reconn=$(get reconnects "$(grep '^result disconnects' "$WORK/load.log")")
calls=$(get calls "$counts")
distinct=$(get distinct "$counts")
wwwauth=$(grep -ci 'www-authenticate' "$WORK"/relay*.log || true)

echo
echo "== e2e-stream figures"
printf '%-58s %s\n' "listeners" "$N" \
	"disconnects caused by killing the primary ingest" "$d_ingest" \
	"longest audio gap bridged with silence (sampled listeners)" "$gap" \
	"listeners of the killed relay that disconnected" "$d_relay" \
	"reconnected through haproxy (total reconnects)" "$reconn" \
	"reconnect time p99 / max" "$rp99 / $rmax" \
	"responses with WWW-Authenticate" "$ch" \
	"auth backend calls / distinct (relay, listener) pairs" "$calls / $distinct"
fail=0
[ "$d_ingest" -eq 0 ] || { echo "FAIL: listeners disconnected when the ingest died"; fail=1; }
[ "$ch" -eq 0 ] || { echo "FAIL: a response carried WWW-Authenticate"; fail=1; }
[ "$d_relay" -gt 0 ] || { echo "FAIL: killing a relay disconnected nobody (haproxy balance?)"; fail=1; }
[ "$reconn" -ge "$d_relay" ] || { echo "FAIL: not every dropped listener reconnected"; fail=1; }
[ "$calls" -le "$distinct" ] || { echo "FAIL: auth backend saw repeated calls for cached listeners"; fail=1; }
awk -v t="$rmax" 'BEGIN{ if (t ~ /ms$/) exit 0; sub(/s$/,"",t); exit (t+0 <= 10) ? 0 : 1 }' ||
	{ echo "FAIL: a reconnect took longer than 10 s"; fail=1; }
[ $fail -eq 0 ] && echo "e2e-stream: PASS"
exit $fail
