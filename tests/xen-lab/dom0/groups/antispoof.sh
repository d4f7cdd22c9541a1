# shellcheck shell=bash
# Antispoofing against a real guest. xen1 has two vifs on xenbr0: eth0 with ip= (filtered by
# vifkit) and eth1 without (unfiltered: the control that proves each forged packet would
# arrive). Only one NIC is up at a time, so the guest's routing picks it. The LAN counts what
# reaches it by source on its ingress.
#
# Rogue DHCP and DHCPv6 replies: a filtered guest may send nothing to udp/68 or udp/546,
# whatever its source port and address. busybox tftp stands for the rogue server: its read
# request goes to any port from an ephemeral one (never 67 or 547). The LAN counts them by
# sending NIC (eth1's MAC: control; eth0's: filtered) and source; a counter in dom0 on the
# filtered vif's ingress, ahead of vifkit's chain, shows that the guest did send them.
. /lab/groups/bridged.sh

lan_counter() { # name -> packets counted on the LAN's ingress
  in_lan nft list counter netdev seen "$1" | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}
tx_counter() { # name -> packets the filtered vif took from the guest, before vifkit's chain
  nft list counter netdev vklab_tx "$1" | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}
# rogue_dhcp: from whichever NIC is up, a tftp read request to the LAN's udp/68 and udp/546
# (a stand-in for a DHCP and a DHCPv6 server's reply). Nobody answers: each tftp resends
# until timeout stops it.
# (gx sends one line: the guest reads a command up to its newline.)
rogue_dhcp() {
  local v4="timeout 3 tftp -g -r x -l /tmp/x 192.168.0.254 68"
  local v6="timeout 3 tftp -g -r x -l /tmp/x6 2001:db8:abba::254 546"
  gx xen1 "$v4 >/dev/null 2>&1 & $v6 >/dev/null 2>&1; wait; true" >/dev/null
}
# busy_conntrack N: N flows between other addresses in dom0's table, and one that xen1's
# address had before xen1 (udp 192.168.0.10:1000 -> 198.51.100.9:53).
busy_conntrack() {
  awk -v n="$1" 'BEGIN {
    for (i = 0; i < n; i++)
      printf "-I -p udp -s 10.1.%d.%d -d 198.18.0.1 --sport %d --dport 53 -t 600\n", int(i / 256), i % 256, 1024 + i
    print "-I -p udp -s 192.168.0.10 -d 198.51.100.9 --sport 1000 --dport 53 -t 600"
  }' >/tmp/flows
  conntrack -R /tmp/flows >/dev/null 2>&1
}
# A capture, not `| grep -q` (see watch.sh's filtered).
old_flow_left() { [[ $(conntrack -L -s 192.168.0.10 -d 198.51.100.9 2>/dev/null) == *dport=53* ]]; }
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
  counter dhcp68_ctl {}
  counter dhcp68_ctl_forged {}
  counter dhcp546_ctl {}
  counter dhcp546_ctl_forged {}
  counter dhcp68 {}
  counter dhcp68_forged {}
  counter dhcp546 {}
  counter dhcp546_forged {}
  counter udp69 {}
  chain in {
    type filter hook ingress device lan0 priority 0;
    ip saddr 192.168.0.66 counter name forged4
    ip6 saddr 2001:db8:abba::66 counter name forged6
    ether saddr 00:16:3e:99:99:99 counter name forgedmac
    arp saddr ip 192.168.0.66 counter name arp66
    # Rogue DHCP replies by sending NIC (eth1: the control, eth0: the filtered vif) and
    # source (the guest's own address or the forged one), from any port but 67 or 547.
    ether saddr 00:16:3e:10:10:11 ip saddr 192.168.0.10 udp sport != 67 udp dport 68 counter name dhcp68_ctl
    ether saddr 00:16:3e:10:10:11 ip saddr 192.168.0.66 udp sport != 67 udp dport 68 counter name dhcp68_ctl_forged
    ether saddr 00:16:3e:10:10:11 ip6 saddr 2001:db8:abba::10 udp sport != 547 udp dport 546 counter name dhcp546_ctl
    ether saddr 00:16:3e:10:10:11 ip6 saddr 2001:db8:abba::66 udp sport != 547 udp dport 546 counter name dhcp546_ctl_forged
    ether saddr 00:16:3e:10:10:10 ip saddr 192.168.0.10 udp sport != 67 udp dport 68 counter name dhcp68
    ether saddr 00:16:3e:10:10:10 ip saddr 192.168.0.66 udp sport != 67 udp dport 68 counter name dhcp68_forged
    ether saddr 00:16:3e:10:10:10 ip6 saddr 2001:db8:abba::10 udp sport != 547 udp dport 546 counter name dhcp546
    ether saddr 00:16:3e:10:10:10 ip6 saddr 2001:db8:abba::66 udp sport != 547 udp dport 546 counter name dhcp546_forged
    # Ordinary UDP from the filtered vif's own address: the DHCP drops are no UDP drop.
    ether saddr 00:16:3e:10:10:10 ip saddr 192.168.0.10 udp dport 69 counter name udp69
  }
}
NFT
  # A busy table (6,000 flows): the plug of the filtered vif leaves the purge of the
  # guest's old flow to a process of its own, which releases the vif when it is done.
  busy_conntrack 6000
  check antispoof.busy-table-loaded old_flow_left
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,bridge=xenbr0,ip=192.168.0.10 2001:db8:abba::10,script=$VK/vif-bridge" \
    "mac=00:16:3e:10:10:11,bridge=xenbr0,script=$VK/vif-bridge"); then
    fail antispoof.create "xl create failed: $out"
    return
  fi
  local dom
  dom=$(domid xen1)
  check antispoof.busy-table-purge-after-the-plug grep -q "vif$dom.0 is held while process [0-9]* purges those of 192.168.0.10 2001:db8:abba::10" /var/log/xen/xen-hotplug.log
  check antispoof.busy-table-vif-released grep -q "released vif$dom.0 after [0-9]* ms, the old flows of 192.168.0.10 2001:db8:abba::10 purged (1 deleted)" /var/log/xen/xen-hotplug.log
  check_not antispoof.busy-table-old-flow-purged old_flow_left
  check_not antispoof.busy-table-no-hold-left sh -c 'nft list ruleset | grep -q vifkit-hold'
  conntrack -F >/dev/null 2>&1
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

  rogue_dhcp_checks "$dom"

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

