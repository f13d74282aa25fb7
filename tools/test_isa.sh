#!/usr/bin/env bash
# What a CPU without AVX-512 runs, on any x86-64 machine: `bash tools/test_isa.sh [ISA] [pytest args]`.
# oneDNN honours ONEDNN_MAX_CPU_ISA (and torch's oneDNN-bf16 check obeys it: at AVX2 torch refuses
# bf16 weight packing, as on an AMD Zen 3), ATen honours ATEN_CPU_CAPABILITY. ISA: AVX2 (default;
# AMD Zen 2/3, Intel Haswell to Comet Lake) or SSE41 (plain x86-64 with SSE4.1: ATen's scalar kernels).
# The precision paths' tests and `archbuild bench` / `export` in bf16 and int8 run on those kernels.
# Emulation is for correctness: the kernels are the older ISA's, the timings are not that CPU's.
set -euo pipefail
cd "$(dirname "$0")/.."
isa=${1:-AVX2}
shift || true
case "$isa" in
  AVX2) aten=avx2 ;;
  SSE41) aten=default ;;
  *) echo "ISA must be AVX2 or SSE41, not $isa" >&2; exit 2 ;;
esac
export ONEDNN_MAX_CPU_ISA=$isa ATEN_CPU_CAPABILITY=$aten
# Inductor keys its caches without ATen's cap (torch 2.14.1): kernels compiled here and loaded by
# a native run later (or the reverse) corrupt the heap. This ISA's compiles get a cache of their own.
export TORCHINDUCTOR_CACHE_DIR="${TMPDIR:-/tmp}/torchinductor-$(id -un)-$aten"
python -c "from archbuilder.builder.precision_cpu import cpu_support; print('emulating:', cpu_support().describe())"
if [ $# -eq 0 ]; then set -- -q -n auto; fi
python -m pytest "$@" tests/test_optimize.py tests/test_precision.py tests/test_quantize.py tests/test_pooling.py
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for dtype in bf16 int8; do
  archbuild bench inception-digits --dtype "$dtype" --batch 2 --repeats 2
  archbuild export inception-digits --dtype "$dtype" -o "$out/digits-$dtype.pt2"
done
