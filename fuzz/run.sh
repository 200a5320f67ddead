#!/usr/bin/env bash
# Coverage-guided fuzzing of the C++ checker with libFuzzer, AddressSanitizer and UBSan.
#   bash fuzz/run.sh [SECONDS]      (default 60; `make fuzz` runs 600)
# Needs clang++ with libFuzzer (Debian: apt-get install clang libclang-rt-14-dev). A crash,
# a sanitizer report or a timeout makes this script fail and leaves the input in fuzz/build/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
mkdir -p fuzz/build fuzz/build/corpus
srcs=$(ls csrc/*.cpp | grep -v bindings.cpp)
if [ ! -x fuzz/build/fuzz_checker ] || [ -n "$(find csrc fuzz/fuzz_checker.cpp -newer fuzz/build/fuzz_checker -name '*.[ch]*' | head -1)" ]; then
  echo "fuzz: building fuzz/build/fuzz_checker (ASan + UBSan + libFuzzer)"
  clang++ -std=c++17 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Icsrc $srcs fuzz/fuzz_checker.cpp -o fuzz/build/fuzz_checker
fi
export HIRFAST_ASSETS="$PWD/hirfast/assets"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "fuzz: running for ${seconds}s"
set +e
fuzz/build/fuzz_checker -max_total_time="$seconds" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
  -dict=fuzz/checker.dict -artifact_prefix=fuzz/build/ -print_final_stats=1 fuzz/build/corpus \
  > fuzz/build/last-run.log 2>&1
status=$?
set -e
tail -25 fuzz/build/last-run.log
if [ "$status" -ne 0 ]; then
  echo "fuzz: FAILED (status $status); the input is in fuzz/build/" >&2
  exit "$status"
fi
echo "fuzz: no crash in ${seconds}s"
