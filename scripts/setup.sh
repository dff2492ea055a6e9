#!/usr/bin/env bash
# Installs what Troupe's tests need on a fresh Debian machine (Deno, nats-server, PostgreSQL 15); safe to re-run.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
exec </dev/null

log_file="$(mktemp)"
trap 'rm -f "$log_file"' EXIT

# Runs a command quietly; on failure prints its output and stops.
quiet() {
  if ! "$@" >"$log_file" 2>&1; then
    echo "setup.sh: \`$*\` failed:" >&2
    cat "$log_file" >&2
    exit 1
  fi
}

# The same search the test harness does: PATH, then the usual bin dirs.
find_executable() {
  local name="$1" dir
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return 0
  fi
  for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    if [[ -x "$dir/$name" ]]; then
      echo "$dir/$name"
      return 0
    fi
  done
  return 1
}

have_deno() {
  deno --version >/dev/null 2>&1
}

have_nats_server() {
  find_executable nats-server >/dev/null
}

have_initdb() {
  local pg_config bindir dir
  if pg_config="$(find_executable pg_config)"; then
    bindir="$("$pg_config" --bindir 2>/dev/null || true)"
    [[ -n "$bindir" && -x "$bindir/initdb" ]] && return 0
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" ]] && return 0
  done
  find_executable initdb >/dev/null
}

missing=()
have_deno || missing+=(deno)
have_nats_server || missing+=(nats-server)
have_initdb || missing+=(postgresql)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ "$(id -u)" -ne 0 ]]; then
  echo "setup.sh: missing: ${missing[*]}. Run \`sudo bash scripts/setup.sh\`, or install them as root:" >&2
  for item in "${missing[@]}"; do
    case "$item" in
      deno) echo "  npm install -g deno@2   # needs Node.js and npm: apt-get install -y nodejs npm" >&2 ;;
      nats-server) echo "  apt-get update && apt-get install -y nats-server" >&2 ;;
      postgresql) echo "  apt-get update && apt-get install -y postgresql-15   # or: postgresql" >&2 ;;
    esac
  done
  exit 1
fi

apt_updated=0
apt_install() {
  if [[ "$apt_updated" -eq 0 ]]; then
    quiet apt-get update -qq
    apt_updated=1
  fi
  quiet apt-get install -y -qq --no-install-recommends "$@"
}

for item in "${missing[@]}"; do
  case "$item" in
    deno)
      command -v npm >/dev/null 2>&1 || apt_install nodejs npm
      quiet npm install -g deno@2
      # Some npm setups skip postinstall scripts, which leaves a deno that cannot run.
      have_deno || quiet npm install -g --ignore-scripts=false --allow-scripts=deno deno@2
      if ! have_deno; then
        echo "setup.sh: installed deno@2 with npm, but \`deno --version\` does not work;" \
          "is $(npm prefix -g)/bin on PATH?" >&2
        exit 1
      fi
      ;;
    nats-server)
      apt_install nats-server
      ;;
    postgresql)
      if [[ "$apt_updated" -eq 0 ]]; then
        quiet apt-get update -qq
        apt_updated=1
      fi
      if apt-cache show postgresql-15 >/dev/null 2>&1; then
        apt_install postgresql-15
      else
        apt_install postgresql
      fi
      ;;
  esac
done

have_nats_server || { echo "setup.sh: nats-server is still missing after installing it" >&2; exit 1; }
have_initdb || { echo "setup.sh: initdb is still missing after installing PostgreSQL" >&2; exit 1; }
