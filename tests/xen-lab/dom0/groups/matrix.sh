# shellcheck shell=bash
# A kernel matrix: the namespace integration tests, built on the CI machine (kernel 6.18, no
# modules), run again on dom0's Debian 6.1 kernel. Each test executable is one check, and
# the VLAN-aware bridge test, which the CI kernel must skip, runs here by name.
group_matrix() {
  if [[ ! -f /lab/matrix/tests ]]; then
    fail matrix.staged "no test executables were staged (tests/xen-lab/test-binaries)"
    return
  fi
  modprobe -a 8021q sch_tbf
  local name exe out summary t0 rc
  while read -r name exe; do
    t0=$(now_ms)
    out=$("$exe" --test-threads=2 2>&1)
    rc=$?
    summary=$(grep '^test result:' <<<"$out" | tail -n 1)
    if ((rc == 0)); then
      pass "matrix.$name ($summary; $(($(now_ms) - t0)) ms)"
    else
      fail "matrix.$name" "$summary; failed: $(grep -E '^test .* FAILED$' <<<"$out" | awk '{print $2}' | tr '\n' ' ')"
      grep -A 12 -E '^---- ' <<<"$out" | head -n 40 | sed 's/^/  | /'
    fi
  done </lab/matrix/tests
  # The VLAN-aware bridge test, #[ignore]d on the CI kernel.
  exe=$(awk '$1 == "port_options" { print $2 }' /lab/matrix/tests)
  if [[ -z $exe ]]; then
    fail matrix.port_options-vlan "port_options was not staged"
    return
  fi
  out=$("$exe" --ignored vlan_aware_bridge 2>&1)
  rc=$?
  summary=$(grep '^test result:' <<<"$out" | tail -n 1)
  if ((rc == 0)) && [[ $summary == *" 1 passed"* ]]; then
    pass "matrix.port_options-vlan-aware-bridge ($summary)"
  else
    fail matrix.port_options-vlan-aware-bridge "$summary $(grep -A 8 -E '^---- ' <<<"$out" | head -n 12 | tr '\n' ' ')"
  fi
}
