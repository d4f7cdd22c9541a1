# shellcheck shell=bash
# Debian's own scripts as the oracle: the same bridged, routed (vif-route, IPv4) and NAT
# layouts with /etc/xen/scripts/* from the xen-utils-common package and with vifkit's
# binaries, three network-attach/detach cycles each into one running guest. Both outcomes
# are reported side by side, with the time libxl's run of each script took (a wrapper
# stamps the clock around it; both pay the same wrapper).
. /lab/groups/bridged.sh
. /lab/groups/routed.sh

# timed NAME REAL: a script libxl can run that times REAL and logs "NAME COMMAND MICROS".
timed() {
  mkdir -p /lab/timed
  cat >"/lab/timed/$1" <<SH
#!/bin/bash
t0=\$(date +%s%N)
"$2" "\$@"
rc=\$?
echo "$1 \$1 \$(( (\$(date +%s%N) - t0) / 1000 ))" >>/tmp/plug-times
exit \$rc
SH
  chmod +x "/lab/timed/$1"
}
# median_ms NAME COMMAND: the median time of NAME's COMMAND runs, in ms with 2 decimals.
median_ms() {
  awk -v n="$1" -v c="$2" '$1 == n && $2 == c { print $3 }' /tmp/plug-times | sort -n |
    awk '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit } m = a[int((NR + 1) / 2)]; printf "%.2f", m / 1000 }'
}

# attach_cycles LAYOUT IMPL SCRIPT SPEC CHECKS: three plugs of one vif into the running
# guest "ora" with xl network-attach / network-detach, libxl running SCRIPT each time; after
# the first attach, the function named CHECKS runs with LAYOUT IMPL VIF.
attach_cycles() {
  local layout=$1 impl=$2 script=$3 spec=$4 checks=$5 i vif mac
  mac=$(sed -n 's/.*mac=\([^ ]*\).*/\1/p' <<<"$spec")
  for i in 1 2 3; do
    # xl network-attach takes space-separated key=value words.
    # shellcheck disable=SC2086
    if ! out=$(xl network-attach ora $spec "script=$script" 2>&1); then
      fail "oracle.$layout.$impl.attach" "$(tr '\n' ' ' <<<"$out")"
      return
    fi
    vif=$(ip -o link | sed -n "s/^[0-9]*: \(vif$(domid ora)\.[0-9]*\).*/\1/p" | tail -n 1)
    if [[ $i == 1 ]]; then
      gx ora "for i in \$(seq 100); do [ -e /sys/class/net/eth0 ] && exit 0; sleep 0.1; done; exit 1" >/dev/null
      "$checks" "$layout" "$impl" "$vif"
    fi
    xl network-detach ora "$mac" || fail "oracle.$layout.$impl.detach" "xl network-detach ora $mac failed"
  done
}

oracle_bridged_checks() {
  expect_eq "oracle.$1.$2.vif-on-xenbr0" xenbr0 "$(vif_master "$3")"
  gset ora "ip link set eth0 up && ip addr add 192.168.0.70/24 dev eth0"
  check "oracle.$1.$2.guest-pings-lan" gping ora 192.168.0.254
}
oracle_route_checks() {
  check "oracle.$1.$2.host-route" sh -c "ip route show dev $3 | grep -q '^192.0.2.243'"
  gset ora "ip link set eth0 up && ip addr add 192.0.2.243/28 dev eth0 && ip route add 192.0.2.253 dev eth0 && ip route add default via 192.0.2.253"
  check "oracle.$1.$2.guest-pings-router" gping ora 192.0.2.254
  # Upstream publishes nothing on eth0 itself: the router reaches the guest through the
  # host's proxy_arp=1 (Debian) or vifkit's proxy entry.
  check "oracle.$1.$2.router-pings-guest" nsping lan 192.0.2.243
}
oracle_nat_checks() {
  local gw
  gw=$(ip route show dev "$3" | sed -n 's/^192.168.1.10 .*src \([0-9.]*\).*/\1/p')
  check "oracle.$1.$2.route-with-src" test -n "$gw"
  gset ora "ip link set eth0 up && ip addr add 192.168.1.10/24 dev eth0 && ip route add default via ${gw:-192.168.1.1}"
  check "oracle.$1.$2.guest-pings-peer" gping ora 203.0.113.1
}

group_oracle() {
  rm -f /tmp/plug-times
  local impl script
  for script in vif-bridge vif-route vif-nat; do
    timed "debian-$script" "/etc/xen/scripts/$script"
    timed "vifkit-$script" "$VK/$script"
  done

  bridged_host
  guest_up ora || { fail oracle.create "guest ora did not start"; return; }
  for impl in debian vifkit; do
    attach_cycles bridged "$impl" "/lab/timed/$impl-vif-bridge" \
      "mac=00:16:3e:70:70:70 bridge=xenbr0" oracle_bridged_checks
  done
  check oracle.bridged.no-vif-left sh -c "! ip -o link | grep -q 'vif[0-9]*\.[1-9]'"
  reset_dom0

  routed_sysctl
  routed_router
  routed_uplink
  guest_up ora || { fail oracle.create "guest ora did not start"; return; }
  for impl in debian vifkit; do
    attach_cycles route "$impl" "/lab/timed/$impl-vif-route" \
      "mac=00:16:3e:70:70:71 ip=192.0.2.243" oracle_route_checks
  done
  check oracle.route.no-route-left sh -c "! ip route | grep -q 192.0.2.243"
  reset_dom0

  sysctl -qw net.ipv4.ip_forward=1
  lan_up
  in_lan ip addr add 203.0.113.1/24 dev lan0
  ip link set eth0 up
  ip addr add 203.0.113.2/24 dev eth0
  ip route add default via 203.0.113.1
  guest_up ora || { fail oracle.create "guest ora did not start"; return; }
  # Upstream's vif-nat leaves the masquerade to the admin: this is the rule an admin adds.
  nft add table ip adminnat
  nft add chain ip adminnat post '{ type nat hook postrouting priority 100; }'
  nft add rule ip adminnat post oifname eth0 ip saddr 192.168.1.0/24 masquerade
  attach_cycles nat debian /lab/timed/debian-vif-nat "mac=00:16:3e:70:70:72 ip=192.168.1.10" oracle_nat_checks
  nft delete table ip adminnat
  attach_cycles nat vifkit /lab/timed/vifkit-vif-nat "mac=00:16:3e:70:70:72 ip=192.168.1.10" oracle_nat_checks
  check oracle.nat.no-route-left sh -c "! ip route | grep -q 192.168.1.10"

  local s d v
  info "oracle per-plug time as libxl ran each script (median of 3 as libxl ran them, ms):"
  info "$(printf '%-10s %-8s %10s %10s %8s' script command debian vifkit ratio)"
  for s in vif-bridge vif-route vif-nat; do
    for c in online offline; do
      d=$(median_ms "debian-$s" "$c")
      v=$(median_ms "vifkit-$s" "$c")
      info "$(printf '%-10s %-8s %10s %10s %8s' "$s" "$c" "$d" "$v" \
        "$(awk -v d="$d" -v v="$v" 'BEGIN { if (v > 0 && d > 0) printf "%.1fx", d / v; else print "-" }')")"
    done
  done
}
