"""Training: pretraining objectives and loop, and what fine-tuning borrows from them.

    pretrain.py     the pretraining recipe, top to bottom (read this first)
    objectives.py   what a pretraining step optimises: masked-LM (one class per objective)
    masking.py      dynamic MLM corruption (80/10/10, whole-word option)
    order.py        data order and seeds as pure functions of (seed, step, rank)
    runtime.py      device, torchrun peers and their collectives, signals
    optim.py        AdamW (decay on matrices only), warmup + decay schedule, the budget
    precision.py    autocast choices (bf16 on GPUs that have it, else fp32)
    checkpoints.py  checkpoints that survive a kill at any moment (safetensors only)
    logbook.py      metrics.jsonl rows, averaged over steps and ranks
"""
