"""Constraints as text: descriptions, rendering, rewriting, and the synthetic task generator.

A constraint is ``(instruction_id, kwargs, text)``. :func:`describe` turns an id and its kwargs
into the sentence a model is shown, deterministically, following the wording of the reference
``build_description`` methods (Google's IFEval checkers and allenai/IFBench, as copied in
sastpg/HIR): the same kwargs always give the same text, and lists are shown as Python shows them
(``Include keywords ['a', 'b'] in the response.``). Two departures, both deterministic where the
reference draws at random: a missing kwarg the text needs is an error (the reference would pick
one at random), and integral floats (``5.0``, as IFBench rows carry them) are shown as ``5``.

:func:`render` builds the user message of a task (the query and the constraint texts, in order;
the chat template is applied by whoever tokenizes it). Rewriting for hindsight replay is the same
function applied to fewer constraints (:meth:`Task.rewritten`), so an original and its replay
differ only in the constraints dropped.

:func:`generate_tasks` draws synthetic tasks: queries x constraints with valid kwargs, no two
constraints that contradict each other, restricted to the ids the checker knows.
"""
from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

__all__ = [
    "Constraint", "Task", "ConstraintSpecError", "describe", "describable_ids", "render",
    "RENDER_STYLES", "SyntheticSpec", "generate_tasks", "sample_kwargs", "normalize_kwargs",
]


class ConstraintSpecError(ValueError):
    """A constraint's id or kwargs cannot be described: ``field`` names what was wrong."""

    def __init__(self, instruction_id: str, field: str, reason: str):
        self.instruction_id, self.field, self.reason = instruction_id, field, reason
        super().__init__(f"{instruction_id!r}, field {field!r}: {reason}")


@dataclass(frozen=True)
class Constraint:
    """One verifiable constraint: a checker id, its kwargs, and the text shown to the model."""

    instruction_id: str
    kwargs: Mapping[str, object]
    text: str

    @classmethod
    def from_spec(cls, instruction_id: str, kwargs: Mapping[str, object] | None,
                  text: str | None = None) -> "Constraint":
        """Build a constraint; ``text`` defaults to :func:`describe` of the id and kwargs."""
        kw = normalize_kwargs(kwargs)
        return cls(instruction_id, kw, describe(instruction_id, kw) if text is None else text)


@dataclass(frozen=True)
class Task:
    """A query with an ordered list of constraints.

    ``style`` is how constraint texts are joined to the query (see :data:`RENDER_STYLES`).
    ``prompt``, when set, is the instruction exactly as a data file gave it, for rows whose query
    cannot be separated from their constraint texts; such a task trains as given but cannot be
    rewritten, so it is never replayed.
    """

    query: str
    constraints: tuple[Constraint, ...]
    key: str = ""
    style: str = "newline"
    prompt: str | None = None
    source: str = ""

    @property
    def rewritable(self) -> bool:
        return self.prompt is None

    @property
    def instruction_ids(self) -> list[str]:
        return [c.instruction_id for c in self.constraints]

    @property
    def kwargs(self) -> list[dict]:
        return [dict(c.kwargs) for c in self.constraints]

    def instruction(self) -> str:
        """The user message: the data file's prompt, or the query rendered with its constraints."""
        if self.prompt is not None:
            return self.prompt
        return render(self.query, self.constraints, style=self.style)

    def rewritten(self, keep: Sequence[bool]) -> "Task":
        """The task with only the constraints where ``keep`` is true, in their order."""
        if not self.rewritable:
            raise ValueError(f"task {self.key!r} has no separable query and cannot be rewritten")
        if len(keep) != len(self.constraints):
            raise ValueError(f"keep has {len(keep)} entries for {len(self.constraints)} constraints")
        kept = tuple(c for c, k in zip(self.constraints, keep) if k)
        return dataclasses.replace(self, constraints=kept, key=f"{self.key}/replay")


# ---------------------------------------------------------------------------------------------
# Rendering

def _as_sentence(text: str) -> str:
    # The reference joins constraint texts as sentences: a period is added unless the text
    # already ends in one of these marks.
    return text if text and text[-1] in ",.?!" else text + "."


