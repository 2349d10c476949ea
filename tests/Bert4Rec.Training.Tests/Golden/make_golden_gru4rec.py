#!/usr/bin/env python3
"""Writes golden_gru4rec.json: a tiny GRU4Rec's weights, inputs, loss, eval outputs and the gradient of every parameter,
computed with PyTorch's own torch.nn.GRU (autograd, not our kernels) run over each row's real items only.

Run once with Debian's PyTorch:  apt-get install -y python3-torch && /usr/bin/python3 make_golden_gru4rec.py
The C# test (GoldenTests.cs) loads the file and compares tensor by tensor.

torch.nn.GRU keeps its gates in the order r | z | n as (3d, in) matrices; ParameterLayout keeps ONNX's order z | r | h as
(in, 3d) matrices. to_layout() below does that mapping for the weights and for their gradients alike.
"""
import json, torch

torch.manual_seed(2468)
n, d, N = 9, 8, 6
V = n + 2

emb = (torch.randn(V, d, dtype=torch.float64) * 0.5).requires_grad_(True)
out_bias = (torch.randn(V, dtype=torch.float64) * 0.1).requires_grad_(True)
gru = torch.nn.GRU(d, d, num_layers=1, batch_first=True).double()
with torch.no_grad():
    for p in gru.parameters():
        p.uniform_(-0.6, 0.6)        # larger than the default init, so that every gate is far from linear


def to_layout(t):
    """(3d, d) in torch's r | z | n order -> (d, 3d) in z | r | h order; a (3d,) bias likewise."""
    r, z, h = t.split(d, dim=0)
    reordered = torch.cat([z, r, h], dim=0)
    return reordered.T.contiguous() if reordered.dim() == 2 else reordered


# left-padded inputs; the target at each position is the next item; row 2 has one item, row 3 none at all
ids = torch.tensor([[0, 0, 3, 5, 2, 7], [7, 1, 4, 4, 9, 2], [0, 0, 0, 0, 0, 6], [0, 0, 0, 0, 0, 0]])
labels = torch.tensor([[0, 0, 5, 2, 7, 1], [1, 4, 4, 9, 2, 8], [0, 0, 0, 0, 0, 3], [0, 0, 0, 0, 0, 0]])
B = ids.shape[0]


def states(ids):
    """(B, N, d): the GRU state after each real item (h_0 = 0, pads skipped); zeros at pad positions."""
    rows = []
    for b in range(B):
        real = ids[b][ids[b] != 0]
        h = torch.zeros(N, d, dtype=torch.float64)
        if len(real) > 0:
            y, _ = gru(emb[real].unsqueeze(0))                  # (1, L, d)
            h = torch.cat([torch.zeros(N - len(real), d, dtype=torch.float64), y[0]], dim=0)
        rows.append(h)
    return torch.stack(rows)


z = states(ids)
logits = z @ emb.T + out_bias                                    # (B, N, V)
mask = labels > 0
loss = torch.nn.functional.cross_entropy(logits[mask][:, 1:n + 1], labels[mask] - 1)
loss.backward()

params = {
    "tok_emb": emb, "gru.w_ih": gru.weight_ih_l0, "gru.w_hh": gru.weight_hh_l0, "gru.b_ih": gru.bias_ih_l0,
    "gru.b_hh": gru.bias_hh_l0, "out_bias": out_bias,
}
layout = lambda name, t: to_layout(t) if name.startswith("gru.") else t
out = {
    "config": {"Kind": "gru4rec", "ItemCount": n, "Hidden": d, "Heads": 1, "Layers": 1, "MaxLength": N, "LayerNormEpsilon": 1e-12},
    "ids": ids.flatten().tolist(), "labels": labels.flatten().tolist(), "batch": B,
    "loss": loss.item(),
    "z_last": z[:, -1, :].detach().flatten().tolist(),           # the empty row's is h_0 = 0
    "logits_last": logits[:, -1, :].detach().flatten().tolist(),
    "params": {name: layout(name, t.detach()).flatten().tolist() for name, t in params.items()},
    "grads": {name: layout(name, t.grad).flatten().tolist() for name, t in params.items()},
}
with open("golden_gru4rec.json", "w") as f:
    json.dump(out, f)
print(f"golden_gru4rec.json: loss {loss.item():.6f}, {sum(t.numel() for t in params.values())} parameters")
