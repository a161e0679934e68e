"""The FPA's slow net in bf16 on the CPU: torch's fused LSTM against the alternatives proposed
for it, forward+backward, alternating in one process.

    python bench/bench_lstm.py                  # the fpa-cpu and the paper's sizes, one thread
    python bench/bench_lstm.py --threads=2

Variants (one layer, batch-first input [B, T, d_in], the FPA's sizes):
  - fused fp32:   torch.nn.LSTM in float32 (what --precision=fp32 runs);
  - fused bf16:   the same module under bf16 autocast (what --precision=bf16 runs);
  - loop bf16:    the input projection of all T steps as one bf16 GEMM outside the recurrence,
                  then per step the recurrent GEMM in bf16 (float32 accumulation, oneDNN) and
                  the gate math in float32;
  - loop bf16, compiled cell: the same with the step (GEMM and gates) under torch.compile.
Each bf16 row gives its largest error against fused fp32 relative to the output's largest value
(bf16 rounds to 2^-8 = 3.9e-3). A row with twice the batch (the fused modules) shows whether a
larger recurrent GEMM helps bf16 more than float32.
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing      # noqa: E402

#----------------------------------------------------------------------------

def gates(pre: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM gate math (torch's i, f, g, o order), float32."""
    i, f, g, o = pre.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c

def step(x_proj_t, h, c, W_hh_bf16):
    """One recurrence step: bf16 recurrent GEMM, float32 gates."""
    return gates(x_proj_t + (h.to(torch.bfloat16) @ W_hh_bf16.t()).float(), c)

def loop_lstm(lstm: torch.nn.LSTM, x: torch.Tensor, step_fn) -> torch.Tensor:
    """The LSTM as a loop: one bf16 GEMM projects the inputs of all T steps, then T steps."""
    B, T, _ = x.shape
    H = lstm.hidden_size
    x_proj = (x.to(torch.bfloat16) @ lstm.weight_ih_l0.to(torch.bfloat16).t()).float() + lstm.bias_ih_l0 + lstm.bias_hh_l0
    W_hh = lstm.weight_hh_l0.to(torch.bfloat16)
    h, c, out = x.new_zeros(B, H), x.new_zeros(B, H), []
    for t in range(T):
        h, c = step_fn(x_proj[:, t], h, c, W_hh)
        out.append(h)
    return torch.stack(out, dim=1)

def fused(lstm: torch.nn.LSTM, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        return lstm(x)[0].float()

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1: tight ratios on a shared machine)')
    parser.add_argument('--rounds', type=int, default=5, help='timed rounds per variant (the first is dropped; best of the rest)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    compiled_step = torch.compile(step, dynamic=False)
    print(f'{timing.describe(torch.device("cpu"))}; forward+backward, best of {args.rounds - 1} rounds after one, alternating')
    print()
    print('| sizes (B, T, d_in, H) | variant | ms | speed vs fused fp32 | max error / max |')
    print('|---|---|---:|---:|---:|')
    for name, (B, T, D, H) in [('fpa-cpu', (16, 32, 64, 256)), ('fpa (paper)', (32, 64, 128, 1024))]:
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(D, H, batch_first=True)
        x, x2 = torch.randn(B, T, D), torch.randn(2 * B, T, D)
        variants = {
            'fused fp32': lambda: fused(lstm, x, False),
            'fused bf16 (autocast)': lambda: fused(lstm, x, True),
            'loop bf16: one input GEMM, bf16 recurrent GEMM, fp32 gates': lambda: loop_lstm(lstm, x, step),
            'the loop with its step under torch.compile': lambda: loop_lstm(lstm, x, compiled_step),
            f'fused fp32, batch {2 * B}': lambda: fused(lstm, x2, False),
            f'fused bf16, batch {2 * B}': lambda: fused(lstm, x2, True),
        }
        with torch.no_grad():
            reference = {B: fused(lstm, x, False), 2 * B: fused(lstm, x2, False)}
            errors = {}
            for label, fn in variants.items():
                out = fn()
                ref = reference[out.shape[0]]
                errors[label] = float((out - ref).abs().max() / ref.abs().max())
        times = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, fn in variants.items():
                lstm.zero_grad(set_to_none=True)
                start = time.perf_counter()
                fn().sum().backward()      # (The compiled step compiles in the first, dropped, round.)
                times[label].append(time.perf_counter() - start)
        best = {label: min(t[1:]) for label, t in times.items()}
        for label in variants:
            base = best[f'fused fp32, batch {2 * B}'] if label.endswith(f'batch {2 * B}') else best['fused fp32']
            print(f'| {name} ({B}, {T}, {D}, {H}) | {label} | {best[label] * 1e3:.1f} | {base / best[label]:.2f}x | '
                  f'{errors[label]:.1e} |', flush=True)
    print()
    print(f'load average at the end: {os.getloadavg()[0]:.1f}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
