# shellcheck shell=bash
# Antispoofing against a real guest. xen1 has two vifs on xenbr0: eth0 with ip= (filtered by
# vifkit) and eth1 without (unfiltered: the control that proves each forged packet would
# arrive). Only one NIC is up at a time, so the guest's routing picks it. The LAN counts what
# reaches it by source on its ingress.
. /lab/groups/bridged.sh

lan_counter() { # name -> packets counted on the LAN's ingress
  in_lan nft list counter netdev seen "$1" | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}
use_nic() { # guest NIC to bring up, the other one down, with its addresses
  local up=$1 down=$2
  shift 2
  gset xen1 "ip link set $down down; ip addr flush dev $down; ip link set $up up; ip addr flush dev $up; for a in $*; do ip addr add \$a dev $up; done"
}

group_antispoof() {
  bridged_host
  in_lan nft -f - <<'NFT'
table netdev seen {
  counter forged4 {}
  counter forged6 {}
  counter forgedmac {}
  counter arp66 {}
  chain in {
    type filter hook ingress device lan0 priority 0;
    ip saddr 192.168.0.66 counter name forged4
    ip6 saddr 2001:db8:abba::66 counter name forged6
    ether saddr 00:16:3e:99:99:99 counter name forgedmac
    arp saddr ip 192.168.0.66 counter name arp66
  }
}
NFT
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,ip=192.168.0.10 2001:db8:abba::10,script=$VK/vif-bridge" \
    "mac=00:16:3e:10:10:11,bridge=xenbr0,script=$VK/vif-bridge"); then
    fail antispoof.create "xl create failed: $out"
    return
  fi
  local dom
  dom=$(domid xen1)
  check antispoof.chain-for-filtered-vif sh -c "nft list chains netdev | grep -q 'chain vif$dom.0 '"
  check_not antispoof.no-chain-for-unfiltered-vif sh -c "nft list chains netdev | grep -q 'chain vif$dom.1 '"

  # Control: from the unfiltered vif the forged source arrives.
  use_nic eth1 eth0 192.168.0.66/24 2001:db8:abba::66/64
  gset xen1 "ping -c 2 -W 1 192.168.0.254; ping6 -c 2 -W 1 2001:db8:abba::254"
  # The control NIC goes quiet before the counts are taken: it would still answer the LAN's
  # ARP and neighbour probes for the forged address.
  gset xen1 "ip link set eth1 down; ip addr flush dev eth1"
  sleep 1
  local c4 c6 carp
  c4=$(lan_counter forged4) c6=$(lan_counter forged6) carp=$(lan_counter arp66)
  check antispoof.control-forged-ipv4-arrives test "${c4:-0}" -gt 0
  check antispoof.control-forged-ipv6-arrives test "${c6:-0}" -gt 0
  check antispoof.control-forged-arp-arrives test "${carp:-0}" -gt 0

  # The filtered vif: its own addresses pass, the forged ones do not.
  use_nic eth0 eth1 192.168.0.10/24 2001:db8:abba::10/64
  check antispoof.authorised-ipv4-passes gping xen1 192.168.0.254
  check antispoof.authorised-ipv6-passes gx xen1 "ping6 -c 2 -w 8 -W 1 2001:db8:abba::254"
  use_nic eth0 eth1 192.168.0.66/24 2001:db8:abba::66/64
  check_not antispoof.forged-ipv4-blocked gx xen1 "ping -c 2 -w 4 -W 1 192.168.0.254"
  check_not antispoof.forged-ipv6-blocked gx xen1 "ping6 -c 2 -w 4 -W 1 2001:db8:abba::254"
  expect_eq antispoof.forged-ipv4-never-reached-lan "$c4" "$(lan_counter forged4)"
  expect_eq antispoof.forged-ipv6-never-reached-lan "$c6" "$(lan_counter forged6)"
  expect_eq antispoof.forged-arp-never-reached-lan "$carp" "$(lan_counter arp66)"

  # A second MAC: netfront takes a new address; the control vif shows it would arrive.
  local cm
  if gx xen1 "ip link set eth1 address 00:16:3e:99:99:99" >/dev/null; then
    use_nic eth1 eth0 192.168.0.10/24
    gset xen1 "ping -c 2 -W 1 192.168.0.254"
    # The control NIC goes quiet first, as above (and its IPv6 router solicitations).
    gset xen1 "ip link set eth1 down"
    sleep 1
    cm=$(lan_counter forgedmac)
    check antispoof.control-forged-mac-arrives test "${cm:-0}" -gt 0
    gset xen1 "ip link set eth0 down; ip link set eth0 address 00:16:3e:99:99:99"
    use_nic eth0 eth1 192.168.0.10/24
    check_not antispoof.forged-mac-blocked gx xen1 "ping -c 2 -w 4 -W 1 192.168.0.254"
    expect_eq antispoof.forged-mac-never-reached-lan "$cm" "$(lan_counter forgedmac)"
    gset xen1 "ip link set eth0 down; ip link set eth0 address 00:16:3e:10:10:10"
    use_nic eth0 eth1 192.168.0.10/24
    check antispoof.own-mac-passes-again gping xen1 192.168.0.254
  else
    info "antispoof: netfront refused a second MAC (ip link set address): not tested"
  fi
  xl destroy xen1
  sleep 0.5
  check_not antispoof.destroy-removes-chain sh -c "nft list chains netdev | grep -q 'chain vif$dom.0 '"
}
