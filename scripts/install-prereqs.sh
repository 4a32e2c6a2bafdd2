#!/usr/bin/env bash
# Installs what building Bastion needs, only when it is missing:
#   - libclang (the `rocksdb` crate generates its bindings with bindgen)
#   - a C++ compiler (RocksDB itself)
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

have_libclang() {
  # bindgen loads libclang.so / libclang-<ver>.so (not libclang-cpp, a different library).
  ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9][0-9.]*)?\.so' && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null && return 0
  return 1
}

missing=()
have_libclang || missing+=(libclang-dev clang)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust from rustup first" >&2; exit 1; }

if [ ${#missing[@]} -eq 0 ]; then
  echo "prerequisites: all present"
  exit 0
fi

echo "prerequisites: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
echo "prerequisites: installed ${missing[*]}"
