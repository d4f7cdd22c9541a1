# shellcheck shell=bash
# A vif whose bridge does not exist: vifkit refuses in one sentence, libxl shows it and
# fails the create, and nothing is left: no domain, no vif, no backend directory.
. /lab/groups/bridged.sh

group_failure() {
  bridged_host
  guest_cfg xenbad "mac=00:16:3e:66:66:66,bridge=nosuchbr0,script=$VK/vif-bridge"
  local out
  if out=$(xl create /tmp/xenbad.cfg 2>&1); then
    fail failure.create-fails "xl create succeeded"
  else
    pass failure.create-fails
  fi
  if grep -q 'bridge nosuchbr0 does not exist' <<<"$out"; then
    pass failure.libxl-shows-our-sentence
  else
    fail failure.libxl-shows-our-sentence "xl said: $(tail -n 8 <<<"$out" | tr '\n' ' ')"
  fi
  sleep 0.5
  check_not failure.no-domain-left sh -c "xl list | grep -q xenbad"
  check failure.no-vif-left sh -c "! ip -o link | grep -q 'vif[0-9]'"
  check failure.no-backend-left sh -c "[ -z \"\$(xenstore-list /local/domain/0/backend/vif 2>/dev/null)\" ]"
  check failure.no-chain-left sh -c "! nft list chains netdev 2>/dev/null | grep -q 'chain vif'"
}
