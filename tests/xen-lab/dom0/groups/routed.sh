# shellcheck shell=bash
# Seed 2.1: one shared network for host and guest. vif-route-ifup (libxl's
# script=vif-route-ifup, vifname=xen1.0) applies the seed's sysconfig files verbatim: the
# host routes the guest's addresses to xen1.0 and publishes them on eth0 by proxy ARP/NDP.
routed_router() {
  lan_up
  # The provider's router: 192.0.2.254 and, from its MAC, the seed's fe80::201:1ff:fe01:254;
  # 2001:db8:ffff::254 on lo is an address a guest can ping through the host.
  in_lan ip link set lan0 address 00:01:01:01:02:54
  in_lan ip addr add 192.0.2.254/28 dev lan0
  in_lan ip addr add 2001:db8:ffff::254/128 dev lo
  in_lan ip -6 route add 2001:db8:abba::/64 dev lan0
}
routed_uplink() {
  ip link set eth0 up
  ip addr add 192.0.2.253/28 dev eth0
  ip addr add 2001:db8:abba::1/64 dev eth0 nodad
  ip route add default via 192.0.2.254 dev eth0
  ip -6 route add default via fe80::201:1ff:fe01:254 dev eth0
}
routed_sysctl() {
  sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.default.forwarding=1 \
    net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.proxy_ndp=1 \
    net.ipv6.conf.all.proxy_ndp=1 net.ipv4.conf.default.proxy_arp=1 net.ipv4.conf.all.proxy_arp=1
}

group_routed() {
  routed_sysctl
  routed_router
  routed_uplink
  mkdir -p /etc/sysconfig/network
  cp /lab/fixtures/sysconfig/seed-2.1/* /etc/sysconfig/network/
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,script=vif-route-ifup,vifname=xen1.0"); then
    fail routed.create "xl create failed: $out"
    return
  fi
  pass routed.create
  check routed.route-v4 sh -c "ip route show dev xen1.0 | grep -q '^192.0.2.241 '"
  check routed.route-v6 sh -c "ip -6 route show dev xen1.0 | grep -q '^2001:db8:abba::1001 via fe80::216:3eff:fe10:1010 '"
  check routed.proxy-ndp sh -c "ip -6 neigh show proxy | grep -q '2001:db8:abba::1001 dev eth0' && ip -6 neigh show proxy | grep -q '2001:db8:abba::1 dev xen1.0'"
  # The guest's sysconfig from the seed: 192.0.2.241/28, 2001:db8:abba::1001/64, the host
  # as its router on the vif's netback MAC fe:ff:ff:ff:ff:ff.
  gset xen1 "ip link set eth0 up && ip addr add 192.0.2.241/28 dev eth0 && ip -6 addr add 2001:db8:abba::1001/64 dev eth0 && ip route add 192.0.2.253 dev eth0 && ip route add default via 192.0.2.253 dev eth0 && ip -6 route add default via fe80::fcff:ffff:feff:ffff dev eth0"
  check routed.guest-pings-router gping xen1 192.0.2.254
  check routed.lan-pings-guest nsping lan 192.0.2.241
  check routed.guest-pings-router-v6 gx xen1 "ping6 -c 2 -w 8 -W 1 2001:db8:ffff::254"
  check routed.lan-pings-guest-v6 nsping6 lan 2001:db8:abba::1001
  check routed.guest-pings-host-v6 gx xen1 "ping6 -c 2 -w 8 -W 1 2001:db8:abba::1"
  xl destroy xen1
  sleep 0.5
  check routed.destroy-removes-routes sh -c "! ip route | grep -q 192.0.2.241 && ! ip -6 route | grep -q 2001:db8:abba::1001"
  check routed.destroy-removes-proxies sh -c "! ip -6 neigh show proxy | grep -q ."
  check_not routed.lan-no-longer-reaches-guest nsping lan 192.0.2.241
}
