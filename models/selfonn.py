"""Self-organised operational neural network (Self-ONN) layers in 1D.

A Self-ONN neuron replaces the convolution's fixed linear "nodal" operator by a learned
Maclaurin series of order ``q`` (Kiranyaz et al., "Self-organized Operational Neural
Networks with Generative Neurons", 2021; used for audio in Kiranyaz, Devecioglu, Ince,
Malik, Chowdhury, Hamid, Mazhar, Khandakar, Tahir, Rahman, Gabbouj, "Blind Restoration
of Real-World Audio by 1D Operational GANs", 2022):

    y = b + sum_{k=1..q} W_k * x^k          (* = 1D convolution, x^k element-wise)

With ``q = 1`` this is exactly a plain ``Conv1d``. As in the papers' reference code, all
orders are computed by one convolution over the channel-stacked powers ``[x, x², …, x^q]``
(one kernel per order, same receptive field), which is what makes it cheap.

Numerical stability (where we chose, the papers give no specific recipe beyond tanh):

- *Bounded inputs.* Powers of an unbounded input explode; the networks in
  ``models/opgan.py`` feed every Self-ONN layer ``tanh`` of the previous layer (the
  papers' activation), so ``|x| < 1`` and ``|x^k| <= |x|``. The layer can also bound its
  own input (``bound="tanh"``) for standalone use. The default ``bound="none"`` keeps the
  ``q = 1 == Conv1d`` identity exact.
- *Init scaled down with order.* Each order's kernel starts from the ``Conv1d`` default
  (Kaiming-uniform) divided by ``k`` (our choice), so at initialisation the layer is
  close to its linear part and the higher-order terms grow only as training needs them.
- *Gradient clipping* is done by the trainer (``models/train_opgan.py``,
  ``clip_grad_norm``), not here.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class SelfONN1d(nn.Module):
    """Operational 1D convolution of order ``q`` (``q = 1`` is ``nn.Conv1d``).

    Weight shape ``(out, in * q, kernel)``: input channels ``[c*0 .. c*1)`` see ``x``,
    ``[c*1 .. c*2)`` see ``x²`` and so on.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        q: int = 3,
        stride: int = 1,
        padding: int | str = 0,
        dilation: int = 1,
        bias: bool = True,
        bound: str = "none",
    ) -> None:
        super().__init__()
        if q < 1:
            raise ValueError(f"Self-ONN order q must be >= 1, got {q}")
        if bound not in ("none", "tanh"):
            raise ValueError(f"bound must be 'none' or 'tanh', got {bound!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.q = int(kernel_size), int(q)
        self.stride, self.padding, self.dilation = int(stride), padding, int(dilation)
        self.bound = bound
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels * q, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * self.kernel_size
        bound = 1.0 / math.sqrt(
            fan_in
        )  # the Conv1d default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), ..)
        with torch.no_grad():
            for k in range(self.q):
                sl = slice(k * self.in_channels, (k + 1) * self.in_channels)
                self.weight[:, sl].uniform_(-bound, bound).div_(k + 1)  # order k+1 scaled by 1/(k+1)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def powers(self, x: torch.Tensor) -> torch.Tensor:
        """``[x, x², …, x^q]`` stacked on the channel axis (after the optional bound)."""
        if self.bound == "tanh":
            x = torch.tanh(x)
        if self.q == 1:
            return x
        out = [x]
        p = x
        for _ in range(self.q - 1):
            p = p * x
            out.append(p)
        return torch.cat(out, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"SelfONN1d expects (batch, {self.in_channels}, time), got {tuple(x.shape)}")
        return F.conv1d(self.powers(x), self.weight, self.bias, self.stride, self.padding, self.dilation)

    def order_weights(self, k: int) -> torch.Tensor:
        """The kernel of order ``k`` (1-based), shape ``(out, in, kernel)``."""
        if not 1 <= k <= self.q:
            raise ValueError(f"order {k} outside 1..{self.q}")
        return self.weight[:, (k - 1) * self.in_channels : k * self.in_channels]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, q={self.q}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, bound={self.bound}"
        )
