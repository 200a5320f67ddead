"""The Python reference checkers as a test oracle (not a test module).

The reference is Google's IFEval checkers as copied in sastpg/HIR; the PyPI package
``if-verifiable`` 0.1.2 carries the same checks except the two differences CHECKERS.md names,
which are patched in here: ``detectable_format:constrained_response`` accepts five more (Chinese)
options, and ``language:response_language`` reads langdetect's ``zh-cn`` as ``zh``. langdetect is
seeded with 0, as when the verdict files were made. An exception inside a check counts as a fail.
"""
from __future__ import annotations

import logging
import types

import langdetect
from if_verifiable.common import get_loose_transformations
from if_verifiable.ifeval import instructions_registry as ifeval_registry

langdetect.DetectorFactory.seed = 0


def _not_from_the_reference(record: logging.LogRecord) -> bool:
    return "if_verifiable" not in record.pathname


# The reference logs every undetectable text at ERROR level on the root logger; tests generate
# many. Drop those records only: raising the root logger's level would also hide the warnings of
# hirfast that other tests read with caplog.
logging.getLogger().addFilter(_not_from_the_reference)

HIR_CONSTRAINED_RESPONSE_OPTIONS = (
    "My answer is yes.", "My answer is no.", "My answer is maybe.",
    "我的答案是肯定的", "我的答案是否定的", "我的答案是可能", "我的答案是也许", "我的答案是不确定",
)


def _hir_response_language(self, value):
    try:
        lang = langdetect.detect(value)
    except langdetect.LangDetectException:
        return True
    return ("zh" if lang == "zh-cn" else lang) == self._language


def build(instruction_id: str, kwargs: dict | None, prompt: str | None = None):
    """The reference checker object, built the way the reference harness builds it."""
    inst = ifeval_registry.INSTRUCTION_DICT[instruction_id](instruction_id)
    kwargs = {k: v for k, v in (kwargs or {}).items() if v is not None}
    if instruction_id == "language:response_language":
        # build_description only formats a description from its table of language names, which
        # lacks some codes the check itself handles (e.g. "zh"); the check reads _language.
        inst._language = kwargs["language"]
    else:
        inst.build_description(**kwargs)
    args = inst.get_instruction_args()
    if args and "prompt" in args:
        inst.build_description(prompt=prompt)
    if instruction_id == "detectable_format:constrained_response":
        inst._constrained_responses = HIR_CONSTRAINED_RESPONSE_OPTIONS
    if instruction_id == "language:response_language":
        inst.check_following = types.MethodType(_hir_response_language, inst)
    return inst


def _follows(inst, text: str) -> bool:
    try:
        return bool(text.strip()) and bool(inst.check_following(text))
    except Exception:  # noqa: BLE001 - the reference harness counts an exception as a fail
        return False


def verdict(instruction_id: str, kwargs: dict | None, response: str, prompt: str | None = None,
            loose: bool = False) -> bool:
    inst = build(instruction_id, kwargs, prompt)
    if not loose:
        return _follows(inst, response)
    return any(_follows(inst, r) for r in get_loose_transformations(response))
