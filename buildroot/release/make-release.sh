#!/bin/sh
# make-release.sh VERSION BOARD GOARCH [GOVAR] -- build satd for one board,
# write its update manifest and sign it with minisign.
#
#   VERSION  release version, MAJOR.MINOR.PATCH
#   BOARD    board name the receivers have as [update] board
#   GOARCH   arm, arm64 or mipsle; GOVAR e.g. GOARM=7 or GOMIPS=softfloat
#
# Environment: MINISIGN_KEY (secret key file, default ~/.minisign/satd.key),
# MIN_VERSION (oldest version allowed to update, optional), OUT (default dist/release).
# Output in $OUT/BOARD/: satd-VERSION, satd-update.json, satd-update.json.minisig.
set -eu
[ $# -ge 3 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
version=$1 board=$2 arch=$3 govar=${4:-}
out=${OUT:-dist/release}/$board
key=${MINISIGN_KEY:-$HOME/.minisign/satd.key}
mkdir -p "$out"
bin=$out/satd-$version
# shellcheck disable=SC2086 # govar is empty or one VAR=value word
env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" $govar \
	go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$version" -o "$bin" ./cmd/satd
go run ./cmd/satd make-manifest -version "$version" -board "$board" \
	${MIN_VERSION:+-min-version "$MIN_VERSION"} -kind binary -o "$out/satd-update.json" "$bin"
minisign -S -s "$key" -m "$out/satd-update.json" -t "satd $version $board"
echo "release $version for $board in $out:"
ls -l "$out"
