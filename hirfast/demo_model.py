"""The embedded demo's world: a tiny language, its tokenizer, a tiny Llama, and its warm start.

Nothing is downloaded. The language is a small vocabulary of English words arranged by a
generator into short answers that may or may not carry a title, commas, quotes, a postscript, an
end phrase, keywords, bullet points, highlights and placeholders: the behaviours the demo's
constraints (IFEval ids) check. The warm-start corpus pairs rendered tasks with answers that follow
each listed constraint only with probability ``follow_prob`` and otherwise behave at random, so the
warm model knows every behaviour but follows instructions only loosely: meeting all of a task's 3-5
constraints is rare at the start, which is the regime hindsight replay is for.

The tokenizer is word-level over GPT-2's byte-level pre-tokenization (so decoding is exact), with
a vocabulary of every piece the generator can produce, built on the fly.
"""
from __future__ import annotations

import math
import random
import re
from typing import Sequence

import torch

from .constraints import SyntheticSpec, Task, generate_tasks

__all__ = ["DEMO_SPEC", "demo_tasks", "sample_response", "build_tokenizer", "build_model",
           "warm_start", "CHAT_TEMPLATE"]

TOPICS = ("castle", "river", "garden", "robot", "forest", "ocean", "market", "dragon", "violin",
          "comet", "island", "tiger", "bridge", "candle", "desert", "village")
NOUNS = ("path", "light", "song", "door", "stone", "wind", "bird", "road", "tree", "boat",
         "hill", "star")
VERBS = ("sees", "finds", "keeps", "meets", "hears", "follows", "guards", "paints", "holds", "greets")
ADJECTIVES = ("calm", "bright", "old", "quiet", "golden", "small", "wild", "gentle", "warm", "deep")
KEYWORDS = ("lantern", "harvest", "compass", "thunder", "velvet", "anchor", "pepper", "glacier")
PLACEHOLDERS = ("[name]", "[place]", "[date]", "[time]")
QUERY_TEMPLATES = ("Write about the {t}.", "Describe the {t}.", "Tell me a story about the {t}.",
                   "Explain the {t}.")
END_PHRASES = ("Any other questions?", "Is there anything else I can help with?")
POSTSCRIPT_MARKERS = ("P.S.", "P.P.S")

DEMO_IDS = (
    "punctuation:no_comma",
    "detectable_format:title",
    "startend:quotation",
    "detectable_content:postscript",
    "startend:end_checker",
    "keywords:existence",
    "keywords:forbidden_words",
    "length_constraints:number_words",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_content:number_placeholders",
)

DEMO_SPEC = SyntheticSpec(
    instruction_ids=DEMO_IDS,
    queries=tuple(q.format(t=t) for t in TOPICS for q in QUERY_TEMPLATES),
    keywords=KEYWORDS,
    min_constraints=3,
    max_constraints=5,
    word_counts=(16, 28),
    bullet_counts=(1, 3),
    highlight_counts=(1, 2),
    placeholder_counts=(1, 2),
    existence_keywords=(1, 1),
    forbidden_keywords=(1, 1),
    end_phrases=END_PHRASES,
    postscript_markers=POSTSCRIPT_MARKERS,
)

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ("<|pad|>", "<|unk|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>")


def demo_tasks(n: int, *, seed: int, available_ids: Sequence[str] | None = None,
               key_prefix: str = "demo") -> list[Task]:
    """``n`` demo tasks (3-5 constraints each) from the demo's spec."""
    return generate_tasks(n, seed=seed, spec=DEMO_SPEC, available_ids=available_ids,
                          key_prefix=key_prefix)


def _topic_of(task: Task) -> str:
    return next((t for t in TOPICS if t in task.query), TOPICS[0])


