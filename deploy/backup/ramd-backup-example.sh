#!/bin/sh
# ramd-backup-example.sh: a working example of ramd's custom backup tool contract
# (docs/BACKUPS.md, "Custom tools"). It keeps full backups taken with pg_basebackup and the
# WAL archive in one directory, REPO:
#
#   REPO/base/<id>/base.tar, pg_wal.tar, backup_manifest   what pg_basebackup -Ft wrote
#   REPO/base/<id>/info.json                                the backup as ramd reads it
#   REPO/wal/<segment>                                      archived WAL and history files
#
# Usage (one command line serves the four operations; ramd says which in
# RAMD_BACKUP_OPERATION):
#   ramd-backup-example.sh REPO                          backup, list, restore or expire
#   ramd-backup-example.sh REPO archive "%p" "%f"        as archive_command
#   ramd-backup-example.sh REPO restore-wal "%f" "%p"    as restore_command
#
# Needs PostgreSQL's pg_basebackup (RAMD_PGBINDIR, else PATH), tar, cp and POSIX utilities.
# Limits of an example: full backups only; WAL segments of 16 MiB (the default); copies are
# not fsynced; a time target picks the newest backup that stopped in an earlier second
# (UTC); retention by count only (RAMD_RETENTION_FULL_COUNT, 2 when unset).
set -eu
umask 077

repo=${1:?usage: ramd-backup-example.sh REPO [archive %p %f | restore-wal %f %p]}
action=${2:-${RAMD_BACKUP_OPERATION:-}}

log() { printf 'ramd-backup-example: %s\n' "$*" >&2; }
# die CODE MESSAGE: exit 4 = not found, 75 = busy, other = failure (contract exit codes).
die() {
	code=$1
	shift
	log "$*"
	printf '{"error":%s}\n' "$(json_str "$*")"
	exit "$code"
}
# json_str TEXT: TEXT as a JSON string (backslashes and quotes escaped; no control chars).
json_str() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
progress() { printf '{"progress":%s,"percent":%s}\n' "$(json_str "$1")" "${2:--1}"; }
# conf_str TEXT: TEXT as a postgresql.conf string value.
conf_str() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/''/g")"; }
# sh_word TEXT: TEXT as one shell word; % doubled for archive_command and restore_command.
sh_word() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g; s/%/%%/g")"; }
# segment TIMELINE LSN [-1]: the WAL segment that holds LSN (or the byte before it).
segment() {
	hi=${2%/*}
	lo=$((0x${2#*/}))
	if [ "${3:-}" = -1 ] && [ "$lo" -gt 0 ]; then lo=$((lo - 1)); fi
	printf '%08X%08X%08X' "$1" "$((0x$hi))" "$((lo / 16777216))"
}
field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$2" | head -n 1; }
bin() { printf '%s' "${RAMD_PGBINDIR:+$RAMD_PGBINDIR/}$1"; }

archive_wal() { # %p (relative to the data directory, the current directory) and %f
	mkdir -p "$repo/wal"
	dest=$repo/wal/$2
	if [ -f "$dest" ]; then
		# PostgreSQL may archive a segment again after a crash: same content is success.
		cmp -s "$1" "$dest" && exit 0
		log "$2 is already archived with different content"
		exit 1
	fi
	cp "$1" "$dest.tmp.$$"
	mv "$dest.tmp.$$" "$dest"
}

restore_wal() { # %f and %p
	[ -f "$repo/wal/$1" ] || exit 1
	cp "$repo/wal/$1" "$2"
}

