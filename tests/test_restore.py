"""Op-GAN restoration: Self-ONN layers, generator/discriminator, trainer, chunked inference, the tool."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.opgan import (  # noqa: E402
    Checkpoint,
    DiscriminatorConfig,
    GeneratorConfig,
    OpGANDiscriminator,
    OpGANGenerator,
    generator_from_payload,
)
from models.selfonn import SelfONN1d  # noqa: E402
from tests.conftest import noise, sine  # noqa: E402
from tools.audio import Audio  # noqa: E402
from tools.metrics import si_sdr  # noqa: E402
from tools.restore import DEFAULT_WEIGHTS, RestoreParams, apply_chunked, restore_mono  # noqa: E402

TINY = GeneratorConfig(channels=(4, 8, 8), q=3, stride=4)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: more threads only add contention on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _random_generator(cfg: GeneratorConfig = TINY, seed: int = 0) -> OpGANGenerator:
    """A generator whose head is not zero (an untrained one is the identity by design)."""
    torch.manual_seed(seed)
    g = OpGANGenerator(cfg)
    with torch.no_grad():
        g.head.weight.normal_(0, 0.3)
    return g.eval()


# ----------------------------------------------------------------------------- Self-ONN


@pytest.mark.parametrize("q", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 4])
def test_selfonn_shapes_and_finite_gradients(q, stride):
    torch.manual_seed(q)
    layer = SelfONN1d(
        3, 5, 8, q=q, stride=stride, padding=(8 - stride) // 2 if stride > 1 else 4, bound="tanh"
    )
    x = (torch.randn(2, 3, 256) * 3).requires_grad_(True)  # unbounded input, bounded by the layer
    y = layer(x)
    assert y.shape[:2] == (2, 5)
    if stride == 4:
        assert y.shape[-1] == 64
    y.pow(2).mean().backward()
    assert layer.bias is not None
    for g in (x.grad, layer.weight.grad, layer.bias.grad):
        assert g is not None and torch.isfinite(g).all()
    # init scaled down with order: the order-k kernel's spread is about 1/k of the linear one's
    if q >= 3:
        s1, s3 = layer.order_weights(1).abs().max(), layer.order_weights(3).abs().max()
        assert float(s3.detach()) < float(s1.detach()) / 2


def test_selfonn_q1_is_a_plain_conv():
    torch.manual_seed(0)
    layer = SelfONN1d(3, 6, 7, q=1, stride=2, padding=3, dilation=1)
    conv = torch.nn.Conv1d(3, 6, 7, stride=2, padding=3)
    with torch.no_grad():
        conv.weight.copy_(layer.weight)
        conv.bias.copy_(layer.bias)
    x = torch.randn(2, 3, 100)
    assert torch.allclose(layer(x), conv(x), atol=1e-6)


def test_selfonn_higher_orders_are_used():
    torch.manual_seed(0)
    layer = SelfONN1d(1, 1, 1, q=3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[0.0], [0.0], [1.0]]]))  # only the cubic term
    x = torch.linspace(-1, 1, 11)[None, None]
    assert torch.allclose(layer(x), x**3, atol=1e-6)


def test_selfonn_rejects_bad_arguments():
    with pytest.raises(ValueError):
        SelfONN1d(1, 1, 3, q=0)
    with pytest.raises(ValueError):
        SelfONN1d(2, 1, 3)(torch.zeros(1, 3, 10))


# ----------------------------------------------------------------------------- networks


def test_generator_is_identity_at_init_and_shapes():
    g = OpGANGenerator(TINY).eval()
    x = torch.randn(2, 1, TINY.hop * 20) * 0.3
    with torch.no_grad():
        assert torch.equal(g(x), x)
    with pytest.raises(ValueError):
        g(torch.zeros(1, 1, TINY.hop * 20 + 1))
    d = OpGANDiscriminator(DiscriminatorConfig(channels=(4, 8), strides=(4, 4), kernel=7))
    assert d(x).shape[0] == 2 and d(x).dim() == 2


def test_checkpoint_roundtrip_fp16():
    g = _random_generator()
    payload = Checkpoint(g.cfg, g.state_dict(), {"step": 3}).to_payload(half=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values())
    g2, meta = generator_from_payload(payload)
    x = torch.randn(1, 1, TINY.hop * 30) * 0.3
    with torch.no_grad():
        assert torch.allclose(g(x), g2(x), atol=2e-3)
    assert meta["step"] == 3
    from models.weights import ModelLoadingError

    with pytest.raises(ModelLoadingError):
        generator_from_payload({"format": "something else"})


def test_a_few_training_steps_reduce_the_loss_without_nan():
    from models.train_opgan import mr_stft_loss

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sr, n = 16000, 2048
    t = np.arange(n) / sr
    clean = np.stack([0.4 * np.sin(2 * np.pi * f * t) for f in rng.uniform(150, 900, 8)])[:, None].astype(
        np.float32
    )
    clean = clean + 0.01 * rng.standard_normal(clean.shape).astype(
        np.float32
    )  # a floor: real recordings have one
    noisy = clean + 0.1 * rng.standard_normal(clean.shape).astype(np.float32)
    x, y = torch.from_numpy(noisy), torch.from_numpy(clean)
    g = OpGANGenerator(TINY)
    d = OpGANDiscriminator(DiscriminatorConfig(channels=(4, 8), strides=(4, 4), kernel=7))
    opt = torch.optim.Adam(g.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        y_hat = g(x)
        loss = 10 * (y_hat - y).abs().mean() + mr_stft_loss(y_hat, y) + 0.05 * ((d(y_hat) - 1) ** 2).mean()
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(g.parameters(), 1.0)
        assert torch.isfinite(gn)
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5]), (losses[:5], losses[-5:])


def test_trainer_runs_checkpoints_and_resumes(tmp_path):
    """The training script end to end on a tiny synthetic corpus: files, log, resume."""
    import soundfile as sf

    from models.train_opgan import TrainConfig, train

    fx = tmp_path / "fixtures"
    for sub, f0 in (
        ("speech/cmu_arctic_a.wav", 220.0),
        ("speech/cmu_arctic_b.wav", 330.0),
        ("instruments/piano.flac", 440.0),
        ("noise/fridge.wav", None),
    ):
        p = fx / sub
        p.parent.mkdir(parents=True, exist_ok=True)
        x = noise(2.0, 16000, 0.1)[0] if f0 is None else sine(f0, 2.0, 16000, 0.4)[0]
        sf.write(p, x, 16000)
    cfg = TrainConfig(
        segment=1024,
        batch_size=2,
        steps_per_epoch=3,
        max_steps=3,
        synth_music_s=2.0,
        adv_start_step=2,
        generator={"channels": [4, 8, 8]},
        discriminator={"channels": [4, 8], "strides": [4, 4], "kernel": 7},
        fixtures=str(fx),
        train_globs=("speech/*", "instruments/*"),
        val_clips=("speech/cmu_arctic_b.wav",),
        val_families=("white_noise", "clipping"),
        val_seconds=0.5,
        noise_globs=("noise/*.wav",),
    )
    out = tmp_path / "run"
    state = train(cfg, out, log=lambda s: None)
    assert state["step"] == 3 and state["nan_skips"] == 0
    for f in ("config.json", "last.pt", "generator_fp16.pt", "best_generator_fp16.pt", "log.jsonl"):
        assert (out / f).is_file(), f
    assert json.loads((out / "config.json").read_text())["segment"] == 1024
    cfg.max_steps = 6
    state = train(cfg, out, resume=True, log=lambda s: None)
    assert state["step"] == 6
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    vals = [r for r in rows if r["event"] == "val"]
    assert [r["step"] for r in vals] == [3, 6] and all(np.isfinite(r["si_sdr_out"]) for r in vals)
    payload = torch.load(out / "generator_fp16.pt", weights_only=True)
    g, meta = generator_from_payload(payload)
    assert meta["step"] == 6


# ----------------------------------------------------------------------------- chunked inference


def test_chunking_a_constant_gain_path_leaves_no_seam():
    x = noise(3.0, 16000, 0.3)[0]
    for chunk, overlap, context in ((4000, 500, 0), (4000, 1000, 300), (5000, 2400, 64)):
        y = apply_chunked(lambda s: 0.5 * s, x, chunk, overlap, context, multiple=64)
        assert y.shape == x.shape
        assert np.max(np.abs(y - 0.5 * x)) < 1e-6


def test_chunked_model_equals_unchunked_away_from_edges():
    g = _random_generator(GeneratorConfig(channels=(4, 8, 8, 8), q=3, stride=4))
    sr = 16000
    x = (sine(220, 3.0, sr, 0.3)[0] + noise(3.0, sr, 0.05)[0]).astype(np.float32)
    params = RestoreParams(chunk_s=0.75, overlap_s=0.1, context_s=0.1)
    chunked = restore_mono(x, g, params)
    whole = restore_mono(x, g, RestoreParams(chunk_s=30.0))
    assert chunked.shape == x.shape
    assert np.max(np.abs(whole - x)) > 1e-3  # the model does change the signal
    inner = slice(2000, x.size - 2000)
    err = whole[inner] - chunked[inner]
    seam_db = 10 * np.log10(np.mean(err**2) / np.mean(whole[inner] ** 2))
    assert seam_db < -40, seam_db


# ----------------------------------------------------------------------------- the tool


def test_shipped_checkpoint_is_small_and_loads():
    assert DEFAULT_WEIGHTS.is_file(), "models/checkpoints/opgan_small.pt must ship with the repo"
    assert DEFAULT_WEIGHTS.stat().st_size < 5 * 1024 * 1024
    from tools.restore import load_generator

    g, meta = load_generator()
    assert g.cfg.sample_rate == 16000 and meta.get("step", 0) > 0
    assert load_generator()[0] is g  # cached


def test_opgan_mode_on_stereo_44k_keeps_length_rate_and_high_band():
    from tools.registry import get_tool

    sr = 44100
    x = np.concatenate([sine(440, 1.3, sr, 0.3), sine(660, 1.3, sr, 0.3)]) + noise(1.3, sr, 0.02, channels=2)
    x[:, :] += sine(12000, 1.3, sr, 0.05)[0]
    audio = Audio(x, sr)
    tool = get_tool("restore")
    res = tool(audio, {"mode": "opgan"})
    assert res.audio.sample_rate == sr and res.audio.samples.shape == x.shape
    assert np.all(np.isfinite(res.audio.samples))
    assert res.report["model_rate_hz"] == 16000 and res.report["rtf"] > 0
    assert np.array_equal(audio.samples, x.astype(np.float32))  # input untouched

    def tone_db(y, f):
        spec = np.abs(np.fft.rfft(y[0] * np.hanning(y.shape[1])))
        k = int(round(f * y.shape[1] / sr))
        return 20 * np.log10(spec[k - 3 : k + 4].max() + 1e-12)

    assert abs(tone_db(res.audio.samples, 12000) - tone_db(x, 12000)) < 1.0  # high band passed through
    dropped = tool(audio, {"mode": "opgan", "keep_high_band": False})
    assert tone_db(dropped.audio.samples, 12000) < tone_db(x, 12000) - 40
    assert any("8000 Hz" in w for w in dropped.warnings)
    dry = tool(audio, {"mode": "opgan", "strength": 0.0})
    assert np.max(np.abs(dry.audio.samples - x)) < 1e-6


def test_tool_params_are_bounded():
    from tools.registry import get_tool

    with pytest.raises(ValueError):
        get_tool("restore").parse_params({"strength": 2.0})
    with pytest.raises(ValueError):
        get_tool("restore").parse_params({"chunk": 1.0})


def test_shipped_generator_reduces_coloured_noise_on_unseen_speech(shared_fixtures):
    """LibriSpeech is evaluation-only (never trained on); brown noise at 10 dB SNR."""
    from models.degrade import apply_family
    from tools.audio import load
    from tools.registry import get_tool

    a = load(shared_fixtures / "speech" / "librispeech_198-209-0000.flac").mono()
    x = a.samples[0][16000 : 16000 * 4]
    x = x / np.max(np.abs(x)) * 0.5
    y = apply_family(x, 16000, "brown_noise", np.random.default_rng(0), severity=0.5)
    r = get_tool("restore")(Audio(y, 16000), {"mode": "opgan"}).audio.samples[0]
    assert si_sdr(r, x) > si_sdr(y, x) + 1.5  # measured +2.65 dB with the shipped step-900 weights


# ----------------------------------------------------------------------------- the router (restore by diagnosis)


def _local(local_fixtures, name: str, seconds: float | None = None) -> Audio:
    from tools.audio import load

    a = load(local_fixtures / name)
    if seconds is not None:
        a = a.with_samples(a.samples[:, : int(seconds * a.sample_rate)])
    return a


def _restore(audio: Audio, params: dict | None = None):
    from tools.registry import get_tool

    return get_tool("restore")(audio, params or {})


def test_nothing_found_nothing_run(local_fixtures, monkeypatch):
    """The router's side of "do no harm": a diagnosis without repair findings leaves every sample as it was."""
    from tools.diagnose import Diagnosis, Finding

    a = _local(local_fixtures, "karissa_hobbs_lets_go_fishin_8s.flac")
    monkeypatch.setattr(
        "tools.diagnose.diagnose",
        lambda audio, analysis=None, **kw: Diagnosis(
            (Finding("dull", 0.5, "top octave 6 dB under the target"),), {"content": "music"}
        ),
    )
    res = _restore(a)
    assert np.array_equal(res.audio.samples, a.samples)
    assert res.report["steps"] == [] and res.report["change_db"] is None
    assert res.report["summary"].startswith("nothing to repair")


