# shellcheck shell=bash
# Rate limits on dom0's Debian kernel (cls_matchall and act_police load there; the CI kernel
# has neither). A qemu tap with "rate = 1mbit" in its [port] section: qemu-ifup puts a tbf
# on the tap (host to guest) and an ingress police (guest to host). A stand-in qemu
# (tapsend.py, opening the tap as qemu does) floods it; the LAN counts what arrives, and an
# unlimited tap is the control.
. /lab/groups/bridged.sh

lan_rx_packets() { in_lan nft list counter netdev seen flood | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }

group_police() {
  modprobe -a sch_ingress cls_matchall act_police sch_tbf
  bridged_host
  in_lan nft -f - <<'NFT'
table netdev seen {
  counter flood {}
  chain in {
    type filter hook ingress device lan0 priority 0;
    udp dport 9 counter name flood
  }
}
NFT
  mkdir -p /etc/vifkit
  printf '[port tapfast]\nbridge = xenbr0\n\n[port tapslow]\nbridge = xenbr0\nrate = 1mbit\n' >/etc/vifkit/vifkit.conf
  local tap before after fast slow
  for tap in tapfast tapslow; do
    ip tuntap add mode tap name "$tap"
    if ! out=$("$VK/qemu-ifup" "$tap" 2>&1); then
      fail "police.qemu-ifup-$tap" "$out"
      return
    fi
  done
  pass police.qemu-ifup-both
  check police.ingress-police-on-tapslow sh -c "tc -j filter show dev tapslow ingress | grep -q police"
  check police.tbf-on-tapslow sh -c "tc -j qdisc show dev tapslow | grep -q tbf"
  check_not police.no-police-on-tapfast sh -c "tc -j filter show dev tapfast ingress 2>/dev/null | grep -q police"
  # 3,000 frames of 1,000 bytes: 24 Mbit, sent in well under a second.
  for tap in tapfast tapslow; do
    before=$(lan_rx_packets)
    /lab/tapsend.py "$tap" 52:54:00:00:00:0f 02:00:00:00:00:fe 192.168.0.77 192.168.0.254 3000 1000
    sleep 1
    after=$(lan_rx_packets)
    eval "${tap#tap}=$((after - before))"
  done
  info "police: of 3000 frames the LAN received $fast from the unlimited tap, $slow from the 1mbit one"
  check police.control-unlimited-tap-delivers test "$fast" -gt 2000
  check police.policed-tap-held-to-rate test "$slow" -lt 600
  "$VK/qemu-ifdown" tapslow >/dev/null 2>&1
  check_not police.ifdown-removes-police sh -c "tc -j filter show dev tapslow ingress 2>/dev/null | grep -q police"
  "$VK/qemu-ifdown" tapfast >/dev/null 2>&1
  ip link del tapfast
  ip link del tapslow
}
