// The model's shape and regularisation: the one record the trainer, the exporter and the loaders agree on.
namespace Bert4Rec.Contracts;

/// <summary>
/// BERT4Rec hyperparameters that fix the parameter layout and the forward pass (see DESIGN.md, "Model").
/// Vocabulary: 0 = [PAD], 1..ItemCount = items, ItemCount + 1 = [MASK]; V = ItemCount + 2.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>n: number of real items.</summary>
    public required int ItemCount { get; init; }
    /// <summary>d: hidden size.</summary>
    public int Hidden { get; init; } = 64;
    public int Heads { get; init; } = 2;
    public int Layers { get; init; } = 2;
    /// <summary>N: maximum sequence length (positions).</summary>
    public int MaxLength { get; init; } = 200;
    public float HiddenDropout { get; init; } = 0.2f;
    public float AttentionDropout { get; init; } = 0.2f;
    public float LayerNormEpsilon { get; init; } = 1e-12f;

    /// <summary>V = n + 2 (pad and mask included).</summary>
    public int VocabSize => ItemCount + 2;
    public int MaskId => ItemCount + 1;
    public const int PadId = 0;
    public int InnerSize => 4 * Hidden;
    public int HeadSize => Hidden / Heads;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        if (ItemCount < 1) throw new ArgumentException($"ItemCount must be >= 1, got {ItemCount}", nameof(ItemCount));
        if (Hidden < 1) throw new ArgumentException($"Hidden must be >= 1, got {Hidden}", nameof(Hidden));
        if (Heads < 1 || Hidden % Heads != 0) throw new ArgumentException($"Heads must divide Hidden ({Hidden}), got {Heads}", nameof(Heads));
        if (Layers < 1) throw new ArgumentException($"Layers must be >= 1, got {Layers}", nameof(Layers));
        if (MaxLength < 2) throw new ArgumentException($"MaxLength must be >= 2, got {MaxLength}", nameof(MaxLength));
        if (HiddenDropout is < 0 or >= 1) throw new ArgumentException($"HiddenDropout must be in [0,1), got {HiddenDropout}", nameof(HiddenDropout));
        if (AttentionDropout is < 0 or >= 1) throw new ArgumentException($"AttentionDropout must be in [0,1), got {AttentionDropout}", nameof(AttentionDropout));
        if (!(LayerNormEpsilon > 0)) throw new ArgumentException($"LayerNormEpsilon must be > 0, got {LayerNormEpsilon}", nameof(LayerNormEpsilon));
    }
}
