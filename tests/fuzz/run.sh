#!/bin/sh
# tests/fuzz/run.sh SECONDS TARGET...: runs each libFuzzer harness build-fuzz/fuzz_TARGET for
# SECONDS, starting from tests/fuzz/corpus/TARGET (new inputs go to tests/fuzz/out/TARGET,
# git-ignored). A crash, leak, timeout or out-of-memory input is written to
# tests/fuzz/regressions/TARGET/, which tests/test_fuzz.lua replays in `make test`.
# Prints the executions and crashes of each harness; exits 1 if any harness found one.
secs=$1
shift
status=0
total_runs=0
total_crashes=0
for t in "$@"; do
  mkdir -p "tests/fuzz/out/$t" "tests/fuzz/regressions/$t"
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  before=$(ls "tests/fuzz/regressions/$t" | wc -l)
  log="tests/fuzz/out/$t.log"
  ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "build-fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    $dict -artifact_prefix="tests/fuzz/regressions/$t/" "tests/fuzz/out/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  [ -n "$runs" ] || runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*')
  [ -n "$runs" ] || runs=0
  after=$(ls "tests/fuzz/regressions/$t" | wc -l)
  crashes=$((after - before))
  corpus=$(ls "tests/fuzz/out/$t" | wc -l)
  echo "fuzz $t: $runs executions in ${secs}s, corpus $corpus inputs, $crashes new crash input(s) (exit $rc)"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    grep -m1 -A12 'ERROR: \|runtime error\|deadly signal' "$log"
    echo "  (full log: $log; inputs in tests/fuzz/regressions/$t/)"
  fi
  total_runs=$((total_runs + runs))
  total_crashes=$((total_crashes + crashes))
done
echo "fuzz: $total_runs executions, $total_crashes crash input(s)"
exit $status
