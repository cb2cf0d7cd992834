#!/usr/bin/env bash
# Regenerates the pictures the README shows, with the README's own commands, at the size the
# README displays them. Run from the repository's root after `pip install .`:
#     bash docs/gallery.sh
# docs/seven.png (a hand-drawn 7) is the one input not in sample_images/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
convcli edges sample_images/chelsea.png --all -o "$tmp/chelsea.png" > /dev/null
mv "$tmp/chelsea_panel.png" docs/chelsea_panel.png
convcli train -o "$tmp/digits.npz" --plot docs/digits_curve.png > /dev/null 2>&1
convcli draw resnet50 -o docs/resnet50.png 2> /dev/null
convcli shape-calc -n 5 -f 3 -s 2 -p 1 --animate docs/conv_arithmetic.png > /dev/null 2>&1
convcli conv "10,10,10,0,0,0;10,10,10,0,0,0;10,10,10,0,0,0;10,10,10,0,0,0;10,10,10,0,0,0;10,10,10,0,0,0" \
    --kernel vertical --animate docs/vertical_edge.gif > /dev/null 2>&1
convcli features "$tmp/digits.npz" docs/seven.png -o "$tmp/features/" > /dev/null 2>&1
mv "$tmp/features/seven-filters.png" docs/digits_filters.png
mv "$tmp/features/seven-gradcam.png" docs/seven_gradcam.png
echo "pictures written to docs/"
