"""Build a tiny random Llama with a real byte-level BPE tokenizer, at test time (never committed).

head_dim is 64 (hidden 128, 2 heads) so the same folder also loads in vLLM's CPU backend.
"""

from __future__ import annotations

import random
from pathlib import Path

WORDS = ("the a cat dog sat on mat paris france capital city of is what which answer question red blue green "
         "sky sun moon water fire earth one two three four five yes no plus minus equals larger smaller").split()


def build_tiny_llama(out: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(seed)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(2000)]
    corpus += [f"{a} + {b} = {a + b}" for a in range(40) for b in range(40)]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<|endoftext|>", "<s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="<|endoftext|>",
                                        unk_token="<|endoftext|>", pad_token="<pad>")
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         intermediate_size=256, vocab_size=len(tokenizer), max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
