#!/bin/sh
#
# Render satd's default configuration from the Config.in choices, on stdout.
# satd.mk runs it with these variables (the defaults are Config.in's):
#
#   SATD_WEB=y|n                 serve the web form
#   SATD_WEB_PORT=8080           its port
#   SATD_STREAM=y|n              run the stream relay
#   SATD_STREAM_PORT=8000        its port
#   SATD_DVBAPI=enigma2|camd-socket|tcp
#   SATD_DVBAPI_TCP_PORT=9000    port of the tcp mode
#   SATD_BOARD=none|internal-1|internal-2|phoenix|custom
#   SATD_BOARD_FILE=path         [[reader]] tables for the custom profile
#
# SATD_LISTEN_ADDR (default 0.0.0.0, all interfaces) and SATD_STATE_DIR
# (default /var/lib/satd) exist for tests, which must bind to loopback.
#
# Exits 2 with a message naming the variable when a value is not valid.

set -eu

fail() {
	echo "render-config.sh: $*" >&2
	exit 2
}

port() {
	case "$2" in
	'' | *[!0-9]*) fail "$1=$2 is not a port number" ;;
	esac
	if [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then
		fail "$1=$2 is not in 1-65535"
	fi
	echo "$2"
}

yesno() {
	case "$2" in
	y | n) echo "$2" ;;
	*) fail "$1=$2 must be y or n" ;;
	esac
}

web=$(yesno SATD_WEB "${SATD_WEB:-y}")
web_port=$(port SATD_WEB_PORT "${SATD_WEB_PORT:-8080}")
stream=$(yesno SATD_STREAM "${SATD_STREAM:-n}")
stream_port=$(port SATD_STREAM_PORT "${SATD_STREAM_PORT:-8000}")
dvbapi=${SATD_DVBAPI:-camd-socket}
tcp_port=$(port SATD_DVBAPI_TCP_PORT "${SATD_DVBAPI_TCP_PORT:-9000}")
board=${SATD_BOARD:-none}
addr=${SATD_LISTEN_ADDR:-0.0.0.0}
state_dir=${SATD_STATE_DIR:-/var/lib/satd}

cat <<EOF
# satd configuration, rendered from the Buildroot options of the image.
# satd reloads it on SIGHUP (/etc/init.d/S90satd reload); the web form edits
# it too. Every key and its default: \`satd config-reference\`.

[global]
state_dir = "$state_dir"

[log]
level = "info"
# The init script sends stderr to \$SATD_LOG (default /dev/null): read the
# log with logread.
syslog = true

[web]
EOF
if [ "$web" = y ]; then
	echo "enabled = true"
else
	echo "enabled = false"
fi
echo "listen = \"$addr:$web_port\""

echo
echo "[dvbapi]"
case "$dvbapi" in
enigma2)
	echo 'connect = "/tmp/.listen.camd.socket"'
	echo 'socket = ""'
	echo 'listen = ""'
	;;
camd-socket)
	echo 'socket = "/tmp/camd.socket"'
	echo 'listen = ""'
	;;
tcp)
	echo 'socket = ""'
	echo "listen = \"$addr:$tcp_port\""
	echo '# Clients allowed on the TCP port besides loopback: add your LAN.'
	echo 'allow = []'
	;;
*) fail "SATD_DVBAPI=$dvbapi is not enigma2, camd-socket or tcp" ;;
esac

if [ "$stream" = y ]; then
	echo
	echo "[stream]"
	echo "enabled = true"
	echo "listen = \"$addr:$stream_port\""
fi

reader() {
	echo
	echo "[[reader]]"
	echo "label = \"$1\""
	echo "protocol = \"$2\""
}

# internal_reader writes a receiver slot. Its UART and GPIO lines are board
# specific and no verified profile exists yet, so it is rendered disabled:
# the maintainer fills in device and pins (docs/slots.md) and enables it.
internal_reader() {
	reader "$1" internal
	echo "# Fill in this receiver's UART and GPIO lines (docs/slots.md), then enable."
	echo "enable = false"
	echo "# device = \"/dev/ttyS1\""
	echo "# pins = { cmdvcc = \"gpiochip0:17\", rst = \"gpiochip0:18\", off = \"gpiochip0:19\" }"
}

case "$board" in
none) ;;
internal-1) internal_reader slot0 ;;
internal-2)
	internal_reader slot0
	internal_reader slot1
	;;
phoenix)
	reader phoenix mouse
	echo "device = \"/dev/ttyUSB0\""
	;;
custom)
	[ -n "${SATD_BOARD_FILE:-}" ] || fail "SATD_BOARD=custom needs SATD_BOARD_FILE"
	[ -r "$SATD_BOARD_FILE" ] || fail "SATD_BOARD_FILE=$SATD_BOARD_FILE is not readable"
	echo
	cat "$SATD_BOARD_FILE"
	;;
*) fail "SATD_BOARD=$board is not none, internal-1, internal-2, phoenix or custom" ;;
esac
