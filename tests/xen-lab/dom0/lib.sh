# shellcheck shell=bash
# The lab's helpers inside dom0: results, guests and their console channel, the LAN.
VK=/usr/local/libexec/vifkit
CONSOLE_LOGS=/var/log/xen/console
GROUP=${GROUP:-}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
info() { echo "INFO $*"; }
pass() { echo "PASS $1"; }
# fail NAME WHY...
fail() {
  local name=$1
  shift
  echo "FAIL $name: $*"
}
# check NAME COMMAND...: PASS when COMMAND succeeds; otherwise FAIL with its last output line.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    pass "$name"
  else
    fail "$name" "$(printf '%s' "$out" | tail -n 3 | tr '\n' ' ') (ran: $*)"
  fi
}
# check_not NAME COMMAND...: PASS when COMMAND fails.
check_not() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    fail "$name" "succeeded but must not: $* $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
  else
    pass "$name"
  fi
}
# expect_eq NAME WANT GOT
expect_eq() {
  if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi
}

# --- guests -------------------------------------------------------------------------------
# guest_cfg NAME VIF... : writes /tmp/NAME.cfg, a busybox PV guest with these vif specs.
guest_cfg() {
  local name=$1 vifs="" v n=0
  shift
  for v in "$@"; do
    vifs+="${vifs:+, }'$v'"
    n=$((n + 1))
  done
  cat >"/tmp/$name.cfg" <<CFG
name = "$name"
type = "pv"
kernel = "/lab/guest/vmlinux"
ramdisk = "/lab/guest/initrd.gz"
extra = "console=hvc0 quiet vkg.nics=$n"
memory = ${GUEST_MEM:-96}
vcpus = 1
vif = [ $vifs ]
on_crash = "destroy"
CFG
}
# guest_up NAME VIF...: xl create, then wait until the guest's command loop answers.
guest_up() {
  local name=$1 t0
  t0=$(now_ms)
  guest_cfg "$@"
  rm -f "$CONSOLE_LOGS/guest-$name.log"
  if ! xl create "/tmp/$name.cfg" >"/tmp/$name.create" 2>&1; then
    sed 's/^/  | /' "/tmp/$name.create" | tail -n 20
    return 1
  fi
  local t1
  t1=$(now_ms)
  guest_wait_ready "$name" || return 1
  echo "INFO guest $name: xl create $((t1 - t0)) ms, ready $(($(now_ms) - t0)) ms, $(grep -a -m1 -o 'uptime.*' "$CONSOLE_LOGS/guest-$name.log")" >/dev/console
}
guest_wait_ready() {
  local name=$1 i
  for ((i = 0; i < 600; i++)); do
    grep -q VKGUEST-READY "$CONSOLE_LOGS/guest-$name.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "guest $name did not come up in 60 s; console:"
  tail -n 15 "$CONSOLE_LOGS/guest-$name.log" 2>/dev/null | sed 's/^/  | /'
  return 1
}
domid() { xl domid "$1" 2>/dev/null; }

# gx NAME COMMAND: runs COMMAND in the guest's shell, prints its output, returns its status
# (124 on timeout: GX_TIMEOUT seconds, default 30).
gx() {
  local name=$1 cmd=$2 id tty log i line status=124
  # Unique across subshells (check runs its command in one): a counter would repeat.
  id="c$BASHPID$(date +%N)"
  local dom
  dom=$(domid "$name") || { echo "no domain $name"; return 125; }
  tty=$(xenstore-read "/local/domain/$dom/console/tty") || { echo "no console tty"; return 125; }
  log=$CONSOLE_LOGS/guest-$name.log
  printf '%s\t%s\n' "$id" "$cmd" >"$tty"
  for ((i = 0; i < ${GX_TIMEOUT:-30} * 20; i++)); do
    if line=$(grep -a -m1 "^@@$id " "$log" 2>/dev/null); then
      status=${line#"@@$id "}
      status=${status%$'\r'}
      break
    fi
    sleep 0.05
  done
  grep -a "^@$id " "$log" 2>/dev/null | sed "s/^@$id //; s/\r$//"
  return "$status"
}
# gping NAME ADDR [ping args]: the guest pings ADDR (3 tries of 1 s).
gping() {
  local name=$1 addr=$2
  shift 2
  gx "$name" "ping -c 1 -W 3 $* $addr >/dev/null || ping -c 2 -w 6 -W 1 $* $addr"
}
# nsping NS ADDR: namespace NS pings ADDR.
nsping() {
  ip netns exec "$1" busybox ping -c 1 -w 5 -W 1 "$2" >/dev/null 2>&1 ||
    ip netns exec "$1" busybox ping -c 2 -w 6 -W 1 "$2"
}
nsping6() {
  ip netns exec "$1" busybox ping6 -c 1 -w 5 -W 1 "$2" >/dev/null 2>&1 ||
    ip netns exec "$1" busybox ping6 -c 2 -w 6 -W 1 "$2"
}

# --- the LAN ------------------------------------------------------------------------------
# lan_up [NS]: a namespace standing for the physical network, joined to dom0 by a veth pair
# whose dom0 end is "eth0" (the host's NIC) and whose LAN end is "lan0".
lan_up() {
  local ns=${1:-lan}
  ip netns add "$ns"
  ip link add eth0 type veth peer name lan0 netns "$ns"
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip link set lan0 up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.lan0.accept_dad=0
  sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}
# in_lan COMMAND...: runs COMMAND in the LAN namespace.
in_lan() { ip netns exec lan "$@"; }

# reset_dom0: back to a clean dom0 between groups.
reset_dom0() {
  local d
  for d in $(xl list | awk 'NR > 2 { print $1 }'); do
    xl destroy "$d" >/dev/null 2>&1
  done
  for d in $(ip netns list | awk '{ print $1 }'); do
    ip netns del "$d"
  done
  for d in $(ip -o link show type bridge | awk -F': ' '{ print $2 }'); do
    ip link del "$d"
  done
  for d in $(ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//'); do
    [[ $d == lo ]] || ip link del "$d" 2>/dev/null
  done
  nft flush ruleset 2>/dev/null
  rm -rf /etc/sysconfig/network /etc/vifkit
  ip -4 route flush table main 2>/dev/null
  ip -6 route flush table main 2>/dev/null
  ip -4 neigh flush proxy 2>/dev/null
  ip -6 neigh flush proxy 2>/dev/null
  sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 net.ipv4.conf.all.proxy_arp=0 \
    net.ipv6.conf.all.proxy_ndp=0
}

# vif_master VIF: the bridge VIF is a port of ("" when none).
vif_master() { ip -j link show "$1" 2>/dev/null | sed -n 's/.*"master":"\([^"]*\)".*/\1/p'; }
# link_exists NAME
link_exists() { ip link show "$1" >/dev/null 2>&1; }
# backend_vif_dir DOMNAME DEVID: the netback backend directory of a guest's vif.
backend_dir() { echo "/local/domain/0/backend/vif/$(domid "$1")/$2"; }
# gset NAME COMMAND: configures the guest (addresses, routes); a failure is a FAIL of the
# running group, so that later checks do not fail for an unrelated reason unexplained.
gset() {
  local out
  out=$(gx "$1" "$2") || {
    fail "$GROUP.$1-setup" "'$2': $(tr '\n' ' ' <<<"$out")"
    return 1
  }
}
# gx_is NAME COMMAND WANT: the guest's COMMAND prints exactly WANT.
gx_is() {
  local got
  got=$(gx "$1" "$2")
  [[ $got == "$3" ]] || {
    echo "guest $1: '$2' printed '$got', want '$3'"
    return 1
  }
}
