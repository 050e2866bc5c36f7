from tests.mixhelpers import pink
from tools import dsp
from tools.audio import Audio, load
from tools.loudness import integrated_lufs
from tools.registry import ToolContext, get_tool

rm = get_tool("reference_match")


def test_moves_spectrum_loudness_and_width_toward_reference():
    sr = 48000
    x = pink(4.0, sr, 2, seed=1, amp=0.03)
    x[1] = 0.9 * x[0] + 0.1 * x[1]  # narrow
    ref = pink(4.0, sr, 2, seed=2, amp=0.1)
    ref = dsp.apply_sos(ref, dsp.biquad("high_shelf", 3000, sr, 8, 0.707))
    a, r = Audio(x, sr), Audio(ref, sr)
    out = rm(a, {"intensity": 1.0}, ToolContext(inputs={"reference": r}))
    y = out.audio.samples
    t_in, t_ref, t_out = (dsp.spectral_tilt_db_per_octave(z, sr) for z in (x, ref, y))
    assert abs(t_out - t_ref) < abs(t_in - t_ref) * 0.5
    l_in, l_ref = integrated_lufs(a), integrated_lufs(r)
    assert abs(integrated_lufs(out.audio) - l_ref) < abs(l_in - l_ref) / 2
    assert dsp.stereo_correlation(y) < dsp.stereo_correlation(x)
    half = rm(
        a,
        {"intensity": 0.5, "match_loudness": False, "match_width": False},
        ToolContext(inputs={"reference": r}),
    ).audio
    t_half = dsp.spectral_tilt_db_per_octave(half.samples, sr)
    assert t_in < t_half < t_out
    assert abs(integrated_lufs(half) - integrated_lufs(a)) < 2.0  # EQ only, no loudness matching


def test_real_reference(shared_fixtures):
    a = load(shared_fixtures / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac")
    r = load(shared_fixtures / "music" / "Karissa_Hobbs_-_Lets_Go_Fishin.flac")
    a = a.with_samples(a.samples[:, : 10 * a.sample_rate])
    out = rm(a, {}, ToolContext(inputs={"reference": r}))
    sr = a.sample_rate
    t_in, t_ref, t_out = (dsp.spectral_tilt_db_per_octave(z.samples, sr) for z in (a, r, out.audio))
    assert abs(t_out - t_ref) < abs(t_in - t_ref)
    from tools.loudness import true_peak_dbtp

    assert true_peak_dbtp(out.audio) <= -0.9
