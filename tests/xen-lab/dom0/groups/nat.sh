# shellcheck shell=bash
# Seed 3: NAT. vif-nat routes the guest's private 192.168.1.10 (and 2001:db8:abba::1001)
# to xen1.0 with the host's router address as source, and masquerades it on eth0.
group_nat() {
  sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  lan_up
  in_lan ip addr add 203.0.113.1/24 dev lan0
  in_lan ip addr add 2001:db8:ffff::1/64 dev lan0 nodad
  in_lan nft -f - <<'NFT'
table inet seen {
  chain input {
    type filter hook input priority 0;
    ip saddr 203.0.113.2 icmp type echo-request counter
    ip saddr 192.168.1.10 icmp type echo-request counter
    ip6 saddr 2001:db8:ffff::2 icmpv6 type echo-request counter
  }
}
NFT
  ip link set eth0 up
  ip addr add 203.0.113.2/24 dev eth0
  ip addr add 2001:db8:ffff::2/64 dev eth0 nodad
  ip route add default via 203.0.113.1
  ip -6 route add default via 2001:db8:ffff::1
  mkdir -p /etc/vifkit
  printf '[port xen1.0]\nrouter = 192.168.1.1 2001:db8:abba::1\nmasquerade6 = yes\n' >/etc/vifkit/vifkit.conf
  if ! out=$(guest_up xen1 "mac=00:16:3e:10:10:10,mtu=1400,script=$VK/vif-nat,vifname=xen1.0,ip=192.168.1.10 2001:db8:abba::1001/64"); then
    fail nat.create "xl create failed: $out"
    return
  fi
  pass nat.create
  check nat.route-src sh -c "ip route show dev xen1.0 | grep '^192.168.1.10 ' | grep -q 'src 192.168.1.1'"
  expect_eq nat.vif-takes-b-mtu 1400 "$(cat /sys/class/net/xen1.0/mtu)"
  check nat.masquerade-table sh -c "nft list tables | grep -q 'vifkit-nat'"
  gset xen1 "ip link set eth0 up && ip addr add 192.168.1.10/24 dev eth0 && ip -6 addr add 2001:db8:abba::1001/64 dev eth0 && ip route add default via 192.168.1.1 && ip -6 route add default via 2001:db8:abba::1"
  check nat.guest-pings-peer gping xen1 203.0.113.1
  check nat.guest-pings-peer-v6 gx xen1 "ping6 -c 2 -w 8 -W 1 2001:db8:ffff::1"
  local counters
  counters=$(in_lan nft list table inet seen | grep -o 'packets [0-9]*' | awk '{print $2}' | tr '\n' ' ')
  check nat.peer-saw-host-source sh -c "set -- $counters; [ \"\$1\" -gt 0 ] && [ \"\$2\" -eq 0 ] && [ \"\$3\" -gt 0 ]"
  xl destroy xen1
  sleep 0.5
  check nat.destroy-removes-masquerade sh -c "! nft list tables | grep -q 'vifkit-nat'"
  check nat.destroy-removes-route sh -c "! ip route | grep -q 192.168.1.10"
}
