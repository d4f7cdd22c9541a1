# shellcheck shell=bash
# vifkit watch against real Xen (issue 19): a filtered guest on xenbr0 pings the LAN every
# 0.2 s while the host deletes and recreates xenbr0 (as its network service would) and then
# runs `nft flush ruleset`; the watcher puts the guest's vif back on the bridge and its
# antispoofing chain back, and the guest's ping carries on.
. /lab/groups/bridged.sh

# How long a repair may take under TCG (the namespace tests allow 3 s on a loaded machine).
WATCH_BOUND_MS=5000
WATCH_LOG=/tmp/watch.log

# NOW_MS: set to the time in ms by clock_ms, without a fork (under TCG a fork of date costs
# about as much as what is measured).
clock_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  NOW_MS=$((t / 1000))
}
# poll_until MS COMMAND...: runs COMMAND every 50 ms until it succeeds (status 0) or MS
# milliseconds have passed (status 1).
poll_until() {
  local deadline
  clock_ms
  deadline=$((NOW_MS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    clock_ms
    ((NOW_MS < deadline)) || return 1
    sleep 0.05
  done
}
# on_bridge VIF BRIDGE: VIF is a port of BRIDGE (sysfs, no fork: vif_master's ip -j would
# cost more than the repair it times).
on_bridge() { [[ /sys/class/net/$1/master -ef /sys/class/net/$2 ]]; }
# Not `| grep -q`: under pipefail, grep leaving at the first match can leave nft to die of
# SIGPIPE part way through a long listing, and the check then fails on a match.
filtered() { [[ $(nft list chains netdev) == *"chain $1 "* ]]; }
# watch_logged REGEX: the watcher's log has a line matching REGEX.
watch_logged() { grep -q "$1" "$WATCH_LOG"; }
watch_log_tail() { tail -n 5 "$WATCH_LOG" | tr '\n' ' '; }

group_watch() {
  bridged_host
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,ip=192.168.0.10,script=$VK/vif-bridge"); then
    fail watch.create "xl create failed: $out"
    return
  fi
  local dom vif
  dom=$(domid xen1)
  vif=vif$dom.0
  check watch.vif-filtered filtered "$vif"
  gset xen1 "ip link set eth0 up && ip addr add 192.168.0.10/24 dev eth0" || return
  check watch.guest-pings-lan gping xen1 192.168.0.254

  "$VK/vifkit" watch </dev/null >/dev/null 2>"$WATCH_LOG" &
  local pid=$!
  if poll_until 20000 watch_logged 'watching the ports'; then
    pass watch.started
    watch_repairs "$vif"
    watch_status "$vif"
  else
    fail watch.started "no 'watching the ports' in 20 s: $(watch_log_tail)"
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  case $("$VK/vifkit" status 2>&1 | tail -n 1) in
    "watcher: not running; its last repair at "*) pass watch.status-after-stop ;;
    *) fail watch.status-after-stop "$("$VK/vifkit" status 2>&1 | tail -n 1)" ;;
  esac
  xl destroy xen1
  # What a stopped watcher leaves for `vifkit status` (its last repair), and its lock.
  rm -f "/run/vifkit/netns/$(stat -L -c %i /proc/self/ns/net)"/watch{,.lock,.new}
}

