#!/usr/bin/env bash
# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
#
# Multi-node VideoSEG-O3 training on a Ray cluster (see recipes/launch/README.md for the full walk-through).
#
#   node 0:        bash recipes/launch/ray_cluster.sh head   [--num-gpus 8] [--port 6379] [--dashboard-port 8265]
#                      [--dashboard-host 127.0.0.1] [--insecure-dashboard]
#   nodes 1..N-1:  bash recipes/launch/ray_cluster.sh worker --address HEAD_IP:6379 [--num-gpus 8]
#   head node:     bash recipes/launch/ray_cluster.sh submit --nnodes N [--address http://HEAD_IP:8265]
#                      [--config-name qwen3vl_2b] [--gpus-per-node 8] [--env KEY=VALUE]... [--no-wait]
#                      [-- HYDRA_OVERRIDES...]
#   any node:      bash recipes/launch/ray_cluster.sh stop
#
# `submit` runs `videoseg-o3 train --config-name NAME trainer.nnodes=N trainer.n_gpus_per_node=G OVERRIDES...`
# as a Ray job, with the environment variables the plugin needs forwarded to every Ray process.
# The plugin (`pip install videoseg-o3-verl[gpu]`) must be installed on EVERY node: verl loads it through the
# `verl.plugins` entry point in each worker process.
#
# Security: the Ray dashboard accepts job submissions, i.e. it runs any command it is sent. It listens on
# 127.0.0.1 unless `--dashboard-host` names another address, and a non-loopback address is refused unless Ray's
# token authentication is on (RAY_AUTH_MODE=token, see recipes/launch/README.md) or `--insecure-dashboard` says
# that the network is trusted.

set -euo pipefail

PROG="$(basename "$0")"
PYTHON="${PYTHON:-$(command -v python || command -v python3 || echo python)}"

usage() {
    cat <<EOF
Usage:
  $PROG head   [--num-gpus G] [--port P] [--dashboard-port D] [--dashboard-host H] [--insecure-dashboard]
      Start the Ray head on this node (node 0). G defaults to the GPUs nvidia-smi lists.
      The dashboard (job submission) listens on H = 127.0.0.1 by default. Any other H needs Ray's token
      authentication (export RAY_AUTH_MODE=token on every node, same token everywhere) or the explicit
      --insecure-dashboard (anyone who reaches H:D can run code on the cluster).
  $PROG worker --address HEAD_IP:PORT [--num-gpus G]
      Join this node to the cluster started by 'head'.
  $PROG submit --nnodes N [--address http://HEAD_IP:8265] [--config-name NAME] [--gpus-per-node G]
               [--env KEY=VALUE]... [--no-wait] [-- HYDRA_OVERRIDES...]
      Submit 'videoseg-o3 train --config-name NAME trainer.nnodes=N trainer.n_gpus_per_node=G ...' as a Ray job.
      NAME defaults to qwen3vl_2b, G to 8, the address to \$RAY_ADDRESS or http://127.0.0.1:8265 (run it on
      the head node, or through an SSH tunnel to the head's dashboard port).
      G is the number of TRAINING GPUs per node; data.train_batch_size x rollout.n (64 in the paper recipes)
      must divide by N x G. GPUs beyond N x G stay free, e.g. for the SAM2 reward service (README.md).
  $PROG stop
      Stop Ray on this node.

Example (2 nodes x 8 GPUs, the paper scale):
  node0\$ bash $PROG head --num-gpus 8
  node1\$ bash $PROG worker --address node0:6379 --num-gpus 8
  node0\$ bash $PROG submit --nnodes 2 --config-name qwen3vl_2b -- \\
            actor_rollout_ref.model.path=/ckpt/coldstart videoseg_o3.seg_head.path=/ckpt/coldstart \\
            videoseg_o3.sam2.checkpoint=/ckpt/coldstart/sam2_grounding_encoder.pt \\
            data.train_files=[/data/revos_rl.parquet,/data/mevis_rl.parquet] data.val_files=/data/revos_val.parquet
EOF
}

die() {
    echo "$PROG: error: $*" >&2
    echo "Run '$PROG --help' for usage." >&2
    exit 2
}

require_positive_int() {
    # $1 = option name, $2 = value
    [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"
}

require_value() {
    # $1 = option name, $2 = number of remaining arguments (including the option itself)
    [[ "$2" -ge 2 ]] || die "$1 needs a value"
}

is_loopback() {
    case "$1" in
        localhost | ::1 | 127.*) return 0 ;;
        *) return 1 ;;
    esac
}