@pytest.mark.parametrize(
    "name",
    [
        "speech_female_16k.flac",
        "karissa_hobbs_lets_go_fishin_8s.flac",
        "slow_motion_dream_3s.flac",
        "singing-female-3s5.flac",
    ],
)
def test_clean_recording_comes_back_as_it_went_in(local_fixtures, name):
    """End to end through the real diagnosis: output against input SI-SDR ≥ 30 dB."""
    a = _local(local_fixtures, name)
    res = _restore(a)
    assert res.audio.samples.shape == a.samples.shape and res.audio.sample_rate == a.sample_rate
    assert si_sdr(res.audio.samples, a.samples) >= 30.0, res.report["summary"]
    assert not res.report["refined"]


def test_clipped_speech_is_declipped_and_improves_by_several_db(local_fixtures):
    from models.degrade import clip

    a = _local(local_fixtures, "speech_female_16k.flac")
    x = a.samples[0] / np.max(np.abs(a.samples)) * 0.5
    y = clip(x, 0.35)  # clipped at 35 % of the peak
    res = _restore(Audio(y, a.sample_rate))
    rep = res.report
    assert "clipping" in [f["problem"] for f in rep["found"]]
    assert rep["steps"][0]["tool"] == "declip"  # first: undo the last nonlinearity before anything linear
    assert "clipping (severity" in rep["summary"] and "declip" in rep["summary"]
    gain = si_sdr(res.audio.samples, x) - si_sdr(y, x)
    assert gain > 4.0, (gain, rep["summary"])  # measured +9.4 dB


