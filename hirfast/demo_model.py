"""The embedded demo's world: tasks that can only be met by reading them, their tokenizer, a tiny
Llama, and its warm start. Nothing is downloaded.

**Tasks.** A query ("Write about the castle.") and exactly 3 of 5 constraints, each of which is met
or not depending on a value written in the instruction: the phrase to end with (one of 6), a word
to include and a word to avoid (from one pool of 8), the exact number of bullet points (1-4), and a
length bound (fewer than / at least N words). No fixed answer meets many tasks: the best constant
answer's held-out ILA is printed by the demo (under 0.1), against 1.0 for the oracle
answers. The constraint texts are short and templated ("Include pepper.", "Avoid anchor.", "Close
with Hope this helps.", "Use exactly 2 bullet points.", "Use at least 30 words."), and the word
just before each value differs between types, so that a 2-layer model can find the value by
looking one token back.

**Tokenizer.** Word-level over GPT-2's byte-level pre-tokenization (exact decoding), with a
vocabulary built on the fly. Every value a constraint names (keyword, end phrase) is written after a
space both in the instruction and in the answers, so it is the same token in both: copying it is
a plain attention copy (``value_token_ids`` lets a test check this).

**Answers.** Short templates: bullet lines ("* road and hill") first, then 1-4 sentences ("The
castle sees the road near the pepper."), then the end phrase after a space on the last line. The
warm-start corpus follows each listed constraint with probability ``follow_prob`` and otherwise
behaves at random, as it does for unlisted rules (another keyword, phrase, count or length, or by
chance the right one): the only way to tell right from wrong is to read the instruction.
"""
from __future__ import annotations

import math
import random
import re
from typing import Sequence

import torch

from .constraints import Constraint, Task

__all__ = ["DEMO_IDS", "demo_tasks", "sample_response", "oracle_response", "constant_answers",
           "build_tokenizer", "build_model", "warm_start", "value_token_ids", "CHAT_TEMPLATE",
           "SPECIAL_TOKENS"]

TOPICS = ("castle", "river", "garden", "robot", "forest", "ocean", "market", "dragon", "violin",
          "comet", "island", "tiger", "bridge", "candle", "desert", "village")
NOUNS = ("path", "light", "song", "door", "stone", "wind", "bird", "road", "tree", "boat",
         "hill", "star")
VERBS = ("sees", "finds", "keeps", "meets", "hears", "follows", "guards", "paints", "holds", "greets")
KEYWORDS = ("lantern", "harvest", "compass", "thunder", "velvet", "anchor", "pepper", "glacier",
            "meadow", "saddle", "ember", "marble")
END_PHRASES = ("Any other questions?", "Is there anything else I can help with?",
               "Hope this helps.", "That is all for now.", "Thank you for reading.", "Have a nice day.")
MAX_BULLETS = 4
# Short answers have at most 28 words (4 bullets, one sentence with a keyword, the longest end
# phrase) and long ones at least 38, so every bound is met by one of the two and never by both.
WORD_BOUNDS = (("less than", 30), ("less than", 34), ("at least", 30), ("at least", 34))
LONG_ANSWER_WORDS = 38
QUERY = "Write about the {t}."

DEMO_IDS = (
    "startend:end_checker",
    "keywords:existence",
    "keywords:forbidden_words",
    "detectable_format:number_bullet_lists",
    "length_constraints:number_words",
)
CONSTRAINTS_PER_TASK = 3

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ("<|pad|>", "<|unk|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>")


# --- tasks ----------------------------------------------------------------------------------------

def _constraint(instruction_id: str, rng: random.Random, used: set[str]) -> Constraint:
    """One constraint with its value drawn from ``rng`` and a short text naming the value."""
    if instruction_id == "startend:end_checker":
        phrase = rng.choice(END_PHRASES)
        return Constraint.from_spec(instruction_id, {"end_phrase": phrase}, f"Close with {phrase}")
    if instruction_id in ("keywords:existence", "keywords:forbidden_words"):
        word = rng.choice([k for k in KEYWORDS if k not in used])
        used.add(word)
        if instruction_id == "keywords:existence":
            return Constraint.from_spec(instruction_id, {"keywords": [word]}, f"Include {word}.")
        return Constraint.from_spec(instruction_id, {"forbidden_words": [word]}, f"Avoid {word}.")
    if instruction_id == "detectable_format:number_bullet_lists":
        n = rng.randint(1, MAX_BULLETS)
        return Constraint.from_spec(instruction_id, {"num_bullets": n},
                                    f"Use exactly {n} bullet points.")
    if instruction_id == "length_constraints:number_words":
        relation, n = rng.choice(WORD_BOUNDS)
        text = f"Use {'fewer than' if relation == 'less than' else 'at least'} {n} words."
        return Constraint.from_spec(instruction_id, {"relation": relation, "num_words": n}, text)
    raise ValueError(f"the demo world has no constraint {instruction_id!r}")


