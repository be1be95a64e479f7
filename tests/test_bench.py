"""The benchmark's yardsticks are computed correctly (its speed figures are not tested)."""

import torch

from qvi_app.bench.limits import conv_flops
from qvi_app.encoders.cnn_model import SfxCNN


def test_conv_flops_counts_multiply_adds_twice():
    conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
    assert conv_flops(conv, torch.zeros(1, 2, 10, 10)) == 2 * (2 * 9) * (4 * 10 * 10)


def test_cnn_flops_grow_with_the_query_length():
    model = SfxCNN(base_channels=8).eval()
    short, long = (conv_flops(model, torch.zeros(1, 1, t, 96)) for t in (128, 256))
    assert long == 2 * short
    first_layer = 2 * 9 * 8 * 128 * 96
    assert short > first_layer