def test_noisy_speech_is_denoised_and_improves(local_fixtures):
    from models.degrade import add_noise, coloured_noise

    a = _local(local_fixtures, "speech_female_16k.flac")
    x = a.samples[0] / np.max(np.abs(a.samples)) * 0.5
    y = add_noise(x, coloured_noise(x.size, "white", np.random.default_rng(1)), 10.0)
    res = _restore(Audio(y, a.sample_rate))
    rep = res.report
    assert "noise" in [f["problem"] for f in rep["found"]], rep["summary"]
    assert "denoise" in [s["tool"] for s in rep["steps"]]
    gain = si_sdr(res.audio.samples, x) - si_sdr(y, x)
    assert gain > 1.5, (gain, rep["summary"])


def test_hum_is_notched_out_at_the_measured_mains_frequency(local_fixtures):
    from models.degrade import add_noise, hum

    a = _local(local_fixtures, "karissa_hobbs_lets_go_fishin_8s.flac")
    x = a.samples[0] / np.max(np.abs(a.samples)) * 0.5
    y = add_noise(
        x, hum(x.size, a.sample_rate, 60.0, np.random.default_rng(2)), 15.0
    )  # hum 15 dB under the music
    res = _restore(Audio(y, a.sample_rate), {"problems": ["hum"], "refine": "never"})
    step = res.report["steps"][0]
    assert step["tool"] == "hum_notch" and step["params"]["mains_hz"] == 60.0
    gain = si_sdr(res.audio.samples, x) - si_sdr(y, x)
    assert gain > 8.0, gain