def demo_tasks(n: int, *, seed: int, available_ids: Sequence[str] | None = None,
               key_prefix: str = "demo", constraints: int | tuple[int, int] = CONSTRAINTS_PER_TASK
               ) -> list[Task]:
    """``n`` demo tasks, deterministic in ``seed``: a query and ``constraints`` (a count or an
    inclusive range) distinct constraints from ``DEMO_IDS`` (those in ``available_ids``)."""
    ids = [i for i in DEMO_IDS if available_ids is None or i in set(available_ids)]
    low, high = (constraints, constraints) if isinstance(constraints, int) else constraints
    if len(ids) < high:
        raise ValueError(f"the demo needs {high} constraint types; the checker knows {ids}")
    rng = random.Random(seed)
    tasks = []
    for t in range(n):
        chosen = rng.sample(ids, rng.randint(low, high))
        chosen.sort(key=DEMO_IDS.index)
        used: set[str] = set()
        cs = tuple(_constraint(i, rng, used) for i in chosen)
        tasks.append(Task(query=QUERY.format(t=rng.choice(TOPICS)), constraints=cs,
                          key=f"{key_prefix}-{seed}-{t}", source="synthetic"))
    return tasks


# --- answers --------------------------------------------------------------------------------------

def _topic_of(task: Task) -> str:
    return next((t for t in TOPICS if f" {t}." in task.query), TOPICS[0])


def _count_words(text: str) -> int:
    return len(re.findall(r"\w+", text))  # IFEval's count_words (nltk's RegexpTokenizer(r"\w+"))


def _answer(rng: random.Random, topic: str, *, keywords: Sequence[str], bullets: int,
            end_phrase: str | None, long: bool | None) -> str:
    """Bullets, then sentences (keywords ride in them: "... near the pepper."), then the end
    phrase after a space. ``long``: sentences added up to ``LONG_ANSWER_WORDS`` words (True), one
    sentence per keyword or a single one (False), either at random (None)."""
    lines = [f"* {rng.choice(NOUNS)} and {rng.choice(NOUNS)}" for _ in range(bullets)]

    def sentence(keyword: str | None) -> str:
        s = f"The {topic} {rng.choice(VERBS)} the {rng.choice(NOUNS)}"
        return s + (f" near the {keyword}." if keyword else ".")

    body = [sentence(k) for k in keywords] or [sentence(None)]
    tail = f" {end_phrase}" if end_phrase else ""

    def text() -> str:
        return "\n".join(lines + [" ".join(body) + tail])

    if long is None:
        long = rng.random() < 0.5
    while long and _count_words(text()) < LONG_ANSWER_WORDS:
        body.append(sentence(None))
    return text()


def _behaviour(task: Task, rng: random.Random, follow_prob: float) -> dict:
    """What an answer to ``task`` does: each listed constraint is followed with ``follow_prob``;
    otherwise, and for everything unlisted, the behaviour is drawn at random (it may meet the
    constraint by chance). Drawing at random rather than always breaking the rule keeps the
    instruction informative about two-valued rules (length) at any ``follow_prob``."""
    listed = {c.instruction_id: c.kwargs for c in task.constraints}
    forbidden = set(listed.get("keywords:forbidden_words", {}).get("forbidden_words", []))
    follows = {iid for iid in listed if rng.random() < follow_prob}
    b = {"keywords": [], "bullets": rng.randint(0, MAX_BULLETS),
         "end_phrase": rng.choice(END_PHRASES + (None,)), "long": None}
    if rng.random() < 0.5:
        b["keywords"].append(rng.choice(KEYWORDS))
    for iid in follows:
        kw = listed[iid]
        if iid == "startend:end_checker":
            b["end_phrase"] = kw["end_phrase"]
        elif iid == "detectable_format:number_bullet_lists":
            b["bullets"] = kw["num_bullets"]
        elif iid == "length_constraints:number_words":
            b["long"] = kw["relation"] == "at least"
        elif iid == "keywords:existence":
            b["keywords"] = [k for k in b["keywords"] if k not in kw["keywords"]] + list(kw["keywords"])
    if "keywords:forbidden_words" in follows:
        b["keywords"] = [k for k in b["keywords"] if k not in forbidden]
    if b["long"] is False:  # a short answer carries one keyword at most
        b["keywords"] = b["keywords"][-1:]
    return b


def sample_response(rng: random.Random, task: Task, follow_prob: float) -> str:
    """One warm-start answer to ``task`` (see the module docstring)."""
    b = _behaviour(task, rng, follow_prob)
    return _answer(rng, _topic_of(task), keywords=b["keywords"], bullets=b["bullets"],
                   end_phrase=b["end_phrase"], long=b["long"])


def oracle_response(rng: random.Random, task: Task) -> str:
    """An answer that follows every constraint of ``task`` (the oracle of the demo's report)."""
    return sample_response(rng, task, 1.0)


