# shellcheck shell=bash
# Seed 1.1: bridged to a physical network. xenbr0 carries the host's address and has the
# host's NIC (eth0, a veth to the LAN namespace) as a port; guests join it through vifkit's
# vif-bridge, run by libxl as script=.
bridged_host() {
  lan_up
  in_lan ip addr add 192.168.0.254/24 dev lan0
  in_lan ip addr add 2001:db8:abba::254/64 dev lan0 nodad
  xenbr0_up
}
# xenbr0_up: the bridge as the host's network service brings it up: the bridge, the NIC as
# its port, up, the host's addresses.
xenbr0_up() {
  ip link add xenbr0 type bridge stp_state 0 forward_delay 0
  ip link set eth0 master xenbr0
  ip link set eth0 up
  ip link set xenbr0 up
  ip addr add 192.168.0.1/24 dev xenbr0
  ip addr add 2001:db8:abba::1/64 dev xenbr0 nodad
}

group_bridged() {
  bridged_host
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,script=$VK/vif-bridge"); then
    fail bridged.create "xl create failed: $out"
    return
  fi
  pass bridged.create
  local dom vif
  dom=$(domid xen1)
  vif=vif$dom.0
  expect_eq bridged.vif-on-xenbr0 xenbr0 "$(vif_master "$vif")"
  check bridged.vif-up sh -c "ip -j link show $vif | grep -q '\"operstate\":\"UP\"\\|LOWER_UP'"
  expect_eq bridged.hotplug-status connected \
    "$(xenstore-read "$(backend_dir xen1 0)/hotplug-status" 2>&1)"
  check bridged.guest-mac gx_is xen1 'cat /sys/class/net/eth0/address' 00:16:3e:10:10:10
  gset xen1 "ip link set eth0 up && ip addr add 192.168.0.10/24 dev eth0 && ip -6 addr add 2001:db8:abba::10/64 dev eth0"
  check bridged.guest-pings-lan gping xen1 192.168.0.254
  check bridged.lan-pings-guest nsping lan 192.168.0.10
  check bridged.guest-pings-lan-ipv6 gx xen1 "ping6 -c 2 -w 8 -W 1 2001:db8:abba::254"
  check bridged.guest-pings-host gping xen1 192.168.0.1
  xl destroy xen1
  sleep 0.5
  check_not bridged.destroy-removes-vif link_exists "$vif"
  check_not bridged.destroy-removes-backend xenstore-read "/local/domain/0/backend/vif/$dom/0/mac"
  expect_eq bridged.destroy-leaves-uplink xenbr0 "$(vif_master eth0)"

  # vifname=xen1.0: the static name of seed 1.1's commented line.
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,vifname=xen1.0,script=$VK/vif-bridge"); then
    fail bridged.vifname-create "xl create failed: $out"
    return
  fi
  expect_eq bridged.vifname-on-xenbr0 xenbr0 "$(vif_master xen1.0)"
  gset xen1 "ip link set eth0 up && ip addr add 192.168.0.10/24 dev eth0"
  check bridged.vifname-guest-pings-lan gping xen1 192.168.0.254
  xl destroy xen1
  sleep 0.5
  check_not bridged.vifname-destroy-removes-vif link_exists xen1.0
}
