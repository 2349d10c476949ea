// GRU4Rec as DESIGN.md specifies it, on libtorch with autograd: e_t = Dropout(E[x_t]); h_t = GRU(e_t, h_{t-1}) from
// h = 0; z_t = h_t. Gates in the layout's (ONNX's) order z | r | h, candidate r * (h W_hh,h + b_hh,h) (linear_before_reset):
//   z = sigmoid(x W_z + b_iz + h U_z + b_hz)   r = sigmoid(x W_r + b_ir + h U_r + b_hr)
//   n = tanh(x W_h + b_ih + r * (h U_h + b_hh))   h' = (1 - z) * n + z * h
// Rows are left-padded: at a [PAD] position the state is carried unchanged, so each row starts from 0 at its first item
// (the native engine runs real tokens only) and an all-[PAD] row's z is 0.
using Bert4Rec.Contracts;
using TorchSharp;
using static TorchSharp.torch;

namespace Bert4Rec.Torch;

public sealed class TorchGru4Rec : TorchSequenceModel
{
    public TorchGru4Rec(ModelConfig config, int maxBatch, int threads, Device device) : base(config, maxBatch, threads, device)
    {
        if (config.Kind != ModelKind.Gru4Rec) throw new ArgumentException($"TorchGru4Rec needs a gru4rec config, got {config.Kind.Name()}");
    }

    protected override Tensor Encode(Tensor ids, Tensor pad, int firstPosition, bool train)
    {
        long B = ids.shape[0], N = ids.shape[1];
        int d = _d;
        double hp = train ? Config.HiddenDropout : 0;
        var x = torch.nn.functional.dropout(P("tok_emb").index_select(0, ids.reshape(-1)).view(B, N, d), hp, train);
        var xi = Linear(x, "gru.w_ih", "gru.b_ih");                                             // (B,N,3d), all steps at once
        var keep = pad.logical_not().to(ScalarType.Float32).unsqueeze(-1);                      // (B,N,1)
        var h = torch.zeros(B, d, ScalarType.Float32, Device);
        var states = new Tensor[N];
        for (long t = 0; t < N; t++)
        {
            var xt = xi.select(1, t);
            var hh = Linear(h, "gru.w_hh", "gru.b_hh");
            var z = xt.narrow(1, 0, d).add(hh.narrow(1, 0, d)).sigmoid();
            var r = xt.narrow(1, d, d).add(hh.narrow(1, d, d)).sigmoid();
            var n = xt.narrow(1, 2 * d, d).add(r.mul(hh.narrow(1, 2 * d, d))).tanh();
            var next = n.add(z.mul(h.sub(n)));                                                   // (1 - z) n + z h
            var m = keep.select(1, t);
            h = h.add(m.mul(next.sub(h)));                                                       // pads carry h
            states[t] = h;
        }
        return torch.stack(states, 1);
    }
}
