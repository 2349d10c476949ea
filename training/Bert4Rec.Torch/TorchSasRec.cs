// SASRec as DESIGN.md specifies it (Kang & McAuley 2018, original pre-LN layout), on libtorch with autograd:
//   h0 = Dropout(E[x_t] * sqrt(d) + P[t]) * nonpad_t
//   per block: q = LN_a(h);  h = q + Dropout(MHA(q, h, h))       causal, pad keys masked
//              f = LN_f(h);  h = (f + Dropout(W_2 Dropout(ReLU(W_1 f + b_1)) + b_2)) * nonpad    inner d
//   z_t = LN_last(h_t)
// Queries are projected from LN_a(h) (attn.q), keys and values from h itself (attn.kv, columns k | v). An all-[PAD] row
// stays 0 through the blocks, so its z is LN_last(0) = ln_last.b, the native engine's empty-row state.
using Bert4Rec.Contracts;
using TorchSharp;
using static TorchSharp.torch;

namespace Bert4Rec.Torch;

public sealed class TorchSasRec : TorchSequenceModel
{
    public TorchSasRec(ModelConfig config, int maxBatch, int threads, Device device) : base(config, maxBatch, threads, device)
    {
        if (config.Kind != ModelKind.SasRec) throw new ArgumentException($"TorchSasRec needs a sasrec config, got {config.Kind.Name()}");
    }

    protected override Tensor Encode(Tensor ids, Tensor pad, int firstPosition, bool train)
    {
        var cfg = Config;
        long B = ids.shape[0], N = ids.shape[1];
        int d = _d, H = cfg.Heads, dh = d / H;
        double hp = train ? cfg.HiddenDropout : 0, ap = train ? cfg.AttentionDropout : 0;
        var nonpad = pad.logical_not().to(ScalarType.Float32).unsqueeze(-1);                  // (B,N,1)
        var x = P("tok_emb").index_select(0, ids.reshape(-1)).view(B, N, d).mul(MathF.Sqrt(d)).add(P("pos_emb").narrow(0, firstPosition, N));
        x = torch.nn.functional.dropout(x, hp, train).mul(nonpad);
        // additive mask (B,1,N,N): -10000 on future keys and on [PAD] keys
        var future = torch.ones(N, N, ScalarType.Float32, Device).triu(1).mul(-10000f);
        var mask = pad.to(ScalarType.Float32).mul(-10000f).view(B, 1, 1, N).add(future);
        for (int l = 0; l < cfg.Layers; l++)
        {
            string p = $"layers.{l}.";
            var q = LayerNorm(x, p + "ln_attn.g", p + "ln_attn.b");
            var qh = Linear(q, p + "attn.q.w", p + "attn.q.b").view(B, N, H, dh).transpose(1, 2);
            var kv = Linear(x, p + "attn.kv.w", p + "attn.kv.b").view(B, N, 2, H, dh).permute(2, 0, 3, 1, 4);
            var att = torch.nn.functional.scaled_dot_product_attention(qh, kv[0], kv[1], mask, ap, false);
            var o = Linear(att.transpose(1, 2).reshape(B, N, d), p + "attn.out.w", p + "attn.out.b");
            x = q.add(torch.nn.functional.dropout(o, hp, train));
            var f = LayerNorm(x, p + "ln_ffn.g", p + "ln_ffn.b");
            var g = torch.nn.functional.dropout(torch.nn.functional.relu(Linear(f, p + "ffn.w1", p + "ffn.b1")), hp, train);
            x = f.add(torch.nn.functional.dropout(Linear(g, p + "ffn.w2", p + "ffn.b2"), hp, train)).mul(nonpad);
        }
        return x;
    }

    protected override Tensor Head(Tensor h) => LayerNorm(h, "ln_last.g", "ln_last.b");
}
