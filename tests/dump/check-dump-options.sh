#!/bin/sh
# migstream-dump's command table: every command takes the global options
# (--spool-max, --gunzip-max, --json-mem-max) the same way, before or
# after the command name, and prints what it prints without them; --json
# is taken by the commands with JSON output and -q by those whose success
# is their exit status, and each is refused by the others with a message
# that says so; a command's own option given to another command is
# refused, naming the commands that take it; and COMMAND --help prints
# that command's usage.
. "${top_srcdir:-.}/tests/lib/dump-test-lib.sh"

gzip -dc "$src/tests/data/qemu/pc-min.mig.gz" >"$tmp/in.mig" || exit 99
in="$tmp/in.mig"
n=0

# cmdline CMD: the command line of CMD on the capture, OPTS where its
# options go (extract and convert write into $tmp/x.N).
cmdline() {
	case "$1" in
	convert) echo "convert --to native OPTS $in $tmp/x.$n" ;;
	extract) echo "extract OPTS $tmp/x.$n $in" ;;
	*) echo "$1 OPTS $in" ;;
	esac
}

for c in info sections verify convert extract state desc; do
	n=$((n + 1))
	# shellcheck disable=SC2046
	run $(cmdline $c | sed 's/OPTS//')
	[ $rc -eq 0 ] || ko "$c: exit $rc: $(cat "$tmp/err")"
	cp "$tmp/out" "$tmp/plain"
	quiet="-q --quiet"
	case $c in
	info | sections | state | desc)
		# Their output is what they print: -q is refused.
		for q in $quiet; do
			# shellcheck disable=SC2046
			run $q $(cmdline $c | sed 's/OPTS//')
			[ $rc -eq 2 ] && grep -q "^migstream-dump $c: -q/--quiet: $c prints its output" "$tmp/err" ||
				ko "$q $c: exit $rc: $(cat "$tmp/err")"
		done
		quiet=
		;;
	esac
	for g in $quiet "--spool-max 1G" "--spool-max=1G" \
		"--gunzip-max 1T" "--json-mem-max 128M" "${quiet:+-q --gunzip-max=2G}"; do
		[ -n "$g" ] || continue
		n=$((n + 1))
		# After the command, among its own options ...
		# shellcheck disable=SC2046
		run $(cmdline $c | sed "s|OPTS|$g|")
		[ $rc -eq 0 ] || ko "$c $g: exit $rc: $(cat "$tmp/err")"
		# ... and before it.
		n=$((n + 1))
		# shellcheck disable=SC2046
		run $g $(cmdline $c | sed 's/OPTS//')
		[ $rc -eq 0 ] || ko "$g $c: exit $rc: $(cat "$tmp/err")"
		case "$c $g" in
		"verify -q"*|"verify --quiet"*)
			[ -s "$tmp/out" ] && ko "$g $c: printed $(cat "$tmp/out")" ;;
		*)
			cmp -s "$tmp/plain" "$tmp/out" ||
				ko "$g $c: not the output of $c alone" ;;
		esac
	done
	# A bad size is refused the same way by every command.
	# shellcheck disable=SC2046
	run $(cmdline $c | sed 's/OPTS/--gunzip-max 12X/')
	[ $rc -eq 2 ] && grep -q "^migstream-dump $c: --gunzip-max: a size expected" "$tmp/err" ||
		ko "$c --gunzip-max 12X: exit $rc: $(cat "$tmp/err")"
	# --json: JSON output, or refused.
	n=$((n + 1))
	# shellcheck disable=SC2046
	run $(cmdline $c | sed 's/OPTS/--json/')
	case $c in
	info | sections | state | desc)
		[ $rc -eq 0 ] || ko "$c --json: exit $rc: $(cat "$tmp/err")"
		python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/out" ||
			ko "$c --json: not JSON"
		;;
	*)
		[ $rc -eq 2 ] && grep -q "^migstream-dump $c: $c has no --json output" "$tmp/err" ||
			ko "$c --json: exit $rc: $(cat "$tmp/err")"
		;;
	esac
	# COMMAND --help, -h before it.
	run $c --help
	[ $rc -eq 0 ] && grep -q "^Usage: migstream-dump $c " "$tmp/out" &&
		grep -q "^Global options" "$tmp/out" || ko "$c --help: exit $rc"
	run -h $c
	[ $rc -eq 0 ] && grep -q "^Usage: migstream-dump $c " "$tmp/out" || ko "-h $c: exit $rc"
done

# info and sections: -j before the command, or clustered with -q.
run -j info "$in"
grep -q '"profile": "qemu"' "$tmp/out" || ko "-j info: $(head -c 200 "$tmp/out")"
run sections "$in" -j --spool-max=1G
[ $rc -eq 0 ] && python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/out" ||
	ko "sections -j after FILE: exit $rc"
run verify -jq "$in"
[ $rc -eq 2 ] && grep -q "verify has no --json output" "$tmp/err" || ko "verify -jq: exit $rc"

# A command's own option elsewhere: refused, naming who takes it.
for args in "info --desc d" "verify -m" "desc --memory" "sections --to native" \
	"state --compress" "convert --to native --max-bytes 1M" "extract --max-memory 1M"; do
	set -- $args
	c=$1
	shift
	# shellcheck disable=SC2086
	run $(cmdline $c | sed "s|OPTS|$*|")
	[ $rc -eq 2 ] && grep -q "^migstream-dump $c: --[a-z-]* is an option of [a-z, ]* only" "$tmp/err" ||
		ko "$args: exit $rc: $(cat "$tmp/err")"
done
run info --desc d "$in"
grep -qF -- "--desc is an option of state only" "$tmp/err" || ko "info --desc: $(cat "$tmp/err")"
run info --max-memory 1M "$in"
grep -qF -- "--max-memory is an option of state, desc only" "$tmp/err" ||
	ko "info --max-memory: $(cat "$tmp/err")"

# Operands after "--" are operands, even one that looks like an option.
cp "$in" "$tmp/-q"
case "$dump" in
/*) abs=$dump ;;
*) abs="$(pwd)/$dump" ;;
esac
(cd "$tmp" && "$abs" verify -- -q >/dev/null 2>"$tmp/err") ||
	ko "verify -- -q: $(cat "$tmp/err")"

[ $fail -eq 0 ] && echo "ok: global options, --json and own options of every command"
exit $fail
