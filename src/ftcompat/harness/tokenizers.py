"""Tiny tokenizers built in code, saved as real tokenizer files, so nothing comes from the Hub.

Two styles:
- ``llama2-chat``: a small byte-level BPE with ``<s>``/``</s>`` and a TinyLlama/Zephyr chat
  template where every turn ends with ``</s>`` (what field report 003 trains with);
- ``llama3``: a Llama-3-shaped tokenizer with a 128,256-entry vocabulary and Llama-3 special
  tokens; some loader code paths only trigger on vocabularies that large (field report 002).
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning large language models with LoRA adapters and 4-bit quantization.",
    "user: What is the capital of France? assistant: The capital of France is Paris.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. Punctuation: , . ; : ! ? ( ) [ ] { }",
    "system: You are a helpful assistant that answers briefly and politely.",
    "def train(model, data):\n    return model.fit(data)\n",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]

ZEPHYR_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + eos_token + '\n' }}"
    "{% elif message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + eos_token + '\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{% generation %}{{ '<|assistant|>\n' + message['content'] + eos_token }}{% endgeneration %}"
    "{{ '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

LLAMA3_VOCAB = 128_000
LLAMA3_SPECIAL = 256


def _train_bpe(vocab_size: int, specials: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tok


def _llama2_chat():
    from tokenizers import processors

    tok = _train_bpe(512, ["<unk>", "<s>", "</s>"])
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    config = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "</s>",
        "chat_template": ZEPHYR_TEMPLATE,
        "model_max_length": 2048,
    }
    return tok, config


def _llama3():
    from tokenizers import Tokenizer, processors

    base = json.loads(_train_bpe(1024, []).to_str())
    vocab = base["model"]["vocab"]
    # Pad the vocabulary to Llama-3's size with unreachable entries: the size is what matters.
    for i in range(len(vocab), LLAMA3_VOCAB):
        vocab[f"<|filler_{i}|>"] = i
    specials = ["<|begin_of_text|>", "<|end_of_text|>"] + [
        f"<|reserved_special_token_{i}|>" for i in range(LLAMA3_SPECIAL - 2)
    ]
    specials[2:6] = ["<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>"]
    base["added_tokens"] = [
        {"id": LLAMA3_VOCAB + i, "content": s, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
        for i, s in enumerate(specials)
    ]
    tok = Tokenizer.from_str(json.dumps(base))
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", LLAMA3_VOCAB)]
    )
    config = {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|end_of_text|>",
        "chat_template": LLAMA3_TEMPLATE,
        "model_max_length": 131072,
    }
    return tok, config


STYLES = {"llama2-chat": _llama2_chat, "llama3": _llama3}


def build(style: str, dest: Path) -> Path:
    """Build tokenizer ``style`` and save it with transformers' fast tokenizer class into ``dest``."""
    from transformers import PreTrainedTokenizerFast

    if style not in STYLES:
        raise ValueError(f"unknown tokenizer style {style!r}; known: {sorted(STYLES)}")
    tok, config = STYLES[style]()
    template = config.pop("chat_template")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **config)
    fast.chat_template = template
    dest = Path(dest)
    fast.save_pretrained(dest)
    return dest
