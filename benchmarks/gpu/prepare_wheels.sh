#!/usr/bin/env bash
# Fill benchmarks/gpu/wheels/ with the wheels that benchmarks/gpu/run.sh installs on a GPU machine without network
# (the list and the reasons: benchmarks/gpu/wheels.txt). Run on a machine that reaches PyPI, from anywhere:
#   bash benchmarks/gpu/prepare_wheels.sh              # all groups
#   bash benchmarks/gpu/prepare_wheels.sh core pytest  # only these groups (core, pytest, deepspeed, transformers)
# Binary wheels are fetched for CPython 3.12 on manylinux x86_64 (the GPU image's Python), whatever Python runs this.
# deepspeed has no wheel on PyPI: it is built here with `pip wheel --no-build-isolation`, which needs torch installed in
# this Python (any build: DeepSpeed compiles no op at install time; on the GPU it JIT-builds the ops it uses).
# Prints the files and the total size; the device tool carries at most 64 MiB with the working tree.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/wheels"
python="${PYTHON:-python3}"
mkdir -p "$dest"
groups=("$@")

wanted() {  # group -> 0 if it was asked for (or no group was named)
    [ "${#groups[@]}" -eq 0 ] && return 0
    local g
    for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done
    return 1
}

binary=() built=()
while read -r module requirement group _; do
    case "$module" in ''|'#'*) continue ;; esac
    wanted "$group" || continue
    if [ "$requirement" = "${requirement#deepspeed==}" ]; then binary+=("$requirement"); else built+=("$requirement"); fi
done < "$here/wheels.txt"

if [ "${#binary[@]}" -gt 0 ]; then
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest" \
        --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any "${binary[@]}"
fi
for requirement in "${built[@]}"; do
    name="${requirement%%==*}" version="${requirement#*==}"
    if ls "$dest/$name-$version-"*.whl >/dev/null 2>&1; then continue; fi
    "$python" -c "import torch" 2>/dev/null || { echo "building $requirement needs torch in $python" >&2; exit 1; }
    DS_BUILD_OPS=0 "$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$dest" "$requirement"
done

echo "wheels in $dest:"
ls -l "$dest" | awk 'NR > 1 {printf "  %8.1f KiB  %s\n", $5 / 1024, $9}'
du -cb "$dest"/*.whl | awk 'END {printf "total: %.1f MiB\n", $1 / 1048576}'
