#!/usr/bin/env bash
# A local three-node ramd cluster on loopback: one Consul dev agent and three ramd nodes
# (n1 n2 n3), each running its own PostgreSQL. Shows the cluster every second until Ctrl-C
# (or until DEMO_SECONDS elapse), then stops everything it started.
#
# Settings (environment):
#   DEMO_DIR                  data and logs, wiped at each start   (default: $PWD/demo-data)
#   DEMO_SECONDS              stop after this many seconds of status view (default: run until Ctrl-C)
#   DEMO_WAIT_SECONDS         how long to wait for a primary       (default: 120)
#   DEMO_CONSUL_HTTP_PORT     Consul HTTP API                      (default: 8500)
#   DEMO_CONSUL_DNS_PORT      Consul DNS                           (default: 8600)
#   DEMO_CONSUL_SERVER_PORT   Consul server RPC                    (default: 8300)
#   DEMO_CONSUL_SERF_LAN_PORT / DEMO_CONSUL_SERF_WAN_PORT          (default: 8301 / 8302)
#   DEMO_PG_PORT              PostgreSQL port of n1; n2, n3 use the next ones (default: 5441)
#   DEMO_API_PORT             REST API port of n1; n2, n3 use the next ones   (default: 8008)
set -euo pipefail

demo_dir="${DEMO_DIR:-$PWD/demo-data}"
case "$demo_dir" in /*) ;; *) demo_dir="$PWD/$demo_dir" ;; esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scope=demo
nodes=(n1 n2 n3)
consul_http="${DEMO_CONSUL_HTTP_PORT:-8500}"
consul_dns="${DEMO_CONSUL_DNS_PORT:-8600}"
consul_server="${DEMO_CONSUL_SERVER_PORT:-8300}"
consul_serf_lan="${DEMO_CONSUL_SERF_LAN_PORT:-8301}"
consul_serf_wan="${DEMO_CONSUL_SERF_WAN_PORT:-8302}"
pg_base="${DEMO_PG_PORT:-5441}"
api_base="${DEMO_API_PORT:-8008}"
wait_seconds="${DEMO_WAIT_SECONDS:-120}"
run_seconds="${DEMO_SECONDS:-}"
marker=".ramd-demo" # marks a directory this script created, so only such a one is wiped

die() { echo "demo: $*" >&2; exit 1; }
say() { echo "demo: $*"; }

for v in "$consul_http" "$consul_dns" "$consul_server" "$consul_serf_lan" "$consul_serf_wan" \
  "$pg_base" "$api_base" "$wait_seconds" ${run_seconds:+"$run_seconds"}; do
  [[ "$v" =~ ^(0|[1-9][0-9]*)$ ]] || die "not a whole number: '$v' (see the settings at the top of $0)"
done

# --- helpers -----------------------------------------------------------------------------

# now_ms prints the wall clock in milliseconds.
now_ms() { local t="${EPOCHREALTIME//[!0-9]/}"; echo $((t / 1000)); }
# secs MS prints MS milliseconds as seconds with one decimal.
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# sleep_until MS sleeps until the wall clock reaches MS (milliseconds), if it is ahead.
sleep_until() {
  local d=$(($1 - $(now_ms)))
  if [ "$d" -gt 0 ]; then sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"; fi
}

# port_busy PORT succeeds when something accepts TCP connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_get PORT PATH prints the body of GET http://127.0.0.1:PORT/PATH and succeeds only on
# status 200. Every read is bounded by a timeout; HTTP/1.0 makes the server close at the end.
http_get() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
  IFS=' ' read -r -t 3 _ code _ <&3 || exit 1
  for ((n = 0; n < 100; n++)); do # headers, up to the empty line
    IFS= read -r -t 3 line <&3 || exit 1
    [ -n "${line%$'\r'}" ] || break
  done
  body=""
  for ((n = 0; n < 10000; n++)); do
    IFS= read -r -t 3 line <&3 || { body+=$line; break; }
    body+="$line"$'\n'
  done
  printf '%s' "$body"
  [ "$code" = 200 ]
) 2>/dev/null

# Every process the demo started, directly or below one it started: pid -> start time (in
# clock ticks since boot, from /proc), so a reused pid is never taken for one of ours.
declare -A tracked=()
p_state='' p_ppid='' p_start=''
ramd_pids=()
consul_pid=""

# proc_info PID sets p_ppid, p_start (clock ticks after boot) and p_state of a process that
# exists (a zombie included); it fails when there is none. No subshell: track calls it often.
proc_info() {
  local s f
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -r -a f <<<"${s##*) }" # fields from the 3rd (state) on: ppid is f[1], starttime f[19]
  p_state=${f[0]} p_ppid=${f[1]} p_start=${f[19]}
}

# alive PID succeeds when PID runs (not a zombie) and is the process we tracked.
alive() {
  proc_info "$1" && [ "$p_state" != Z ] && [ "$p_start" = "${tracked[$1]:-$p_start}" ]
}

# remember PID adds a process the demo just started to the tracked set.
remember() {
  if proc_info "$1"; then tracked[$1]=$p_start; fi
}

# track adds every live descendant of the tracked processes (the postmasters, their backends,
# the fence guards) and each node's postmaster (found by its postmaster.pid, even after its
# ramd was killed and it was re-parented) to the tracked set.
track() {
  local -A kids=()
  local d n pm pid kid queue
  for d in /proc/[0-9]*; do
    proc_info "${d#/proc/}" || continue
    kids[$p_ppid]+=" ${d#/proc/}:$p_start"
  done
  for n in "${nodes[@]}"; do
    pm=$(head -n 1 "$demo_dir/$n/data/postmaster.pid" 2>/dev/null || true)
    if [[ "$pm" =~ ^[0-9]+$ ]] && [ -z "${tracked[$pm]:-}" ] &&
      tr '\0' ' ' <"/proc/$pm/cmdline" 2>/dev/null | grep -qF -- "$demo_dir/$n/data"; then
      remember "$pm"
    fi
  done
  queue=("${!tracked[@]}")
  while [ "${#queue[@]}" -gt 0 ]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    alive "$pid" || continue
    for kid in ${kids[$pid]:-}; do
      if [ -z "${tracked[${kid%%:*}]:-}" ]; then
        tracked[${kid%%:*}]=${kid##*:}
        queue+=("${kid%%:*}")
      fi
    done
  done
}

# stop_pids SIGNAL SECONDS PID... signals the live PIDs, waits up to SECONDS for them to
# exit and SIGKILLs those still running.
stop_pids() {
  local sig=$1 limit=$2 pid i left
  shift 2
  for pid in "$@"; do
    if alive "$pid"; then kill "-$sig" "$pid" 2>/dev/null || true; fi
  done
  for ((i = 0; i < limit * 5; i++)); do
    left=0
    for pid in "$@"; do alive "$pid" && left=1; done
    [ "$left" = 0 ] && return 0
    sleep 0.2
  done
  for pid in "$@"; do
    if alive "$pid"; then
      echo "demo: pid $pid did not exit within ${limit}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  sleep 0.5
}

cleanup() {
  local rc=$? pid n pm others=() postmasters=() left=()
  trap - EXIT INT TERM
  set +e
  echo
  say "stopping (logs stay in $demo_dir)"
  track
  if [ "${#ramd_pids[@]}" -gt 0 ]; then
    say "SIGTERM to the ramd nodes (pids ${ramd_pids[*]}), waiting up to 30s"
    stop_pids TERM 30 "${ramd_pids[@]}"
  fi
  track
  # Whatever ramd left behind (a postmaster of a node whose ramd was killed -9, say):
  # a postmaster gets a fast shutdown (SIGINT), anything else SIGTERM.
  for n in "${nodes[@]}"; do
    pm=$(head -n 1 "$demo_dir/$n/data/postmaster.pid" 2>/dev/null || true)
    [[ "$pm" =~ ^[0-9]+$ ]] && [ -n "${tracked[$pm]:-}" ] && alive "$pm" && postmasters+=("$pm")
  done
  if [ "${#postmasters[@]}" -gt 0 ]; then
    say "stopping PostgreSQL left running (pids ${postmasters[*]})"
    stop_pids INT 15 "${postmasters[@]}"
  fi
  for pid in "${!tracked[@]}"; do
    [ "$pid" != "$consul_pid" ] && alive "$pid" && others+=("$pid")
  done
  if [ "${#others[@]}" -gt 0 ]; then
    say "stopping other leftover processes (pids ${others[*]})"
    stop_pids TERM 10 "${others[@]}"
  fi
  if [ -n "$consul_pid" ]; then
    say "stopping the Consul agent (pid $consul_pid)"
    stop_pids TERM 15 "$consul_pid"
  fi
  for pid in "${!tracked[@]}"; do alive "$pid" && left+=("$pid"); done
  if [ "${#left[@]}" -gt 0 ]; then
    echo "demo: still running after the stop: pids ${left[*]}" >&2
    exit 1
  fi
  echo "demo stopped, nothing left running"
  # Ctrl-C is the normal way to end the demo.
  if [ "$rc" = 130 ]; then exit 0; fi
  exit "$rc"
}

# show_log FILE prints the last lines of a log, for a failure message.
show_log() { echo "--- last lines of $1:" >&2; tail -n 20 "$1" >&2 || true; }

# --- preflight ---------------------------------------------------------------------------

[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 or newer"
[ -d /proc/self ] || die "needs Linux (/proc)"
command -v setsid >/dev/null || die "setsid (util-linux) not found"

for bin in ramd ramd-fence ramctrl; do
  if [ ! -x "bin/$bin" ]; then
    say "building bin/$bin"
    v="$(scripts/version.sh)"
    CGO_ENABLED=0 go build -tags nomsgpack -ldflags "-X github.com/ramd-project/ramd/daemon.Version=$v -X main.version=$v" -o "bin/$bin" "./cmd/$bin"
  fi
done
ramd="$PWD/bin/ramd"
ramctrl="$PWD/bin/ramctrl"

say "finding the Consul agent (scripts/build-consul.sh builds it once, a few minutes)"
consul=$(scripts/build-consul.sh)

busy=()
for p in "$consul_http" "$consul_dns" "$consul_server" "$consul_serf_lan" "$consul_serf_wan"; do
  port_busy "$p" && busy+=("$p")
done
for i in "${!nodes[@]}"; do
  for p in $((pg_base + i)) $((api_base + i)); do port_busy "$p" && busy+=("$p"); done
done
if [ "${#busy[@]}" -gt 0 ]; then
  die "port(s) ${busy[*]} on 127.0.0.1 already in use (another demo still running?); free them or move the demo with DEMO_CONSUL_HTTP_PORT, DEMO_CONSUL_DNS_PORT, DEMO_CONSUL_SERVER_PORT, DEMO_CONSUL_SERF_LAN_PORT, DEMO_CONSUL_SERF_WAN_PORT, DEMO_PG_PORT, DEMO_API_PORT"
fi

# The dev agent keeps its state in memory, so data from an earlier demo would be foreign.
if [ -e "$demo_dir" ]; then
  if [ -n "$(ls -A "$demo_dir")" ] && [ ! -e "$demo_dir/$marker" ]; then
    die "$demo_dir is not empty and was not made by this script; refusing to wipe it (set DEMO_DIR)"
  fi
  rm -rf "$demo_dir"
fi
mkdir -p "$demo_dir"
touch "$demo_dir/$marker"

# --- start -------------------------------------------------------------------------------

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
t_start=$(now_ms)

# Children run in their own session (setsid) so a Ctrl-C reaches only this script, which
# then stops them in order: the ramd nodes first, Consul last.
say "starting the Consul dev agent on 127.0.0.1:$consul_http (DNS :$consul_dns), log $demo_dir/consul.log"
setsid "$consul" agent -dev -node demo -client 127.0.0.1 -bind 127.0.0.1 \
  -http-port "$consul_http" -dns-port "$consul_dns" -server-port "$consul_server" \
  -serf-lan-port "$consul_serf_lan" -serf-wan-port "$consul_serf_wan" \
  -grpc-port -1 -grpc-tls-port -1 </dev/null >"$demo_dir/consul.log" 2>&1 &
consul_pid=$!
disown "$consul_pid" # no job notices; cleanup stops it by pid
remember "$consul_pid"

for ((i = 0; ; i++)); do
  leader=$(http_get "$consul_http" /v1/status/leader || true)
  [[ "$leader" == *:* ]] && break
  alive "$consul_pid" || { show_log "$demo_dir/consul.log"; die "the Consul agent exited"; }
  [ "$i" -lt 150 ] || { show_log "$demo_dir/consul.log"; die "Consul elected no leader within 30s"; }
  sleep 0.2
done
say "Consul is up (pid $consul_pid)"

# The database passwords, given to ramd as files (RAMD_*_PASSWORD_FILE), and a pgpass file for
# psql: no TCP connection to PostgreSQL is accepted without a password (docs/SECURITY.md).
(umask 077
 head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$demo_dir/superuser.password"
 head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$demo_dir/replication.password"
 echo "127.0.0.1:*:*:postgres:$(cat "$demo_dir/superuser.password")" >"$demo_dir/pgpass")
export PGPASSFILE="$demo_dir/pgpass"

t_nodes=$(now_ms)
api_urls=()
for i in "${!nodes[@]}"; do
  n=${nodes[$i]}
  mkdir -p "$demo_dir/$n"
  RAMD_SCOPE=$scope RAMD_NAME=$n RAMD_DATA_DIR="$demo_dir/$n/data" \
    RAMD_PG_PORT=$((pg_base + i)) RAMD_API_LISTEN="127.0.0.1:$((api_base + i))" \
    CONSUL_HTTP_ADDR="127.0.0.1:$consul_http" \
    RAMD_PG_SUPERUSER_PASSWORD_FILE="$demo_dir/superuser.password" \
    RAMD_PG_REPLICATION_PASSWORD_FILE="$demo_dir/replication.password" \
    setsid "$ramd" </dev/null >"$demo_dir/$n.log" 2>&1 &
  ramd_pids+=("$!")
  disown "$!"
  remember "$!"
  api_urls+=("http://127.0.0.1:$((api_base + i))")
  say "started ramd $n: pid $!, PostgreSQL 127.0.0.1:$((pg_base + i)), API ${api_urls[$i]}, log $demo_dir/$n.log"
done
api_list=$(IFS=,; echo "${api_urls[*]}")

# --- wait for a primary ------------------------------------------------------------------

tty=false
[ -t 1 ] && tty=true
primary=""
deadline=$((t_nodes + wait_seconds * 1000))
shown=-1
while [ -z "$primary" ]; do
  for i in "${!nodes[@]}"; do
    if http_get $((api_base + i)) /primary >/dev/null; then primary=$i; break 2; fi
  done
  for i in "${!nodes[@]}"; do
    if ! alive "${ramd_pids[$i]}"; then
      $tty && echo
      show_log "$demo_dir/${nodes[$i]}.log"
      die "ramd ${nodes[$i]} exited while starting"
    fi
  done
  now=$(now_ms)
  if [ "$now" -ge "$deadline" ]; then
    $tty && echo
    for n in "${nodes[@]}"; do show_log "$demo_dir/$n.log"; done
    die "no node became primary within ${wait_seconds}s"
  fi
  s=$(((now - t_nodes) / 1000))
  if [ "$s" != "$shown" ]; then # once a second
    shown=$s
    if $tty; then
      printf '\rdemo: waiting for a primary (%ds of at most %ds) ' "$s" "$wait_seconds"
    elif [ $((s % 5)) -eq 0 ]; then
      say "waiting for a primary (${s}s of at most ${wait_seconds}s)"
    fi
    track
  fi
  sleep 0.25
done
$tty && echo
t_primary=$(now_ms)

p_name=${nodes[$primary]}
p_port=$((pg_base + primary))
p_pid=${ramd_pids[$primary]}
conninfo="host=127.0.0.1 port=$p_port user=postgres dbname=postgres"
# /primary answers 200 once PostgreSQL runs as the primary; confirm with a real connection.
connected=""
if command -v psql >/dev/null; then
  for ((i = 0; i < 50; i++)); do
    if PGCONNECT_TIMEOUT=2 psql -X -Atq -d "$conninfo" -c 'select 1' >/dev/null 2>&1; then
      connected=yes
      t_primary=$(now_ms)
      break
    fi
    sleep 0.2
  done
fi
track

cat <<EOF

================================ ramd demo is up ================================
The primary is $p_name: PostgreSQL at 127.0.0.1:$p_port (ramd pid $p_pid).
It accepted connections $(secs $((t_primary - t_nodes)))s after the ramd nodes started ($(secs $((t_primary - t_start)))s after the demo started)${connected:+, checked with psql}.

Connect to the primary (the password is in $demo_dir/pgpass):
  PGPASSFILE=$demo_dir/pgpass psql "$conninfo"
Consul DNS names the primary primary.$scope.service.consul (and replicas replica.$scope.service.consul):
EOF
if command -v dig >/dev/null; then
  echo "  dig @127.0.0.1 -p $consul_dns primary.$scope.service.consul SRV"
else
  echo "  (dig is not installed; the same from Consul's HTTP API:"
  echo "   http://127.0.0.1:$consul_http/v1/catalog/service/$scope?tag=primary)"
fi
echo "REST APIs (GET /cluster, /patroni, /primary, /replica, /metrics):"
for i in "${!nodes[@]}"; do
  echo "  ${nodes[$i]}: ${api_urls[$i]}   ramd pid ${ramd_pids[$i]}   PostgreSQL port $((pg_base + i))"
done
cat <<EOF
Cluster view from the command line:
  bin/ramctrl list --api $api_list
Consul: http://127.0.0.1:$consul_http (pid $consul_pid).   Logs: $demo_dir/*.log

kill -9 $p_pid to watch a failover.
$([ -n "$run_seconds" ] && echo "Showing the cluster for ${run_seconds}s (DEMO_SECONDS)." || echo "Ctrl-C stops everything.")
=================================================================================

EOF

# --- live status -------------------------------------------------------------------------

# pid_states prints each node's ramd pid and whether it still runs.
pid_states() {
  local i state out=""
  for i in "${!nodes[@]}"; do
    if alive "${ramd_pids[$i]}"; then state=running; else state=exited; fi
    out+="${nodes[$i]} ${ramd_pids[$i]} ($state)  "
  done
  echo "ramd pids: $out"
}

t_status=$(now_ms)
for ((tick = 0; ; tick++)); do
  elapsed=$((($(now_ms) - t_status) / 1000))
  if [ -n "$run_seconds" ] && [ "$elapsed" -ge "$run_seconds" ]; then break; fi
  list=$("$ramctrl" list --api "$api_list" 2>&1 || true)
  if $tty; then
    leader=$(awk -F '  +' 'NR > 2 && $3 == "Leader" { print $1 }' <<<"$list")
    hint="kill -9 <pid> of the leader's ramd to watch a failover"
    for i in "${!nodes[@]}"; do
      [ "${nodes[$i]}" = "$leader" ] && hint="kill -9 ${ramd_pids[$i]} (ramd of the leader, $leader) to watch a failover"
    done
    printf '\033[H\033[2J%(%T)T   ramd demo, up %ss   (Ctrl-C stops everything)\n\n%s\n\n%s\n%s\n' \
      -1 "$((($(now_ms) - t_start) / 1000))" "$list" "$(pid_states)" "$hint"
  elif [ "$tick" -eq 0 ]; then
    printf '%(%T)T\n%s\n' -1 "$list"
  else
    # One line a second: member role state timeline lag, from the table's columns.
    printf '%(%T)T %s\n' -1 "$(awk -F '  +' 'NR > 2 && NF >= 6 { printf "%s%s %s %s TL %s lag %s", sep, $1, $3, $4, $5, $6; sep = " | " }
      NR <= 2 && /^ramctrl:/ { printf "%s", $0 }' <<<"$list")"
  fi
  track
  sleep_until $((t_status + (tick + 1) * 1000))
done
