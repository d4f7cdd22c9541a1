# shellcheck shell=bash
# Seed 2.2: routed with multiple networks. Host-only br1 (192.0.2.0/28,
# 2001:db8:abba:1::/64) and br2 (192.0.2.16/28, 2001:db8:abba:2::/64); guests join them
# with vif-bridge and the host routes between them and the LAN.
. /lab/groups/routed.sh

group_multi() {
  sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  routed_router
  ip link set eth0 address 00:01:01:01:02:53
  routed_uplink
  in_lan ip route add 192.0.2.0/28 via 192.0.2.253
  in_lan ip route add 192.0.2.16/28 via 192.0.2.253
  in_lan ip -6 route add 2001:db8:abba::/60 via fe80::201:1ff:fe01:253 dev lan0
  local b
  for b in "br1 192.0.2.14/28 2001:db8:abba:1::/64 02:00:00:00:01:0e" \
    "br2 192.0.2.30/28 2001:db8:abba:2::/64 02:00:00:00:01:1e"; do
    # shellcheck disable=SC2086 # word splitting wanted: bridge, address, prefix, MAC
    set -- $b
    ip link add "$1" type bridge stp_state 0 forward_delay 0
    ip link set "$1" address "$4" up
    ip addr add "$2" dev "$1"
    ip -6 route add "$3" dev "$1"
  done
  ip -6 route add unreachable 2001:db8:abba::/60
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=br1,script=$VK/vif-bridge"); then
    fail multi.create-xen1 "xl create failed: $out"
    return
  fi
  if ! out=$(guest_up xen2 "mac=00:16:3e:20:20:20,bridge=br2,vifname=xen2.0,script=$VK/vif-bridge"); then
    fail multi.create-xen2 "xl create failed: $out"
    return
  fi
  expect_eq multi.xen1-on-br1 br1 "$(vif_master "vif$(domid xen1).0")"
  expect_eq multi.xen2-on-br2 br2 "$(vif_master xen2.0)"
  gset xen1 "ip link set eth0 up && ip addr add 192.0.2.1/28 dev eth0 && ip -6 addr add 2001:db8:abba:1::1001/64 dev eth0 && ip route add default via 192.0.2.14 && ip -6 route add default via fe80::ff:fe00:10e dev eth0"
  gset xen2 "ip link set eth0 up && ip addr add 192.0.2.17/28 dev eth0 && ip -6 addr add 2001:db8:abba:2::1001/64 dev eth0 && ip route add default via 192.0.2.30 && ip -6 route add default via fe80::ff:fe00:11e dev eth0"
  check multi.xen1-pings-xen2 gping xen1 192.0.2.17
  check multi.xen1-pings-xen2-v6 gx xen1 "ping6 -c 2 -w 8 -W 1 2001:db8:abba:2::1001"
  check multi.xen2-pings-xen1 gping xen2 192.0.2.1
  check multi.xen1-pings-router gping xen1 192.0.2.254
  check multi.xen1-pings-router-v6 gx xen1 "ping6 -c 2 -w 8 -W 1 2001:db8:ffff::254"
  check multi.lan-pings-xen2 nsping lan 192.0.2.17
  check multi.lan-pings-xen2-v6 nsping6 lan 2001:db8:abba:2::1001
  check multi.unreachable-rest-of-60 sh -c "ip -6 route get 2001:db8:abba:3::1 2>&1 | grep -q 'No route to host\|unreachable'"
  xl destroy xen1
  xl destroy xen2
  sleep 0.5
  check multi.destroy-removes-vifs sh -c "! ip link show xen2.0 2>/dev/null && [ -z \"\$(ip -o link show master br1)\" ]"
}
