#!/usr/bin/env bash
# Fetch the console's JavaScript libraries from the npm registry into the repository, at the
# versions pinned here; the browser never loads them from anywhere else. Run it only to
# change a version, then commit the files and update VENDOR.md (name, version, licence).
set -euo pipefail
cd "$(dirname "$0")/.."
STATIC=graam_pbx/web/static/vendor
TESTS=tests/e2e/web/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() {  # package version
  (cd "$work" && npm pack --silent "$1@$2" >/dev/null && mkdir -p "$1" && tar -xzf "$1-$2.tgz" -C "$1")
}

fetch uplot 1.6.32
cp "$work/uplot/package/dist/uPlot.iife.min.js" "$STATIC/uPlot-1.6.32.iife.min.js"
cp "$work/uplot/package/dist/uPlot.min.css" "$STATIC/uPlot-1.6.32.min.css"
cp "$work/uplot/package/LICENSE" "$STATIC/uPlot-1.6.32.LICENSE"

# SIP.js: the console's softphone (SIP over WebSocket, WebRTC media). Its npm package is ES
# modules with no dependencies, which browsers load as they are: the modules, no bundle.
fetch sip.js 0.21.2
rm -rf "$STATIC/sip.js-0.21.2"
mkdir -p "$STATIC/sip.js-0.21.2"
here=$PWD
(cd "$work/sip.js/package/lib" && find . -name '*.js' -exec cp --parents {} "$here/$STATIC/sip.js-0.21.2/" \;)
cp "$work/sip.js/package/LICENSE.md" "$STATIC/sip.js-0.21.2.LICENSE"

# axe-core checks the pages' accessibility in the browser tests only: it is never served.
fetch axe-core 4.14.1
cp "$work/axe-core/package/axe.min.js" "$TESTS/axe-4.14.1.min.js"
cp "$work/axe-core/package/LICENSE" "$TESTS/axe-4.14.1.LICENSE"

sha256sum "$STATIC"/uPlot-* "$STATIC"/sip.js-0.21.2.LICENSE "$TESTS"/axe-*
find "$STATIC/sip.js-0.21.2" -name '*.js' | sort | xargs cat | sha256sum
