"""Train the Op-GAN restorer: ``python -m models.train_opgan --out DIR [--config C.json] [--resume]
[--device cpu|cuda] [--minutes N] [--export models/checkpoints/opgan_small.pt]``.

Clean audio (real recordings from ``../shared/fixtures`` that are *not* in the evaluation
set, plus procedurally synthesised music) is cut into short segments, degraded on the fly
by `models.degrade.random_chain` (1–3 families + random gain), peak-normalised at a random
level and fed to the generator, which learns to predict the clean segment.

Losses (weights in the config, defaults documented here):

- waveform L1, ``w_l1 = 50`` (normalised audio has |x| ~ 0.1, so L1 is ~0.01–0.05;
  ×50 makes it the larger term: SI-SDR rewards waveform fidelity, and a first CPU run with
  ×10 spent its steps inventing high bands that lowered SI-SDR);
- multi-resolution STFT (spectral convergence + log-magnitude L1 with a floor 60 dB under
  the target's loudest bin, FFT 256/512/1024, hop = FFT/4, Yamamoto et al. 2020),
  ``w_stft = 1``;
- adversarial, least-squares GAN (Mao et al. 2017) against `OpGANDiscriminator`,
  ``w_adv = 0.1``, switched on only after ``adv_start_step`` reconstruction-only steps
  (a short CPU run cannot afford an unstable GAN start; the paper trains adversarially
  throughout, on a GPU, far longer).

Stability: Adam, gradient norms clipped to ``clip_grad`` (norm before clipping logged),
a step whose loss or gradient is not finite is skipped and counted (``nan_skips``), and
training stops if more than ``max_nan_skips`` happen. Reproducible: seeds for torch and
numpy, the config written beside the checkpoint, the numpy and torch RNG states in the
resumable checkpoint.

Validation each "epoch" (``steps_per_epoch`` steps): fixed, seeded degraded versions of
held-out clips (never trained on, never in the evaluation set), SI-SDR gain, LSD and PESQ
(wide band) on the speech ones. Everything is appended to ``DIR/log.jsonl``.

Files in ``DIR``: ``config.json``, ``last.pt`` (everything to resume), ``generator_fp16.pt``
(the latest generator, shippable), ``best_generator_fp16.pt`` (best validation SI-SDR gain).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures"

#: evaluation set: never in training or validation (ISSUE 9)
EVAL_GLOBS = ("music/*", "speech/librispeech_*", "instruments/a[0-9]*")

#: noise recordings held out of training for the benchmark's real_noise family
EVAL_NOISES = ("exercise_bike.wav", "rain.flac")


@dataclass
class TrainConfig:
    seed: int = 1234
    sample_rate: int = 16000
    segment: int = 8192  # samples (0.51 s at 16 kHz); a multiple of the generator hop
    batch_size: int = 8
    max_steps: int = 100_000
    steps_per_epoch: int = 200
    lr_g: float = 5e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    w_l1: float = 50.0
    w_stft: float = 1.0
    w_adv: float = 0.1
    adv_start_step: int = 1000
    clip_grad: float = 1.0
    max_nan_skips: int = 50
    threads: int = 1
    synth_music_s: float = 120.0
    max_families: int = 3
    generator: dict[str, Any] = field(default_factory=dict)  # GeneratorConfig overrides
    discriminator: dict[str, Any] = field(default_factory=dict)
    fixtures: str = ""  # default ../shared/fixtures
    # training clips (globs relative to fixtures); the evaluation set is removed whatever these say
    train_globs: tuple[str, ...] = (
        "speech/cmu_arctic_*",
        "speech/speech-*.flac",
        "speech_pairs/vbdemand/clean/*",
        "instruments/*.flac",
        "vocals/singing-female.flac",
        "vocals/soprano-E4.flac",
        "vocals/vocadito_*.flac",
    )
    val_clips: tuple[str, ...] = (
        "speech/cmu_arctic_us_axb_a0006.wav",
        "speech_pairs/vbdemand/clean/p287_006.wav",
        "instruments/cello-phrase.flac",
        "vocals/vocadito_14.flac",
    )
    val_families: tuple[str, ...] = ("white_noise", "real_noise", "clipping", "lowpass_8k", "mp3", "reverb")
    val_seconds: float = 3.0
    noise_globs: tuple[str, ...] = ("noise/*.wav", "noise/*.flac")

    @classmethod
    def load(cls, path: Path | None) -> TrainConfig:
        if path is None:
            return cls()
        d = json.loads(Path(path).read_text())
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        for k in ("betas", "train_globs", "val_clips", "val_families", "noise_globs"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


# ----------------------------------------------------------------------------- data


def synth_music(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural clean 'music': chords of additive/FM tones with envelopes, Karplus–Strong plucks,
    and noise-burst percussion, in 2 s phrases with random tempo and timbre."""
    out = []
    total = int(seconds * sr)
    made = 0
    while made < total:
        n = 2 * sr
        y = np.zeros(n)
        t = np.arange(n) / sr
        root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        beat = 60.0 / rng.uniform(70, 160)
        kind = rng.integers(0, 3)
        pos = 0.0
        while pos < 2.0:
            dur = beat * rng.choice([0.5, 1.0, 2.0])
            f0 = root * 2 ** (rng.choice([0, 2, 4, 5, 7, 9, 11, 12, 14, 16]) / 12)
            i0, i1 = int(pos * sr), min(n, int((pos + dur) * sr))
            tt = t[: i1 - i0]
            if kind == 0:  # additive with decaying harmonics
                env = np.minimum(tt / 0.01, 1.0) * np.exp(-tt / rng.uniform(0.2, 1.0))
                tone = sum(
                    (0.6**h) * np.sin(2 * np.pi * f0 * (h + 1) * tt + rng.uniform(0, 6.28)) for h in range(8)
                )
            elif kind == 1:  # FM bell/e-piano
                env = np.minimum(tt / 0.005, 1.0) * np.exp(-tt / rng.uniform(0.3, 1.2))
                tone = np.sin(
                    2 * np.pi * f0 * tt + rng.uniform(0.5, 3.0) * env * np.sin(2 * np.pi * f0 * 2 * tt)
                )
            else:  # Karplus–Strong pluck
                p = max(int(sr / f0), 2)
                buf = rng.uniform(-1, 1, p)
                tone = np.empty(i1 - i0)
                for k in range(tone.size):
                    tone[k] = buf[k % p]
                    buf[k % p] = 0.996 * 0.5 * (buf[k % p] + buf[(k + 1) % p])
                env = np.ones_like(tt)
            y[i0:i1] += env * tone * rng.uniform(0.3, 1.0)
            pos += dur
        if rng.uniform() < 0.6:  # percussion
            for b in np.arange(0, 2.0, beat):
                i0 = int(b * sr)
                m = min(n - i0, int(0.15 * sr))
                hit = rng.standard_normal(m) * np.exp(-np.arange(m) / (sr * rng.uniform(0.01, 0.05)))
                if rng.uniform() < 0.5:  # kick-ish: low sine sweep
                    tm = np.arange(m) / sr
                    hit = np.sin(2 * np.pi * (50 + 80 * np.exp(-tm * 30)) * tm) * np.exp(-tm * 12) * 2
                y[i0 : i0 + m] += 0.3 * hit
        y /= np.max(np.abs(y)) + 1e-9
        out.append(y.astype(np.float32) * rng.uniform(0.3, 0.9))
        made += n
    return np.concatenate(out)[:total]


