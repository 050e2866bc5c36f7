"""What is wrong (or not) with a recording: `diagnose(audio) -> Diagnosis`.

Pure, on `Audio`, beside `tools.analysis`. Findings use a fixed vocabulary (`PROBLEMS`); each
carries a severity 0-1, plain-words evidence quoting the measured number with its unit, and the
measurements behind it. `Diagnosis.facts` holds the measurements the planner answers questions
from (keys carry their units):

    integrated_lufs, true_peak_dbtp, sample_peak_dbfs, rms_dbfs, lra_lu, plr_db, crest_db,
    noise_floor_dbfs, snr_db, hum_hz, hum_db, clipping_ratio, bandwidth_hz, spectral_centroid_hz,
    spectral_tilt_db_per_octave, stereo_correlation, stereo_width, mono_loss_db,
    speech_probability, content ("speech" | "music"), duration_s, sample_rate, channels

Levels of silence read -120; a fact that cannot be measured is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Problem = Literal["noise", "hum", "clipping", "bandlimited", "reverb", "sibilance", "muddy", "boomy", "harsh",
                  "dull", "thin", "over_compressed", "mono_compatibility", "true_peak", "loudness"]
PROBLEMS: tuple[str, ...] = ("noise", "hum", "clipping", "bandlimited", "reverb", "sibilance", "muddy", "boomy",
                             "harsh", "dull", "thin", "over_compressed", "mono_compatibility", "true_peak",
                             "loudness")
#: problems a repair tool fixes (the planner plans these only when found, or when ordered)
REPAIR_PROBLEMS: tuple[str, ...] = ("noise", "hum", "clipping", "bandlimited", "reverb")


@dataclass(frozen=True)
class Finding:
    problem: str
    severity: float  # 0-1
    evidence: str  # plain words with the measured number and unit
    measurements: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "severity": round(float(self.severity), 2), "evidence": self.evidence,
                "measurements": dict(self.measurements)}


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    facts: dict[str, Any]

    def has(self, problem: str) -> bool:
        return any(f.problem == problem for f in self.findings)

    def get(self, problem: str) -> Finding | None:
        return next((f for f in self.findings if f.problem == problem), None)

    @property
    def repairs(self) -> list[Finding]:
        return [f for f in self.findings if f.problem in REPAIR_PROBLEMS]

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings], "facts": dict(self.facts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        findings = tuple(Finding(problem=str(f["problem"]), severity=float(f["severity"]),
                                 evidence=str(f.get("evidence", "")), measurements=dict(f.get("measurements") or {}))
                         for f in data.get("findings") or [])
        return cls(findings=findings, facts=dict(data.get("facts") or {}))
