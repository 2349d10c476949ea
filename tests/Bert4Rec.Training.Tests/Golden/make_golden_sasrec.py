#!/usr/bin/env python3
"""Writes golden_sasrec.json: a tiny SASRec's weights, inputs, loss, eval outputs and the gradient of every parameter,
computed by an independent PyTorch implementation of DESIGN.md's SASRec (autograd, not our kernels).

Run once with Debian's PyTorch:  apt-get install -y python3-torch && /usr/bin/python3 make_golden_sasrec.py
The C# test (GoldenTests.cs) loads the file and compares tensor by tensor.
"""
import json, math, torch

torch.manual_seed(4321)
n, d, H, L, N, eps = 9, 8, 2, 2, 6, 1e-12
V = n + 2

# parameters in ParameterLayout order (SASRec), matrices stored (in, out)
names = [("tok_emb", (V, d)), ("pos_emb", (N, d))]
for l in range(L):
    p = f"layers.{l}."
    names += [(p + "ln_attn.g", (d,)), (p + "ln_attn.b", (d,)), (p + "attn.q.w", (d, d)), (p + "attn.q.b", (d,)),
              (p + "attn.kv.w", (d, 2 * d)), (p + "attn.kv.b", (2 * d,)), (p + "attn.out.w", (d, d)), (p + "attn.out.b", (d,)),
              (p + "ln_ffn.g", (d,)), (p + "ln_ffn.b", (d,)), (p + "ffn.w1", (d, d)), (p + "ffn.b1", (d,)),
              (p + "ffn.w2", (d, d)), (p + "ffn.b2", (d,))]
names += [("ln_last.g", (d,)), ("ln_last.b", (d,)), ("out_bias", (V,))]
P = {}
for name, shape in names:
    t = torch.randn(shape, dtype=torch.float64) * (0.3 if len(shape) == 2 else 0.1)
    if name.endswith(".g"):
        t = 1.0 + t
    P[name] = t.requires_grad_(True)

# left-padded inputs; the target at each position is the next item (row 2 has a single item)
ids = torch.tensor([[0, 0, 3, 5, 2, 7], [7, 1, 4, 4, 9, 2], [0, 0, 0, 0, 0, 6]])
labels = torch.tensor([[0, 0, 5, 2, 7, 1], [1, 4, 4, 9, 2, 3], [0, 0, 0, 0, 0, 8]])


def ln(x, g, b):
    return torch.nn.functional.layer_norm(x, (d,), g, b, eps)


def forward(ids):
    B = ids.shape[0]
    nonpad = (ids != 0).double()[:, :, None]
    h = (P["tok_emb"][ids] * math.sqrt(d) + P["pos_emb"][None, :, :]) * nonpad
    mask = (ids == 0).double()[:, None, None, :] * -10000.0 + torch.triu(torch.ones(N, N, dtype=torch.float64), 1) * -10000.0
    dh = d // H
    for l in range(L):
        p = f"layers.{l}."
        q_in = ln(h, P[p + "ln_attn.g"], P[p + "ln_attn.b"])
        q = (q_in @ P[p + "attn.q.w"] + P[p + "attn.q.b"]).view(B, N, H, dh).transpose(1, 2)
        k, v = (h @ P[p + "attn.kv.w"] + P[p + "attn.kv.b"]).split(d, dim=-1)
        k = k.reshape(B, N, H, dh).transpose(1, 2)
        v = v.reshape(B, N, H, dh).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + mask, dim=-1) @ v
        a = a.transpose(1, 2).reshape(B, N, d) @ P[p + "attn.out.w"] + P[p + "attn.out.b"]
        f = ln(q_in + a, P[p + "ln_ffn.g"], P[p + "ln_ffn.b"])
        h = (f + torch.relu(f @ P[p + "ffn.w1"] + P[p + "ffn.b1"]) @ P[p + "ffn.w2"] + P[p + "ffn.b2"]) * nonpad
    return ln(h, P["ln_last.g"], P["ln_last.b"])


z = forward(ids)
logits = z @ P["tok_emb"].T + P["out_bias"]                         # (B, N, V)
mask = labels > 0
items_logits = logits[mask][:, 1:n + 1]                             # softmax over items 1..n only
loss = torch.nn.functional.cross_entropy(items_logits, labels[mask] - 1)
loss.backward()

out = {
    "config": {"Kind": "sasrec", "ItemCount": n, "Hidden": d, "Heads": H, "Layers": L, "MaxLength": N, "LayerNormEpsilon": eps},
    "ids": ids.flatten().tolist(), "labels": labels.flatten().tolist(), "batch": ids.shape[0],
    "loss": loss.item(),
    "z_last": z[:, -1, :].flatten().tolist(),
    "logits_last": logits[:, -1, :].flatten().tolist(),
    "params": {name: P[name].detach().flatten().tolist() for name, _ in names},
    "grads": {name: P[name].grad.flatten().tolist() for name, _ in names},
}
with open("golden_sasrec.json", "w") as f:
    json.dump(out, f)
print(f"golden_sasrec.json: loss {loss.item():.6f}, {sum(P[nm].numel() for nm, _ in names)} parameters")
