"""Training jobs on search output: a fine-tuned proposer, and the learned proposer head.

A job layer: it may import the core, the backends, the data formats and the learned head's
plug-in (`hag_agent.learned_head`), never the command line; jobs report progress through a
`hag_agent.progress.ProgressCallback`, raise typed errors and never print.

- `sft_data`: search records -> prompt-completion examples, the held-out split by case id;
- `base_models`: ``--base`` as a model folder, or ``smollm2`` converted from its GGUF;
- `sft`: ``train_sft``, TRL + LoRA training, resumable, with ``OUT/report.json`` (the ``train``
  extra: torch, transformers, trl, peft);
- `held_out`: strict parse rate and error per parameter of a model's proposals;
- `held_out_error`: the mean absolute error per parameter both held-out reports use;
- `gguf_adapter`: the PEFT LoRA adapter as a GGUF LoRA file for llama.cpp (``gguf``);
- `head_fitting`: ``fit_head``/``fit_vectors``, ridge in closed form (alpha by leave-one-out) or
  kNN; `head_evaluation`: the head's held-out error against the baselines;
- `head_training`: ``train_head``, the whole job: embed, fit, save, report (NumPy).

Only `sft` and `held_out.generate_proposals` need the training packages, imported lazily.
"""