def _is_eval(rel: str) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(rel, g) for g in EVAL_GLOBS)


def load_clips(
    fixtures: Path, globs: tuple[str, ...], sr: int, exclude: AbstractSet[str] = frozenset()
) -> dict[str, np.ndarray]:
    from tools.audio import load, resample

    clips: dict[str, np.ndarray] = {}
    for g in globs:
        for p in sorted(fixtures.glob(g)):
            rel = str(p.relative_to(fixtures))
            if rel in clips or rel in exclude or _is_eval(rel):
                continue
            a = load(p).mono()
            x = a.samples[0] if a.sample_rate == sr else resample(a.samples, a.sample_rate, sr)[0]
            clips[rel] = x.astype(np.float32)
    return clips


class Batcher:
    """Random segments of the clean pool, degraded on the fly."""

    def __init__(
        self, clips: list[np.ndarray], cfg: TrainConfig, noise_bank: Any, rng: np.random.Generator
    ) -> None:
        self.clips = [c for c in clips if c.size > cfg.segment]
        lens = np.array([c.size for c in self.clips], dtype=np.float64)
        self.p = lens / lens.sum()
        self.cfg, self.noise_bank, self.rng = cfg, noise_bank, rng

    def segment(self) -> np.ndarray:
        n = self.cfg.segment
        for _ in range(20):
            c = self.clips[int(self.rng.choice(len(self.clips), p=self.p))]
            i = int(self.rng.integers(0, c.size - n + 1))
            x = c[i : i + n]
            peak = float(np.max(np.abs(c)))
            if np.sqrt(np.mean(x**2)) > peak * 10 ** (-40 / 20):  # skip near-silence
                return x
        return x

    def next(self) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        from models.degrade import random_chain

        xs, ys, fams = [], [], []
        for _ in range(self.cfg.batch_size):
            clean = self.segment()
            deg, picked, gain = random_chain(
                clean, self.cfg.sample_rate, self.rng, self.noise_bank, max_families=self.cfg.max_families
            )
            target = clean * np.float32(gain)
            level = 10 ** (self.rng.uniform(-20.0, -1.0) / 20.0)  # random input peak level
            s = level / (float(np.max(np.abs(deg))) + 1e-9)
            xs.append(deg * s)
            ys.append(target * s)
            fams.append(picked)
        return np.stack(xs)[:, None, :], np.stack(ys)[:, None, :], fams