def _sentences(texts: Sequence[str]) -> str:
    return " ".join(_as_sentence(t) for t in texts)


# The six ways sastpg/HIR joins a query and its constraint texts (its q_type 1..6).
RENDER_STYLES: dict[str, Callable[[str, Sequence[str]], str]] = {
    "space": lambda q, ts: f"{q} {_sentences(ts)}",
    "newline": lambda q, ts: f"{q}\n{_sentences(ts)}",
    "rules": lambda q, ts: q + "\n\n" + "The output must follow the following rules:\n"
    + "\n".join(f"{i + 1}. {t}" for i, t in enumerate(ts)),
    "dashes": lambda q, ts: q + "\n\n" + "\n".join(f"- {t}" for t in ts),
    "prefix": lambda q, ts: f"{_sentences(ts)}\n\n{q}",
    "lines": lambda q, ts: q + "\n\n" + "\n".join(ts),
}


def render(query: str, constraints: Iterable[Constraint | str], *, style: str = "newline") -> str:
    """The user message for ``query`` with the constraints' texts, in order.

    ``style`` is one of :data:`RENDER_STYLES` (default ``"newline"``: the query, a line break,
    then the texts as sentences). With no constraints, the query alone.
    """
    if style not in RENDER_STYLES:
        raise ValueError(f"unknown render style {style!r}; expected one of {sorted(RENDER_STYLES)}")
    texts = [c.text if isinstance(c, Constraint) else c for c in constraints]
    if not texts:
        return query
    return RENDER_STYLES[style](query, texts)


# ---------------------------------------------------------------------------------------------
# Descriptions

