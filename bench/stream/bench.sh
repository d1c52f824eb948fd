#!/usr/bin/env bash
# Side-by-side: Icecast 2.4 and the satd daemon (cmd/satd with a [stream]
# section, the web form on, dvbapi off: what users run) on the same machine,
# fed by the same ffmpeg command (128 kbit/s MP3 pushed with HTTP PUT), under
# the same load client, one after the other. Prints RSS, RSS per listener,
# CPU (with its user/kernel split) and the rate every listener received at
# each level, each server's capacity (the largest level every listener got
# in real time without drops), and a 10,000-connect storm on a URL-auth
# mount whose backend answers in 200 ms: cold (nobody has a token), then for
# satd again with every listener holding the re-admission token it was
# redirected to (a dead relay's listeners coming back).
#
# RSS per listener is computed the same way for both servers: (RSS under
# load - RSS with the source running and no listener) / listeners, the idle
# RSS taken once the source has run for a few seconds and 200 listeners have
# come and gone (warm-up: the code pages of the listener path, 0.3 MB for
# satd, and the collector's metadata of its first cycles, 0.6 MB, are paid
# once, not per listener; 20 warm-up listeners were too few under load); the
# marginal column gives (RSS - RSS of the previous row) / added listeners.
#
# Environment: LEVELS (default "500 2000 5000 19000"), SERVERS (default
# "icecast satd"), STORM (listeners of the storm, default 10000, 0 = none),
# STORM_WINDOW (how long the storm's listeners keep trying, default 40 s),
# KEEP=1 keeps the logs, PPROF=1 builds satd with -tags satd_pprof and saves
# a heap profile and the runtime's memory figures at each level (writing a
# profile allocates a few MB: PPROF runs are for finding costs, their RSS
# rows are not the reference).
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/stream/lib.sh
WORK=$(mktemp -d /tmp/bench-stream.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT INT TERM
need
raise_fds
LEVELS=${LEVELS:-"500 2000 5000 19000"}
SERVERS=${SERVERS:-"icecast satd"}
STORM=${STORM:-10000}
# The storm's window, sized from the design: the cold storm is bounded by
# the backend (64 at once / 200 ms = 320 decisions/s: 10,000 need 31 s), the
# token storm by the relay alone (p99 <= 3 s is the target); 40 s lets the
# cold storm finish and leaves any token-storm straggler visible at its
# real time instead of cutting it off.
STORM_WINDOW=${STORM_WINDOW:-40}
TAGS=()
if [ -n "${PPROF:-}" ]; then TAGS=(-tags satd_pprof); fi
go build "${TAGS[@]}" -o "$WORK/bin/" ./cmd/satd ./bench/stream/icyload ./bench/stream/authsrv
AUTH=127.0.0.1:18080
"$WORK/bin/authsrv" -addr $AUTH -delay 200ms -limit 64 2>"$WORK/authsrv.log" &
PIDS+=($!)
wait_http "http://$AUTH/count" 10

ROWS=()
STORMS=()
CAPACITY=()
# row NAME N RSS PER MARGINAL "cpu rss user sys" RATE: one table line.
row() {
	local m=($6)
	ROWS+=("$(printf '| %-7s | %6s | %9s kB | %8s | %8s | %5s %% | %5s %% | %5s %% | %s |' "$1" "$2" "$3" "$4" "$5" "${m[0]}" "${m[2]}" "${m[3]}" "$7")")
}

# run_load NAME PORT PID: load levels and storm against 127.0.0.1:PORT/live.
run_load() {
	local name=$1 port=$2 pid=$3 idle n ramp m rss per marginal rate prev_n=0 prev_rss capacity=0 lo drops conn
	sleep 3
	"$WORK/bin/icyload" -addr "127.0.0.1:$port" -path /live -n 200 -ramp 1s -dur 5s -every 2s >"$WORK/$name-warmup.log" 2>&1 || true
	sleep 12
	# The same 10 s window as every level: a shorter idle window sees fewer
	# collector cycles, so its largest RSS reads low against the levels.
	m=$(measure "$pid" 10)
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
		# Per listener actually connected (the most at once; a server that
		# refused some is not credited with their memory).
		conn=$(awk '/^t=/ {a = $2; sub(/active=/, "", a); if (a + 0 > m) m = a + 0} END {print m + 0}' "$WORK/$name-$n.log")
		[ "$conn" -gt 0 ] || conn=$n
		per=$(awk -v a="$rss" -v b="$idle" -v n="$conn" 'BEGIN{printf "%.1f KB", (a-b)*1.024/n}')
		marginal=$(awk -v a="$rss" -v b="$prev_rss" -v n=$((conn - prev_n)) 'BEGIN{if (n > 0) printf "%.1f KB", (a-b)*1.024/n; else print "—"}')
		prev_n=$conn prev_rss=$rss
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
		drops=$(sed -n 's/^result .*disconnects=\([0-9]*\) .*/\1/p' "$WORK/$name-$n.log")
		rate="$rate, $drops drops"
		row "$name" "$n ($conn)" "$rss" "$per" "$marginal" "$m" "$rate"
		# Real time: every 2 s sample at least 112 kbit/s (of 128; satd writes
		# a listener once a second, so samples jitter by a write) and no drop.
		lo=$(echo "$rate" | sed -n 's/^\([0-9]*\)–.*/\1/p')
		if [ -n "$lo" ] && [ "$lo" -ge 112 ] && [ "$drops" = 0 ]; then capacity=$n; fi
		sleep 2
	done
	CAPACITY+=("| $name | $capacity |")
}

# storm NAME PORT PID KIND: $STORM listeners connect at once to /paid (URL
# auth, 200 ms backend) and retry like players (after Retry-After when
# given); KIND cold: nobody holds a token (their final paths are saved);
# tokens: every listener reconnects to the path it was redirected to.
storm() {
	local name=$1 port=$2 pid=$3 kind=$4 before after m args
	args=(-follow -pathsout "$WORK/$name-paths.txt")
	if [ "$kind" = tokens ]; then
		# Every listener of the cold storm fetches its token first (those
		# that got one are re-admitted on it), paced below the backend.
		"$WORK/bin/icyload" -addr "127.0.0.1:$port" -path /paid -n "$STORM" -ramp 30s -users -reconnect -headonly \
			-follow -pathsin "$WORK/$name-paths.txt" -pathsout "$WORK/$name-tokens.txt" -dur 90s -every 60s >"$WORK/$name-prefetch.log" 2>&1 || true
		echo "token prefetch: $(grep -c readmit= "$WORK/$name-tokens.txt") of $STORM listeners hold a token"
		sleep 3
		args=(-follow -pathsin "$WORK/$name-tokens.txt")
	fi
	# The prefetch's own re-admission reports may still be queued: let
	# them reach the backend before counting, so they are not booked to
	# the storm.
	[ "$name" != satd ] || drain_verifier "$name" "$port" >/dev/null
	before=$(curl -s "http://$AUTH/count")
	local fo0 fo1 un0 un1 backlog drain
	fo0=$(paid_stat "$name" "$port" auth_fail_opens)
	un0=$(paid_stat "$name" "$port" auth_readmits_unreported)
	measure "$pid" "$STORM_WINDOW" >"$WORK/$name-$kind-measure.txt" &
	local mp=$!
	"$WORK/bin/icyload" -addr "127.0.0.1:$port" -path /paid -n "$STORM" -ramp 0 -users -reconnect "${args[@]}" \
		-dur "${STORM_WINDOW}s" -every 60s >"$WORK/$name-storm-$kind.log" 2>&1 || true
	wait $mp || true
	m=$(cat "$WORK/$name-$kind-measure.txt")
	# Re-admission reports go out at verify-rate in the background, also
	# for listeners that have left: wait (at most 90 s) for the verifier's
	# backlog to drain before counting what the backend heard.
	backlog=$(paid_stat "$name" "$port" auth_verifying)
	drain=-
	if [ "$name" = satd ]; then
		drain=$(drain_verifier "$name" "$port")
		echo "storm $kind: verifier backlog $backlog at the end of the window, drained after $drain"
	fi
	after=$(curl -s "http://$AUTH/count")
	fo1=$(paid_stat "$name" "$port" auth_fail_opens)
	un1=$(paid_stat "$name" "$port" auth_readmits_unreported)
	local l="$WORK/$name-storm-$kind.log" calls readmits
	calls=$(($(echo "$after" | sed -n 's/^calls=\([0-9]*\).*/\1/p') - $(echo "$before" | sed -n 's/^calls=\([0-9]*\).*/\1/p')))
	readmits=$(($(echo "$after" | sed -n 's/.*readmits=\([0-9]*\).*/\1/p') - $(echo "$before" | sed -n 's/.*readmits=\([0-9]*\).*/\1/p')))
	STORMS+=("$(printf '| %-7s | %-6s | %5s / %s | %8s | %8s | %6s | %6s | %s | %s | %s | %s | %s | %6s kB |' "$name" "$kind" \
		"$(sed -n 's/^result listeners_admitted=\([0-9]*\).*/\1/p' "$l")" "$STORM" \
		"$(sed -n 's/.*admit_p50=\([^ ]*\).*/\1/p' "$l")" "$(sed -n 's/.*admit_p99=\([^ ]*\).*/\1/p' "$l")" \
		"$calls" "$readmits" "$((un1 - un0))" "$backlog" "$drain" "$((fo1 - fo0))" "$(sed -n 's/^result .*challenges=\([0-9]*\).*/\1/p' "$l")" \
		"$(echo "$m" | awk '{print $2}')")")
	sleep 3
}

# drain_verifier NAME PORT: wait (at most 90 s) until satd's verifier has
# nothing queued for /paid; print how long that took.
drain_verifier() {
	local t0=$SECONDS
	while [ "$(paid_stat "$1" "$2" auth_verifying)" != 0 ] && [ $((SECONDS - t0)) -lt 90 ]; do sleep 1; done
	if [ "$(paid_stat "$1" "$2" auth_verifying)" = 0 ]; then echo "$((SECONDS - t0)) s"; else echo "> 90 s"; fi
}

# paid_stat NAME PORT KEY: counter KEY of /paid in satd's /status.json
# (0 for other servers).
paid_stat() {
	if [ "$1" != satd ]; then echo 0; return; fi
	curl -s "http://127.0.0.1:$2/status.json" | tr '{' '\n' | grep '"name":"/paid"' | sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p"
}

# feed_and_load NAME PORT PID: push the source to 127.0.0.1:PORT/live, load
# the server, then stop both.
feed_and_load() {
	start_ffmpeg "icecast://source:benchsrc@127.0.0.1:$2/live" 440
	local ff=${PIDS[-1]}
	wait_stream "http://127.0.0.1:$2/live" 20
	run_load "$1" "$2" "$3"
	if [ "$STORM" -gt 0 ]; then
		start_ffmpeg "icecast://source:benchsrc@127.0.0.1:$2/paid" 660
		local ff2=${PIDS[-1]}
		sleep 4
		storm "$1" "$2" "$3" cold
		[ "$1" = satd ] && storm "$1" "$2" "$3" tokens
		kill "$ff2" 2>/dev/null || true
	fi
	kill "$ff" "$3" 2>/dev/null || true
	sleep 2
}

for server in $SERVERS; do
	case $server in
	icecast)
		echo "== Icecast 2.4 ($(dpkg-query -W -f '${Version}' icecast2 2>/dev/null || echo '?'))"
		start_icecast icecast 18300 "<mount type=\"normal\"><mount-name>/paid</mount-name><authentication type=\"url\">
    <option name=\"listener_add\" value=\"http://$AUTH/auth\"/><option name=\"auth_header\" value=\"icecast-auth-user: 1\"/></authentication></mount>"
		sleep 1
		feed_and_load icecast 18300 "$PID_icecast"
		;;
	satd)
		echo "== satd (cmd/satd, [stream] with the web form on, dvbapi off)"
		mkdir -p "$WORK/satd-state"
		cat >"$WORK/satd.toml" <<TOML
