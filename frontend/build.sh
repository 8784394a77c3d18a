#!/usr/bin/env bash
# Rebuild the vendored front-end outputs from the pinned packages (package-lock.json):
#   src/stclusters/data/outlines/countries-{110m,50m}.json   Natural Earth 4.1.0 admin-0
#       countries as TopoJSON (public domain), redistributed by world-atlas 2.0.2 (ISC).
#   src/stclusters/reports/assets/report.js, report.css       the offline report's bundle
#       (frontend/src; d3-geo and topojson-client inside, ISC), minified, no source map;
#       THIRD_PARTY.txt: the licences of the bundled packages and of world-atlas (every
#       report inlines it as an HTML comment, stclusters.reports.html.render_html).
# Needs Node.js and npm with the npm registry; runtime and CI use only the outputs.
# Deterministic: the same lock file and sources give byte-identical outputs.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
out=../src/stclusters/data/outlines
mkdir -p "$out"
for scale in 110m 50m; do
  cp node_modules/world-atlas/countries-$scale.json "$out/countries-$scale.json"
done
cp node_modules/world-atlas/LICENSE "$out/LICENSE.world-atlas"

assets=../src/stclusters/reports/assets
mkdir -p "$assets"
banner='/* stclusters report bundle (frontend/build.sh); includes d3-geo, d3-array and topojson-client (ISC licence, see THIRD_PARTY.txt) */'
# esbuild's own binary comes from the lock file (the @esbuild/<platform> package).
node_modules/.bin/esbuild src/main.js --bundle --minify --format=iife --target=es2019 \
  --legal-comments=none --charset=utf8 --banner:js="$banner" --outfile="$assets/report.js"
node_modules/.bin/esbuild src/report.css --minify --charset=utf8 --outfile="$assets/report.css"
# The live explorer (stclusters serve): explorer.js and, from its CSS import, explorer.css.
node_modules/.bin/esbuild src/explorer.js --bundle --minify --format=iife --target=es2019 --legal-comments=none --charset=utf8 --banner:js="${banner/report/explorer}" --outdir=../src/stclusters/serve/assets
{
  for pkg in d3-geo d3-array topojson-client; do
    version=$(node -p "require('./node_modules/$pkg/package.json').version")
    printf '== %s %s ==\n' "$pkg" "$version"
    cat "node_modules/$pkg/LICENSE"
    printf '\n'
  done
  # The country outlines inlined in each report (Natural Earth, public domain).
  version=$(node -p "require('./node_modules/world-atlas/package.json').version")
  printf '== world-atlas %s (country outlines; Natural Earth data, public domain) ==\n' "$version"
  cat node_modules/world-atlas/LICENSE
} > "$assets/THIRD_PARTY.txt"
ls -l "$assets"
