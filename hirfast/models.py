"""Loading models and tokenizers: one place for `hirfast eval`, `hirfast train` and the reference.

`name` is what the user gives as `--model`: a Hugging Face hub name, a local checkpoint directory,
or a GGUF file (a path ending in `.gguf`, e.g. a llama.cpp export or the file inside a registry
package). A GGUF file is read by transformers (`from_pretrained(dir, gguf_file=...)`, which needs
the `gguf` package; the weights are dequantized to the dtype asked for). Transformers keeps a
quantization entry in the config of such a model and refuses to `save_pretrained` it, so hirfast
copies its weights into a plain model built from the same config: that model trains, saves and
reloads as an ordinary Hugging Face checkpoint (`AutoModelForCausalLM.from_pretrained(dir)`).

`convert_gguf(path, out_dir)` writes that checkpoint (weights, config, tokenizer with its chat
template) once, for callers that load the same GGUF many times (a GGUF is dequantized in Python at
every load: ~30 s for a 135M model on 2 CPU cores, against ~1 s for the converted directory).
"""
from __future__ import annotations

import os
import shutil

GGUF_SUFFIX = ".gguf"


def is_gguf(name) -> bool:
    """True when `name` names a GGUF file (by its suffix; it need not exist yet)."""
    return str(name).lower().endswith(GGUF_SUFFIX)


def _gguf_parts(path) -> tuple[str, str]:
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such GGUF file")
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError as e:
        raise ImportError(f"{path}: reading a GGUF file needs the `gguf` package "
                          "(pip install gguf)") from e
    return os.path.dirname(path), os.path.basename(path)


def _torch_dtype(dtype):
    import torch

    if isinstance(dtype, str):
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"dtype {dtype!r} is not a torch dtype (float32, bfloat16, float16)")
        return value
    return dtype


def _plain_config(config):
    """A copy of `config` without the GGUF quantization entry (the weights are dequantized)."""
    config = config.__class__.from_dict(config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def load_causal_lm(name, *, dtype="float32"):
    """The causal LM `name` (hub name, directory or GGUF file) in `dtype`, on the CPU.

    From a GGUF file the result is a plain transformers model (no quantizer attached): its
    `save_pretrained` writes an ordinary checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    dtype = _torch_dtype(dtype)
    if not is_gguf(name):
        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
    folder, filename = _gguf_parts(name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=dtype)
    config = _plain_config(loaded.config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    # assign=True takes the loaded tensors as they are (no copy into meta storage); ties are then
    # re-made so that a tied lm_head is again the embedding matrix.
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False, assign=True)
    model.tie_weights()
    missing = [k for k in missing if not _is_tied(model, k)]
    if missing or unexpected:
        raise ValueError(f"{name}: the GGUF weights do not match a {type(model).__name__}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    for buffer_name, buffer in loaded.named_buffers():  # e.g. RoPE inverse frequencies
        _set_buffer(model, buffer_name, buffer)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"{name}: no weights in the GGUF file for {left[:5]}")
    if getattr(loaded, "generation_config", None) is not None:
        model.generation_config = GenerationConfig.from_dict(loaded.generation_config.to_dict())
    del loaded
    return model.eval()


def _is_tied(model, key: str) -> bool:
    # A key missing from the GGUF state dict is fine only if it is a tied lm_head now holding the
    # embedding weights.
    if not getattr(model.config, "tie_word_embeddings", False):
        return False
    output = model.get_output_embeddings()
    return output is not None and key.endswith("weight") and \
        output.weight is model.get_input_embeddings().weight


def _set_buffer(model, name: str, value) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    module._buffers[attr] = value


def load_tokenizer(name, tokenizer: str | None = None):
    """The tokenizer of `tokenizer` if given, else of `name` (hub name, directory or GGUF file,
    whose tokenizer and chat template are read from the file's metadata)."""
    from transformers import AutoTokenizer

    source = tokenizer or name
    if is_gguf(source):
        folder, filename = _gguf_parts(source)
        return AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    return AutoTokenizer.from_pretrained(source)


def load(name, *, dtype="float32", tokenizer: str | None = None):
    """`(tokenizer, model)`; see `load_causal_lm` and `load_tokenizer`."""
    return load_tokenizer(name, tokenizer), load_causal_lm(name, dtype=dtype)


def convert_gguf(path, out_dir, *, dtype="float32") -> str:
    """Write the GGUF file `path` as a Hugging Face checkpoint directory `out_dir` (model, config,
    generation config, tokenizer with its chat template) and return `out_dir`. The directory is
    written under a temporary name and renamed, so a half-written one is never left at `out_dir`."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    tokenizer, model = load(path, dtype=dtype)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(out_dir)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
