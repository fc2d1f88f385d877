"""Prompts of the class-conditional latent model (``latent-digits``): a small closed vocabulary, the prompt
templates used in training, and the CLIP-style BPE tokenizer built from that vocabulary.

The tokenizer is a real ``transformers.CLIPTokenizer`` (CLIP's byte-pair encoding: lower-casing, one token
per digit, ``</w>`` word ends, ``<|startoftext|>``/``<|endoftext|>``) whose ``vocab.json``/``merges.txt``
are generated here from :data:`VOCABULARY` (every word becomes one token) and shipped in
``models/latent-digits/tokenizer``. Prompts use only these words; :func:`check_prompt` says which words
are unknown and what the model can take.

    "a handwritten seven", "digit 7", "the number 7", "seven", "7", "a drawing of a seven", ...
"""

from __future__ import annotations

import json
import operator
import re
from pathlib import Path

from labctl.errors import LabctlError

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: Prompt templates seen in training; ``{word}`` = number word, ``{digit}`` = the numeral.
TEMPLATES = (
    "a handwritten {word}",
    "digit {digit}",
    "the digit {digit}",
    "a handwritten digit {digit}",
    "{word}",
    "{digit}",
    "number {digit}",
    "the number {word}",
    "a drawing of a {word}",
    "a picture of the digit {word}",
    "handwritten {word}",
    "an image of a handwritten {digit}",
    "the numeral {digit}",
    "a {word}",
)

_FILLER = ("a", "an", "the", "handwritten", "digit", "number", "numeral", "drawing", "picture", "image", "of",
           "hand", "written", "small", "black", "and", "white")
#: Every word (and numeral, and punctuation mark) a prompt may use.
VOCABULARY = tuple(dict.fromkeys(_FILLER + NUMBER_WORDS + tuple("0123456789") + (".", ",")))

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
#: Tokens per prompt incl. BOS/EOS (the text encoder's positions): at most 14 words.
MAX_LENGTH = 16

_WORD_RE = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]")


class PromptError(LabctlError, ValueError):
    """A prompt (or label) the conditional model cannot take."""


def words(prompt: str) -> list[str]:
    """The prompt split the way CLIP's pre-tokenizer splits it (lower-cased words, single digits, marks)."""
    return _WORD_RE.findall(prompt.lower())


def label_prompt(label: int) -> str:
    """The canonical prompt of a class label: 7 -> 'a handwritten seven'."""
    if isinstance(label, bool):
        raise PromptError(f"label: expected an integer digit 0..9, got {label!r}")
    try:
        label = operator.index(label)
    except TypeError:
        raise PromptError(f"label: expected an integer digit 0..9, got {label!r}") from None
    if not 0 <= label <= 9:
        raise PromptError(f"label: expected a digit 0..9, got {label}")
    return f"a handwritten {NUMBER_WORDS[label]}"


def check_prompt(prompt: str) -> str:
    """Return ``prompt`` if the model can take it, else raise :class:`PromptError` naming the unknown words."""
    if not isinstance(prompt, str):
        raise PromptError(f"prompt: expected a string, got {type(prompt).__name__}")
    ws = words(prompt)
    unknown = [w for w in ws if w not in VOCABULARY]
    if unknown:
        raise PromptError(
            f"prompt {prompt!r}: unknown word(s) {sorted(set(unknown))}; latent-digits knows only "
            f"{' '.join(VOCABULARY)} (e.g. 'a handwritten seven', 'digit 7')")
    if len(ws) > MAX_LENGTH - 2:
        raise PromptError(f"prompt {prompt!r}: {len(ws)} words, at most {MAX_LENGTH - 2} allowed")
    return prompt


def prompt_label(prompt: str) -> int | None:
    """The digit a prompt asks for (its number word or numeral), or None if it names none or several."""
    found = set()
    for w in words(prompt):
        if w in NUMBER_WORDS:
            found.add(NUMBER_WORDS.index(w))
        elif w.isdigit():
            found.add(int(w))
    return found.pop() if len(found) == 1 else None


def training_prompts() -> list[tuple[str, int]]:
    """Every (prompt, label) pair of the training templates."""
    return [(t.format(word=NUMBER_WORDS[d], digit=d), d) for d in range(10) for t in TEMPLATES]


def bpe_files() -> tuple[dict[str, int], list[str]]:
    """CLIP-BPE ``vocab`` and ``merges`` in which every word of :data:`VOCABULARY` is one token.

    Each word is built left to right from its characters (the last one carrying CLIP's ``</w>``); every
    character and every intermediate piece is in the vocabulary too, as ``tokenizers`` requires.
    """
    vocab: dict[str, int] = {}

    def add(tok: str) -> None:
        vocab.setdefault(tok, len(vocab))

    add(BOS)
    add(EOS)
    chars = sorted({c for w in VOCABULARY for c in w})
    for c in chars:
        add(c)
        add(c + "</w>")
    merges: list[str] = []
    for w in VOCABULARY:
        symbols = list(w[:-1]) + [w[-1] + "</w>"]
        cur = symbols[0]
        for s in symbols[1:]:
            merge = f"{cur} {s}"
            if merge not in merges:
                merges.append(merge)
            cur = cur + s
            add(cur)
    return vocab, merges


def build_tokenizer(out_dir: str | Path):
    """Write vocab.json/merges.txt for :data:`VOCABULARY`, build a CLIPTokenizer on them, save it to ``out_dir``."""
    from transformers import CLIPTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = bpe_files()
    (out / "vocab.json").write_text(json.dumps(vocab, indent=0) + "\n")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"), model_max_length=MAX_LENGTH)
    tok.save_pretrained(out)
    return tok
