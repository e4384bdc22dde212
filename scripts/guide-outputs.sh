#!/usr/bin/env bash
# Regenerate every output and plot that docs/guide.md shows, on this machine.
#
#   scripts/guide-outputs.sh                 # every step, in the guide's order
#   scripts/guide-outputs.sh 03 12-bench     # only the steps whose name starts with one of these
#   DATA=/data/embedlab scripts/guide-outputs.sh
#
# Each step runs one command with the repository's own embedlab (.venv/bin/embedlab, this checkout's
# src/ first on the path) and writes its stdout to docs/guide-outputs/NN-name.txt, the command line on
# the first line. Plots go to docs/img/. docs/guide-outputs/machine.txt names the machine (CPU model,
# cores, the flags that matter, memory, versions, date) and timings.txt the seconds of each step.
# DATA is the folder holding stsbenchmark/ and scifact/ (default: ../shared/data, relative to the
# repository root, where the commands run). Run it alone: the numbers are speeds.
# All steps took 659 s on a 2-core AMD EPYC; nothing is downloaded (HF_HUB_OFFLINE=1).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DATA=${DATA:-../shared/data}
VENV=${VENV:-$REPO/.venv}
OUT=docs/guide-outputs
IMG=docs/img
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/embedlab-guide.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whichever checkout the venv installed
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export COLUMNS=${COLUMNS:-140}                            # width of the printed tables

for needed in "$VENV/bin/embedlab" "$DATA/stsbenchmark/sts-test.csv" "$DATA/scifact/corpus.jsonl"; do
  [[ -e $needed ]] || { echo "error: $needed not found (set VENV or DATA)" >&2; exit 2; }
done
mkdir -p "$OUT" "$IMG"

STEPS=("$@")
STARTED=$SECONDS

