# shellcheck shell=bash
# Hotplug as libxl does it: network-attach and network-detach on a running guest, destroy
# running offline, a guest recreated with the same vifname, and four guests created at once.
. /lab/groups/bridged.sh

group_hotplug() {
  bridged_host
  if ! out=$(guest_up xen3 "mac=00:16:3e:30:30:30,bridge=xenbr0,script=$VK/vif-bridge"); then
    fail hotplug.create "xl create failed: $out"
    return
  fi
  local dom
  dom=$(domid xen3)
  # xl network-attach takes space-separated key=value words.
  check hotplug.network-attach xl network-attach xen3 mac=00:16:3e:30:30:31 bridge=xenbr0 "script=$VK/vif-bridge"
  expect_eq hotplug.attached-vif-on-xenbr0 xenbr0 "$(vif_master "vif$dom.1")"
  check hotplug.guest-sees-eth1 gx xen3 "for i in \$(seq 50); do [ -e /sys/class/net/eth1 ] && exit 0; sleep 0.1; done; exit 1"
  gset xen3 "ip link set eth0 down; ip link set eth1 up && ip addr add 192.168.0.31/24 dev eth1"
  check hotplug.attached-vif-carries-traffic gping xen3 192.168.0.254
  check hotplug.network-detach xl network-detach xen3 1
  sleep 0.5
  check_not hotplug.detach-removes-vif link_exists "vif$dom.1"
  check_not hotplug.detach-removes-backend xenstore-read "/local/domain/0/backend/vif/$dom/1/mac"
  expect_eq hotplug.first-vif-stays xenbr0 "$(vif_master "vif$dom.0")"
  xl destroy xen3
  sleep 0.5
  check_not hotplug.destroy-runs-offline link_exists "vif$dom.0"

  # The same vifname again after the guest is gone (xl reboot, or destroy + create).
  local i
  for i in 1 2; do
    if ! out=$(guest_up xen4 "mac=00:16:3e:40:40:40,bridge=xenbr0,vifname=xen4.0,script=$VK/vif-bridge"); then
      fail "hotplug.same-vifname-create-$i" "xl create failed: $out"
      return
    fi
    expect_eq "hotplug.same-vifname-on-xenbr0-$i" xenbr0 "$(vif_master xen4.0)"
    gset xen4 "ip link set eth0 up && ip addr add 192.168.0.40/24 dev eth0"
    check "hotplug.same-vifname-pings-$i" gping xen4 192.168.0.254
    xl destroy xen4
  done

  # Four guests created at once: four concurrent vif-bridge runs on one bridge.
  local n pids=()
  for n in 5 6 7 8; do
    guest_cfg "xen$n" "mac=00:16:3e:50:50:5$n,bridge=xenbr0,vifname=xen$n.0,script=$VK/vif-bridge"
    rm -f "$CONSOLE_LOGS/guest-xen$n.log"
    xl create "/tmp/xen$n.cfg" >"/tmp/xen$n.create" 2>&1 &
    pids+=($!)
  done
  local ok=1
  for n in "${pids[@]}"; do
    wait "$n" || ok=0
  done
  if ((ok)); then pass hotplug.four-at-once-created; else
    fail hotplug.four-at-once-created "$(cat /tmp/xen[5-8].create | tail -n 10 | tr '\n' ' ')"
  fi
  for n in 5 6 7 8; do
    guest_wait_ready "xen$n" >/dev/null || true
  done
  check hotplug.four-at-once-all-on-xenbr0 sh -c "[ \$(ip -o link show master xenbr0 | grep -c 'xen[5-8].0') -eq 4 ]"
  for n in 5 6 7 8; do
    gset "xen$n" "ip link set eth0 up && ip addr add 192.168.0.5$n/24 dev eth0"
  done
  for n in 5 6 7 8; do
    check "hotplug.four-at-once-xen$n-pings" gping "xen$n" 192.168.0.254
  done
  for n in 5 6 7 8; do
    xl destroy "xen$n" &
  done
  wait
  sleep 0.5
  check hotplug.four-at-once-all-gone sh -c "! ip -o link | grep -q 'xen[5-8].0'"
}
