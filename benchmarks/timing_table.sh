#!/usr/bin/env bash
# The timing table of docs/benchmarks.md: one small trained run of every model, then
# `caloforge bench` over all of them with refsim timed in the same run as the baseline.
# Training here is short on purpose (timing does not depend on training length, fidelity does:
# see bench_qvae_fidelity.py for that). QVAE and VAE runs come from bench_qvae_fidelity.py when
# present.
#
#   bash benchmarks/timing_table.sh [OUT_DIR]      (default runs/timing)
set -euo pipefail
out=${1:-runs/timing}
cf=${CALOFORGE:-caloforge}
mkdir -p "$out"

sim() { [ -f "$out/$1.h5" ] || $cf simulate -d "$2" -p "$3" -n "$4" -e "$5" --seed 1 -o "$out/$1.h5"; }
sim pbwo4 pbwo4 photon 1000 uniform:1e4:2e5
sim ahcal ild-ahcal pion 600 uniform:1e4:9e4
sim ds1 ds1-photons photon 4000 ds1
sim ds2 ds2 electron 1000 loguniform:1e3:1e6

train() { [ -f "$out/$1/model.json" ] || $cf train "$2" --data "$out/$3.h5" -o "$out/$1" --epochs "$4" --seed 1 ${5:+--config "$5"}; }
train gan3d-conv3d gan3d pbwo4 2 '{"generator": "conv3d"}'
train gan3d-conv2d gan3d pbwo4 2 '{"generator": "conv2d"}'
train wgan wgan ahcal 1
train qgan-2d qgan ds2 1 '{"image": "2d", "n_qubits": 6}'
qvae=runs/fidelity-ds1/qvae; vae=runs/fidelity-ds1/vae
[ -f "$qvae/model.json" ] || { train qvae qvae ds1 3; qvae=$out/qvae; }
[ -f "$vae/model.json" ] || { train vae vae ds1 3; vae=$out/vae; }

# exportable models in every precision; the quantum GAN (PennyLane circuits) in torch only
$cf bench "$qvae" "$vae" "$out/gan3d-conv3d" "$out/gan3d-conv2d" "$out/wgan" \
    --batch-sizes 1,100 --threads 2 --repeats 3 -o benchmarks/results/timing
$cf bench "$out/qgan-2d" --variants torch:fp32 --batch-sizes 1,100 --threads 2 --repeats 3 \
    -o benchmarks/results/timing_qgan