# wanted NAME: true when no step was named or NAME starts with one of the names given
wanted() {
  [[ ${#STEPS[@]} -eq 0 ]] && return 0
  local step
  for step in "${STEPS[@]}"; do [[ $1 == "$step"* ]] && return 0; done
  return 1
}

# shown ARGS...: the command line as a reader types it (quoted only where the shell needs it)
shown() {
  local arg out=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then out+=("$arg"); else out+=("${arg@Q}"); fi
  done
  echo "${out[*]}"
}

# step NAME PROGRAM ARGS...: run one command, its stdout to $OUT/NAME.txt after the command line
step() {
  local name=$1 program=$2
  shift 2
  wanted "$name" || return 0
  local file="$OUT/$name.txt" log="$SCRATCH/$name.stderr" begun=$SECONDS
  echo "[$name] $(shown "$program" "$@")"
  echo "\$ $(shown "$program" "$@")" >"$file"
  local run=("$VENV/bin/$program")
  [[ $program == python ]] && run=("$VENV/bin/python")
  if ! "${run[@]}" "$@" >>"$file" 2>"$log"; then
    echo "error: step $name failed; the end of its stderr:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  [[ -f $OUT/timings.txt ]] && sed -i "/^$name /d" "$OUT/timings.txt"  # a step run again replaces its line
  echo "$name $((SECONDS - begun)) s" >>"$OUT/timings.txt"
  echo "  -> $file ($((SECONDS - begun)) s)"
}

# bench_plot HTML TITLE PNG: copy one plot out of a `bench --report` page, then drop the page
bench_plot() {
  [[ -f $1 ]] || return 0
  "$VENV/bin/python" - "$1" "$2" "$3" <<'PY'
import base64, html, re, sys
page, title, png = sys.argv[1:]
found = re.search(r'<img alt="' + re.escape(html.escape(title)) + r'" src="data:image/png;base64,([^"]+)"',
                  open(page, encoding="utf-8").read())
if found is None:
    sys.exit(f"error: no plot titled {title!r} in {page}")
open(png, "wb").write(base64.b64decode(found.group(1)))
print(f"  -> {png}")
PY
}

# plan_outputs DIR [PREFIX]: keep plan.json and settings.json; the plots go to docs/img/PREFIX-*.png
# (without PREFIX they are dropped: the guide does not show them); the HTML report (the same plots) is dropped
plan_outputs() {
  rm -f "$1/report.html"
  [[ -f $1/lengths.png ]] || return 0
  if [[ -n ${2:-} ]]; then
    mv "$1/lengths.png" "$IMG/$2-lengths.png"
    mv "$1/batches.png" "$IMG/$2-batches.png"
    echo "  -> $IMG/$2-lengths.png, $IMG/$2-batches.png"
  else
    rm -f "$1/lengths.png" "$1/batches.png"
  fi
}

if wanted 00-machine; then
  "$VENV/bin/python" - >"$OUT/machine.txt" <<'PY'
import datetime, importlib.metadata, os, platform, re
from pathlib import Path

from embedlab.cpu import available_cores

info = Path("/proc/cpuinfo").read_text()
field = lambda key: (re.search(rf"^{key}\s*:\s*(.*)$", info, re.M) or [None, "?"])[1]
flags = set(field("flags").split())
wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"]
memory = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 2**20
versions = []
for package in ("torch", "onnxruntime", "openvino", "transformers", "sentence-transformers"):
    try:
        versions.append(f"{package} {importlib.metadata.version(package)}")
    except importlib.metadata.PackageNotFoundError:
        versions.append(f"{package} not installed")
print(f"date: {datetime.date.today().isoformat()}")
print(f"cpu: {field('model name')} (family {field('cpu family')}, model {field('model')}, stepping {field('stepping')})")
print(f"cores: {available_cores()} available to the process, {os.cpu_count()} logical CPUs online")
print(f"flags: {' '.join(f for f in wanted if f in flags)} (absent: {' '.join(f for f in wanted if f not in flags)})")
print(f"memory: {memory:.1f} GiB")
print(f"load average at start: {Path('/proc/loadavg').read_text().split()[0]}")
print(f"system: {platform.system()} {platform.release()}, Python {platform.python_version()}")
print(f"versions: {', '.join(versions)}")
PY
  : >"$OUT/timings.txt"
  echo "[00-machine] -> $OUT/machine.txt"
  cat "$OUT/machine.txt"
fi

# 1. Model parameters (and, at B=1, L=256, the FLOPs by length and the traced shapes)
step 01-inspect embedlab inspect

# 2. Max tokens: the lengths of a real corpus, the truncation loss, and (used in section 5) the batch sweep
step 02-plan-scifact embedlab plan --data "$DATA/scifact/corpus.jsonl" --text-field text --backends onnx \
  --memory-budget 2GiB --sample 128 --out "$OUT/plan-scifact"
plan_outputs "$OUT/plan-scifact" plan-scifact

# 2. Attention's O(L²): the same batch at five lengths
step 03-bench-seq embedlab bench --batch 8 --seq 16,32,64,128,256 --no-cache -q \
  -o "$OUT/bench-seq.json" --report "$OUT/bench-seq.html"
bench_plot "$OUT/bench-seq.html" "Throughput and latency vs sequence length" "$IMG/bench-seq.png"
rm -f "$OUT/bench-seq.html"

# 3. Dimension: the quality cost of keeping the first 192 and 96 of 384 values
step 04-eval-dimensions embedlab eval sts --data "$DATA/stsbenchmark/sts-test.csv" -q \
  --compare "dimensions=384;dimensions=192;dimensions=96"

# 4. Tensor sizes: the traced shapes at B=8 and two lengths
step 05-inspect-b8-L128 embedlab inspect --batch 8 --seq 128 --no-flop-count
step 06-inspect-b8-L256 embedlab inspect --batch 8 --seq 256 --no-flop-count

# 5. Batch size: the throughput curve
step 07-bench-batch embedlab bench --batch 1,4,16,64,256 --seq 16,128 --no-cache -q \
  -o "$OUT/bench-batch.json" --report "$OUT/bench-batch.html"
bench_plot "$OUT/bench-batch.html" "Throughput vs batch size" "$IMG/bench-batch.png"
rm -f "$OUT/bench-batch.html"

# 6. Speed factors: backends (speed, then quality), output precision, threads, tokenizer share, cache
step 08-bench-backends embedlab bench --backend torch,torch-bf16,onnx,onnx-int8,openvino,openvino-f32 \
  --batch 32 --seq 128 --no-cache -q -o "$OUT/bench-backends.json" --report "$OUT/bench-backends.html"
bench_plot "$OUT/bench-backends.html" "Backend / precision comparison" "$IMG/bench-backends.png"
rm -f "$OUT/bench-backends.html"

step 09-eval-backends embedlab eval sts --data "$DATA/stsbenchmark/sts-test.csv" -q \
  --compare "backend=torch;backend=torch-bf16;backend=onnx;backend=onnx-int8;backend=openvino;backend=openvino-f32"

step 10-eval-precision embedlab eval retrieval --data "$DATA/scifact" -q \
  --precision float32,float16,int8,binary --rescore 100

step 11-bench-threads embedlab bench --threads 1,2 --batch 1,32 --seq 128 --no-cache -q \
  -o "$OUT/bench-threads.json" --report "$OUT/bench-threads.html"
bench_plot "$OUT/bench-threads.html" "Thread scaling" "$IMG/bench-threads.png"
rm -f "$OUT/bench-threads.html"

step 12-bench-scifact embedlab bench --data "$DATA/scifact/corpus.jsonl" --text-field text --max-texts 100 \
  --batch 1,32 --repeat 2 -q -o "$OUT/bench-scifact.json" --report "$OUT/bench-scifact.html"
bench_plot "$OUT/bench-scifact.html" "Padding waste" "$IMG/bench-padding.png"
rm -f "$OUT/bench-scifact.html"

step 13-serve-cache python benchmarks/serve_load.py --scenario "1 client" --rounds 1 --texts 64

# 7. Choosing a model
step 14-compare embedlab compare --models sentence-transformers/all-MiniLM-L6-v2,all-mpnet-base-v2 \
  --data "$DATA/stsbenchmark/sts-test.csv" --sample 300 --plot "$IMG/compare.png" --save "$OUT/compare.json"

# 8. Putting it all together
step 15-plan-all embedlab plan --data "$DATA/scifact/corpus.jsonl" --text-field text \
  --eval "$DATA/stsbenchmark/sts-test.csv" --storage-budget 4MB --compare "$OUT/compare.json" \
  --memory-budget 2GiB --batch-sizes 1,4,16,64 --sample 128 --out "$OUT/plan-all"
plan_outputs "$OUT/plan-all"

echo "done in $((SECONDS - STARTED)) s: outputs in $OUT/, plots in $IMG/"
