#!/usr/bin/env bash
# Regenerates the README pictures from the network `make demo` trained (docs/assets/fmnist32-cpu.safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
NET=docs/assets/fmnist32-cpu.safetensors
OUT=docs/images
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
stylegan() { .venv/bin/stylegan "$@"; }
stylegan generate --network $NET --seeds 0-31 --grid --grid-cols 16 --outdir "$TMP/gen"
cp "$TMP/gen/grid.png" $OUT/generate.png
stylegan mix --network $NET --rows 1,2,3,4 --cols 10,11,12,13,14 --styles coarse --out $OUT/mix_coarse.png
stylegan mix --network $NET --rows 1,2,3,4 --cols 10,11,12,13,14 --styles fine --out $OUT/mix_fine.png
stylegan noise --network $NET --seeds 3,5 --out $OUT/noise.png
stylegan video --network $NET --seeds 0-23 --grid 4x2 --frames-per-seed 12 --out $OUT/video.gif
# Projection of a real Fashion-MNIST test image (not seen in training) into W+.
.venv/bin/python - "$TMP/target.png" <<'PY'
import sys
import numpy as np
from PIL import Image
from stylegan.data.fashion_mnist import load_fashion_mnist
images, _ = load_fashion_mnist("t10k")
img = np.pad(images[0], 2)  # 28x28 -> 32x32 as the demo dataset does
Image.fromarray(img).save(sys.argv[1])
PY
stylegan project --network $NET --target "$TMP/target.png" --w-plus --steps 500 --outdir "$TMP/proj"
.venv/bin/python - "$TMP/proj" $OUT/project.png <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
folder = Path(sys.argv[1])
target = np.asarray(Image.open(next(folder.glob("target_*.png"))).convert("L"))
result = np.asarray(Image.open(next(folder.glob("proj_*.png"))).convert("L"))
pair = np.concatenate([target, np.full((target.shape[0], 2), 128, np.uint8), result], axis=1)
Image.fromarray(pair).resize((pair.shape[1] * 4, pair.shape[0] * 4), Image.NEAREST).save(sys.argv[2])
PY
.venv/bin/python - "$TMP"/proj/proj_*.json $OUT/project.json <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
info["target"] = "Fashion-MNIST t10k image 0, padded to 32x32"
json.dump(info, open(sys.argv[2], "w"), indent=2)
PY
ls -la $OUT
