# Debian's own scripts as the oracle: the same bridged, routed (vif-route, IPv4) and NAT
# layouts run once with /etc/xen/scripts/* from the xen-utils-common package and once with
# vifkit's binaries. Both outcomes are reported side by side, with the time libxl's run of
# each script took (a wrapper stamps the clock around it; both pay the same wrapper).
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

# oracle_run LAYOUT IMPL SCRIPT: one guest through the layout with SCRIPT; prints the
# outcome words ("attach=ok ping=ok detach=ok"), reports PASS/FAIL per step.
oracle_bridged() {
  local impl=$1 script=$2 i out r=""
  for i in 1 2 3; do
    if ! out=$(guest_up ora "mac=00:16:3e:70:70:70,bridge=xenbr0,script=$script"); then
      fail "oracle.bridged.$impl.create" "$out"
      return
    fi
    if [[ $i == 1 ]]; then
      expect_eq "oracle.bridged.$impl.vif-on-xenbr0" xenbr0 "$(vif_master "vif$(domid ora).0")"
      gset ora "ip link set eth0 up && ip addr add 192.168.0.70/24 dev eth0"
      check "oracle.bridged.$impl.guest-pings-lan" gping ora 192.168.0.254
    fi
    xl destroy ora
  done
  check "oracle.bridged.$impl.no-vif-left" sh -c "! ip -o link | grep -q 'vif[0-9]'"
}
oracle_route() {
  local impl=$1 script=$2 i out vif
  for i in 1 2 3; do
    if ! out=$(guest_up ora "mac=00:16:3e:70:70:71,script=$script,ip=192.0.2.243"); then
      fail "oracle.route.$impl.create" "$out"
      return
    fi
    vif=vif$(domid ora).0
    if [[ $i == 1 ]]; then
      check "oracle.route.$impl.host-route" sh -c "ip route show dev $vif | grep -q '^192.0.2.243'"
      gset ora "ip link set eth0 up && ip addr add 192.0.2.243/28 dev eth0 && ip route add 192.0.2.253 dev eth0 && ip route add default via 192.0.2.253"
      check "oracle.route.$impl.guest-pings-router" gping ora 192.0.2.254
      # Upstream publishes nothing on eth0: the router reaches the guest only if someone
      # answers ARP for it there (vifkit's proxy entry; Debian relies on proxy_arp=1).
      check "oracle.route.$impl.router-pings-guest" nsping lan 192.0.2.243
    fi
    xl destroy ora
  done
  check "oracle.route.$impl.no-route-left" sh -c "! ip route | grep -q 192.0.2.243"
}
oracle_nat() {
  local impl=$1 script=$2 i out vif gw
  for i in 1 2 3; do
    if ! out=$(guest_up ora "mac=00:16:3e:70:70:72,script=$script,ip=192.168.1.10"); then
      fail "oracle.nat.$impl.create" "$out"
      return
    fi
    vif=vif$(domid ora).0
    if [[ $i == 1 ]]; then
      gw=$(ip route show dev "$vif" | sed -n 's/^192.168.1.10 .*src \([0-9.]*\).*/\1/p')
      check "oracle.nat.$impl.route-with-src" test -n "$gw"
      info "oracle nat $impl: the guest's router is ${gw:-none}"
      gset ora "ip link set eth0 up && ip addr add 192.168.1.10/24 dev eth0 && ip route add default via ${gw:-192.168.1.1}"
      check "oracle.nat.$impl.guest-pings-peer" gping ora 203.0.113.1
    fi
    xl destroy ora
  done
  check "oracle.nat.$impl.no-route-left" sh -c "! ip route | grep -q 192.168.1.10"
}

group_oracle() {
  rm -f /tmp/plug-times
  local impl
  for impl in debian vifkit; do
    timed "$impl-vif-bridge" "$([[ $impl == debian ]] && echo /etc/xen/scripts/vif-bridge || echo $VK/vif-bridge)"
    timed "$impl-vif-route" "$([[ $impl == debian ]] && echo /etc/xen/scripts/vif-route || echo $VK/vif-route)"
    timed "$impl-vif-nat" "$([[ $impl == debian ]] && echo /etc/xen/scripts/vif-nat || echo $VK/vif-nat)"
  done

  bridged_host
  for impl in debian vifkit; do
    oracle_bridged "$impl" "/lab/timed/$impl-vif-bridge"
  done
  reset_dom0

  routed_sysctl
  routed_router
  routed_uplink
  for impl in debian vifkit; do
    oracle_route "$impl" "/lab/timed/$impl-vif-route"
  done
  reset_dom0

  sysctl -qw net.ipv4.ip_forward=1
  lan_up
  in_lan ip addr add 203.0.113.1/24 dev lan0
  ip link set eth0 up
  ip addr add 203.0.113.2/24 dev eth0
  ip route add default via 203.0.113.1
  # Upstream's vif-nat leaves the masquerade to the admin: this is the rule an admin adds.
  nft add table ip adminnat
  nft add chain ip adminnat post '{ type nat hook postrouting priority 100; }'
  nft add rule ip adminnat post oifname eth0 ip saddr 192.168.1.0/24 masquerade
  oracle_nat debian /lab/timed/debian-vif-nat
  nft delete table ip adminnat
  oracle_nat vifkit /lab/timed/vifkit-vif-nat

  local s d v
  info "oracle per-plug time as libxl ran each script (median of 3, ms):"
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
