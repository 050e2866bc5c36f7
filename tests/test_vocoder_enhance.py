"""vocoder_enhance: weight resolution, availability, and the Vocos plumbing with random weights.

No mock: a real Vocos is built from the published config of charactr/vocos-mel-24khz, its
randomly initialised state dict is saved as pytorch_model.bin in a temp folder, and the
tool loads it through MIXPILOT_VOCOS_DIR (read by `app.settings.Settings`, installed as the weight
sources) exactly as it would load the published weights.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tests.conftest import sine
from tools.audio import Audio

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

# config.yaml as published in charactr/vocos-mel-24khz
PUBLISHED_CONFIG = """\
feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args:
    sample_rate: 24000
    n_fft: 1024
    hop_length: 256
    n_mels: 100
    padding: center

backbone:
  class_path: vocos.models.VocosBackbone
  init_args:
    input_channels: 100
    dim: 512
    intermediate_dim: 1536
    num_layers: 8

head:
  class_path: vocos.heads.ISTFTHead
  init_args:
    dim: 512
    n_fft: 1024
    hop_length: 256
    padding: same
"""


@pytest.fixture(scope="module")
def vocos_dir(tmp_path_factory):
    from models.vocos import Vocos

    d = tmp_path_factory.mktemp("vocos")
    (d / "config.yaml").write_text(PUBLISHED_CONFIG)
    torch.manual_seed(0)
    model = Vocos.from_config(yaml.safe_load(PUBLISHED_CONFIG))
    torch.save(model.state_dict(), d / "pytorch_model.bin")
    return d


@pytest.fixture()
def no_vocos(weight_env, tmp_path):
    weight_env(MIXPILOT_VOCOS_DIR=None, HF_HUB_CACHE=str(tmp_path / "empty-hf-cache"))


def test_unavailable_without_weights_says_why(no_vocos):
    from tools.registry import Registry, ToolUnavailable

    spec = Registry()["vocoder_enhance"]
    ok, why = spec.availability()
    assert ok is False
    assert "MIXPILOT_VOCOS_DIR" in why and "charactr/vocos-mel-24khz" in why
    assert spec.describe()["available"] is False
    with pytest.raises(ToolUnavailable, match="MIXPILOT_VOCOS_DIR"):
        spec(Audio(sine(440, 0.2, 24000), 24000))


def test_incomplete_folder_is_reported(weight_env, tmp_path):
    (tmp_path / "config.yaml").write_text(PUBLISHED_CONFIG)
    weight_env(MIXPILOT_VOCOS_DIR=str(tmp_path))
    from tools.vocoder_enhance import check_available

    ok, why = check_available()
    assert not ok and "pytorch_model.bin" in why


def test_found_in_hf_cache(weight_env, tmp_path, vocos_dir):
    snap = tmp_path / "models--charactr--vocos-mel-24khz" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    for f in ("config.yaml", "pytorch_model.bin"):
        (snap / f).symlink_to(vocos_dir / f)
    weight_env(MIXPILOT_VOCOS_DIR=None, HF_HUB_CACHE=str(tmp_path))
    from models.weights import find_vocos

    assert find_vocos() == snap


def test_mismatched_weights_raise_model_loading_error(tmp_path, vocos_dir):
    from models.vocos import load_vocos
    from models.weights import ModelLoadingError

    (tmp_path / "config.yaml").write_text(PUBLISHED_CONFIG.replace("num_layers: 8", "num_layers: 4"))
    (tmp_path / "pytorch_model.bin").symlink_to(vocos_dir / "pytorch_model.bin")
    with pytest.raises(ModelLoadingError, match="does not match"):
        load_vocos(tmp_path)


def test_mel_matches_published_shape_and_filterbank(vocos_dir):
    from models.vocos import load_vocos, melscale_fbanks

    model = load_vocos(vocos_dir)
    fb = melscale_fbanks(513, 0.0, 12000.0, 100, 24000)
    assert fb.shape == (513, 100)
    # triangular HTK filters: each filter peaks at ≤ 1 and every filter has some support
    assert torch.all(fb.max(dim=0).values > 0) and float(fb.max()) <= 1.0 + 1e-6
    x = torch.from_numpy(sine(440, 1.0, 24000))
    mel = model.feature_extractor(x)
    assert mel.shape == (1, 100, 24000 // 256 + 1)
    # the 440 Hz tone lands in the mel band whose centre is nearest 440 Hz
    centres = 700.0 * (10 ** (torch.linspace(0, 2595 * np.log10(1 + 12000 / 700), 102)[1:-1] / 2595) - 1)
    assert abs(float(centres[int(mel[0, :, 20].argmax())]) - 440.0) < 60.0


@pytest.mark.parametrize("sr,channels", [(24000, 1), (44100, 2), (16000, 1)])
def test_tool_runs_with_random_weights(weight_env, vocos_dir, sr, channels):
    weight_env(MIXPILOT_VOCOS_DIR=str(vocos_dir))
    from tools.registry import Registry

    spec = Registry()["vocoder_enhance"]
    assert spec.availability() == (True, "")
    x = sine(220, 0.7, sr, amp=0.3, channels=channels) + 0.01 * np.random.default_rng(0).standard_normal(
        (channels, int(0.7 * sr))
    ).astype(np.float32)
    audio = Audio(x, sr)
    before = audio.samples.copy()
    res = spec(audio, {"amount": 1.0})
    out = res.audio
    assert out.sample_rate == sr and out.samples.shape == audio.samples.shape
    assert np.isfinite(out.samples).all()
    assert np.array_equal(audio.samples, before)  # input untouched
    assert res.report["model"] == "vocos-mel" and res.report["vocoder_sample_rate"] == 24000
    # random weights re-synthesise something, not the input
    assert res.report["difference_db"] > -20.0
    if sr == 16000:
        assert any("bandwidth_extension" in w for w in res.warnings)
    if sr > 24000:
        assert res.report["kept_original_above_hz"] == 11500.0
    # amount 0 is the identity, amount 0.5 is halfway
    assert np.array_equal(spec(audio, {"amount": 0.0}).audio.samples, audio.samples)
    half = spec(audio, {"amount": 0.5}).audio.samples
    np.testing.assert_allclose(half, 0.5 * (out.samples + audio.samples), atol=1e-4)


def test_parity_with_vocos_package(vocos_dir):
    """Where the upstream `vocos` package imports (it needs a working torchaudio), outputs agree."""
    try:
        vocos_pkg = importlib.import_module("vocos")
    except Exception as exc:  # ImportError, or OSError from a CUDA torchaudio beside CPU torch
        pytest.skip(f"vocos package not importable here ({type(exc).__name__})")
    from models.vocos import load_vocos

    ours = load_vocos(vocos_dir)
    theirs = vocos_pkg.Vocos.from_hparams(str(vocos_dir / "config.yaml"))
    theirs.load_state_dict(torch.load(vocos_dir / "pytorch_model.bin", map_location="cpu"))
    theirs.eval()
    x = torch.from_numpy(sine(330, 0.5, 24000))
    np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), atol=1e-4)
