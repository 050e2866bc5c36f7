"""Vocos (mel variant): a Fourier-head neural vocoder, state-dict compatible with the published checkpoints.

This is a port of the inference path of the `vocos` package (MIT, Siuzdak 2023:
``MelSpectrogramFeatures`` → ``VocosBackbone`` (ConvNeXt) → ``ISTFTHead``). We carry it
instead of importing `vocos` because that package imports `torchaudio` (for the mel
transform) and `encodec` at import time, and the torchaudio wheels on PyPI are CUDA builds
that fail to load beside the CPU torch mixpilot pins. Parameter and buffer names match the
upstream modules, so ``pytorch_model.bin`` from ``charactr/vocos-mel-24khz`` loads with
``strict=True``; ``tests/test_vocoder_enhance.py`` compares against the `vocos` package when
that happens to import.

Only the mel feature extractor, the plain (non-AdaNorm) ConvNeXt backbone and the ISTFT
head are supported; other configs raise `ModelLoadingError`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.weights import ModelLoadingError, find_vocos


def _hz_to_mel_htk(f: float | torch.Tensor):
    if isinstance(f, torch.Tensor):
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    return 2595.0 * math.log10(1.0 + f / 700.0)


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """HTK-scale triangular filterbank without normalisation, as torchaudio's default ``(n_freqs, n_mels)``."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel_htk(f_min), _hz_to_mel_htk(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)


class _Spectrogram(nn.Module):
    window: torch.Tensor

    def __init__(self, n_fft: int, hop_length: int, center: bool):
        super().__init__()
        self.n_fft, self.hop_length, self.center = n_fft, hop_length, center
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            self.n_fft,
            self.window,
            center=self.center,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return spec.abs()  # power=1


class _MelScale(nn.Module):
    fb: torch.Tensor

    def __init__(self, n_mels: int, sample_rate: int, n_stft: int):
        super().__init__()
        self.register_buffer("fb", melscale_fbanks(n_stft, 0.0, sample_rate / 2.0, n_mels, sample_rate))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)


class _MelSpectrogram(nn.Module):
    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, center: bool):
        super().__init__()
        self.win_length, self.hop_length = n_fft, hop_length
        self.spectrogram = _Spectrogram(n_fft, hop_length, center)
        self.mel_scale = _MelScale(n_mels, sample_rate, n_fft // 2 + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mel_scale(self.spectrogram(x))


class MelSpectrogramFeatures(nn.Module):
    def __init__(
        self,
        sample_rate: int = 24000,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mels: int = 100,
        padding: str = "center",
    ):
        super().__init__()
        if padding not in ("center", "same"):
            raise ValueError("padding must be 'center' or 'same'")
        self.padding = padding
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.mel_spec = _MelSpectrogram(sample_rate, n_fft, hop_length, n_mels, center=padding == "center")

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            pad = self.mel_spec.win_length - self.mel_spec.hop_length
            audio = nn.functional.pad(audio, (pad // 2, pad // 2), mode="reflect")
        return torch.log(torch.clip(self.mel_spec(audio), min=1e-7))


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.dwconv(x).transpose(1, 2)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = self.gamma * x
        return residual + x.transpose(1, 2)


class VocosBackbone(nn.Module):
    def __init__(
        self,
        input_channels: int,
        dim: int,
        intermediate_dim: int,
        num_layers: int,
        layer_scale_init_value: float | None = None,
    ):
        super().__init__()
        self.input_channels = input_channels
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        scale = layer_scale_init_value or 1 / num_layers
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(dim, intermediate_dim, scale) for _ in range(num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding (overlap-add with window-envelope normalisation)."""

    window: torch.Tensor

    def __init__(self, n_fft: int, hop_length: int, win_length: int, padding: str = "same"):
        super().__init__()
        if padding not in ("center", "same"):
            raise ValueError("padding must be 'center' or 'same'")
        self.padding, self.n_fft, self.hop_length, self.win_length = padding, n_fft, hop_length, win_length
        self.register_buffer("window", torch.hann_window(win_length))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.win_length, self.window, center=True)
        pad = (self.win_length - self.hop_length) // 2
        _, _, frames = spec.shape
        ifft = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        size = (frames - 1) * self.hop_length + self.win_length
        fold: dict[str, Any] = dict(
            output_size=(1, size), kernel_size=(1, self.win_length), stride=(1, self.hop_length)
        )
        y = nn.functional.fold(ifft, **fold)[:, 0, 0, pad:-pad]
        env = self.window.square().expand(1, frames, -1).transpose(1, 2)
        env = nn.functional.fold(env, **fold).squeeze()[pad:-pad]
        return y / env.clamp(min=1e-11)


class ISTFTHead(nn.Module):
    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same"):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft=n_fft, hop_length=hop_length, win_length=n_fft, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)
        mag = torch.clip(torch.exp(mag), max=1e2)
        return self.istft(mag * (torch.cos(phase) + 1j * torch.sin(phase)))


class Vocos(nn.Module):
    """feature_extractor → backbone → head; ``forward(audio (B, T)) -> audio (B, T')`` at ``sample_rate``."""

    def __init__(self, feature_extractor: MelSpectrogramFeatures, backbone: VocosBackbone, head: ISTFTHead):
        super().__init__()
        self.feature_extractor, self.backbone, self.head = feature_extractor, backbone, head

    @property
    def sample_rate(self) -> int:
        return int(self.feature_extractor.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.feature_extractor.hop_length)

    @torch.inference_mode()
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.decode(self.feature_extractor(audio))

    @torch.inference_mode()
    def decode(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(features))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Vocos:
        """Build (random weights) from the dict of a published ``config.yaml``."""
        expect = {
            "feature_extractor": "MelSpectrogramFeatures",
            "backbone": "VocosBackbone",
            "head": "ISTFTHead",
        }
        parts = {}
        for key, cls_name in expect.items():
            entry = config.get(key) or {}
            path = str(entry.get("class_path", ""))
            if path.rsplit(".", 1)[-1] != cls_name:
                raise ModelLoadingError(
                    f"Vocos config: {key} is '{path or 'missing'}'; only {cls_name} is supported"
                )
            args = dict(entry.get("init_args") or {})
            if key == "backbone" and args.get("adanorm_num_embeddings"):
                raise ModelLoadingError("Vocos config: AdaNorm backbones (EnCodec variant) are not supported")
            args.pop("adanorm_num_embeddings", None)
            parts[key] = args
        try:
            return cls(
                MelSpectrogramFeatures(**parts["feature_extractor"]),
                VocosBackbone(**parts["backbone"]),
                ISTFTHead(**parts["head"]),
            )
        except TypeError as exc:
            raise ModelLoadingError(f"Vocos config has unexpected arguments: {exc}") from None


def load_vocos(folder: Path | None = None) -> Vocos:
    """Load the mel Vocos from ``folder`` (default: `find_vocos`) with strict state-dict matching."""
    import yaml

    folder = folder or find_vocos()
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
    except Exception as exc:
        raise ModelLoadingError(f"{folder / 'config.yaml'}: unreadable ({exc})") from None
    model = Vocos.from_config(config or {})
    try:
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadingError(
            f"{folder / 'pytorch_model.bin'}: unreadable ({type(exc).__name__}: {exc})"
        ) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelLoadingError(
            f"{folder / 'pytorch_model.bin'} does not match its config.yaml: {first[1] if len(first) > 1 else first[0]}"
        ) from None
    return model.eval()
