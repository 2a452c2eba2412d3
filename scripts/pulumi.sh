#!/usr/bin/env bash
# npm run up | preview | refresh | destroy [-- --stack NAME] [-- other pulumi flags]
# Wraps the Pulumi CLI so that the first command works on a fresh clone:
# - Pulumi CLI: `pulumi` on PATH, else one built by this project in ~/.cache/swarmform/pulumi-*/bin; without
#   one, says how to install it and exits 1.
# - Backend: yours when you chose one (PULUMI_BACKEND_URL set, or `pulumi login` done); otherwise a file
#   backend in this project, file://<project>/.pulumi-state (ignored by git).
# - Passphrase (file backends encrypt secrets with it): for the stack `local` only, when you set none
#   (PULUMI_CONFIG_PASSPHRASE / PULUMI_CONFIG_PASSPHRASE_FILE), the documented default "swarmform-local".
#   Other stacks ask for theirs (or take those variables).
# - Stack: --stack NAME, else SWARMFORM_STACK, else `local`; created when it does not exist.
# - `up` on a stack that names swarmform.local/ images first builds them (npm run images:local).
set -euo pipefail

cmd="${1:-}"
case "$cmd" in
  up | preview | refresh | destroy) shift ;;
  *)
    echo "usage: scripts/pulumi.sh up|preview|refresh|destroy [--stack NAME] [pulumi flags...]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

stack="${SWARMFORM_STACK:-local}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stack | -s)
      stack="$2"
      shift 2
      ;;
    --stack=*)
      stack="${1#--stack=}"
      shift
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done

pulumi_bin="$(command -v pulumi || true)"
if [ -z "$pulumi_bin" ]; then
  for d in $(ls -d "$HOME"/.cache/swarmform/pulumi-*/ 2>/dev/null | sort -r); do
    if [ -x "$d/bin/pulumi" ] && [ -e "$d/complete" ]; then
      pulumi_bin="$d/bin/pulumi"
      export PATH="$d/bin:$PATH" # its language host and plugins beside it
      break
    fi
  done
fi
if [ -z "$pulumi_bin" ]; then
  cat >&2 <<'MSG'
The Pulumi CLI is not installed. Install it, then run this again:
  curl -fsSL https://get.pulumi.com | sh        # Linux, macOS (adds ~/.pulumi/bin to your PATH)
  brew install pulumi/tap/pulumi                # macOS with Homebrew
  choco install pulumi                          # Windows
See https://www.pulumi.com/docs/iac/download-install/
MSG
  exit 1
fi

# A backend the user chose: PULUMI_BACKEND_URL, or a `pulumi login` (its credentials name a current backend).
creds="${PULUMI_HOME:-$HOME/.pulumi}/credentials.json"
logged_in=no
if [ -s "$creds" ] && grep -Eq '"current"[[:space:]]*:[[:space:]]*"[^"]+"' "$creds"; then logged_in=yes; fi
if [ -z "${PULUMI_BACKEND_URL:-}" ] && [ "$logged_in" = no ]; then
  mkdir -p "$root/.pulumi-state"
  export PULUMI_BACKEND_URL="file://$root/.pulumi-state"
  echo "swarmform: no Pulumi backend chosen; using $PULUMI_BACKEND_URL (pulumi login <url> to choose one)" >&2
fi

if [ "$stack" = local ] && [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE="swarmform-local"
  echo "swarmform: stack local: secrets passphrase \"swarmform-local\" (set PULUMI_CONFIG_PASSPHRASE to use another)" >&2
fi

"$pulumi_bin" stack select --create "$stack" --non-interactive >/dev/null

if [ "$cmd" = up ] && grep -q 'swarmform.local' "Pulumi.$stack.yaml" 2>/dev/null; then
  npx ts-node --transpile-only scripts/images-local.ts --stack "$stack"
fi

exec "$pulumi_bin" "$cmd" --stack "$stack" ${args[@]+"${args[@]}"}