# watch_repairs VIF: the bridge deleted and recreated, then nft's ruleset flushed, with the
# guest pinging the LAN throughout.
watch_repairs() {
  local vif=$1 took line rules
  gset xen1 "ping -i 0.2 192.168.0.254 </dev/null >/tmp/ping.log 2>&1 & echo \$! >/tmp/ping.pid" ||
    return

  # The bound counts from the end of the recreation: its six ip commands alone take seconds
  # under TCG; the time from the bridge's appearance is printed too.
  local t0 t1
  ip link del xenbr0
  clock_ms
  t0=$NOW_MS
  xenbr0_up
  clock_ms
  t1=$NOW_MS
  if poll_until "$WATCH_BOUND_MS" on_bridge "$vif" xenbr0; then
    clock_ms
    info "watch: $vif back on xenbr0 $((NOW_MS - t0)) ms after xenbr0 appeared" \
      "(its recreation took $((t1 - t0)) ms)"
  else
    info "watch: not back $WATCH_BOUND_MS ms after xenbr0 was recreated; watcher:" \
      "$(watch_log_tail)"
  fi
  expect_eq watch.bridge-vif-back-on-xenbr0 xenbr0 "$(vif_master "$vif")"
  local repaired="vifkit: $vif: repaired after .*bridge xenbr0 appeared"
  if poll_until 2000 watch_logged "$repaired"; then
    pass watch.bridge-repair-logged
    info "watch: $(grep -m1 "$repaired" "$WATCH_LOG")"
  else
    fail watch.bridge-repair-logged "no '$repaired': $(watch_log_tail)"
  fi
  check watch.guest-pings-lan-after-bridge gping xen1 192.168.0.254

  rules=$(nft list ruleset)
  nft flush ruleset
  clock_ms
  t0=$NOW_MS
  if poll_until "$WATCH_BOUND_MS" filtered "$vif"; then
    clock_ms
    took=$((NOW_MS - t0))
    pass watch.flush-chain-back
    info "watch: $vif's antispoofing chain back $took ms after nft flush ruleset"
  else
    fail watch.flush-chain-back "no chain $vif $WATCH_BOUND_MS ms after nft flush ruleset;" \
      "watcher: $(watch_log_tail)"
  fi
  # The chain and its rules come back in one batch: the ruleset is the one flushed.
  if [[ $(nft list ruleset) == "$rules" ]]; then
    pass watch.flush-ruleset-restored
  else
    fail watch.flush-ruleset-restored "before: $(tr '\n' ' ' <<<"$rules") now:" \
      "$(nft list ruleset | tr '\n' ' ')"
  fi
  repaired="vifkit: $vif: repaired after .*nft .*vifkit-antispoof-"
  if poll_until 2000 watch_logged "$repaired"; then
    pass watch.flush-repair-logged
    info "watch: $(grep -m1 "$repaired" "$WATCH_LOG")"
  else
    fail watch.flush-repair-logged "no '$repaired': $(watch_log_tail)"
  fi
  check watch.guest-pings-lan-after-flush gping xen1 192.168.0.254
  local repairs
  repairs=$(grep -c 'repaired after' "$WATCH_LOG")
  expect_eq watch.one-log-line-per-repair 2 "$repairs"
  [[ $repairs == 2 ]] || grep 'repaired after' "$WATCH_LOG" | sed 's/^/  | /'

  # The continuous ping: its replies by sequence number; the longest run of lost ones is
  # the outage the guest saw (xenbr0 gone until its vif was back).
  line=$(gx xen1 "kill \$(cat /tmp/ping.pid); awk '/seq=/ { s = \$5; sub(\"seq=\", \"\", s); s += 0; if (n && s - last - 1 > gap) { gap = s - last - 1; after = 0 } after++; last = s; n++ } END { print n + 0, gap + 0, after + 0, last + 0 }' /tmp/ping.log")
  local n gap after last
  read -r n gap after last <<<"$line"
  info "watch: the guest's ping every 0.2 s: ${n:-?} replies up to seq ${last:-?}, at most" \
    "${gap:-?} lost in a row (~$((${gap:-0} * 200)) ms), ${after:-?} replies after that"
  # At least a second's worth of replies after the outage: the flush and its repair did not
  # interrupt the ping, and the guest's own pings (gping) took longer than that.
  check watch.guest-ping-continues test "${after:-0}" -ge 5
}

# watch_status VIF: `vifkit status` names the running watcher and its last repair.
watch_status() {
  local line
  line=$("$VK/vifkit" status 2>&1 | tail -n 1)
  case $line in
    "watcher: running since "*" repair(s), last repair at "*": $1: "*) pass watch.status-running ;;
    *) fail watch.status-running "last line of vifkit status: '$line'" ;;
  esac
  info "watch: $line"
}
