#!/usr/bin/env python3
"""Reference SASRec in PyTorch (CPU), the anchor of `bert4rec bench train --model sasrec --torch`.

Written for this project from DESIGN.md's SASRec (pre-LN blocks, causal attention with queries from LN(h) and keys/values
from h, ReLU feed-forward of inner size d, final LayerNorm, tied output embedding plus bias), trained the way the project
trains it: cross-entropy over all items at every non-pad position. Idiomatic PyTorch (nn.MultiheadAttention, eager mode).
Run with Debian's PyTorch: apt-get install -y python3-torch; /usr/bin/python3 ref_sasrec_torch.py
Usage: ref_sasrec_torch.py [--steps 20] [--batch 128] [--seq 200] [--items 3416] [--threads 2]
"""
import argparse, json, math, time, torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=20)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--seq", type=int, default=200)
p.add_argument("--items", type=int, default=3416)
p.add_argument("--hidden", type=int, default=64)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--heads", type=int, default=1)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--dropout", type=float, default=0.2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
V = a.items + 2


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln_a = nn.LayerNorm(a.hidden)
        s.attn = nn.MultiheadAttention(a.hidden, a.heads, dropout=a.dropout, batch_first=True)
        s.ln_f = nn.LayerNorm(a.hidden)
        s.w1 = nn.Linear(a.hidden, a.hidden)
        s.w2 = nn.Linear(a.hidden, a.hidden)
        s.drop = nn.Dropout(a.dropout)

    def forward(s, h, causal, pad, keep):
        q = s.ln_a(h)
        h = q + s.drop(s.attn(q, h, h, attn_mask=causal, key_padding_mask=pad, need_weights=False)[0])
        f = s.ln_f(h)
        return (f + s.drop(s.w2(s.drop(F.relu(s.w1(f)))))) * keep


class SasRec(nn.Module):
    def __init__(s):
        super().__init__()
        s.tok = nn.Embedding(V, a.hidden, padding_idx=0)
        s.pos = nn.Embedding(a.seq, a.hidden)
        s.drop = nn.Dropout(a.dropout)
        s.blocks = nn.ModuleList([Block() for _ in range(a.layers)])
        s.ln = nn.LayerNorm(a.hidden)
        s.bias = nn.Parameter(torch.zeros(V))

    def forward(s, x):
        keep = (x != 0).unsqueeze(-1).float()
        causal = torch.triu(torch.ones(a.seq, a.seq, dtype=torch.bool), 1)
        h = s.drop(s.tok(x) * math.sqrt(a.hidden) + s.pos.weight[None]) * keep
        for b in s.blocks:
            h = b(h, causal, x == 0, keep)
        return s.ln(h)


m = SasRec()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)


def batch():
    seqs = torch.randint(1, a.items + 1, (a.batch, a.seq + 1))
    lens = torch.randint(a.seq // 4, a.seq + 1, (a.batch,))
    pad = torch.arange(a.seq)[None, :] < (a.seq - lens)[:, None]
    x, y = seqs[:, :-1].clone(), seqs[:, 1:].clone()
    x[pad] = 0
    return x, ~pad, y[~pad]


def step(x, keep, y):
    z = m(x)[keep]
    logits = z @ m.tok.weight[1:a.items + 1].T + m.bias[1:a.items + 1]
    loss = F.cross_entropy(logits, y - 1)
    opt.zero_grad(); loss.backward(); opt.step()


m.train()
for _ in range(2):  # warm-up
    step(*batch())
tok = 0; t0 = time.perf_counter()
for _ in range(a.steps):
    x, keep, y = batch()
    step(x, keep, y); tok += x.numel()
dt = time.perf_counter() - t0
print(f"train: {a.steps} steps, batch {a.batch}x{a.seq}, {dt:.2f}s, {tok/dt:,.0f} tokens/s")
print("RESULT " + json.dumps({"engine": "pytorch-sasrec-" + torch.__version__, "train_tokens_per_s": round(tok / dt)}))
