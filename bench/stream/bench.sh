#!/usr/bin/env bash
# Side-by-side: Icecast 2.4 and satd's relay on the same machine, fed by the
# same ffmpeg command (128 kbit/s MP3 pushed with HTTP PUT), under the same
# load client, one after the other. Prints RSS, RSS per listener, CPU (with
# its user/kernel split) and the rate every listener received at 500, 2000
# and 5000 listeners, and a 2000-connect reconnect storm.
#
# RSS per listener is computed the same way for both servers: (RSS under
# load - RSS with the source running and no listener) / listeners, taken once
# the source has run for a few seconds. It includes one-time costs (for satd,
# the Go heap growing to its 4 MiB minimum GC goal with the garbage of the
# first connections, and the connection path's code pages), so the marginal
# column also gives (RSS - RSS of the previous row) / added listeners.
#
# Environment: LEVELS (default "500 2000 5000"), SERVERS (default
# "icecast satd"), PPROF=1 serves net/http/pprof of the relay on
# 127.0.0.1:18302 and saves a heap profile at each level (KEEP=1 keeps them).
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/stream/lib.sh
WORK=$(mktemp -d /tmp/bench-stream.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT INT TERM
need
raise_fds
LEVELS=${LEVELS:-"500 2000 5000"}
SERVERS=${SERVERS:-"icecast satd"}
go build -o "$WORK/bin/" ./bench/stream/streamrelay ./bench/stream/icyload

ROWS=()
STORM=()
# row NAME N RSS PER MARGINAL "cpu rss user sys" RATE: one table line.
row() {
	local m=($6)
	ROWS+=("$(printf '| %-7s | %6s | %9s kB | %8s | %8s | %5s %% | %5s %% | %5s %% | %s |' "$1" "$2" "$3" "$4" "$5" "${m[0]}" "${m[2]}" "${m[3]}" "$7")")
}

# run_load NAME PORT PID: load levels and storm against 127.0.0.1:PORT/live.
run_load() {
	local name=$1 port=$2 pid=$3 idle n ramp m rss per marginal rate served p50 p99 prev_n=0 prev_rss
	sleep 3
	m=$(measure "$pid" 5)
	idle=$(echo "$m" | awk '{print $2}')
	prev_rss=$idle
	row "$name" 0 "$idle" "—" "—" "$m" "—"
	for n in $LEVELS; do
		ramp=$((n / 250))
		"$WORK/bin/icyload" -addr "127.0.0.1:$port" -path /live -n "$n" -ramp "${ramp}s" -dur "$((ramp + 22))s" -every 2s >"$WORK/$name-$n.log" 2>&1 &
		local load=$!
		PIDS+=($load)
		sleep $((ramp + 8))
		m=$(measure "$pid" 10)
		rss=$(echo "$m" | awk '{print $2}')
		per=$(awk -v a="$rss" -v b="$idle" -v n="$n" 'BEGIN{printf "%.1f KB", (a-b)*1.024/n}')
		marginal=$(awk -v a="$rss" -v b="$prev_rss" -v n=$((n - prev_n)) 'BEGIN{printf "%.1f KB", (a-b)*1.024/n}')
		prev_n=$n prev_rss=$rss
		if [ -n "${PPROF:-}" ] && [ "$name" = satd ]; then
			curl -s -o "$WORK/heap-$n.pb.gz" "http://127.0.0.1:18302/debug/pprof/heap?gc=1" || true
			curl -s "http://127.0.0.1:18302/debug/pprof/heap?debug=1" | grep -E '^# (HeapAlloc|HeapInuse|HeapSys|HeapIdle|HeapReleased|StackInuse|Sys|NumGC|NextGC) ' >"$WORK/memstats-$n.txt" || true
		fi
		wait $load || true
		# Per-listener receive rate over the window after the ramp (min-max of
		# the 2 s samples, the last sample after the deadline excluded).
		rate=$(awk -v lo=$((ramp + 4)) -v hi=$((ramp + 20)) '/^t=/ {
				t = $1; sub(/^t=/, "", t); sub(/s$/, "", t); r = $NF; sub(/^rate=/, "", r); sub(/kbit.*/, "", r)
				if (t + 0 >= lo && t + 0 <= hi) { if (min == "" || r + 0 < min) min = r + 0; if (r + 0 > max) max = r + 0 }
			} END { if (min == "") print "?"; else printf "%.0f–%.0f kbit/s", min, max }' "$WORK/$name-$n.log")
		rate="$rate, $(sed -n 's/^result .*disconnects=\([0-9]*\) .*/\1/p' "$WORK/$name-$n.log") drops"
		row "$name" "$n" "$rss" "$per" "$marginal" "$m" "$rate"
		sleep 2
	done
	"$WORK/bin/icyload" -addr "127.0.0.1:$port" -path /live -n 2000 -ramp 0 -dur 15s -every 60s >"$WORK/$name-storm.log" 2>&1 || true
	served=$(sed -n 's/^result .*served=\([0-9]*\).*/\1/p' "$WORK/$name-storm.log")
	p50=$(sed -n 's/^result ttfb_p50=\([^ ]*\).*/\1/p' "$WORK/$name-storm.log")
	p99=$(sed -n 's/.*ttfb_p99=\([^ ]*\).*/\1/p' "$WORK/$name-storm.log")
	STORM+=("$(printf '| %-7s | %5s / 2000 | %8s | %8s |' "$name" "$served" "$p50" "$p99")")
}

# feed_and_load NAME PORT PID: push the source to 127.0.0.1:PORT/live, load
# the server, then stop both.
feed_and_load() {
	start_ffmpeg "icecast://source:benchsrc@127.0.0.1:$2/live" 440
	local ff=${PIDS[-1]}
	wait_stream "http://127.0.0.1:$2/live" 20
	run_load "$1" "$2" "$3"
	kill "$ff" "$3" 2>/dev/null || true
	sleep 2
}

for server in $SERVERS; do
	case $server in
	icecast)
		echo "== Icecast 2.4 ($(dpkg-query -W -f '${Version}' icecast2 2>/dev/null || echo '?'))"
		start_icecast icecast 18300
		sleep 1
		feed_and_load icecast 18300 "$PID_icecast"
		;;
	satd)
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
		pprof=()
		[ -n "${PPROF:-}" ] && pprof=(-pprof 127.0.0.1:18302)
		"$WORK/bin/streamrelay" -config "$WORK/relay.toml" "${pprof[@]}" 2>"$WORK/relay.log" &
		PIDS+=($!)
		sleep 1
		feed_and_load satd 18301 "${PIDS[-1]}"
		;;
	esac
done

echo
echo "Machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), loopback, 128 kbit/s MP3"
echo
echo "| server  | listeners | RSS | RSS per listener (Δ vs idle / n) | marginal (Δ vs previous row) | CPU (% of one core) | user | kernel | rate per listener, drops |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Reconnect storm: 2000 connects at the same instant, no auth"
echo
echo "| server  | served | TTFB p50 | TTFB p99 |"
echo "|---|---|---|---|"
printf '%s\n' "${STORM[@]}"
if [ -n "${KEEP:-}" ]; then echo "logs and profiles kept in $WORK"; fi