def test_named_problems_run_in_canonical_order_with_severity_scaled_strength(local_fixtures):
    from models.degrade import add_noise, clip, coloured_noise

    a = _local(local_fixtures, "speech_female_16k.flac")
    x = a.samples[0] / np.max(np.abs(a.samples)) * 0.5
    y = add_noise(clip(x, 0.4), coloured_noise(x.size, "pink", np.random.default_rng(3)), 15.0)
    res = _restore(Audio(y, a.sample_rate), {"problems": ["noise", "clipping"], "refine": "never"})
    tools = [s["tool"] for s in res.report["steps"]]
    assert tools == ["declip", "denoise"]
    assert res.report["diagnosis"] == "requested"
    from tools.restore import ROUTES

    denoise = next(r for r in ROUTES if r.problem == "noise")
    weak, strong = denoise.params(0.2, 1.0, {}), denoise.params(0.9, 1.0, {})
    assert weak["strength"] < strong["strength"]
    assert (
        denoise.params(0.9, 0.5, {})["strength"] < strong["strength"]
    )  # the tool's own strength scales it too


def test_bandlimited_is_reported_not_repaired(local_fixtures):
    from models.degrade import band_limit

    a = _local(local_fixtures, "speech_female_16k.flac")
    y = band_limit(a.samples[0], a.sample_rate, 300.0, 3400.0)
    res = _restore(Audio(y, a.sample_rate), {"problems": ["bandlimited"]})
    assert res.report["steps"] == [] and not res.report["refined"]
    assert [n["problem"] for n in res.report["not_repaired"]] == ["bandlimited"]
    assert "bandwidth_extension" in res.report["summary"]
    assert np.array_equal(res.audio.samples[0], y)


