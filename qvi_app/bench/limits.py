"""This machine's physical limits, measured in the same run as the benchmark they judge."""

from __future__ import annotations

import time

import torch


def best_time(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def memory_bandwidth(mbytes: int = 512) -> float:
    """Bytes per second of one pass reading a large float32 array, with all of torch's threads."""
    a = torch.ones(mbytes * 2**20 // 4, dtype=torch.float32)
    return a.numel() * 4 / best_time(lambda: a.sum())


def matmul_throughput(n: int = 1024) -> float:
    """float32 FLOP/s of a square matrix product with torch's threads as configured."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        return 2 * n**3 / best_time(lambda: torch.mm(a, b))


def conv_flops(model: torch.nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds x2 of every Conv2d and Linear layer for one forward pass on ``example``."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2 * k * output.numel()
        elif isinstance(module, torch.nn.Linear):
            total += 2 * module.in_features * output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return total
