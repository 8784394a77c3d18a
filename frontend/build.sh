#!/usr/bin/env bash
# Rebuild the vendored front-end outputs from the pinned packages (package-lock.json):
#   src/stclusters/data/outlines/countries-{110m,50m}.json   Natural Earth 4.1.0 admin-0
#       countries as TopoJSON (public domain), redistributed by world-atlas 2.0.2 (ISC).
# Needs Node.js and npm with the npm registry; runtime and CI use only the outputs.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
out=../src/stclusters/data/outlines
mkdir -p "$out"
for scale in 110m 50m; do
  cp node_modules/world-atlas/countries-$scale.json "$out/countries-$scale.json"
done
cp node_modules/world-atlas/LICENSE "$out/LICENSE.world-atlas"
