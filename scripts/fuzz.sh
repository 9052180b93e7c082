#!/bin/sh
# Runs every libFuzzer target of a build for a while, each on a throwaway
# copy of its seed corpus (new corpus files never land in the repo).
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS   (0: replay the corpus only)
# Target BUILD_DIR/fuzz_NAME uses fuzz/NAME.dict and fuzz/corpus/NAME, where
# NAME is also tried without its first "_word" suffix (fuzz_smtp_parse ->
# smtp.dict, corpus/smtp) when the full name has none.
# Exits non-zero if any target crashes, leaks or times out.
set -eu

usage() {
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
}
[ $# -eq 2 ] || usage
build=$1
secs=$2
case "$secs" in
''|*[!0-9]*) usage ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mailfort-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# Finds fuzz/$1.$2-style paths for a target name, full name first.
pick() {
	name=$1 kind=$2
	for n in "$name" "${name%%_*}"; do
		if [ "$kind" = dict ] && [ -f "$root/fuzz/$n.dict" ]; then
			echo "$root/fuzz/$n.dict"
			return
		fi
		if [ "$kind" = corpus ] && [ -d "$root/fuzz/corpus/$n" ]; then
			echo "$root/fuzz/corpus/$n"
			return
		fi
	done
}

found=0
failed=""
for bin in "$build"/fuzz_*; do
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		continue
	fi
	found=$((found + 1))
	name=${bin##*/fuzz_}
	dict=$(pick "$name" dict)
	seeds=$(pick "$name" corpus)
	corpus="$work/corpus-$name"
	mkdir -p "$corpus" "$work/artifacts-$name"
	if [ -n "$seeds" ]; then
		cp -R "$seeds"/. "$corpus"/
	fi
	# SECONDS 0: replay the seed corpus only (-runs=0), no fuzzing.
	if [ "$secs" -eq 0 ]; then
		limit=-runs=0
	else
		limit=-max_total_time="$secs"
	fi
	set -- "$limit" -timeout=10 \
	    -artifact_prefix="$work/artifacts-$name/"
	[ -n "$dict" ] && set -- "$@" -dict="$dict"
	echo "== fuzz_$name ${secs}s dict=${dict:-none} corpus=${seeds:-none}"
	if "$bin" "$@" "$corpus" >"$work/log-$name" 2>&1; then
		tail -n 1 "$work/log-$name"
	else
		echo "!! fuzz_$name FAILED; log tail and reproducer:" >&2
		tail -n 40 "$work/log-$name" >&2
		for a in "$work/artifacts-$name"/*; do
			[ -f "$a" ] || continue
			mkdir -p "$build/fuzz-artifacts"
			cp "$a" "$build/fuzz-artifacts/"
			echo "   saved $build/fuzz-artifacts/${a##*/}" >&2
		done
		failed="$failed fuzz_$name"
	fi
done
if [ "$found" -eq 0 ]; then
	echo "no fuzz_* executables in $build (meson setup -Dfuzz=true?)" >&2
	exit 1
fi
if [ -n "$failed" ]; then
	echo "crashed:$failed" >&2
	exit 1
fi
echo "all $found fuzz targets clean"
