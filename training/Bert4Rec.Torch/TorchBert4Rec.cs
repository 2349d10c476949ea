// BERT4Rec as DESIGN.md specifies it, on libtorch with autograd:
//   h0 = Dropout(LN_emb(E[x_t] + P[t]))
//   per layer (post-LN): a = LN_1(h + Dropout(MHA(h)))    bidirectional, pad keys -10000
//                        h = LN_2(a + Dropout(W_2 GELU(W_1 a + b_1) + b_2))    inner 4d
//   z = LN_out(GELU(h W_P + b_P))
// Parameters are views of the layout's flat buffer (qkv columns q | k | v, head h at h*dh..). Pads are computed (their
// keys carry -10000 and nothing reads their outputs), unlike the native engine which skips them.
using Bert4Rec.Contracts;
using TorchSharp;
using static TorchSharp.torch;

namespace Bert4Rec.Torch;

public sealed class TorchBert4Rec : TorchSequenceModel
{
    public TorchBert4Rec(ModelConfig config, int maxBatch, int threads, Device device) : base(config, maxBatch, threads, device)
    {
        if (config.Kind != ModelKind.Bert4Rec) throw new ArgumentException($"TorchBert4Rec needs a bert4rec config, got {config.Kind.Name()}");
    }

    protected override Tensor Encode(Tensor ids, Tensor pad, int firstPosition, bool train)
    {
        var cfg = Config;
        long B = ids.shape[0], N = ids.shape[1];
        int d = _d, H = cfg.Heads, dh = d / H;
        double hp = train ? cfg.HiddenDropout : 0, ap = train ? cfg.AttentionDropout : 0;
        var x = P("tok_emb").index_select(0, ids.reshape(-1)).view(B, N, d).add(P("pos_emb").narrow(0, firstPosition, N));
        x = torch.nn.functional.dropout(LayerNorm(x, "ln_emb.g", "ln_emb.b"), hp, train);
        // additive key mask (B,1,1,N): 0 for items, -10000 for [PAD]
        var mask = pad.to(ScalarType.Float32).mul(-10000f).view(B, 1, 1, N);
        for (int l = 0; l < cfg.Layers; l++)
        {
            string p = $"layers.{l}.";
            var qkv = Linear(x, p + "attn.qkv.w", p + "attn.qkv.b");                    // (B,N,3d)
            var parts = qkv.view(B, N, 3, H, dh).permute(2, 0, 3, 1, 4);                 // (3,B,H,N,dh)
            var att = torch.nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2], mask, ap, false);
            var o = Linear(att.transpose(1, 2).reshape(B, N, d), p + "attn.out.w", p + "attn.out.b");
            x = LayerNorm(x.add(torch.nn.functional.dropout(o, hp, train)), p + "ln1.g", p + "ln1.b");
            var f = Linear(torch.nn.functional.gelu(Linear(x, p + "ffn.w1", p + "ffn.b1")), p + "ffn.w2", p + "ffn.b2");
            x = LayerNorm(x.add(torch.nn.functional.dropout(f, hp, train)), p + "ln2.g", p + "ln2.b");
        }
        return x;
    }

    protected override Tensor Head(Tensor h) =>
        LayerNorm(torch.nn.functional.gelu(Linear(h, "head.w", "head.b")), "ln_out.g", "ln_out.b");
}