def sample_response(rng: random.Random, task: Task, follow_prob: float) -> str:
    """One warm-start answer to ``task``: each of its constraints is deliberately met with
    probability ``follow_prob``; everything else is drawn at random."""
    follow = {c.instruction_id: c.kwargs for c in task.constraints if rng.random() < follow_prob}
    topic = _topic_of(task)
    forbidden = set(follow.get("keywords:forbidden_words", {}).get("forbidden_words", []))

    commas = rng.random() < 0.5 and "punctuation:no_comma" not in follow
    title = "detectable_format:title" in follow or rng.random() < 0.35
    quote = "startend:quotation" in follow or rng.random() < 0.25
    if "detectable_content:postscript" in follow:
        postscript = follow["detectable_content:postscript"]["postscript_marker"]
    else:
        postscript = rng.choice(POSTSCRIPT_MARKERS) if rng.random() < 0.3 else None
    if "startend:end_checker" in follow:
        end_phrase = follow["startend:end_checker"]["end_phrase"]
    else:
        end_phrase = rng.choice(END_PHRASES) if rng.random() < 0.3 else None
    keywords = [k for k in rng.sample(KEYWORDS, rng.choice((0, 0, 1, 1, 2))) if k not in forbidden]
    for k in follow.get("keywords:existence", {}).get("keywords", []):
        if k not in keywords:
            keywords.append(k)
    bullets = follow.get("detectable_format:number_bullet_lists", {}).get(
        "num_bullets", rng.choice((0, 0, 1, 2, 3)))
    highlights = follow.get("detectable_format:number_highlighted_sections", {}).get(
        "num_highlights", rng.choice((0, 0, 1, 2)))
    placeholders = follow.get("detectable_content:number_placeholders", {}).get(
        "num_placeholders", rng.choice((0, 0, 1, 2)))
    words = follow.get("length_constraints:number_words")

    def sentence(extra: list[str]) -> str:
        s = [rng.choice(("The", "A", "This")), topic, rng.choice(VERBS), "the", rng.choice(NOUNS)]
        if commas and rng.random() < 0.7:
            s[-1] += ","
            s += ["and", "it", "is", rng.choice(ADJECTIVES)]
        s += extra
        return " ".join(s) + "."

    # Keywords, highlights and placeholders ride inside body sentences ("near the lantern").
    extras: list[list[str]] = [[f"near the {k}"] for k in keywords]
    extras += [[f"with *{rng.choice(ADJECTIVES)}* care"] for _ in range(highlights)]
    extras += [[f"at {p}"] for p in rng.sample(PLACEHOLDERS, placeholders)]
    n_sent = max(1, rng.randint(1, 3), (len(extras) + 1) // 2)
    slots: list[list[str]] = [[] for _ in range(n_sent)]
    for i, e in enumerate(extras):
        slots[i % n_sent] += e
    body = [sentence(x) for x in slots]

    def assemble(body_sentences: list[str]) -> str:
        lines = []
        if title:
            lines.append(f"<<The {topic.capitalize()} {rng.choice(NOUNS).capitalize()}>>")
        lines.append(" ".join(body_sentences))
        lines += [f"* {rng.choice(NOUNS)} and {rng.choice(NOUNS)}" for _ in range(bullets)]
        if postscript:
            lines.append(f"{postscript} The {rng.choice(NOUNS)} is {rng.choice(ADJECTIVES)}.")
        if end_phrase:
            lines.append(end_phrase)
        text = "\n".join(lines)
        return f'"{text}"' if quote else text

    text = assemble(body)
    if words:
        # Lengthen or shorten the body until the word count rule holds (or cannot).
        for _ in range(8):
            n = len(re.findall(r"\w+", text))  # IFEval's word count
            if words["relation"] == "at least" and n < words["num_words"]:
                body.append(sentence([]))
            elif words["relation"] == "less than" and n >= words["num_words"] and len(body) > 1 \
                    and not any(body[-1].count(m) for m in ("near", "*", "[")):
                body.pop()
            else:
                break
            text = assemble(body)
    return text


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


def build_model(tokenizer, *, seed: int, hidden_size: int = 64, layers: int = 2, heads: int = 4):
    """A tiny Llama (loadable with ``AutoModelForCausalLM``) for ``tokenizer``'s vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=4 * hidden_size,
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
               lr: float, seed: int) -> list[float]:
    """Supervised warm start on ``(instruction, answer)`` pairs: next-token loss on the answer
    (and its end token) only; AdamW with cosine decay. Returns the loss of every step."""
    rows = []
    for instruction, answer in pairs:
        prompt = chat_prompt_ids(tokenizer, instruction)
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((prompt, answer_ids))
    gen = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 20) * 0.5 * (1 + math.cos(math.pi * i / steps)))
    model.train()
    losses = []
    for _ in range(steps):
        batch = gen.sample(rows, batch_size)
        width = max(len(p) + len(a) for p, a in batch)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        attn = torch.zeros((batch_size, width), dtype=torch.long)
        for i, (p, a) in enumerate(batch):
            ids[i, :len(p) + len(a)] = torch.tensor(p + a)
            labels[i, len(p):len(p) + len(a)] = torch.tensor(a)
            attn[i, :len(p) + len(a)] = 1
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses
