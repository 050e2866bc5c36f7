"""The planner ⇄ tools parameter contract (notes/PARAMS.md) as pydantic models.

The validator checks a step's params against the tool's own ``Params`` model when the tool
is built and available. While a tool is still a placeholder (or cannot run here) and the
caller allows unavailable tools, params are checked against these contract models instead,
so plans stay well-formed whatever is installed. Tools may add fields; the planner only
emits the names below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _C(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _amt(default: float, what: str = "how much, 0–1") -> float:
    return Field(default, ge=0.0, le=1.0, description=what)


def _db(what: str) -> float:
    return Field(0.0, ge=-12.0, le=12.0, description=what)


Stem = Literal["vocals", "drums", "bass", "other"]


class Denoise(_C):
    strength: float = _amt(0.6)
    method: Literal["auto", "deepfilternet", "spectral"] = Field("auto", description="algorithm")


class Declip(_C):
    strength: float = _amt(0.8)


class Dereverb(_C):
    strength: float = _amt(0.5)


class Restore(_C):
    strength: float = _amt(0.7)


class BandwidthExtension(_C):
    amount: float = _amt(0.5)
    cutoff_hz: float | None = Field(None, ge=500.0, le=24000.0, description="None = detect")


class Separate(_C):
    stems: list[Stem] = Field(default_factory=lambda: ["vocals", "drums", "bass", "other"], description="stems")
    model: Literal["auto", "demucs", "dsp"] = Field("auto", description="separator")


class PitchCorrect(_C):
    key: str = Field("C", description="tonic like C, F#, Bb")
    scale: Literal["major", "minor", "chromatic"] = Field("chromatic", description="scale")
    strength: float = _amt(0.8)
    retune_ms: float = Field(50.0, ge=0.0, le=500.0, description="retune speed")


class VocoderEnhance(_C):
    amount: float = _amt(1.0, "wet 0–1")


class Band(_C):
    type: Literal["peak", "low_shelf", "high_shelf", "highpass", "lowpass"] = "peak"
    freq_hz: float = Field(1000.0, ge=10.0, le=24000.0)
    gain_db: float = Field(0.0, ge=-24.0, le=24.0)
    q: float = Field(0.707, gt=0.0, le=20.0)


class Eq(_C):
    amount: float = _amt(1.0, "scales every gain")
    bright_db: float = _db("presence/treble 3–8 kHz")
    warm_db: float = _db("100–300 Hz")
    mud_db: float = _db("200–500 Hz")
    boom_db: float = _db("80–200 Hz")
    box_db: float = _db("400–1200 Hz")
    presence_db: float = _db("2–4 kHz")
    air_db: float = _db("high shelf 10–16 kHz")
    low_cut_hz: float = Field(0.0, ge=0.0, le=300.0, description="high-pass corner, 0 = off")
    high_cut_hz: float = Field(0.0, ge=0.0, le=22000.0, description="low-pass corner, 0 = off (2000–22000)")
    bands: list[Band] = Field(default_factory=list, description="explicit bands")


class DynamicEq(_C):
    target: Literal["harsh", "mud", "boom", "resonance", "custom"] = "harsh"
    freq_hz: float | None = Field(None, ge=20.0, le=20000.0)
    q: float = Field(1.0, gt=0.0, le=20.0)
    threshold_db: float = Field(-30.0, ge=-80.0, le=0.0)
    max_cut_db: float = Field(6.0, ge=0.0, le=12.0)
    amount: float = _amt(0.5)


class DeEss(_C):
    amount: float = _amt(0.5)
    low_hz: float = Field(5000.0, ge=1000.0, le=16000.0)
    high_hz: float = Field(10000.0, ge=2000.0, le=20000.0)


class Compress(_C):
    amount: float = _amt(0.5)
    threshold_db: float | None = Field(None, ge=-60.0, le=0.0)
    ratio: float | None = Field(None, ge=1.0, le=20.0)
    attack_ms: float | None = Field(None, ge=0.1, le=500.0)
    release_ms: float | None = Field(None, ge=5.0, le=5000.0)
    knee_db: float | None = Field(None, ge=0.0, le=24.0)
    makeup_db: float | None = Field(None, ge=-12.0, le=24.0)
    mix: float = _amt(1.0, "parallel wet")


class Saturation(_C):
    amount: float = _amt(0.3)


class Sidechain(_C):
    depth_db: float = Field(6.0, ge=0.0, le=24.0)
    attack_ms: float | None = Field(None, ge=0.1, le=500.0)
    release_ms: float | None = Field(None, ge=5.0, le=5000.0)
    mode: Literal["broadband", "band"] = "band"


class Mix(_C):
    vocal_offset_db: float = Field(2.0, ge=-12.0, le=12.0)
    duck_db: float = Field(3.0, ge=0.0, le=12.0)
    headroom_db: float = Field(6.0, ge=0.0, le=12.0)


class StereoWidth(_C):
    width: float = Field(1.0, ge=0.0, le=2.0, description="1 = unchanged, 0 = mono")
    bass_mono_hz: float = Field(120.0, ge=0.0, le=300.0)


class Reverb(_C):
    amount: float = _amt(0.25, "wet")
    room_size: float = _amt(0.5, "size")
    decay_s: float | None = Field(None, ge=0.05, le=20.0)
    pre_delay_ms: float | None = Field(None, ge=0.0, le=500.0)
    damping: float | None = Field(None, ge=0.0, le=1.0)
    style: Literal["room", "hall", "plate", "church", "small"] = "room"


class Delay(_C):
    time_ms: float = Field(350.0, ge=1.0, le=2000.0)
    feedback: float = Field(0.3, ge=0.0, le=0.9)
    amount: float = _amt(0.25, "wet")
    style: Literal["slapback", "echo", "ping_pong"] = "echo"


Genre = Literal["pop", "rock", "hip_hop", "edm", "rnb", "jazz", "classical", "acoustic", "lofi", "metal", "country",
                "speech"]


class GenrePreset(_C):
    genre: Genre = "pop"
    intensity: float = _amt(0.6)


class ReferenceMatch(_C):
    intensity: float = _amt(0.7)
    match_loudness: bool = True
    match_width: bool = True


Platform = Literal["spotify", "apple_music", "youtube", "amazon", "tidal", "podcast", "audiobook", "broadcast", "club"]


class Master(_C):
    target_lufs: float = Field(-14.0, ge=-30.0, le=-6.0)
    true_peak_dbtp: float = Field(-1.0, ge=-9.0, le=0.0)
    platform: Platform | None = None
    glue: float = _amt(0.0, "bus compression")


CONTRACT: dict[str, type[BaseModel]] = {
    "denoise": Denoise, "declip": Declip, "dereverb": Dereverb, "restore": Restore,
    "bandwidth_extension": BandwidthExtension, "separate": Separate, "vocoder_enhance": VocoderEnhance,
    "pitch_correct": PitchCorrect, "eq": Eq, "dynamic_eq": DynamicEq, "de_ess": DeEss, "compress": Compress,
    "saturation": Saturation, "sidechain": Sidechain, "mix": Mix, "stereo_width": StereoWidth, "reverb": Reverb,
    "delay": Delay, "genre_preset": GenrePreset, "reference_match": ReferenceMatch, "master": Master,
}
