# The MTU the guest is told. With xenbr0 at 9000, vif-bridge gives the vif the bridge's MTU
# and writes it to the frontend's "mtu" key; Linux's netfront reads that key when it
# connects. With mtu= in the vif line (libxl's B/mtu) that value wins.
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
  expect_eq mtu.vif-takes-bridge-mtu 9000 "$(cat /sys/class/net/vif$dom.0/mtu)"
  expect_eq mtu.frontend-key-written 9000 "$(xenstore-read /local/domain/$dom/device/vif/0/mtu 2>&1)"
  expect_eq mtu.guest-eth0-at-9000 9000 "$(gx xen1 'cat /sys/class/net/eth0/mtu')"
  gset xen1 "ip link set eth0 up && ip addr add 192.168.0.10/24 dev eth0"
  check mtu.jumbo-ping-unfragmented gx xen1 "ping -c 2 -w 8 -W 1 -s 8000 192.168.0.254"
  xl destroy xen1
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,mtu=1400,script=$VK/vif-bridge"); then
    fail mtu.create-1400 "xl create failed: $out"
    return
  fi
  dom=$(domid xen1)
  expect_eq mtu.vif-mtu-key-wins 1400 "$(cat /sys/class/net/vif$dom.0/mtu)"
  expect_eq mtu.guest-told-1400 1400 "$(gx xen1 'cat /sys/class/net/eth0/mtu')"
  xl destroy xen1
}
