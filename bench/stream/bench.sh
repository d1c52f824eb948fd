#!/usr/bin/env bash
# Side-by-side: Icecast 2.4 and satd's relay on the same machine, fed by the
# same ffmpeg command (128 kbit/s MP3 pushed with HTTP PUT), under the same
# load client, one after the other. Prints RSS, RSS per listener and CPU at
# 500, 2000 and 5000 listeners, and a 2000-connect reconnect storm.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/stream/lib.sh
WORK=$(mktemp -d /tmp/bench-stream.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT INT TERM
need
raise_fds
LEVELS=${LEVELS:-"500 2000 5000"}
go build -o "$WORK/bin/" ./bench/stream/streamrelay ./bench/stream/icyload

ROWS=()
# run_server NAME PORT PID: load levels and storm against 127.0.0.1:PORT/live.
run_load() {
	local name=$1 port=$2 pid=$3 idle n ramp m cpu rss per storm served p50 p99
	sleep 3
	idle=$(measure "$pid" 5 | awk '{print $2}')
	ROWS+=("$(printf '| %-7s | %6s | %9s kB | %8s | %6s |' "$name" 0 "$idle" "—" "$(measure "$pid" 3 | awk '{print $1}') %")")
	for n in $LEVELS; do
		ramp=$((n / 250))
		"$WORK/bin/icyload" -addr "127.0.0.1:$port" -path /live -n "$n" -ramp "${ramp}s" -dur "$((ramp + 22))s" -every 60s >"$WORK/$name-$n.log" 2>&1 &
		local load=$!
		PIDS+=($load)
		sleep $((ramp + 8))
		m=$(measure "$pid" 10)
		cpu=${m% *}
		rss=${m#* }
		per=$(awk -v a="$rss" -v b="$idle" -v n="$n" 'BEGIN{printf "%.1f KB", (a-b)*1.024/n}')
		wait $load || true
		ROWS+=("$(printf '| %-7s | %6s | %9s kB | %8s | %6s |' "$name" "$n" "$rss" "$per" "$cpu %")")
		sleep 2
	done
	"$WORK/bin/icyload" -addr "127.0.0.1:$port" -path /live -n 2000 -ramp 0 -dur 15s -every 60s >"$WORK/$name-storm.log" 2>&1 || true
	served=$(sed -n 's/^result .*served=\([0-9]*\).*/\1/p' "$WORK/$name-storm.log")
	p50=$(sed -n 's/^result ttfb_p50=\([^ ]*\).*/\1/p' "$WORK/$name-storm.log")
	p99=$(sed -n 's/.*ttfb_p99=\([^ ]*\).*/\1/p' "$WORK/$name-storm.log")
	STORM+=("$(printf '| %-7s | %5s / 2000 | %8s | %8s |' "$name" "$served" "$p50" "$p99")")
}
STORM=()

echo "== Icecast 2.4 ($(dpkg-query -W -f '${Version}' icecast2 2>/dev/null || echo '?'))"
start_icecast icecast 18300
sleep 1
start_ffmpeg icecast://source:benchsrc@127.0.0.1:18300/live 440
FF=${PIDS[-1]}
wait_stream http://127.0.0.1:18300/live 20
run_load icecast 18300 "$PID_icecast"
kill "$FF" "$PID_icecast" 2>/dev/null || true
sleep 2

echo "== satd netstream"
cat >"$WORK/relay.toml" <<TOML
[stream]
enabled = true
listen = "127.0.0.1:18301"
clients = 20000
source-password = "benchsrc"
drain-delay = "0s"
drain-window = "1s"
[[stream.mount]]
mount-name = "/live"
TOML
"$WORK/bin/streamrelay" -config "$WORK/relay.toml" 2>"$WORK/relay.log" &
SATD=$!
PIDS+=($SATD)
sleep 1
start_ffmpeg icecast://source:benchsrc@127.0.0.1:18301/live 440
wait_stream http://127.0.0.1:18301/live 20
run_load satd 18301 "$SATD"

echo
echo "Machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), loopback, 128 kbit/s MP3"
echo
echo "| server  | listeners | RSS | RSS per listener | CPU (% of one core) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Reconnect storm: 2000 connects at the same instant, no auth"
echo
echo "| server  | served | TTFB p50 | TTFB p99 |"
echo "|---|---|---|---|"
printf '%s\n' "${STORM[@]}"