[global]
state_dir = "$WORK/satd-state"
[log]
level = "warn"
[web]
listen = "127.0.0.1:18303"
[dvbapi]
enabled = false
[stream]
enabled = true
listen = "127.0.0.1:18301"
clients = 20000
source-password = "benchsrc"
admission-burst = 10000
drain-delay = "0s"
drain-window = "1s"
[[stream.mount]]
mount-name = "/live"
[[stream.mount]]
mount-name = "/paid"
[stream.mount.authentication]
type = "url"
handlers = 64
listener_add = "http://$AUTH/auth"
token-keys = ["$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"]
TOML
		SATD_PPROF=${PPROF:+127.0.0.1:18302} "$WORK/bin/satd" -config "$WORK/satd.toml" >"$WORK/satd.log" 2>&1 &
		PIDS+=($!)
		wait_http "http://127.0.0.1:18301/healthz" 20
		feed_and_load satd 18301 "${PIDS[-1]}"
		;;
	esac
done

echo
echo "Machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), loopback, 128 kbit/s MP3"
echo
echo "| server  | listeners (connected at the measurement) | RSS | RSS per listener (Δ vs idle / n) | marginal (Δ vs previous row) | CPU (% of one core) | user | kernel | rate per listener, drops |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Capacity: the largest level every listener got in real time (every 2 s sample >= 112 kbit/s of 128, no drop)"
echo
echo "| server | listeners |"
echo "|---|---|"
printf '%s\n' "${CAPACITY[@]}"
if [ "$STORM" -gt 0 ]; then
	echo
	echo "Storm: $STORM listeners connect at once to a URL-auth mount (backend: 200 ms, 64 at once; satd handlers = 64), retrying like players"
	echo "(after Retry-After when given); admitted = listeners that got a 200 within ${STORM_WINDOW} s; time = first attempt to the 200 head."
	echo
	echo "readmit reports = listener_add readmit=1 the backend got, counted once the verifier's backlog (at the window's end) drained;"
	echo "unreported = re-admissions whose report found the verify queue full (auth_readmits_unreported)."
	echo
	echo "| server | tokens | admitted | p50 | p99 | backend calls | readmit reports | unreported | backlog | drained after | fail-open | challenges | peak RSS |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${STORMS[@]}"
fi
if [ -n "${KEEP:-}" ]; then echo "logs kept in $WORK"; fi
