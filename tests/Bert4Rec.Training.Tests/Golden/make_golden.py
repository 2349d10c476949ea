#!/usr/bin/env python3
"""Writes golden.json: a tiny BERT4Rec's weights, inputs, loss, eval outputs and the gradient of every parameter,
computed by an independent PyTorch implementation of DESIGN.md's model (autograd, not our kernels).

Run once with Debian's PyTorch:  apt-get install -y python3-torch && /usr/bin/python3 make_golden.py
The C# test (GoldenTests.cs) loads the file and compares tensor by tensor.
"""
import json, math, torch

torch.manual_seed(1234)
n, d, H, L, N, eps = 9, 8, 2, 2, 6, 1e-12
V, MASK = n + 2, n + 1

# parameters in ParameterLayout order, matrices stored (in, out)
names = [("tok_emb", (V, d)), ("pos_emb", (N, d)), ("ln_emb.g", (d,)), ("ln_emb.b", (d,))]
for l in range(L):
    p = f"layers.{l}."
    names += [(p + "attn.qkv.w", (d, 3 * d)), (p + "attn.qkv.b", (3 * d,)), (p + "attn.out.w", (d, d)), (p + "attn.out.b", (d,)),
              (p + "ln1.g", (d,)), (p + "ln1.b", (d,)), (p + "ffn.w1", (d, 4 * d)), (p + "ffn.b1", (4 * d,)),
              (p + "ffn.w2", (4 * d, d)), (p + "ffn.b2", (d,)), (p + "ln2.g", (d,)), (p + "ln2.b", (d,))]
names += [("head.w", (d, d)), ("head.b", (d,)), ("ln_out.g", (d,)), ("ln_out.b", (d,)), ("out_bias", (V,))]
P = {}
for name, shape in names:
    t = torch.randn(shape, dtype=torch.float64) * (0.3 if len(shape) == 2 else 0.1)
    if name.endswith(".g"):
        t = 1.0 + t
    P[name] = t.requires_grad_(True)

ids = torch.tensor([[0, 0, 3, MASK, 5, 2], [7, 1, MASK, 4, 9, MASK], [0, 0, 0, 0, 2, MASK]])
labels = torch.tensor([[0, 0, 0, 6, 0, 0], [0, 0, 8, 0, 0, 3], [0, 0, 0, 0, 0, 1]])


def ln(x, g, b):
    return torch.nn.functional.layer_norm(x, (d,), g, b, eps)


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def forward(ids):
    B = ids.shape[0]
    h = ln(P["tok_emb"][ids] + P["pos_emb"][None, :, :], P["ln_emb.g"], P["ln_emb.b"])
    key_pad = (ids == 0).double() * -10000.0                       # (B, N)
    dh = d // H
    for l in range(L):
        p = f"layers.{l}."
        qkv = h @ P[p + "attn.qkv.w"] + P[p + "attn.qkv.b"]
        q, k, v = qkv.split(d, dim=-1)
        q = q.view(B, N, H, dh).transpose(1, 2)
        k = k.view(B, N, H, dh).transpose(1, 2)
        v = v.view(B, N, H, dh).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(dh) + key_pad[:, None, None, :]
        a = torch.softmax(s, dim=-1) @ v
        a = a.transpose(1, 2).reshape(B, N, d) @ P[p + "attn.out.w"] + P[p + "attn.out.b"]
        x = ln(h + a, P[p + "ln1.g"], P[p + "ln1.b"])
        f = gelu(x @ P[p + "ffn.w1"] + P[p + "ffn.b1"]) @ P[p + "ffn.w2"] + P[p + "ffn.b2"]
        h = ln(x + f, P[p + "ln2.g"], P[p + "ln2.b"])
    z = ln(gelu(h @ P["head.w"] + P["head.b"]), P["ln_out.g"], P["ln_out.b"])
    return z


z = forward(ids)
logits = z @ P["tok_emb"].T + P["out_bias"]                         # (B, N, V)
mask = labels > 0
items_logits = logits[mask][:, 1:n + 1]                             # softmax over items 1..n only
loss = torch.nn.functional.cross_entropy(items_logits, labels[mask] - 1)
loss.backward()

out = {
    "config": {"ItemCount": n, "Hidden": d, "Heads": H, "Layers": L, "MaxLength": N, "LayerNormEpsilon": eps},
    "ids": ids.flatten().tolist(), "labels": labels.flatten().tolist(), "batch": ids.shape[0],
    "loss": loss.item(),
    "z_last": z[:, -1, :].flatten().tolist(),
    "logits_last": logits[:, -1, :].flatten().tolist(),
    "params": {name: P[name].detach().flatten().tolist() for name, _ in names},
    "grads": {name: P[name].grad.flatten().tolist() for name, _ in names},
}
with open("golden.json", "w") as f:
    json.dump(out, f)
print(f"golden.json: loss {loss.item():.6f}, {sum(P[nm].numel() for nm, _ in names)} parameters")
