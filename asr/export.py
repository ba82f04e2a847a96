"""CTranslate2 Whisper weights → an openai-whisper checkpoint, so both engines run the same weights.

CTranslate2's model.bin: a version, the spec name and revision, then each variable as (name, rank, dims,
dtype, byte count, bytes), then aliases. The Whisper spec fuses the self-attention Q, K and V projections
(and the cross-attention K and V) into one matrix, keeps a zero bias for K, and ties the output projection
to the token embedding; openai-whisper has them apart and no K bias.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class ExportError(Exception):
    pass


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ExportError("model.bin ends early")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO) -> str:
    return f.read(_read(f, "<H")).rstrip(b"\0").decode()


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model.bin (float16/float32 weights; int8-quantized ones refused)."""
    out: dict[str, np.ndarray] = {}
    with path.open("rb") as f:
        version = _read(f, "<I")
        if version < 4:
            raise ExportError(f"unsupported CTranslate2 model version {version}")
        spec = _string(f)
        _read(f, "<I")  # spec revision
        if spec != "WhisperSpec":
            raise ExportError(f"{path} is a {spec}, not a Whisper model")
        for _ in range(_read(f, "<I")):
            name = _string(f)
            dims = [_read(f, "<I") for _ in range(_read(f, "<B"))]
            dtype = _read(f, "<B")
            raw = f.read(_read(f, "<I"))
            if dtype not in _DTYPES:
                raise ExportError(f"{name}: unsupported data type {dtype}")
            out[name] = np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(dims)
        for _ in range(_read(f, "<I")):
            alias, target = _string(f), _string(f)
            out[alias] = out[target]
    if out.get("encoder/layer_0/self_attention/linear_0/weight", np.zeros(0)).dtype == np.int8:
        raise ExportError("int8-quantized weights cannot be exported; use a float16 model")
    return out


def _attention(v: dict[str, np.ndarray], prefix: str, target: str, n: int, *, cross: bool) -> dict[str, np.ndarray]:
    out = {f"{target}.out.weight": v[f"{prefix}/linear_{2 if cross else 1}/weight"],
           f"{target}.out.bias": v[f"{prefix}/linear_{2 if cross else 1}/bias"]}
    if cross:
        q_w, q_b = v[f"{prefix}/linear_0/weight"], v[f"{prefix}/linear_0/bias"]
        kv_w, kv_b = v[f"{prefix}/linear_1/weight"], v[f"{prefix}/linear_1/bias"]
        k_w, v_w, v_b = kv_w[:n], kv_w[n:], kv_b[n:]
    else:
        qkv_w, qkv_b = v[f"{prefix}/linear_0/weight"], v[f"{prefix}/linear_0/bias"]
        q_w, k_w, v_w = qkv_w[:n], qkv_w[n : 2 * n], qkv_w[2 * n :]
        q_b, v_b = qkv_b[:n], qkv_b[2 * n :]
    out |= {f"{target}.query.weight": q_w, f"{target}.query.bias": q_b, f"{target}.key.weight": k_w,
            f"{target}.value.weight": v_w, f"{target}.value.bias": v_b}
    return out


def _norm(v: dict[str, np.ndarray], prefix: str, target: str) -> dict[str, np.ndarray]:
    return {f"{target}.weight": v[f"{prefix}/gamma"], f"{target}.bias": v[f"{prefix}/beta"]}


def _ffn(v: dict[str, np.ndarray], prefix: str, target: str) -> dict[str, np.ndarray]:
    out = _norm(v, f"{prefix}/layer_norm", f"{target}.mlp_ln")
    for src, dst in (("linear_0", "mlp.0"), ("linear_1", "mlp.2")):
        out[f"{target}.{dst}.weight"] = v[f"{prefix}/{src}/weight"]
        out[f"{target}.{dst}.bias"] = v[f"{prefix}/{src}/bias"]
    return out


def _count(v: dict[str, np.ndarray], side: str) -> int:
    return len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})


def to_openai(v: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """(dims, state dict) in openai-whisper's names and shapes."""
    n_state = v["encoder/conv1/weight"].shape[0]
    dims = {
        "n_mels": v["encoder/conv1/weight"].shape[1], "n_vocab": v["decoder/embeddings/weight"].shape[0],
        "n_audio_ctx": v["encoder/position_encodings/encodings"].shape[0], "n_audio_state": n_state,
        "n_audio_head": int(v["encoder/num_heads"]), "n_audio_layer": _count(v, "encoder"),
        "n_text_ctx": v["decoder/position_encodings/encodings"].shape[0], "n_text_state": n_state,
        "n_text_head": int(v["decoder/num_heads"]), "n_text_layer": _count(v, "decoder"),
    }
    sd: dict[str, np.ndarray] = {
        "encoder.conv1.weight": v["encoder/conv1/weight"], "encoder.conv1.bias": v["encoder/conv1/bias"],
        "encoder.conv2.weight": v["encoder/conv2/weight"], "encoder.conv2.bias": v["encoder/conv2/bias"],
        "encoder.positional_embedding": v["encoder/position_encodings/encodings"],
        **_norm(v, "encoder/layer_norm", "encoder.ln_post"),
        "decoder.token_embedding.weight": v["decoder/embeddings/weight"],
        "decoder.positional_embedding": v["decoder/position_encodings/encodings"],
        **_norm(v, "decoder/layer_norm", "decoder.ln"),
    }
    for i in range(dims["n_audio_layer"]):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        sd |= _attention(v, f"{src}/self_attention", f"{dst}.attn", n_state, cross=False)
        sd |= _norm(v, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln") | _ffn(v, f"{src}/ffn", dst)
    for i in range(dims["n_text_layer"]):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        sd |= _attention(v, f"{src}/self_attention", f"{dst}.attn", n_state, cross=False)
        sd |= _norm(v, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        sd |= _attention(v, f"{src}/attention", f"{dst}.cross_attn", n_state, cross=True)
        sd |= _norm(v, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln") | _ffn(v, f"{src}/ffn", dst)
    return dims, sd


def export_openai(model_dir: Path, out: Path) -> Path:
    """Write an openai-whisper checkpoint (``whisper.load_model(out)``) from a CTranslate2 directory."""
    import torch  # only this export and the openai-whisper engine need torch

    dims, state = to_openai(read_ct2(model_dir / "model.bin"))
    checkpoint = {"dims": dims, "model_state_dict": {k: torch.from_numpy(np.array(a)) for k, a in state.items()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(out)
    return out
