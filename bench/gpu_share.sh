#!/usr/bin/env bash
# Throughput of runs sharing one GPU: K concurrent trainings of the shipped ML-100k SASRec (15 epochs, no early stop,
# `bench/train_sweep.py --one s_shipped`), each printing its seconds per epoch (validation included). Modes: one run
# alone; 8 runs time-sliced (no MPS); then, if an MPS control daemon starts, 8 and 16 runs through it. One JSON line
# per mode: wall seconds of the K runs (process start and data loading included) and each run's s/epoch.
# Usage (on a CUDA machine, repo root): bash bench/gpu_share.sh > bench/results/gpu_share_<gpu>.jsonl
one(){ timeout 150 python3 bench/train_sweep.py --one s_shipped --seed $1 --set device=cuda --set max_epochs=15 --set patience=1000 2>/dev/null | tail -1; }
many(){ t=$SECONDS; for i in $(seq 1 $1); do one $i > /tmp/share_$2_$i.json & done; wait; echo "{\"mode\": \"$2\", \"runs\": $1, \"wall_s\": $((SECONDS-t)), \"s_epoch\": [$(cat /tmp/share_$2_*.json | python3 -c 'import sys,json; print(",".join(str(json.loads(l)["s_epoch"]) for l in sys.stdin if l.strip()))')]}"; }
many 1 alone; many 8 shared
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps_pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps_log; mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
if nvidia-cuda-mps-control -d; then sleep 1; many 8 mps; many 16 mps16; echo quit | nvidia-cuda-mps-control; else echo '{"mode": "mps", "error": "nvidia-cuda-mps-control -d failed"}'; fi
