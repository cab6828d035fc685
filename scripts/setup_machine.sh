#!/usr/bin/env bash
# Install what a bare machine lacks for fstore_spark: Java 17, Maven, redis-server, GNU make
# (and, with --with-browser, Chromium for the HTML report tests).
#
# Debian/Ubuntu: apt-get, as root or through sudo. macOS: Homebrew. Anything else, or no way
# to install: fail with the one command to run. Python 3.11 itself is not installed here.
# `make demo`, `make test` and .ci/run call this first; it does nothing when all is present.
#
# Usage: scripts/setup_machine.sh [--with-browser]
set -euo pipefail

need=()
command -v java >/dev/null || need+=(java)
command -v mvn >/dev/null || need+=(maven)
command -v redis-server >/dev/null || need+=(redis)
command -v make >/dev/null || need+=(make)
if [[ "${1:-}" == "--with-browser" ]] && ! command -v chromium >/dev/null; then
  need+=(chromium)
fi
((${#need[@]})) || exit 0

apt_name() {
  case "$1" in
    java) echo openjdk-17-jre-headless ;;
    redis) echo redis-server ;;
    *) echo "$1" ;;
  esac
}
brew_name() {
  case "$1" in
    java) echo openjdk@17 ;;
    chromium) echo --cask chromium ;;
    *) echo "$1" ;;
  esac
}

if command -v apt-get >/dev/null; then
  pkgs=()
  for n in "${need[@]}"; do pkgs+=("$(apt_name "$n")"); done
  if [[ "$(id -u)" == 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "setup: missing ${pkgs[*]}. Run: sudo apt-get install -y ${pkgs[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${pkgs[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
elif [[ "$(uname)" == Darwin ]] && command -v brew >/dev/null; then
  for n in "${need[@]}"; do
    echo "setup: brew install $(brew_name "$n")"
    # shellcheck disable=SC2046 # brew_name may add --cask
    brew install $(brew_name "$n")
  done
else
  echo "setup: missing ${need[*]}: install them with your package manager" \
    "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven redis-server make;" \
    "macOS: brew install openjdk@17 maven redis)." >&2
  exit 1
fi
