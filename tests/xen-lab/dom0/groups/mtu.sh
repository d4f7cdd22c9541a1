# shellcheck shell=bash
# The MTU the guest is told. With xenbr0 at 9000, vif-bridge gives the vif the bridge's MTU
# and writes it to the frontend's "mtu" key; with mtu= in the vif line (libxl's B/mtu) that
# value wins. Found here: Linux's netfront (6.1) does not read the key, so a Linux guest
# stays at 1500 until it sets its own MTU; the lab reports what the guest took.
. /lab/groups/bridged.sh

group_mtu() {
  bridged_host
  ip link set eth0 mtu 9000
  in_lan ip link set lan0 mtu 9000
  ip link set xenbr0 mtu 9000
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,script=$VK/vif-bridge"); then
    fail mtu.create "xl create failed: $out"
    return
  fi
  local dom
  dom=$(domid xen1)
  expect_eq mtu.vif-takes-bridge-mtu 9000 "$(cat "/sys/class/net/vif$dom.0/mtu")"
  expect_eq mtu.frontend-key-written 9000 "$(xenstore-read "/local/domain/$dom/device/vif/0/mtu" 2>&1)"
  info "mtu: frontend key 9000, the Linux guest's eth0 took $(gx xen1 'cat /sys/class/net/eth0/mtu')"
  # The guest sets what it was told, as its own config would; then a jumbo frame crosses
  # the vif and the bridge to the LAN whole.
  gset xen1 "ip link set eth0 mtu 9000 && ip link set eth0 up && ip addr add 192.168.0.10/24 dev eth0"
  in_lan nft add table netdev jumbo
  in_lan nft add chain netdev jumbo in '{ type filter hook ingress device lan0 priority 0; }'
  in_lan nft add rule netdev jumbo in ip saddr 192.168.0.10 meta length gt 8000 counter
  check mtu.jumbo-ping-crosses gx xen1 "ping -c 2 -w 8 -W 1 -s 8500 192.168.0.254"
  check mtu.jumbo-frame-arrived-whole sh -c "ip netns exec lan nft list table netdev jumbo | grep -q 'packets [1-9]'"
  xl destroy xen1
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,mtu=1400,script=$VK/vif-bridge"); then
    fail mtu.create-1400 "xl create failed: $out"
    return
  fi
  dom=$(domid xen1)
  expect_eq mtu.vif-mtu-key-wins 1400 "$(cat "/sys/class/net/vif$dom.0/mtu")"
  expect_eq mtu.frontend-key-1400 1400 "$(xenstore-read "/local/domain/$dom/device/vif/0/mtu" 2>&1)"
  info "mtu: frontend key 1400, the Linux guest's eth0 took $(gx xen1 'cat /sys/class/net/eth0/mtu')"
  xl destroy xen1
}
