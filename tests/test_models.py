"""hirfast.models without a model: how a GGUF path is recognized and how a bad one is reported
(the real GGUF file is loaded in tests/test_real_model.py)."""
import pytest

from hirfast import cli, models


@pytest.mark.parametrize("name, expected", [
    ("model.gguf", True), ("/a/b/SmolLM2-135M-Instruct.Q4_1.GGUF", True),
    ("Qwen/Qwen2.5-0.5B-Instruct", False), ("runs/x/checkpoints/step-00000002", False),
    ("model.gguf.d", False),
])
def test_a_gguf_file_is_told_by_its_suffix(name, expected):
    assert models.is_gguf(name) is expected


def test_a_missing_gguf_file_is_named(tmp_path):
    path = tmp_path / "missing.gguf"
    with pytest.raises(FileNotFoundError, match="missing.gguf: no such GGUF file"):
        models.load_causal_lm(path)
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        models.load_tokenizer(path)


def test_a_bad_dtype_is_named():
    with pytest.raises(ValueError, match="'float33' is not a torch dtype"):
        models.load_causal_lm("x.gguf", dtype="float33")


@pytest.mark.parametrize("command", [
    ["eval", "--bench", "ifeval", "--limit", "1"],
    ["train", "--steps", "1", "--progress", "false"],
])
def test_the_commands_report_a_missing_gguf_file(tmp_path, capsys, command):
    path = tmp_path / "nothing-here.gguf"
    code = cli.main(command + ["--model", str(path), "--out", str(tmp_path / "out")])
    assert code != 0
    assert f"{path}: no such GGUF file" in capsys.readouterr().err
