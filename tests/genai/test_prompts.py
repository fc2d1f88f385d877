"""The latent model's prompt vocabulary and the shipped CLIP tokenizer built from it."""

from __future__ import annotations

import json

import pytest

from experiments.genai.models import MODELS_DIR
from experiments.genai.prompts import (MAX_LENGTH, NUMBER_WORDS, VOCABULARY, PromptError, bpe_files, check_prompt,
                                       label_prompt, prompt_label, training_prompts)

TOKENIZER_DIR = MODELS_DIR / "latent-digits" / "tokenizer"


def test_shipped_vocabulary_is_the_generated_one():
    vocab, merges = bpe_files()
    assert json.loads((TOKENIZER_DIR / "vocab.json").read_text()) == vocab
    shipped = [m for m in (TOKENIZER_DIR / "merges.txt").read_text().splitlines() if m and not m.startswith("#")]
    assert shipped == merges


def test_every_word_is_one_token():
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(TOKENIZER_DIR, local_files_only=True)
    assert tok.model_max_length == MAX_LENGTH
    for w in VOCABULARY:
        ids = tok(w, add_special_tokens=False).input_ids
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids)[0] == w + "</w>", w
    ids = tok("A handwritten SEVEN", padding="max_length", max_length=MAX_LENGTH).input_ids
    assert tok.convert_ids_to_tokens(ids[:5]) == ["<|startoftext|>", "a</w>", "handwritten</w>", "seven</w>",
                                                  "<|endoftext|>"]
    assert len(ids) == MAX_LENGTH


def test_labels_and_prompts():
    assert label_prompt(7) == "a handwritten seven"
    assert [prompt_label(label_prompt(d)) for d in range(10)] == list(range(10))
    assert prompt_label("digit 7") == 7 and prompt_label("the number 3.") == 3
    assert prompt_label("a handwritten digit") is None and prompt_label("3 or 4") is None
    for p, d in training_prompts():
        assert check_prompt(p) == p and prompt_label(p) == d
    assert len({p for p, _ in training_prompts()}) == len(training_prompts())  # no prompt names two digits


@pytest.mark.parametrize("bad,match", [("a cat", "unknown word"), ("digit 7 " * 8, "at most 14"),
                                       (7, "string")])
def test_bad_prompts(bad, match):
    with pytest.raises(PromptError, match=match):
        check_prompt(bad)


@pytest.mark.parametrize("bad", [10, -1, 2.5, "7", True, None])
def test_bad_labels(bad):
    with pytest.raises(PromptError, match="label"):
        label_prompt(bad)


def test_prompt_error_is_a_value_error():
    assert issubclass(PromptError, ValueError) and len(NUMBER_WORDS) == 10
