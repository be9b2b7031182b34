#!/bin/sh
# Regenerates data/fashion-mnist-b (the committed quickstart subset) from the Debian package dataset-fashion-mnist:
# classes 5-9 (sandal, shirt, sneaker, bag, ankle_boot), the first 100 training and first 40 test images of each in
# file order. The output is byte-for-byte reproducible; FashionMnistRealDataTest checks the committed copy against it.
set -eu
cd "$(dirname "$0")/../.."
IDX_DIR="${1:-/usr/share/datasets/fashion-mnist}"
OUT_DIR="${2:-data/fashion-mnist-b}"
if [ -e "$OUT_DIR/train" ] || [ -e "$OUT_DIR/val" ]; then
    echo "error: $OUT_DIR/train or $OUT_DIR/val exists; delete them first (rm -rf $OUT_DIR/train $OUT_DIR/val)" >&2
    exit 7
fi
mvn -q -o -pl toolkit-core compile org.codehaus.mojo:exec-maven-plugin:3.5.0:java \
    -Dexec.mainClass=dev.finetune.data.FashionMnistExport \
    -Dexec.args="$IDX_DIR $OUT_DIR 5,6,7,8,9 100 40"
