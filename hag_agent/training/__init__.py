"""Fine-tuning a proposer on search output (the ``train`` extra: torch, transformers, trl, peft).

- `sft_data`: search records -> prompt-completion examples, the held-out split by case id;
- `base_models`: ``--base`` as a model folder, or ``smollm2`` converted from its GGUF;
- `sft`: TRL + LoRA training, resumable, with ``OUT/report.json``;
- `held_out`: strict parse rate and error per parameter of a model's proposals;
- `gguf_adapter`: the PEFT LoRA adapter as a GGUF LoRA file for llama.cpp (``gguf`` only).

Only `sft` and `held_out.generate_proposals` need the training packages, imported lazily.
"""
