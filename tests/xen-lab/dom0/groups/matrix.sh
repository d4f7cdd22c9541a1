# A kernel matrix: the namespace integration tests, built on the CI machine (kernel 6.18, no
# modules), run again on dom0's Debian 6.1 kernel. Each test executable is one check. The
# tests the CI kernel must skip run here by name: the VLAN-aware bridge test and the tap
# policing test (both #[ignore]d there for want of kernel features).
group_matrix() {
  if [[ ! -f /lab/matrix/tests ]]; then
    fail matrix.staged "no test executables were staged (tests/xen-lab/test-binaries)"
    return
  fi
  modprobe -a 8021q sch_ingress cls_matchall act_police sch_tbf
  local name exe out summary t0
  while read -r name exe; do
    t0=$(now_ms)
    out=$("$exe" --test-threads=2 2>&1)
    local rc=$?
    summary=$(grep '^test result:' <<<"$out" | tail -n 1)
    if ((rc == 0)); then
      pass "matrix.$name ($summary; $(($(now_ms) - t0)) ms)"
    else
      fail "matrix.$name" "$summary; failed: $(grep -E '^test .* FAILED$' <<<"$out" | awk '{print $2}' | tr '\n' ' ')"
      grep -A 12 -E '^---- ' <<<"$out" | head -n 40 | sed 's/^/  | /'
    fi
  done </lab/matrix/tests
  local t
  for t in "port_options vlan_aware_bridge" "rate_limit police"; do
    set -- $t
    exe=$(awk -v n="$1" '$1 == n { print $2 }' /lab/matrix/tests)
    [[ -n $exe ]] || { fail "matrix.ignored-$1" "not staged"; continue; }
    out=$("$exe" --ignored "$2" 2>&1)
    summary=$(grep '^test result:' <<<"$out" | tail -n 1)
    if [[ $? -eq 0 && $summary == *" 0 failed"* && $summary != *" 0 passed"* ]]; then
      pass "matrix.$1-ignored-$2 ($summary)"
    else
      fail "matrix.$1-ignored-$2" "$summary $(grep -A 8 -E '^---- ' <<<"$out" | head -n 12 | tr '\n' ' ')"
    fi
  done
}