def constant_answers() -> list[str]:
    """Candidate fixed answers for the not-reading ceiling: every combination of up to two
    keywords, bullet count, end phrase (or none) and length. Whether an answer meets a demo task
    depends only on which keywords it holds, its bullet count, its ending and its word count, so
    the best of these stands for the best constant answer."""
    from itertools import combinations

    out = []
    rng = random.Random(0)
    keyword_sets = [()] + [(k,) for k in KEYWORDS] + list(combinations(KEYWORDS, 2))
    for kws in keyword_sets:
        for bullets in range(MAX_BULLETS + 1):
            for end in (None,) + END_PHRASES:
                for long in (False, True):
                    out.append(_answer(rng, TOPICS[0], keywords=kws, bullets=bullets,
                                       end_phrase=end, long=long))
    return out


# --- tokenizer and model --------------------------------------------------------------------------

def build_tokenizer(texts: Sequence[str]):
    """A word-level tokenizer (exact decoding) whose vocabulary is every piece of ``texts``,
    with the demo's chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    pieces = set()
    for text in texts:
        pieces.update(p for p, _ in pre.pre_tokenize_str(text))
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for p in sorted(pieces):
        vocab.setdefault(p, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", unk_token="<|unk|>",
                                   eos_token="<|end|>", chat_template=CHAT_TEMPLATE)


def value_token_ids(tokenizer, value: str) -> list[int]:
    """The ids of a constraint value as it is written after a space (in instructions and answers)."""
    return tokenizer(" " + value, add_special_tokens=False)["input_ids"]


def build_model(tokenizer, *, seed: int, hidden_size: int = 64, layers: int = 2, heads: int = 4,
                intermediate_size: int | None = None):
    """A tiny Llama (loadable with ``AutoModelForCausalLM``) for ``tokenizer``'s vocabulary; the
    MLP is ``4 * hidden_size`` wide unless ``intermediate_size`` says otherwise."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=512, tie_word_embeddings=True, rms_norm_eps=1e-5,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def chat_prompt_ids(tokenizer, instruction: str) -> list[int]:
    text = tokenizer.apply_chat_template([{"role": "user", "content": instruction}],
                                         add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def warm_start(model, tokenizer, pairs: Sequence[tuple[str, str]], *, steps: int, batch_size: int,
               lr: float, seed: int, log_every: int = 0, log=None, rank: int = 0,
               world: int = 1) -> list[float]:
    """Supervised warm start on ``(instruction, answer)`` pairs: next-token loss on the answer
    (and its end token) only, averaged over the batch's answer tokens; AdamW with cosine decay.
    Returns the loss of every step.

    With ``world > 1`` (``torch.distributed`` initialized, one process per rank) every rank draws
    the same batch and computes the rows ``rank::world`` of it, longest first (so that the ranks
    pad to similar widths); one all-reduce per step sums the gradients, the loss and the token
    count, so every rank takes the same step on the same gradient as one process would (up to
    the order of float additions)."""
    import torch.nn.functional as F

    rows = []
    for instruction, answer in pairs:
        prompt = chat_prompt_ids(tokenizer, instruction)
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((prompt, answer_ids))
    gen = random.Random(seed)
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 20) * 0.5 * (1 + math.cos(math.pi * i / steps)))
    model.train()
    losses = []
    for step in range(steps):
        batch = gen.sample(rows, batch_size)  # the same draw on every rank
        mine = sorted(batch, key=lambda r: -(len(r[0]) + len(r[1])))[rank::world]
        for p in params:
            p.grad = torch.zeros_like(p)
        ce_sum, count = torch.zeros(()), torch.zeros(())
        if mine:
            width = max(len(p) + len(a) for p, a in mine)
            ids = torch.full((len(mine), width), tokenizer.pad_token_id)
            labels = torch.full((len(mine), width), -100)
            attn = torch.zeros((len(mine), width), dtype=torch.long)
            for i, (p, a) in enumerate(mine):
                ids[i, :len(p) + len(a)] = torch.tensor(p + a)
                labels[i, len(p):len(p) + len(a)] = torch.tensor(a)
                attn[i, :len(p) + len(a)] = 1
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
            targets = labels[:, 1:]
            ce_sum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                     ignore_index=-100, reduction="sum")
            count = (targets != -100).sum().float()
            ce_sum.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in params] + [ce_sum.detach().reshape(1), count.reshape(1)])
        if world > 1:
            torch.distributed.all_reduce(flat)
        total = flat[-1].clamp(min=1.0)
        offset = 0
        for p in params:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p)).div_(total)
            offset += p.numel()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(float(flat[-2] / total))
        if log and log_every and (step + 1) % log_every == 0:
            tail = losses[-log_every:]
            log(f"  warm start step {step + 1}/{steps}: loss {sum(tail) / len(tail):.3f}")
    model.eval()
    return losses
