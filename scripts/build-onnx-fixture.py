#!/usr/bin/python3
"""Builds the small ONNX sentence-encoder fixture the tests use, and its reference embeddings.

No model hub is reachable from these machines, so the fixture is a tiny BERT with random weights
(seeded) behind the real all-MiniLM-L6-v2 tokenizer: the same files, input names and output name
as a sentence-transformers export for transformers.js / optimum
(input_ids, attention_mask, token_type_ids -> last_hidden_state).

Reference embeddings are computed here with PyTorch and an independent WordPiece tokenizer written
below from the BERT reference algorithm, so the Node encoder is checked against another
implementation of every step (tokenise, truncate, run, pool, normalise).

Run with Debian's python3-torch and python3-onnx:
  /usr/bin/python3 scripts/build-onnx-fixture.py ../shared/data/minilm-tokenizer test/fixtures/onnx
"""
import json
import math
import os
import shutil
import sys
import unicodedata

import torch

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]
MAX_SEQ_LENGTH = 24  # small on purpose, so that the long reference sentence is truncated

SENTENCES = [
    "Translate to English: Wo ist der Bahnhof?",
    "Is the sentiment of this review positive or negative? A gorgeous, witty, seductive movie.",
    "Summarize: the council voted to extend the tram line to the airport by 2030.",
    "hello",
    "Ünïcödé façade — naïve café, 東京 and emoji 🙂!",
    # longer than MAX_SEQ_LENGTH tokens: checks truncation (first tokens kept, [SEP] last)
    "Premise: a man in a red jacket is riding a bicycle down a busy street in the rain while holding "
    "an umbrella. Hypothesis: nobody is outside. Does the premise entail the hypothesis? OPTIONS: yes, no",
]
QUERY_PREFIX = "query: "


# --- BERT WordPiece, after google-research/bert tokenization.py ------------------------------------
def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text):
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        if is_chinese(cp):
            cleaned.append(" " + ch + " ")
        elif is_whitespace(ch):
            cleaned.append(" ")
        else:
            cleaned.append(ch)
    tokens = []
    for word in "".join(cleaned).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(ch for ch in word if unicodedata.category(ch) != "Mn")
        current = ""
        for ch in word:
            if is_punctuation(ch):
                if current:
                    tokens.append(current)
                tokens.append(ch)
                current = ""
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


