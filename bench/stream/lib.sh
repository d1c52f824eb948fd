# Shared helpers for the netstream e2e and bench scripts (sourced, bash).
# Every server binds to 127.0.0.1; every process started is recorded in PIDS
# and killed by cleanup (trap); every wait is bounded.

PIDS=()
cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	if [ -n "${WORK:-}" ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; fi
	return 0
}

need() { # install the Debian packages that provide missing commands
	local missing=()
	command -v icecast2 >/dev/null || missing+=(icecast2)
	command -v ffmpeg >/dev/null || missing+=(ffmpeg)
	command -v curl >/dev/null || missing+=(curl)
	if [ "${1:-}" = haproxy ] && ! command -v haproxy >/dev/null; then missing+=(haproxy); fi
	if [ ${#missing[@]} -gt 0 ]; then
		echo "installing ${missing[*]}"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	export PATH="$PATH:/usr/sbin:/sbin"
}

raise_fds() {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 2>/dev/null || true
}

# wait_http URL SECONDS: poll until URL answers 200.
wait_http() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1")" = 200 ] && return 0
		sleep 0.1
	done
	echo "timeout waiting for $1" >&2
	return 1
}

# wait_stream URL SECONDS: poll until URL streams at least 1 KiB.
wait_stream() {
	local i
	for ((i = 0; i < $2 * 4; i++)); do
		[ "$(curl -s -o /dev/null -m 0.5 -w '%{size_download}' "$1" 2>/dev/null)" -gt 1024 ] 2>/dev/null && return 0
		sleep 0.25
	done
	echo "timeout waiting for a stream at $1" >&2
	return 1
}

# start_icecast NAME PORT [MOUNT_XML]: Icecast 2.4 on 127.0.0.1:PORT with
# mount /live and any extra <mount> elements (it refuses to run as root, so
# it runs as the icecast2 user).
start_icecast() {
	local dir="$WORK/$1"
	mkdir -p "$dir/log" "$dir/web"
	cat >"$dir/icecast.xml" <<XML
<icecast>
  <limits><clients>20000</clients><sources>4</sources><queue-size>524288</queue-size>
    <header-timeout>15</header-timeout><source-timeout>10</source-timeout><burst-size>65536</burst-size></limits>
  <authentication><source-password>benchsrc</source-password><relay-password>benchrelay</relay-password>
    <admin-user>admin</admin-user><admin-password>benchadmin</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>$2</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <mount type="normal"><mount-name>/live</mount-name></mount>
  ${3:-}
  <fileserve>1</fileserve>
  <paths><basedir>$dir</basedir><logdir>$dir/log</logdir><webroot>$dir/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot><pidfile>$dir/icecast.pid</pidfile></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot></security>
</icecast>
XML
	chown -R icecast2:icecast "$dir" 2>/dev/null || true
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid icecast2 --regid icecast --init-groups icecast2 -c "$dir/icecast.xml" &
	else
		icecast2 -c "$dir/icecast.xml" &
	fi
	PIDS+=($!)
	eval "PID_$1=$!"
}

# start_ffmpeg URL FREQ: 128 kbit/s MP3 pushed with HTTP PUT.
start_ffmpeg() {
	timeout 3000 ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i "sine=frequency=$2:sample_rate=44100" \
		-ac 2 -c:a libmp3lame -b:a 128k -content_type audio/mpeg -ice_name Bench -ice_genre Test -f mp3 "$1" &
	PIDS+=($!)
}

# measure PID SECONDS: prints "cpu% rss_max_kB user% sys%" (CPU in % of one
# core from utime/stime ticks of /proc/PID/stat over the window).
measure() {
	local pid=$1 secs=$2 hz u0 s0 u1 s1 rss max=0 i
	hz=$(getconf CLK_TCK)
	read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
	for ((i = 0; i < secs; i++)); do
		rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
		[ "$rss" -gt "$max" ] && max=$rss
		sleep 1
	done
	read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
	awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v t="$secs" -v max="$max" \
		'BEGIN{printf "%.1f %d %.1f %.1f\n", 100*(u+s)/hz/t, max, 100*u/hz/t, 100*s/hz/t}'
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, asked of the kernel
# (bound at once, then released), so runs do not collide with `make run` or
# with each other.
free_ports() {
	python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}
