# shellcheck shell=bash
# Seed 1.2: a second, host-only bridge (br1, 192.168.1.1/24, no physical port) beside xenbr0;
# the guest's second vif (vifname=xen1.1) reaches the host over it and not the LAN.
. /lab/groups/bridged.sh

group_hostonly() {
  bridged_host
  ip link add br1 type bridge stp_state 0 forward_delay 0
  ip link set br1 up
  ip addr add 192.168.1.1/24 dev br1
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,vifname=xen1.0,script=$VK/vif-bridge" \
    "mac=00:16:3e:11:11:11,bridge=br1,vifname=xen1.1,script=$VK/vif-bridge"); then
    fail hostonly.create "xl create failed: $out"
    return
  fi
  expect_eq hostonly.xen1.0-on-xenbr0 xenbr0 "$(vif_master xen1.0)"
  expect_eq hostonly.xen1.1-on-br1 br1 "$(vif_master xen1.1)"
  check hostonly.br1-has-no-uplink sh -c "[ \$(ip -o link show master br1 | wc -l) -eq 1 ]"
  gset xen1 "ip link set eth0 up && ip link set eth1 up && ip addr add 192.168.0.10/24 dev eth0 && ip addr add 192.168.1.10/24 dev eth1"
  check hostonly.guest-eth1-mac gx_is xen1 'cat /sys/class/net/eth1/address' 00:16:3e:11:11:11
  check hostonly.guest-reaches-host gping xen1 192.168.1.1
  check hostonly.host-reaches-guest busybox ping -c 1 -w 5 192.168.1.10
  # The LAN has no route to 192.168.1.0/24 through anything: give it one via the host, and
  # the host does not forward (ip_forward=0), so br1 stays host-only.
  in_lan ip route add 192.168.1.0/24 via 192.168.0.1
  check_not hostonly.lan-cannot-reach-guest nsping lan 192.168.1.10
  check hostonly.guest-still-reaches-lan gping xen1 192.168.0.254
  xl destroy xen1
  sleep 0.5
  check_not hostonly.destroy-removes-xen1.1 link_exists xen1.1
}