do_backup() {
	[ "${RAMD_BACKUP_TYPE:-full}" = full ] || die 1 "this example takes only full backups, not $RAMD_BACKUP_TYPE"
	mkdir -p "$repo/base"
	id=$(date -u +%Y%m%dT%H%M%SZ)
	dir=$repo/base/$id
	if ! mkdir "$dir" 2>/dev/null; then
		id=$id-$$
		dir=$repo/base/$id
		mkdir "$dir"
	fi
	trap 'rm -rf "$dir"' EXIT
	start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	progress "pg_basebackup into $dir" 0
	"$(bin pg_basebackup)" -D "$dir" -Ft -X stream -c fast --no-password -l "ramd job ${RAMD_JOB_ID:-}" >&2
	stop=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	progress "pg_basebackup finished" 90
	tli=$(sed -n 's/.*"Timeline": *\([0-9]*\),.*/\1/p' "$dir/backup_manifest" | head -n 1)
	start_lsn=$(field Start-LSN "$dir/backup_manifest")
	stop_lsn=$(field End-LSN "$dir/backup_manifest")
	[ -n "$tli" ] && [ -n "$start_lsn" ] && [ -n "$stop_lsn" ] || die 1 "no WAL range in $dir/backup_manifest"
	size=$(wc -c <"$dir/base.tar" | tr -d ' ')
	repo_size=$(cat "$dir/base.tar" "$dir/pg_wal.tar" | wc -c | tr -d ' ')
	printf '{"id":"%s","type":"full","status":"done","start":"%s","stop":"%s","start_lsn":"%s","stop_lsn":"%s","wal_start":"%s","wal_stop":"%s","timeline":%s,"size_bytes":%s,"repo_size_bytes":%s,"job_id":%s}\n' \
		"$id" "$start" "$stop" "$start_lsn" "$stop_lsn" "$(segment "$tli" "$start_lsn")" \
		"$(segment "$tli" "$stop_lsn" -1)" "$tli" "$size" "$repo_size" "$(json_str "${RAMD_JOB_ID:-}")" >"$dir/info.json.tmp"
	mv "$dir/info.json.tmp" "$dir/info.json"
	trap - EXIT
	printf '{"backup":%s}\n' "$(cat "$dir/info.json")"
}

# ids: the complete backups, oldest first (ids are UTC times).
ids() {
	[ -d "$repo/base" ] || return 0
	for f in "$repo"/base/*/info.json; do
		[ -f "$f" ] || continue
		f=${f%/info.json}
		printf '%s\n' "${f##*/}"
	done
}

segments() { [ -d "$repo/wal" ] && ls "$repo/wal" | grep -E '^[0-9A-F]{24}$' || true; }

do_list() {
	printf '{"backups":['
	sep=
	for id in $(ids); do
		printf '%s%s' "$sep" "$(cat "$repo/base/$id/info.json")"
		sep=,
	done
	printf '],"wal_min":%s,"wal_max":%s}\n' "$(json_str "$(segments | sort | head -n 1)")" \
		"$(json_str "$(segments | sort | tail -n 1)")"
}

do_expire() {
	keep=${RAMD_RETENTION_FULL_COUNT:-}
	[ -n "$keep" ] || keep=2
	n=$(ids | wc -l | tr -d ' ')
	for id in $(ids | head -n "$((n > keep ? n - keep : 0))"); do
		rm -rf "${repo:?}/base/$id"
		progress "expired backup $id"
	done
	oldest=$(ids | head -n 1)
	[ -n "$oldest" ] || return 0
	first=$(sed -n 's/.*"wal_start":"\([0-9A-F]*\)".*/\1/p' "$repo/base/$oldest/info.json")
	[ -n "$first" ] || return 0
	# WAL older than the oldest backup's first segment is no longer needed; history
	# files stay. ("" x) makes awk compare strings, not numbers.
	ls "$repo/wal" | awk -v first="$first" '!/\.history$/ && ("" $0) < ("" first)' | while read -r f; do
		rm -f "$repo/wal/$f"
	done
}

