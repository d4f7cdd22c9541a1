# shellcheck shell=bash
# vif-route with ip= IPv4 and IPv6: libxl's B/ip becomes host routes to the vif and proxy
# entries on the uplink, with no sysconfig at all.
. /lab/groups/routed.sh

group_route() {
  routed_sysctl
  routed_router
  routed_uplink
  if ! out=$(guest_up xen2 "mac=00:16:3e:20:20:20,mtu=1400,script=$VK/vif-route,ip=192.0.2.242 2001:db8:abba::1002"); then
    fail route.create "xl create failed: $out"
    return
  fi
  pass route.create
  local vif
  vif=vif$(domid xen2).0
  expect_eq route.vif-takes-b-mtu 1400 "$(cat "/sys/class/net/$vif/mtu")"
  info "route: B/mtu 1400, frontend key $(xenstore-read "/local/domain/$(domid xen2)/device/vif/0/mtu" 2>&1)"
  check route.route-v4 sh -c "ip route show dev $vif | grep -q '^192.0.2.242 '"
  check route.route-v6 sh -c "ip -6 route show dev $vif | grep -q '^2001:db8:abba::1002'"
  gset xen2 "ip link set eth0 up && ip addr add 192.0.2.242/28 dev eth0 && ip -6 addr add 2001:db8:abba::1002/64 dev eth0 && ip route add 192.0.2.253 dev eth0 && ip route add default via 192.0.2.253 dev eth0 && ip -6 route add default via fe80::fcff:ffff:feff:ffff dev eth0"
  check route.guest-pings-router gping xen2 192.0.2.254
  check route.lan-pings-guest nsping lan 192.0.2.242
  check route.lan-pings-guest-v6 nsping6 lan 2001:db8:abba::1002
  xl destroy xen2
  sleep 0.5
  check route.destroy-removes-routes sh -c "! ip route | grep -q 192.0.2.242 && ! ip -6 route | grep -q 2001:db8:abba::1002"
}