# rogue_dhcp_checks DOMID: rogue DHCP and DHCPv6 replies, from the guest's own address and a
# forged one, arrive from the control vif and never from the filtered one.
rogue_dhcp_checks() {
  local dom=$1 lanmac
  lanmac=$(in_lan cat /sys/class/net/lan0/address)
  nft -f - <<NFT
table netdev vklab_tx {
  counter tx68 {}
  counter tx68_forged {}
  counter tx546 {}
  counter tx546_forged {}
  chain tx {
    type filter hook ingress device "vif$dom.0" priority -1000;
    ip saddr 192.168.0.10 udp dport 68 counter name tx68
    ip saddr 192.168.0.66 udp dport 68 counter name tx68_forged
    ip6 saddr 2001:db8:abba::10 udp dport 546 counter name tx546
    ip6 saddr 2001:db8:abba::66 udp dport 546 counter name tx546_forged
  }
}
NFT

  # Control: from the unfiltered vif both arrive, from either source.
  use_nic eth1 eth0 192.168.0.10/24 2001:db8:abba::10/64
  gx xen1 "ping -c 1 -W 2 192.168.0.254; ping6 -c 1 -W 2 2001:db8:abba::254" >/dev/null
  rogue_dhcp
  use_nic eth1 eth0 192.168.0.66/24 2001:db8:abba::66/64
  gx xen1 "ping -c 1 -W 2 192.168.0.254; ping6 -c 1 -W 2 2001:db8:abba::254" >/dev/null
  rogue_dhcp
  gset xen1 "ip link set eth1 down; ip addr flush dev eth1"
  sleep 1
  local c n
  for c in dhcp68_ctl:rogue-dhcp dhcp68_ctl_forged:rogue-dhcp-forged-source \
    dhcp546_ctl:rogue-dhcpv6 dhcp546_ctl_forged:rogue-dhcpv6-forged-source; do
    n=$(lan_counter "${c%%:*}")
    check "antispoof.control-${c#*:}-arrives" test "${n:-0}" -gt 0
  done
  local b68 b68f b546 b546f
  b68=$(lan_counter dhcp68) b68f=$(lan_counter dhcp68_forged)
  b546=$(lan_counter dhcp546) b546f=$(lan_counter dhcp546_forged)

  # The filtered vif, from its own addresses: ordinary UDP passes, the DHCP replies do not.
  use_nic eth0 eth1 192.168.0.10/24 2001:db8:abba::10/64
  gx xen1 "ping -c 1 -W 2 192.168.0.254; ping6 -c 1 -W 2 2001:db8:abba::254" >/dev/null
  rogue_dhcp
  gx xen1 "timeout 3 tftp -g -r x -l /tmp/x 192.168.0.254 >/dev/null 2>&1; true" >/dev/null
  # From the forged addresses. The guest cannot resolve the LAN's addresses from them (its
  # ARP and neighbour solicitations are dropped): a static ARP entry, and for IPv6 the LAN's
  # own solicitation of the forged address, teach it the LAN's MAC.
  use_nic eth0 eth1 192.168.0.66/24 2001:db8:abba::66/64
  gset xen1 "arp -i eth0 -s 192.168.0.254 $lanmac"
  in_lan ip neigh flush dev lan0
  in_lan busybox ping6 -c 1 -W 1 2001:db8:abba::66 >/dev/null 2>&1
  rogue_dhcp
  sleep 1
  local t
  t=$(tx_counter tx68)
  check antispoof.rogue-dhcp-from-ephemeral-port-sent test "${t:-0}" -gt 0
  expect_eq antispoof.rogue-dhcp-from-ephemeral-port-never-reached-lan "$b68" "$(lan_counter dhcp68)"
  t=$(tx_counter tx68_forged)
  check antispoof.rogue-dhcp-forged-source-sent test "${t:-0}" -gt 0
  expect_eq antispoof.rogue-dhcp-forged-source-never-reached-lan "$b68f" "$(lan_counter dhcp68_forged)"
  t=$(tx_counter tx546)
  check antispoof.rogue-dhcpv6-from-ephemeral-port-sent test "${t:-0}" -gt 0
  expect_eq antispoof.rogue-dhcpv6-from-ephemeral-port-never-reached-lan "$b546" "$(lan_counter dhcp546)"
  t=$(tx_counter tx546_forged)
  check antispoof.rogue-dhcpv6-forged-source-sent test "${t:-0}" -gt 0
  expect_eq antispoof.rogue-dhcpv6-forged-source-never-reached-lan "$b546f" "$(lan_counter dhcp546_forged)"
  n=$(lan_counter udp69)
  check antispoof.authorised-udp-passes test "${n:-0}" -gt 0
  nft delete table netdev vklab_tx
}