do_restore() {
	: "${RAMD_PGDATA:?}" "${RAMD_TARGET_TYPE:=end}" "${RAMD_TARGET_VALUE:=}"
	id=${RAMD_BACKUP_ID:-}
	if [ -z "$id" ]; then
		# The newest backup, or for a time target the newest that stopped before it.
		# ramd writes time targets as "2006-01-02 15:04:05.999999+00" (UTC); the stop
		# times are "2006-01-02T15:04:05Z": compare whole seconds in the latter form.
		target=$(printf '%s' "$RAMD_TARGET_VALUE" | sed 's/\.[0-9]*//; s/ /T/; s/+00\(:00\)\{0,1\}$/Z/')
		for c in $(ids); do
			if [ "$RAMD_TARGET_TYPE" != time ] || [ "${RAMD_RESTORE_STANDBY:-false}" = true ]; then
				id=$c
				continue
			fi
			stop=$(sed -n 's/.*"stop":"\([^"]*\)".*/\1/p' "$repo/base/$c/info.json")
			if [ "$stop" != "$target" ] && [ "$(printf '%s\n%s\n' "$stop" "$target" | sort | head -n 1)" = "$stop" ]; then
				id=$c
			fi
		done
		[ -n "$id" ] || die 4 "no backup to restore for target $RAMD_TARGET_TYPE $RAMD_TARGET_VALUE"
	fi
	[ -f "$repo/base/$id/info.json" ] || die 4 "no backup $id in $repo"
	pgdata=$RAMD_PGDATA
	mkdir -p "$pgdata"
	if [ -n "$(ls -A "$pgdata")" ]; then
		[ "${RAMD_RESTORE_DELTA:-false}" = true ] || die 1 "$pgdata is not empty"
		rm -rf "${pgdata:?}"/* "$pgdata"/.[!.]* 2>/dev/null || true
	fi
	chmod 700 "$pgdata"
	progress "extracting backup $id into $pgdata" 0
	tar -xf "$repo/base/$id/base.tar" -C "$pgdata"
	tar -xf "$repo/base/$id/pg_wal.tar" -C "$pgdata/pg_wal"
	case $0 in
	/*) self=$0 ;;
	*) self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0") ;;
	esac
	case $repo in
	/*) abs_repo=$repo ;;
	*) abs_repo=$(cd "$repo" && pwd) ;;
	esac
	if [ "${RAMD_RESTORE_STANDBY:-false}" = true ]; then
		RAMD_TARGET_TYPE=end RAMD_TARGET_EXCLUSIVE=false
	fi
	{
		printf '\n# Recovery settings written by ramd-backup-example.sh (restore of %s)\n' "$id"
		printf 'restore_command = %s\n' "$(conf_str "$(sh_word "$self") $(sh_word "$abs_repo") restore-wal %f \"%p\"")"
		case $RAMD_TARGET_TYPE in
		end) ;;
		immediate) printf "recovery_target = 'immediate'\n" ;;
		time | xid | lsn | name) printf 'recovery_target_%s = %s\n' "$RAMD_TARGET_TYPE" "$(conf_str "$RAMD_TARGET_VALUE")" ;;
		*) die 1 "unknown target type $RAMD_TARGET_TYPE" ;;
		esac
		if [ "$RAMD_TARGET_TYPE" != end ]; then
			printf "recovery_target_action = 'promote'\n"
		fi
		if [ "${RAMD_TARGET_EXCLUSIVE:-false}" = true ]; then
			printf 'recovery_target_inclusive = off\n'
		fi
	} >>"$pgdata/postgresql.auto.conf"
	if [ "${RAMD_RESTORE_STANDBY:-false}" = true ]; then
		: >"$pgdata/standby.signal"
	else
		: >"$pgdata/recovery.signal"
	fi
	progress "restored backup $id" 100
}

case $action in
archive) archive_wal "${3:?%p}" "${4:?%f}" ;;
restore-wal) restore_wal "${3:?%f}" "${4:?%p}" ;;
backup) do_backup ;;
list) do_list ;;
expire) do_expire ;;
restore) do_restore ;;
*) die 1 "unknown operation '$action' (backup, list, restore, expire, archive or restore-wal)" ;;
esac