def normalize_kwargs(kwargs: Mapping[str, object] | None) -> dict:
    """Drop ``None`` values (IFBench rows carry every key) and turn integral floats into ints."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise ConstraintSpecError("?", "kwargs", f"expected an object, got {type(kwargs).__name__}")
    out = {}
    for k, v in kwargs.items():
        if v is None:
            continue
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            v = int(v)
        out[k] = v
    return out


def _get(iid: str, kw: Mapping, name: str, kind: type | tuple[type, ...]):
    if name not in kw:
        raise ConstraintSpecError(iid, f"kwargs.{name}", "missing")
    value = kw[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConstraintSpecError(iid, f"kwargs.{name}", f"expected an integer, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ConstraintSpecError(iid, f"kwargs.{name}", f"expected a string, got {value!r}")
    if kind is list and not (isinstance(value, (list, tuple))
                             and all(isinstance(x, str) for x in value)):
        raise ConstraintSpecError(iid, f"kwargs.{name}", f"expected a list of strings, got {value!r}")
    return value


_RELATIONS = ("less than", "at least")


def _relation(iid: str, kw: Mapping, name: str) -> str:
    rel = _get(iid, kw, name, str)
    if rel not in _RELATIONS:
        raise ConstraintSpecError(iid, f"kwargs.{name}", f"must be one of {_RELATIONS}, got {rel!r}")
    return rel


# ISO 639-1 codes the IFEval language checker names in its description.
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi",
    "fr": "French", "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian",
    "bn": "Bengali", "uk": "Ukrainian", "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu",
    "bg": "Bulgarian", "ko": "Korean", "pl": "Polish", "he": "Hebrew", "fa": "Persian",
    "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili", "kn": "Kannada", "mr": "Marathi",
    "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
}

# The options of detectable_format:constrained_response, as in sastpg/HIR's copy of IFEval.
CONSTRAINED_RESPONSE_OPTIONS = (
    "My answer is yes.", "My answer is no.", "My answer is maybe.", "我的答案是肯定的",
    "我的答案是否定的", "我的答案是可能", "我的答案是也许", "我的答案是不确定",
)


def _ordinal_japanese(iid: str, kw: Mapping) -> str:
    n = _get(iid, kw, "N", int)
    # IFBench's own wording, including its dropped "word" for the 1st/2nd/3rd cases.
    suffix = {1: "st of", 2: "nd of", 3: "rd of"}.get(n % 10, "th word of")
    return f"Every {n}{suffix} your response must be in Japanese."


def _keywords_multiple(iid: str, kw: Mapping) -> str:
    k = [_get(iid, kw, f"keyword{i}", str).strip() for i in range(1, 6)]
    return (f"Include keyword {k[0]} once in your response, keyword {k[1]} twice in your "
            f"response, keyword {k[2]} three times in your response, keyword {k[3]} five times in "
            f"your response, and keyword {k[4]} seven times in your response.")


def _fixed(text: str) -> Callable[[str, Mapping], str]:
    return lambda iid, kw: text


_PERSON_NAMES = (
    "Emma, Liam, Sophia, Jackson, Olivia, Noah, Ava, Lucas, Isabella, Mason, Mia, Ethan, "
    "Charlotte, Alexander, Amelia, Benjamin, Harper, Leo, Zoe, Daniel, Chloe, Samuel, Lily, "
    "Matthew, Grace, Owen, Abigail, Gabriel, Ella, Jacob, Scarlett, Nathan, Victoria, Elijah, "
    "Layla, Nicholas, Audrey, David, Hannah, Christopher, Penelope, Thomas, Nora, Andrew, Aria, "
    "Joseph, Claire, Ryan, Stella, Jonathan"
)

_DESCRIBE: dict[str, Callable[[str, Mapping], str]] = {
    # --- IFEval (25) ---
    "keywords:existence": lambda i, kw: (
        f"Include keywords {sorted(_get(i, kw, 'keywords', list))} in the response."),
    "keywords:frequency": lambda i, kw: (
        f"In your response, the word {_get(i, kw, 'keyword', str).strip()} should appear "
        f"{_relation(i, kw, 'relation')} {_get(i, kw, 'frequency', int)} times."),
    "keywords:forbidden_words": lambda i, kw: (
        f"Do not include keywords {sorted(set(_get(i, kw, 'forbidden_words', list)))} "
        "in the response."),
    "keywords:letter_frequency": lambda i, kw: (
        f"In your response, the letter {_get(i, kw, 'letter', str).strip().lower()} should "
        f"appear {_relation(i, kw, 'let_relation')} {_get(i, kw, 'let_frequency', int)} times."),
    "language:response_language": lambda i, kw: (
        f"Your ENTIRE response should be in {_language(i, kw)} language, no other language is "
        "allowed."),
    "length_constraints:number_sentences": lambda i, kw: (
        f"Your response should contain {_relation(i, kw, 'relation')} "
        f"{_get(i, kw, 'num_sentences', int)} sentences."),
    "length_constraints:number_paragraphs": lambda i, kw: (
        f"There should be {_get(i, kw, 'num_paragraphs', int)} paragraphs. Paragraphs are "
        "separated with the markdown divider: ***"),
    "length_constraints:number_words": lambda i, kw: (
        f"Answer with {_relation(i, kw, 'relation')} {_get(i, kw, 'num_words', int)} words."),
    "length_constraints:nth_paragraph_first_word": lambda i, kw: (
        f"There should be {_get(i, kw, 'num_paragraphs', int)} paragraphs. Paragraphs and only "
        "paragraphs are separated with each other by two new lines as if it was '\\n\\n' in "
        f"python. Paragraph {_get(i, kw, 'nth_paragraph', int)} must start with word "
        f"{_get(i, kw, 'first_word', str).lower()}."),
    "detectable_content:number_placeholders": lambda i, kw: (
        f"The response must contain at least {_get(i, kw, 'num_placeholders', int)} placeholders "
        "represented by square brackets, such as [address]."),
    "detectable_content:postscript": lambda i, kw: (
        "At the end of your response, please explicitly add a postscript starting with "
        f"{_get(i, kw, 'postscript_marker', str).strip()}"),
    "detectable_format:number_bullet_lists": lambda i, kw: (
        f"Your answer must contain exactly {_get(i, kw, 'num_bullets', int)} bullet points. Use "
        "the markdown bullet points such as:\n* This is point 1. \n* This is point 2"),
    "detectable_format:constrained_response": lambda i, kw: (
        f"Answer with one of the following options: {CONSTRAINED_RESPONSE_OPTIONS}"),
    "detectable_format:number_highlighted_sections": lambda i, kw: (
        f"Highlight at least {_get(i, kw, 'num_highlights', int)} sections in your answer with "
        "markdown, i.e. *highlighted section*."),
    "detectable_format:multiple_sections": lambda i, kw: _sections(i, kw),
    "detectable_format:json_format": _fixed(
        "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```."),
    "detectable_format:title": _fixed(
        "Your answer must contain a title, wrapped in double angular brackets, such as "
        "<<poem of joy>>."),
    "combination:two_responses": _fixed(
        "Give two different responses. Responses and only responses should be separated by 6 "
        "asterisk symbols: ******."),
    "combination:repeat_prompt": _fixed(
        "First repeat the request word for word without change, then give your answer (1. do not "
        "say any words or characters before repeating the request; 2. the request you need to "
        "repeat does not include this sentence)"),
    "startend:end_checker": lambda i, kw: (
        f"Finish your response with this exact phrase {_get(i, kw, 'end_phrase', str).strip()}. "
        "No other words should follow this phrase."),
    "change_case:capital_word_frequency": lambda i, kw: (
        "In your response, words with all capital letters should appear "
        f"{_relation(i, kw, 'capital_relation')} {_get(i, kw, 'capital_frequency', int)} times."),
    "change_case:english_capital": _fixed(
        "Your entire response should be in English, and in all capital letters."),
    "change_case:english_lowercase": _fixed(
        "Your entire response should be in English, and in all lowercase letters. No capital "
        "letters are allowed."),
    "punctuation:no_comma": _fixed("In your entire response, refrain from the use of any commas."),
    "startend:quotation": _fixed("Wrap your entire response with double quotation marks."),
    # --- IFBench (58) ---
    "count:word_count_range": lambda i, kw: (
        f"The response must contain between {_get(i, kw, 'min_words', int)} and "
        f"{_get(i, kw, 'max_words', int)} words."),
    "count:unique_word_count": lambda i, kw: (
        f"Use at least {_get(i, kw, 'N', int)} unique words in the response."),
    "ratio:stop_words": lambda i, kw: (
        f"Ensure that stop words constitute no more than {_get(i, kw, 'percentage', int)}% of "
        "the total words in your response."),
    "ratio:sentence_type": _fixed("Maintain a 2:1 ratio of declarative to interrogative sentences."),
    "ratio:sentence_balance": _fixed(
        "Ensure that the ratio of sentence types (declarative, interrogative, exclamatory) is "
        "balanced."),
    "count:conjunctions": lambda i, kw: (
        f"Use at least {_get(i, kw, 'small_n', int)} different coordinating conjunctions in the "
        "response."),
    "count:person_names": lambda i, kw: (
        f"Mention at least {_get(i, kw, 'N', int)} different person names in the response, from "
        f"this list of person names: {_PERSON_NAMES} ."),
    "ratio:overlap": lambda i, kw: (
        f"Maintain a trigram overlap of {_get(i, kw, 'percentage', int)}% (±2%) with the provided "
        "reference text."),
    "count:numbers": lambda i, kw: f"Include exactly {_get(i, kw, 'N', int)} numbers in the response.",
    "words:alphabet": _fixed(
        "Each word must start with the next letter of the alphabet, looping back to 'A' after 'Z'."),
    "words:vowel": _fixed("Write a paragraph using words that contain only three types of vowels."),
    "words:consonants": _fixed(
        "Ensure each word in your response has at least one consonant cluster (two or more "
        "consonants together)."),
    "sentence:alliteration_increment": _fixed(
        "Each sentence must have a longer sequence of consecutive alliterative words than the "
        "previous one."),
    "words:palindrome": _fixed(
        "Include at least 10 single-word palindromes, each at least 5 characters long."),
    "count:punctuation": _fixed(
        "Use every standard punctuation mark at least once, including semicolons, colons, and the "
        "interrobang (?!)."),
    "format:parentheses": _fixed(
        "Nest parentheses (and [brackets {and braces}]) at least 5 levels deep."),
    "format:quotes": _fixed(
        "Include quotes within quotes within quotes, at least 3 levels deep, alternating between "
        "double quotes and single quotes."),
    "words:prime_lengths": _fixed("Use only words with lengths that are prime numbers."),
    "format:options": lambda i, kw: (
        f"Answer with one of the following options: {_get(i, kw, 'options', str)}. Do not give "
        "any explanation."),
    "format:newline": _fixed("Write each word on a new line."),
    "format:emoji": _fixed("Please use an emoji at the end of every sentence."),
    "ratio:sentence_words": _fixed(
        "Respond with three sentences, all containing the same number of characters but using all "
        "different words."),
    "count:words_japanese": _ordinal_japanese,
    "words:start_verb": _fixed("The response must start with a verb."),
    "words:repeats": lambda i, kw: (
        f"The response should not repeat any word more than {_get(i, kw, 'small_n', int)} times."),
    "sentence:keyword": lambda i, kw: (
        f'The response must include keyword "{_get(i, kw, "word", str)}" in the '
        f"{_get(i, kw, 'N', int)}-th sentence."),
    "count:pronouns": lambda i, kw: (
        f"The response should include at least {_get(i, kw, 'N', int)} pronouns."),
    "words:odd_even_syllables": _fixed(
        "Alternate between words with odd and even numbers of syllables."),
    "words:last_first": _fixed(
        "The last word of each sentence must become the first word of the next sentence."),
    "words:paragraph_last_first": _fixed(
        "Each paragraph must end with the same word it started with, separate paragraphs with a "
        "newline."),
    "sentence:increment": lambda i, kw: (
        f"Each sentence must contain exactly {_get(i, kw, 'small_n', int)} more words than the "
        "previous one."),
    "words:no_consecutive": _fixed("No two consecutive words can share the same first letter."),
    "format:line_indent": _fixed("Create stairs by incrementally indenting each new line."),
    "format:quote_unquote": _fixed("Every quoted phrase must be followed by an unquoted explanation."),
    "format:list": lambda i, kw: (
        f"Answer with a list of items, instead of bullet points use {_get(i, kw, 'sep', str)}."),
    "format:thesis": _fixed(
        "Each section must begin with a thesis statement in italics, use HTML to indicate the "
        "italics."),
    "format:sub-bullets": _fixed(
        "Your response must include bullet points denoted by * and at least one sub-bullet point "
        "denoted by - for each bullet point."),
    "format:no_bullets_bullets": _fixed(
        "Your answer must contain at least two sentences ending in a period followed by at least "
        "two bullet points denoted by *."),
    "custom:multiples": _fixed("Count from 10 to 50 but only print multiples of 7."),
    "custom:mcq_count_length": _fixed(
        "Generate 4 multiple choice questions with 5 options each about '20th century art "
        "history'. Each question should start with the label \"Question\". The questions should "
        "get progressively longer. Do not provide an explanation."),
    "custom:reverse_newline": _fixed(
        "List the countries of Africa in reverse alphabetical order, each on a new line."),
    "custom:word_reverse": _fixed(
        "What animal is the national symbol of the US? Respond to this query, but make your "
        "sentence in reverse order of what it should be, per word."),
    "custom:character_reverse": _fixed(
        "What animal is the national symbol of the US? Respond to this query, but make your "
        "sentence in reverse order of what it should be, per letter."),
    "custom:sentence_alphabet": _fixed(
        "Tell me a 26-sentence story where each sentence's first word starts with the letters of "
        "the alphabet in order."),
    "custom:european_capitals_sort": _fixed(
        "Give me the names of all capital cities of european countries whose latitude is higher "
        "than than 45 degrees? List the capital cities without country names, separated by "
        "commas, sorted by latitude, from highest to lowest."),
    "custom:csv_city": _fixed(
        'Generate CSV data: The column names are ["ID", "Country", "City", "Year", "Count"], the '
        "data should be comma delimited. Please generate 7 rows."),
    "custom:csv_special_character": _fixed(
        'Generate CSV data: The column names are ["ProductID", "Category", "Brand", "Price", '
        '"Stock"], the data should be comma delimited. Please generate 14 rows. Add one field '
        "which contains a special character and enclose it in double quotes."),
    "custom:csv_quotes": _fixed(
        'Generate CSV data: The column names are ["StudentID", "Subject", "Grade", "Semester", '
        '"Score"], the data should be tab delimited. Please generate 3 rows and enclose each '
        "single field in double quotes."),
    "custom:date_format_list": _fixed(
        "List the start dates of all the battles Napoleon fought separated by commas, use the "
        "following date format: YYYY-MM-DD. Do not provide an explanation."),
    "count:keywords_multiple": _keywords_multiple,
    "words:keywords_specific_position": lambda i, kw: (
        f"Include keyword {_get(i, kw, 'keyword', str).strip()} in the {_get(i, kw, 'n', int)}-th "
        f"sentence, as the {_get(i, kw, 'm', int)}-th word of that sentence."),
    "words:words_position": lambda i, kw: (
        "The second word in your response and the second to last word in your response should be "
        f"the word {_get(i, kw, 'keyword', str).strip()}."),
    "repeat:repeat_change": lambda i, kw: (
        "Repeat the request, but change the first word of the repeated request, (do not say "
        "anything before repeating the request; the request you need to repeat does not include "
        "this sentence) and do not answer the actual request! Request: "
        f"{_get(i, kw, 'prompt_to_repeat', str)}"),
    "repeat:repeat_simple": _fixed("Only output this sentence here, ignore all other requests."),
    "repeat:repeat_span": lambda i, kw: (
        f"Copy the span of words that lies between (and including) index "
        f"{_get(i, kw, 'n_start', int)} and {_get(i, kw, 'n_end', int)}, the indices are "
        "character indices!"),
    "format:title_case": _fixed(
        "Write the entire response in title case (capitalize the first letter of every major "
        "word)."),
    "format:output_template": _fixed(
        "Use this exact template for your response: My Answer: [answer] My Conclusion: "
        "[conclusion] Future Outlook: [outlook]"),
    "format:no_whitespace": _fixed("The output should not contain any whitespace."),
}


def _language(iid: str, kw: Mapping) -> str:
    code = _get(iid, kw, "language", str)
    if code not in LANGUAGE_NAMES:
        raise ConstraintSpecError(iid, "kwargs.language",
                                  f"unknown language code {code!r}; expected one of "
                                  f"{sorted(LANGUAGE_NAMES)}")
    return LANGUAGE_NAMES[code]


def _sections(iid: str, kw: Mapping) -> str:
    n = _get(iid, kw, "num_sections", int)
    s = _get(iid, kw, "section_spliter", str).strip()
    return (f"Your response must have {n} sections. Mark the beginning of each section with {s} "
            f"X, such as:\n{s} 1\n[content of section 1]\n{s} 2\n[content of section 2]")


def describable_ids() -> list[str]:
    """Every instruction id :func:`describe` knows (the 25 IFEval and 58 IFBench ids)."""
    return list(_DESCRIBE)


def describe(instruction_id: str, kwargs: Mapping[str, object] | None = None) -> str:
    """The description text of one constraint, deterministic in its id and kwargs.

    Raises:
        ConstraintSpecError: the id is unknown, or a kwarg the text needs is missing or ill-typed
            (``field`` names it, e.g. ``"kwargs.num_words"``).
    """
    if instruction_id.startswith("muldimif:"):  # MulDimIF: the constraint is its text
        text = (kwargs or {}).get("text")
        if not isinstance(text, str):
            raise ConstraintSpecError(instruction_id, "kwargs.text", "a MulDimIF constraint needs its text")
        return text
    fn = _DESCRIBE.get(instruction_id)
    if fn is None:
        raise ConstraintSpecError(instruction_id, "instruction_id", "no description known for this id")
    return fn(instruction_id, normalize_kwargs(kwargs))


# ---------------------------------------------------------------------------------------------
# Synthetic tasks

DEFAULT_QUERIES = (
    "Write a short story about a lighthouse keeper.",
    "Describe your ideal weekend.",
    "Explain how a bicycle works.",
    "Write a letter to a friend about a recent trip.",
    "Give advice to a student starting university.",
    "Describe a busy market in the morning.",
    "Write a product description for a new backpack.",
    "Explain why sleep matters for health.",
    "Write a review of a small neighborhood cafe.",
    "Describe the life cycle of a butterfly.",
    "Write a speech for a school graduation.",
    "Explain how to plant a vegetable garden.",
    "Write a blog post about learning to cook.",
    "Describe a city you would like to visit.",
    "Write a poem about the ocean.",
    "Explain the rules of a simple card game.",
)

DEFAULT_KEYWORDS = (
    "river", "lantern", "harvest", "compass", "meadow", "thunder", "velvet", "orbit",
    "anchor", "pepper", "glacier", "cobalt",
)

# The IFEval ids the default generator draws from: each can be met by a short plain-text answer
# and checked without a language detector's verdict on free text.
DEFAULT_SYNTHETIC_IDS = (
    "punctuation:no_comma",
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "change_case:english_lowercase",
    "change_case:capital_word_frequency",
    "startend:end_checker",
    "startend:quotation",
    "detectable_format:title",
    "detectable_format:number_highlighted_sections",
    "detectable_format:number_bullet_lists",
    "length_constraints:number_words",
    "length_constraints:number_sentences",
    "detectable_content:postscript",
    "detectable_content:number_placeholders",
)

# Pairs that cannot both hold (or make each other pointless) in one task.
CONFLICTS = frozenset(frozenset(p) for p in [
    ("change_case:english_lowercase", "change_case:capital_word_frequency"),
    ("change_case:english_lowercase", "change_case:english_capital"),
    ("change_case:english_lowercase", "detectable_content:postscript"),  # "P.S." is upper case
    ("change_case:english_lowercase", "startend:end_checker"),  # the end phrases are capitalized
    ("change_case:english_lowercase", "detectable_format:title"),
    ("change_case:english_capital", "change_case:capital_word_frequency"),
    ("detectable_format:json_format", "startend:quotation"),
    ("detectable_format:json_format", "detectable_format:title"),
    ("detectable_format:json_format", "detectable_content:postscript"),
    ("detectable_format:json_format", "startend:end_checker"),
    ("combination:two_responses", "startend:quotation"),
])


@dataclass(frozen=True)
class SyntheticSpec:
    """What :func:`generate_tasks` draws from. Ranges are inclusive ``(low, high)``."""

    instruction_ids: tuple[str, ...] = DEFAULT_SYNTHETIC_IDS
    queries: tuple[str, ...] = DEFAULT_QUERIES
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    min_constraints: int = 3
    max_constraints: int = 5
    style: str = "newline"
    word_counts: tuple[int, int] = (30, 200)
    sentence_counts: tuple[int, int] = (2, 10)
    bullet_counts: tuple[int, int] = (1, 5)
    highlight_counts: tuple[int, int] = (1, 4)
    placeholder_counts: tuple[int, int] = (1, 4)
    capital_counts: tuple[int, int] = (1, 5)
    keyword_frequencies: tuple[int, int] = (1, 3)
    letter_frequencies: tuple[int, int] = (2, 10)
    letters: str = "abcdefghijklmnopqrstuvwxyz"
    existence_keywords: tuple[int, int] = (1, 2)
    forbidden_keywords: tuple[int, int] = (1, 2)
    end_phrases: tuple[str, ...] = ("Any other questions?", "Is there anything else I can help with?")
    postscript_markers: tuple[str, ...] = ("P.S.", "P.P.S")
    relations: tuple[str, ...] = _RELATIONS
    weights: Mapping[str, float] = field(default_factory=dict)  # id -> relative weight (default 1)


def sample_kwargs(instruction_id: str, rng: random.Random, spec: SyntheticSpec,
                  used_words: set[str] | None = None) -> dict:
    """Valid kwargs for one id, drawn with ``rng``; keywords avoid ``used_words`` (updated)."""
    used = set() if used_words is None else used_words

    def words(k_range: tuple[int, int]) -> list[str]:
        free = [w for w in spec.keywords if w not in used]
        k = min(rng.randint(*k_range), len(free))
        if k == 0:
            raise ValueError("the spec's keyword pool is exhausted for this task")
        chosen = rng.sample(free, k)
        used.update(chosen)
        return chosen

    if instruction_id == "keywords:existence":
        return {"keywords": words(spec.existence_keywords)}
    if instruction_id == "keywords:forbidden_words":
        return {"forbidden_words": words(spec.forbidden_keywords)}
    if instruction_id == "keywords:frequency":
        return {"keyword": words((1, 1))[0], "relation": rng.choice(spec.relations),
                "frequency": rng.randint(*spec.keyword_frequencies)}
    if instruction_id == "keywords:letter_frequency":
        return {"letter": rng.choice(spec.letters), "let_relation": rng.choice(spec.relations),
                "let_frequency": rng.randint(*spec.letter_frequencies)}
    if instruction_id == "change_case:capital_word_frequency":
        return {"capital_relation": rng.choice(spec.relations),
                "capital_frequency": rng.randint(*spec.capital_counts)}
    if instruction_id == "startend:end_checker":
        return {"end_phrase": rng.choice(spec.end_phrases)}
    if instruction_id == "detectable_content:postscript":
        return {"postscript_marker": rng.choice(spec.postscript_markers)}
    if instruction_id == "detectable_content:number_placeholders":
        return {"num_placeholders": rng.randint(*spec.placeholder_counts)}
    if instruction_id == "detectable_format:number_highlighted_sections":
        return {"num_highlights": rng.randint(*spec.highlight_counts)}
    if instruction_id == "detectable_format:number_bullet_lists":
        return {"num_bullets": rng.randint(*spec.bullet_counts)}
    if instruction_id == "length_constraints:number_words":
        return {"relation": rng.choice(spec.relations), "num_words": rng.randint(*spec.word_counts)}
    if instruction_id == "length_constraints:number_sentences":
        return {"relation": rng.choice(spec.relations),
                "num_sentences": rng.randint(*spec.sentence_counts)}
    if instruction_id in ("punctuation:no_comma", "change_case:english_lowercase",
                          "change_case:english_capital", "startend:quotation",
                          "detectable_format:title", "detectable_format:json_format",
                          "combination:two_responses"):
        return {}
    raise ValueError(f"the synthetic generator has no kwargs sampler for {instruction_id!r}")


def generate_tasks(n: int, *, seed: int, spec: SyntheticSpec = SyntheticSpec(),
                   available_ids: Iterable[str] | None = None, key_prefix: str = "synthetic") -> list[Task]:
    """``n`` synthetic tasks, deterministic in ``seed``.

    Each task pairs a query with ``min_constraints..max_constraints`` distinct, mutually compatible
    constraints drawn from ``spec.instruction_ids`` (intersected with ``available_ids``, e.g.
    :func:`hirfast.verify.instruction_ids`), with kwargs from :func:`sample_kwargs` and texts from
    :func:`describe`.
    """
    ids = list(spec.instruction_ids)
    if available_ids is not None:
        known = set(available_ids)
        ids = [i for i in ids if i in known]
    if len(ids) < spec.min_constraints:
        raise ValueError(
            f"only {len(ids)} usable instruction ids ({ids}) for tasks of at least "
            f"{spec.min_constraints} constraints; the checker may not know the others yet")
    rng = random.Random(seed)
    tasks = []
    for t in range(n):
        target = rng.randint(spec.min_constraints, spec.max_constraints)
        chosen: list[str] = []
        pool = ids[:]
        while len(chosen) < target and pool:
            weights = [spec.weights.get(i, 1.0) for i in pool]
            pick = rng.choices(pool, weights=weights)[0]
            pool.remove(pick)
            if any(frozenset((pick, c)) in CONFLICTS for c in chosen):
                continue
            chosen.append(pick)
        if len(chosen) < spec.min_constraints:
            raise ValueError(f"the ids {ids} conflict too much to draw {spec.min_constraints} "
                             "compatible constraints")
        used_words: set[str] = set()
        constraints = tuple(
            Constraint.from_spec(i, sample_kwargs(i, rng, spec, used_words)) for i in chosen)
        tasks.append(Task(query=rng.choice(spec.queries), constraints=constraints,
                          key=f"{key_prefix}-{seed}-{t}", style=spec.style, source="synthetic"))
    return tasks