check_dashboard_host() {
    # $1 = host, $2 = "1" when --insecure-dashboard was given
    is_loopback "$1" && return 0
    [[ "${RAY_AUTH_MODE:-}" == token ]] && return 0
    [[ "$2" == 1 ]] && {
        echo "$PROG: warning: dashboard on $1 without authentication; anyone who reaches it can run code" >&2
        return 0
    }
    die "head: --dashboard-host $1 exposes unauthenticated job submission (remote code execution); export" \
        "RAY_AUTH_MODE=token (Ray token authentication, recipes/launch/README.md) or pass --insecure-dashboard"
}

require_command() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH ($2)"
}

detect_gpus() {
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --list-gpus | wc -l
    else
        echo 0
    fi
}

check_plugin() {
    # verl swallows plugin import errors; fail here, on this node, with the real traceback instead.
    case "${VERL_USE_EXTERNAL_PLUGINS:-auto}" in
        auto | *videoseg_o3*) ;;
        *) die "VERL_USE_EXTERNAL_PLUGINS='${VERL_USE_EXTERNAL_PLUGINS}' disables the videoseg_o3 plugin; unset it" ;;
    esac
    "$PYTHON" -c "import videoseg_o3_verl.register as r; r.check()" \
        || die "the videoseg_o3 plugin does not load on $(hostname); pip install videoseg-o3-verl[gpu] on every node"
}

cmd_head() {
    local num_gpus port dashboard_port dashboard_host=127.0.0.1 insecure=0
    num_gpus="$(detect_gpus)"
    port=6379
    dashboard_port=8265
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --num-gpus) require_value "$1" $#; num_gpus="$2"; shift 2 ;;
            --port) require_value "$1" $#; port="$2"; shift 2 ;;
            --dashboard-port) require_value "$1" $#; dashboard_port="$2"; shift 2 ;;
            --dashboard-host) require_value "$1" $#; dashboard_host="$2"; shift 2 ;;
            --insecure-dashboard) insecure=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "head: unknown argument '$1'" ;;
        esac
    done
    require_positive_int --num-gpus "$num_gpus"
    require_positive_int --port "$port"
    require_positive_int --dashboard-port "$dashboard_port"
    check_dashboard_host "$dashboard_host" "$insecure"
    require_command ray "pip install 'ray[default]'"
    check_plugin
    ray start --head --port="$port" --num-gpus="$num_gpus" \
        --dashboard-host="$dashboard_host" --dashboard-port="$dashboard_port"
    echo "Ray head is up. Join workers with: $PROG worker --address $(hostname -I 2>/dev/null | awk '{print $1}'):$port"
    echo "Dashboard / job submission: http://$dashboard_host:$dashboard_port"
    if [[ "${RAY_AUTH_MODE:-}" == token ]]; then
        echo "Token authentication is on: give every node and client the same token (ray get-auth-token; copy" \
            "~/.ray/auth_token or export RAY_AUTH_TOKEN) and export RAY_AUTH_MODE=token there too."
    fi
}

cmd_worker() {
    local num_gpus address=""
    num_gpus="$(detect_gpus)"
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --address) require_value "$1" $#; address="$2"; shift 2 ;;
            --num-gpus) require_value "$1" $#; num_gpus="$2"; shift 2 ;;
            -h | --help) usage; exit 0 ;;
            *) die "worker: unknown argument '$1'" ;;
        esac
    done
    [[ -n "$address" ]] || die "worker: --address HEAD_IP:PORT is required"
    [[ "$address" == *:* ]] \
        || die "worker: --address must be HEAD_IP:PORT (the GCS port, 6379 by default), got '$address'"
    require_positive_int --num-gpus "$num_gpus"
    require_command ray "pip install 'ray[default]'"
    check_plugin
    ray start --address="$address" --num-gpus="$num_gpus"
}