def wordpiece(token, vocab):
    if len(token) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(token):
        end, found = len(token), None
        while start < end:
            piece = ("##" if start > 0 else "") + token[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def encode(text, vocab, max_length):
    pieces = [p for token in basic_tokenize(text) for p in wordpiece(token, vocab)]
    pieces = ["[CLS]"] + pieces[: max_length - 2] + ["[SEP]"]
    return [vocab[p] for p in pieces]


# --- a tiny BERT ------------------------------------------------------------------------------------
class TinyBert(torch.nn.Module):
    def __init__(self, vocab_size, hidden, layers, heads, intermediate, max_positions, use_token_types=True):
        super().__init__()
        self.heads = heads
        self.use_token_types = use_token_types
        self.word = torch.nn.Embedding(vocab_size, hidden)
        self.position = torch.nn.Embedding(max_positions, hidden)
        self.token_type = torch.nn.Embedding(2, hidden)
        self.norm = torch.nn.LayerNorm(hidden, eps=1e-12)
        self.layers = torch.nn.ModuleList()
        for _ in range(layers):
            self.layers.append(torch.nn.ModuleDict({
                "qkv": torch.nn.Linear(hidden, 3 * hidden),
                "out": torch.nn.Linear(hidden, hidden),
                "norm1": torch.nn.LayerNorm(hidden, eps=1e-12),
                "up": torch.nn.Linear(hidden, intermediate),
                "down": torch.nn.Linear(intermediate, hidden),
                "norm2": torch.nn.LayerNorm(hidden, eps=1e-12),
            }))

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        batch, length = input_ids.shape
        positions = torch.arange(length).unsqueeze(0).expand(batch, length)
        x = self.word(input_ids) + self.position(positions)
        if self.use_token_types:
            x = x + self.token_type(token_type_ids)
        x = self.norm(x)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        head_dim = x.shape[-1] // self.heads
        for layer in self.layers:
            q, k, v = layer["qkv"](x).split(x.shape[-1], dim=-1)
            shape = lambda t: t.view(batch, length, self.heads, head_dim).transpose(1, 2)
            scores = shape(q) @ shape(k).transpose(-1, -2) / math.sqrt(head_dim) + bias
            context = (scores.softmax(-1) @ shape(v)).transpose(1, 2).reshape(batch, length, -1)
            x = layer["norm1"](x + layer["out"](context))
            x = layer["norm2"](x + layer["down"](torch.nn.functional.gelu(layer["up"](x))))
        return x


def export(model, path, with_token_types):
    ids = torch.tensor([[101, 7592, 102]], dtype=torch.long)
    mask = torch.ones_like(ids)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
    args = (ids, mask, torch.zeros_like(ids)) if with_token_types else (ids, mask)
    dynamic = {name: {0: "batch_size", 1: "sequence_length"} for name in names}
    dynamic["last_hidden_state"] = {0: "batch_size", 1: "sequence_length"}
    torch.onnx.export(model, args, path, input_names=names, output_names=["last_hidden_state"],
                      dynamic_axes=dynamic, opset_version=14, do_constant_folding=True)


def pool(hidden, mask, mode):
    if mode == "cls":
        return hidden[0]
    if mode == "last_token":
        return hidden[int(mask.sum()) - 1]
    weights = mask[:, None].to(hidden.dtype)
    return (hidden * weights).sum(0) / weights.sum().clamp(min=1e-9)


def main():
    source, target = sys.argv[1], sys.argv[2]
    torch.manual_seed(20261123)
    os.makedirs(os.path.join(target, "model", "onnx"), exist_ok=True)
    os.makedirs(os.path.join(target, "model", "1_Pooling"), exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(source, name), os.path.join(target, "model", name))
    vocab = {}
    with open(os.path.join(source, "vocab.txt"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    hidden, heads, layers, intermediate, positions = 16, 2, 2, 32, 64
    config = json.load(open(os.path.join(source, "config.json")))
    config.update({"hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": layers,
                   "intermediate_size": intermediate, "max_position_embeddings": positions,
                   "_name_or_path": "lorauter/tiny-minilm-fixture (random weights)"})
    json.dump(config, open(os.path.join(target, "model", "config.json"), "w"), indent=2)
    json.dump({"word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False},
              open(os.path.join(target, "model", "1_Pooling", "config.json"), "w"), indent=2)
    json.dump({"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
              open(os.path.join(target, "model", "sentence_bert_config.json"), "w"), indent=2)

    model = TinyBert(len(vocab), hidden, layers, heads, intermediate, positions).eval()
    export(model, os.path.join(target, "model", "onnx", "model.onnx"), True)
    # The same network without a token_type_ids input, as some exports (e.g. e5/xlm-r) have.
    bare = TinyBert(len(vocab), hidden, layers, heads, intermediate, positions, use_token_types=False).eval()
    bare.load_state_dict(model.state_dict())
    export(bare, os.path.join(target, "no-token-types.onnx"), False)

    # Not a sentence encoder (an image classifier's signature): the gateway must refuse it at start-up.
    wrong = torch.nn.Linear(4, 2).eval()
    torch.onnx.export(wrong, (torch.zeros(1, 4),), os.path.join(target, "wrong-signature.onnx"),
                      input_names=["pixel_values"], output_names=["logits"], opset_version=14)

    references = {"max_seq_length": MAX_SEQ_LENGTH, "query_prefix": QUERY_PREFIX, "sentences": SENTENCES, "cases": []}
    with torch.no_grad():
        for prefix in ["", QUERY_PREFIX]:
            for sentence in SENTENCES:
                ids = encode(prefix + sentence, vocab, MAX_SEQ_LENGTH)
                input_ids = torch.tensor([ids])
                mask = torch.ones_like(input_ids)
                out = model(input_ids, mask, torch.zeros_like(input_ids))[0]
                bare_out = bare(input_ids, mask)[0]
                case = {"text": prefix + sentence, "prefix": prefix, "sentence": sentence, "input_ids": ids}
                for mode in ["mean", "cls", "last_token"]:
                    vector = pool(out, mask[0], mode)
                    case[mode] = (vector / vector.norm()).tolist()
                vector = pool(bare_out, mask[0], "mean")
                case["no_token_types_mean"] = (vector / vector.norm()).tolist()
                references["cases"].append(case)
    json.dump(references, open(os.path.join(target, "reference.json"), "w"), indent=1)
    print("wrote", target)


if __name__ == "__main__":
    main()