def test_strength_zero_and_input_untouched(local_fixtures):
    from models.degrade import clip

    a = _local(local_fixtures, "speech_female_16k.flac")
    y = Audio(clip(a.samples[0], 0.3), a.sample_rate)
    before = y.samples.copy()
    assert np.array_equal(_restore(y, {"strength": 0.0}).audio.samples, before)
    _restore(y)
    assert np.array_equal(y.samples, before)


def test_refinement_rule():
    from tools.restore import _should_refine

    assert not _should_refine("auto", set(), set())[0]
    assert not _should_refine("always", {"noise"}, set())[0]  # nothing repaired: nothing to refine
    assert not _should_refine("never", {"noise"}, {"denoise"})[0]
    assert _should_refine("auto", {"noise"}, {"denoise"})[0]
    assert not _should_refine("auto", {"noise"}, {"highpass"})[0]  # rumble: the high-pass alone is better
    assert not _should_refine("auto", {"noise", "bandlimited"}, {"denoise"})[
        0
    ]  # the generator hurts band limits
    assert not _should_refine("auto", {"clipping"}, {"declip"})[0]
    assert _should_refine("always", {"clipping"}, {"declip"})[0]


def test_restore_imports_no_other_tool():
    import ast
    from pathlib import Path

    import tools.restore as mod

    allowed = {
        "tools.audio",
        "tools.registry",
        "tools.diagnose",
        "tools.analysis",
        "tools.dsp",
        "tools.metrics",
    }
    tree = ast.parse(Path(mod.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} if node.module != "tools" else {f"tools.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    assert {n for n in names if n.startswith("tools.")} <= allowed


def test_generator_file_comes_from_the_settings(weight_env, tmp_path):
    """MIXPILOT_OPGAN_WEIGHTS is read by Settings (never by the tool) and reaches restore through the
    installed weight sources."""
    from tools.restore import DEFAULT_WEIGHTS, weights_path

    weight_env(MIXPILOT_OPGAN_WEIGHTS=None)
    assert weights_path() == DEFAULT_WEIGHTS
    weight_env(MIXPILOT_OPGAN_WEIGHTS=str(tmp_path / "generator_fp16.pt"))
    assert weights_path() == tmp_path / "generator_fp16.pt"