runtime_env_json() {
    # Build the --runtime-env-json value from KEY=VALUE pairs (python does the JSON quoting).
    "$PYTHON" - "$@" <<'PY'
import json
import sys

env = {}
for pair in sys.argv[1:]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        sys.exit(f"--env expects KEY=VALUE, got {pair!r}")
    env[key] = value
print(json.dumps({"env_vars": env}))
PY
}

cmd_submit() {
    local nnodes="" config_name=qwen3vl_2b gpus_per_node=8 address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
    local no_wait=()
    # Forwarded to every Ray process of the job (driver, TaskRunner, workers, vLLM servers).
    local env_pairs=(
        "FORCE_QWENVL_VIDEO_READER=${FORCE_QWENVL_VIDEO_READER:-decord}"
        "TOKENIZERS_PARALLELISM=${TOKENIZERS_PARALLELISM:-false}"
        "VIDEOSEG_O3_LOGGING_LEVEL=${VIDEOSEG_O3_LOGGING_LEVEL:-INFO}"
    )
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --nnodes) require_value "$1" $#; nnodes="$2"; shift 2 ;;
            --config-name) require_value "$1" $#; config_name="$2"; shift 2 ;;
            --gpus-per-node) require_value "$1" $#; gpus_per_node="$2"; shift 2 ;;
            --address) require_value "$1" $#; address="$2"; shift 2 ;;
            --env) require_value "$1" $#; env_pairs+=("$2"); shift 2 ;;
            --no-wait) no_wait=(--no-wait); shift ;;
            --) shift; break ;;
            -h | --help) usage; exit 0 ;;
            *) die "submit: unknown argument '$1' (put Hydra overrides after '--')" ;;
        esac
    done
    [[ -n "$nnodes" ]] || die "submit: --nnodes N is required (the number of nodes that ran 'head' or 'worker')"
    require_positive_int --nnodes "$nnodes"
    require_positive_int --gpus-per-node "$gpus_per_node"
    [[ "$config_name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "submit: --config-name must be a recipe name, got '$config_name'"
    require_command ray "pip install 'ray[default]'"
    require_command videoseg-o3 "pip install videoseg-o3-verl[gpu]"
    check_plugin
    # Fail before submitting if the recipe or an override is wrong (composes only; nothing starts).
    videoseg-o3 train --config-name "$config_name" trainer.nnodes="$nnodes" \
        trainer.n_gpus_per_node="$gpus_per_node" "$@" --cfg job >/dev/null \
        || die "submit: recipe '$config_name' does not compose with these overrides"
    local runtime_env
    runtime_env="$(runtime_env_json "${env_pairs[@]}")" || die "submit: bad --env value"
    echo "Submitting to $address: videoseg-o3 train --config-name $config_name trainer.nnodes=$nnodes" \
        "trainer.n_gpus_per_node=$gpus_per_node $*"
    echo "runtime env: $runtime_env"
    ray job submit --address="$address" "${no_wait[@]}" --runtime-env-json="$runtime_env" -- \
        videoseg-o3 train --config-name "$config_name" trainer.nnodes="$nnodes" \
        trainer.n_gpus_per_node="$gpus_per_node" "$@"
}

main() {
    [[ $# -ge 1 ]] || { usage >&2; exit 2; }
    local command="$1"
    shift
    case "$command" in
        head) cmd_head "$@" ;;
        worker) cmd_worker "$@" ;;
        submit) cmd_submit "$@" ;;
        stop) require_command ray "pip install 'ray[default]'"; ray stop ;;
        -h | --help | help) usage ;;
        *) die "unknown command '$command' (expected head, worker, submit or stop)" ;;
    esac
}

main "$@"