# ----------------------------------------------------------------------------- losses


def mr_stft_loss(y_hat: Any, y: Any, ffts: tuple[int, ...] = (256, 512, 1024)) -> Any:
    import torch

    loss = 0.0
    for n in ffts:
        win = torch.hann_window(n, device=y.device)
        a = torch.stft(y_hat.squeeze(1), n, n // 4, window=win, return_complex=True).abs()
        b = torch.stft(y.squeeze(1), n, n // 4, window=win, return_complex=True).abs()
        sc = torch.linalg.norm(b - a, dim=(1, 2)) / torch.linalg.norm(b, dim=(1, 2)).clamp_min(1e-7)
        # log magnitudes with a floor 60 dB below the target's loudest bin: bins far under the signal
        # (digital silence above a band limit) must not dominate the loss
        floor = 1e-3 * b.amax(dim=(1, 2), keepdim=True) + 1e-7
        mag = ((a + floor).log() - (b + floor).log()).abs().mean(dim=(1, 2))
        loss = loss + (sc + mag).mean()
    return loss / len(ffts)


# ----------------------------------------------------------------------------- validation


def build_val_set(cfg: TrainConfig, fixtures: Path, noise_bank: Any) -> list[dict[str, Any]]:
    from models.degrade import apply_family

    rng = np.random.default_rng(cfg.seed + 7)
    n = int(cfg.val_seconds * cfg.sample_rate)
    items = []
    clips = load_clips(fixtures, cfg.val_clips, cfg.sample_rate)
    for rel, x in clips.items():
        x = x[:n]
        x = x / (np.max(np.abs(x)) + 1e-9) * 0.5
        for fam in cfg.val_families:
            y = apply_family(x, cfg.sample_rate, fam, rng, noise_bank, severity=0.5)
            items.append(
                {
                    "clip": rel,
                    "family": fam,
                    "clean": x.astype(np.float32),
                    "degraded": y,
                    "speech": rel.startswith("speech"),
                }
            )
    return items


def restore_array(gen: Any, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Run the generator on one whole mono signal (peak-normalised, padded to the hop)."""
    import torch

    hop = gen.cfg.hop
    n = x.size
    pad = (-n) % hop
    peak = float(np.max(np.abs(x))) + 1e-9
    s = 0.9 / peak
    t = torch.from_numpy(np.pad(x * s, (0, pad)).astype(np.float32))[None, None].to(device)
    with torch.no_grad():
        y = gen(t)[0, 0, :n].float().cpu().numpy()
    return y / s


def validate(gen: Any, items: list[dict[str, Any]], sr: int, device: str) -> dict[str, Any]:
    from tools.metrics import lsd, pesq_wb, si_sdr

    gen.eval()
    rows = []
    for it in items:
        y = restore_array(gen, it["degraded"], device)
        r = {
            "clip": it["clip"],
            "family": it["family"],
            "si_sdr_in": si_sdr(it["degraded"], it["clean"]),
            "si_sdr_out": si_sdr(y, it["clean"]),
            "lsd_in": lsd(it["degraded"], it["clean"], sr),
            "lsd_out": lsd(y, it["clean"], sr),
        }
        if it["speech"]:
            try:
                r["pesq_in"] = pesq_wb(it["degraded"], it["clean"], sr)
                r["pesq_out"] = pesq_wb(y, it["clean"], sr)
            except Exception:  # pesq missing or no utterance: leave it out
                pass
        rows.append(r)
    gen.train()

    def mean(key: str, sub: list[dict[str, Any]] | None = None) -> float:
        v = [r[key] for r in (sub or rows) if key in r and math.isfinite(r[key])]
        return float(np.mean(v)) if v else float("nan")

    out: dict[str, Any] = {
        k: mean(k) for k in ("si_sdr_in", "si_sdr_out", "lsd_in", "lsd_out", "pesq_in", "pesq_out")
    }
    out["si_sdr_gain"] = out["si_sdr_out"] - out["si_sdr_in"]
    out["per_family_gain"] = {
        f: mean("si_sdr_out", [r for r in rows if r["family"] == f])
        - mean("si_sdr_in", [r for r in rows if r["family"] == f])
        for f in sorted({r["family"] for r in rows})
    }
    return out


# ----------------------------------------------------------------------------- training


def _gen_cfg(cfg: TrainConfig) -> Any:
    from models.opgan import GeneratorConfig

    return GeneratorConfig.from_dict({**cfg.generator, "sample_rate": cfg.sample_rate})


def export_generator(gen: Any, path: Path, meta: dict[str, Any]) -> None:
    import torch

    from models.opgan import Checkpoint

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(Checkpoint(gen.cfg, gen.state_dict(), meta).to_payload(half=True), tmp)
    os.replace(tmp, path)


def train(
    cfg: TrainConfig,
    out: Path,
    device: str = "cpu",
    minutes: float | None = None,
    resume: bool = False,
    log=print,
) -> dict[str, Any]:
    import torch

    from models.degrade import NoiseBank
    from models.opgan import DiscriminatorConfig, OpGANDiscriminator, OpGANGenerator, count_parameters

    t_start = time.monotonic()
    torch.set_num_threads(max(1, cfg.threads))
    out.mkdir(parents=True, exist_ok=True)
    fixtures = Path(cfg.fixtures) if cfg.fixtures else DEFAULT_FIXTURES
    if not fixtures.is_dir():
        raise SystemExit(f"training audio not found at {fixtures} (set 'fixtures' in the config)")
    gcfg = _gen_cfg(cfg)
    if cfg.segment % gcfg.hop:
        raise SystemExit(f"segment {cfg.segment} must be a multiple of the generator hop {gcfg.hop}")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    noise_paths = [p for g in cfg.noise_globs for p in sorted(fixtures.glob(g)) if p.name not in EVAL_NOISES]
    noise_bank = NoiseBank(noise_paths, cfg.sample_rate)
    val_set = set(cfg.val_clips)
    clips = load_clips(fixtures, cfg.train_globs, cfg.sample_rate, exclude=val_set)
    synth = synth_music(cfg.synth_music_s, cfg.sample_rate, np.random.default_rng(cfg.seed + 1))
    pool = list(clips.values()) + [
        synth[i : i + 10 * cfg.sample_rate] for i in range(0, synth.size, 10 * cfg.sample_rate)
    ]
    real_s = sum(c.size for c in clips.values()) / cfg.sample_rate
    val_items = build_val_set(cfg, fixtures, noise_bank)
    batcher = Batcher(pool, cfg, noise_bank, rng)

    gen = OpGANGenerator(gcfg).to(device)
    disc = OpGANDiscriminator(
        DiscriminatorConfig.from_dict(cfg.discriminator) if cfg.discriminator else None
    ).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    state: dict[str, Any] = {
        "step": 0,
        "nan_skips": 0,
        "history": [],
        "best_gain": -1e9,
        "train_seconds": 0.0,
    }
    if resume and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", map_location=device, weights_only=False)
        gen.load_state_dict(ck["gen"])
        disc.load_state_dict(ck["disc"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        state = ck["state"]
        rng.bit_generator.state = ck["np_rng"]
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed at step {state['step']}")
    log(
        json.dumps(
            {
                "event": "start",
                "device": device,
                "threads": torch.get_num_threads(),
                "train_clips": len(clips),
                "real_seconds": round(real_s, 1),
                "synth_seconds": cfg.synth_music_s,
                "noises": len(noise_bank),
                "val_items": len(val_items),
                "params_g": count_parameters(gen),
                "params_d": count_parameters(disc),
            }
        )
    )
    logf = open(out / "log.jsonl", "a")  # noqa: SIM115 - open for the whole run (appended to each step), closed at its end

    def save() -> None:
        tmp = out / "last.tmp"
        torch.save(
            {
                "gen": gen.state_dict(),
                "disc": disc.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "state": state,
                "np_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "config": asdict(cfg),
            },
            tmp,
        )
        os.replace(tmp, out / "last.pt")
        meta = {
            "step": state["step"],
            "train_seconds": round(state["train_seconds"], 1),
            "history": state["history"],
            "config": asdict(cfg),
        }
        export_generator(gen, out / "generator_fp16.pt", meta)

    deadline = t_start + minutes * 60 if minutes else None
    run_t0 = time.monotonic()
    acc: dict[str, list[float]] = {}
    gen.train()
    disc.train()
    while state["step"] < cfg.max_steps:
        if deadline is not None and time.monotonic() > deadline:
            break
        x_np, y_np, _ = batcher.next()
        x = torch.from_numpy(x_np).to(device)
        y = torch.from_numpy(y_np).to(device)
        adv = state["step"] >= cfg.adv_start_step and cfg.w_adv > 0
        y_hat = gen(x)
        d_loss_v = float("nan")
        if adv:  # discriminator step (LSGAN: real → 1, fake → 0)
            opt_d.zero_grad(set_to_none=True)
            d_loss = ((disc(y) - 1) ** 2).mean() + (disc(y_hat.detach()) ** 2).mean()
            if torch.isfinite(d_loss):
                d_loss.backward()
                gn_d = torch.nn.utils.clip_grad_norm_(disc.parameters(), cfg.clip_grad)
                if torch.isfinite(gn_d):
                    opt_d.step()
            d_loss_v = float(d_loss.detach())
        l1 = (y_hat - y).abs().mean()
        st = mr_stft_loss(y_hat, y)
        loss = cfg.w_l1 * l1 + cfg.w_stft * st
        g_adv = torch.zeros((), device=device)
        if adv:
            g_adv = ((disc(y_hat) - 1) ** 2).mean()
            loss = loss + cfg.w_adv * g_adv
        opt_g.zero_grad(set_to_none=True)
        ok = bool(torch.isfinite(loss))
        gn = float("nan")
        if ok:
            loss.backward()
            gn = float(torch.nn.utils.clip_grad_norm_(gen.parameters(), cfg.clip_grad))
            ok = math.isfinite(gn)
        if not ok:  # NaN guard: skip this step, count it
            opt_g.zero_grad(set_to_none=True)
            state["nan_skips"] += 1
            if state["nan_skips"] > cfg.max_nan_skips:
                raise RuntimeError(f"more than {cfg.max_nan_skips} non-finite steps; stopping")
        else:
            opt_g.step()
        state["step"] += 1
        for k, v in (
            ("loss", float(loss.detach())),
            ("l1", float(l1.detach())),
            ("stft", float(st.detach())),
            ("adv_g", float(g_adv.detach())),
            ("adv_d", d_loss_v),
            ("grad_norm_g", gn),
        ):
            if math.isfinite(v):
                acc.setdefault(k, []).append(v)
        if state["step"] % 25 == 0:
            row = {
                "event": "train",
                "step": state["step"],
                **{k: round(float(np.mean(v)), 5) for k, v in acc.items()},
                "grad_norm_g_max": round(max(acc.get("grad_norm_g", [0.0])), 4),
                "s_per_step": round((time.monotonic() - run_t0) / 25, 3),
                "nan_skips": state["nan_skips"],
            }
            logf.write(json.dumps(row) + "\n")
            logf.flush()
            log(json.dumps(row))
            state["history"].append(
                {
                    k: row[k]
                    for k in row
                    if k in ("step", "loss", "l1", "stft", "adv_g", "adv_d", "grad_norm_g", "grad_norm_g_max")
                }
            )
            state["train_seconds"] += time.monotonic() - run_t0
            run_t0 = time.monotonic()
            acc = {}
        if state["step"] % cfg.steps_per_epoch == 0:
            _epoch_end(gen, val_items, cfg, device, state, out, logf, log, save, export_generator)
    if state["step"] % cfg.steps_per_epoch:
        _epoch_end(gen, val_items, cfg, device, state, out, logf, log, save, export_generator)
    logf.close()
    return state


def _epoch_end(gen, val_items, cfg, device, state, out, logf, log, save, export) -> None:
    v = validate(gen, val_items, cfg.sample_rate, device)
    row = {
        "event": "val",
        "step": state["step"],
        **{k: (round(x, 3) if isinstance(x, float) else x) for k, x in v.items() if k != "per_family_gain"},
        "per_family_gain": {k: round(x, 2) for k, x in v["per_family_gain"].items()},
    }
    logf.write(json.dumps(row) + "\n")
    logf.flush()
    log(json.dumps(row))
    state["history"].append(
        {k: row[k] for k in ("step", "si_sdr_gain", "lsd_out", "pesq_out") if k in row} | {"val": True}
    )
    save()
    if v["si_sdr_gain"] > state["best_gain"]:
        state["best_gain"] = v["si_sdr_gain"]
        meta = {"step": state["step"], "val": row, "history": state["history"], "config": asdict(cfg)}
        export(gen, out / "best_generator_fp16.pt", meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train_opgan", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--config", type=Path, default=None, help="JSON with TrainConfig fields (defaults otherwise)"
    )
    ap.add_argument(
        "--out", type=Path, required=True, help="run folder: config.json, last.pt, log.jsonl, generators"
    )
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt when it exists")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument(
        "--minutes", type=float, default=None, help="stop (after a checkpoint) after this much wall time"
    )
    ap.add_argument("--max-steps", type=int, default=None, help="override max_steps")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("--device cuda but CUDA is not available", file=sys.stderr)
            return 2
    cfg = TrainConfig.load(args.config)
    if args.max_steps is not None:
        cfg.max_steps = args.max_steps
    state = train(
        cfg,
        args.out,
        device=args.device,
        minutes=args.minutes,
        resume=args.resume,
        log=lambda s: print(s, flush=True),
    )
    print(
        json.dumps(
            {
                "event": "done",
                "step": state["step"],
                "best_gain": state["best_gain"],
                "nan_skips": state["nan_skips"],
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
