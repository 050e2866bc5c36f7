"""The 1D Operational GAN (Op-GAN) for blind audio restoration: generator and discriminator.

Follows Kiranyaz et al., "Blind Restoration of Real-World Audio by 1D Operational GANs"
(2022) where it is specific: both networks are built from Self-ONN layers
(`models.selfonn.SelfONN1d`), the generator is an encoder–decoder on the raw waveform with
skip connections between mirrored encoder/decoder levels, the discriminator is a strided
1D Self-ONN stack that judges waveforms, and training combines an adversarial term with
time- and frequency-domain reconstruction terms (see ``models/train_opgan.py``).

Where we chose (the paper's networks are larger and were trained on a GPU for far longer;
ours must train on a shared CPU and run at RTF well under 0.5 on one):

- Model rate 16 kHz mono; widths ``channels`` (default 8-16-32-64), order ``q = 3``
  (the paper explores larger q), encoder downsampling by 4 per level with kernel 8.
- Decoder levels upsample linearly (no transposed convolutions: no checkerboard
  artefacts), concatenate the skip (both are ``tanh`` outputs, so Self-ONN inputs stay
  bounded by 1), then a Self-ONN conv and ``tanh``.
- The generator predicts a *residual*: ``out = x + head(h)``, and the 1×1 head starts at
  zero, so an untrained generator is the identity (restoration can only start from "do
  no harm"). The paper's generator maps input to output directly.
- The discriminator is a least-squares GAN patch discriminator (one score per ~64 ms
  frame), ``tanh`` between layers to bound the Self-ONN inputs.

Everything here is plain ``torch.nn``; chunked inference lives in ``tools/restore.py``
(`apply`, not `forward`, as demucs does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from models.selfonn import SelfONN1d


@dataclass(frozen=True)
class GeneratorConfig:
    channels: tuple[int, ...] = (8, 16, 32, 64)  # level 0 at full rate, then each level /stride
    q: int = 3
    stride: int = 4
    first_kernel: int = 9
    enc_kernel: int = 8
    dec_kernel: int = 5
    bottleneck_kernel: int = 5
    sample_rate: int = 16000

    @property
    def hop(self) -> int:
        """The input length must be a multiple of this (the tool pads)."""
        return self.stride ** (len(self.channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(int(c) for c in d["channels"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: tuple[int, ...] = (16, 32, 64, 64)
    strides: tuple[int, ...] = (4, 4, 4, 2)
    kernel: int = 15
    q: int = 3

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "strides": list(self.strides),
            "kernel": self.kernel,
            "q": self.q,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscriminatorConfig:
        return cls(
            channels=tuple(d.get("channels", cls.channels)),
            strides=tuple(d.get("strides", cls.strides)),
            kernel=int(d.get("kernel", cls.kernel)),
            q=int(d.get("q", cls.q)),
        )


class OpGANGenerator(nn.Module):
    """Waveform encoder–decoder of Self-ONN layers with skips; ``(B, 1, T) → (B, 1, T)``, T % hop == 0."""

    def __init__(self, cfg: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or GeneratorConfig()
        ch, q, s = cfg.channels, cfg.q, cfg.stride
        if len(ch) < 2:
            raise ValueError("the generator needs at least two levels")
        if cfg.enc_kernel < s or (cfg.enc_kernel - s) % 2:
            raise ValueError("enc_kernel must be >= stride with an even difference (exact /stride lengths)")
        self.inp = SelfONN1d(1, ch[0], cfg.first_kernel, q=q, padding=cfg.first_kernel // 2)
        self.down = nn.ModuleList(
            SelfONN1d(ch[i], ch[i + 1], cfg.enc_kernel, q=q, stride=s, padding=(cfg.enc_kernel - s) // 2)
            for i in range(len(ch) - 1)
        )
        self.mid = SelfONN1d(ch[-1], ch[-1], cfg.bottleneck_kernel, q=q, padding=cfg.bottleneck_kernel // 2)
        self.up = nn.ModuleList(
            SelfONN1d(ch[i + 1] + ch[i], ch[i], cfg.dec_kernel, q=q, padding=cfg.dec_kernel // 2)
            for i in reversed(range(len(ch) - 1))
        )
        self.head = nn.Conv1d(ch[0], 1, 1)
        nn.init.zeros_(self.head.weight)
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"generator expects (batch, 1, time), got {tuple(x.shape)}")
        if x.shape[-1] % self.cfg.hop:
            raise ValueError(f"length {x.shape[-1]} is not a multiple of {self.cfg.hop}; pad first")
        h = torch.tanh(self.inp(x))
        skips = [h]
        for layer in self.down:
            h = torch.tanh(layer(h))
            skips.append(h)
        h = torch.tanh(self.mid(h))
        skips.pop()  # the deepest level is h itself
        for layer in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-1], mode="linear", align_corners=False)
            h = torch.tanh(layer(torch.cat([h, skip], dim=1)))
        return x + self.head(h)


class OpGANDiscriminator(nn.Module):
    """Strided Self-ONN stack → one LSGAN score per frame; ``(B, 1, T) → (B, frames)``."""

    def __init__(self, cfg: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DiscriminatorConfig()
        layers, c_in = [], 1
        for c, st in zip(cfg.channels, cfg.strides):
            layers.append(SelfONN1d(c_in, c, cfg.kernel, q=cfg.q, stride=st, padding=cfg.kernel // 2))
            c_in = c
        self.layers = nn.ModuleList(layers)
        self.out = SelfONN1d(c_in, 1, 3, q=cfg.q, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.clamp(-1.5, 1.5)
        for layer in self.layers:
            h = torch.tanh(layer(h))
        return self.out(h).squeeze(1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class Checkpoint:
    """What a shipped generator file holds (``torch.save`` of a plain dict, ``weights_only`` loadable)."""

    config: GeneratorConfig
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_payload(self, half: bool = True) -> dict[str, Any]:
        sd = {
            k: (v.detach().to("cpu").half() if half and v.is_floating_point() else v.detach().to("cpu"))
            for k, v in self.state_dict.items()
        }
        return {
            "format": "mixpilot-opgan-generator/1",
            "config": self.config.to_dict(),
            "state_dict": sd,
            "meta": self.meta,
        }


def generator_from_payload(payload: dict[str, Any]) -> tuple[OpGANGenerator, dict[str, Any]]:
    """Build a float32 generator in eval mode from a payload written by `Checkpoint.to_payload`."""
    from models.weights import ModelLoadingError

    if not isinstance(payload, dict) or payload.get("format") != "mixpilot-opgan-generator/1":
        raise ModelLoadingError(
            "not a mixpilot Op-GAN generator checkpoint (format tag missing or different)"
        )
    cfg = GeneratorConfig.from_dict(payload["config"])
    gen = OpGANGenerator(cfg)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        gen.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ModelLoadingError(f"Op-GAN checkpoint does not match its config: {exc}") from None
    gen.eval()
    return gen, dict(payload.get("meta", {}))
