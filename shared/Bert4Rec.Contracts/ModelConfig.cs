// The model's kind, shape and regularisation: the one record the trainer, the exporter and the loaders agree on.
namespace Bert4Rec.Contracts;

/// <summary>The models of DESIGN.md. The sequential kinds (BERT4Rec, SASRec, GRU4Rec) share the vocabulary, the input row and
/// the output identity logit(v) = z . E[v] + b_O[v]; they differ in how z is computed from the row. NeuMF is a feature model:
/// it scores (user, item) pairs from user and item embeddings and the users' and items' feature fields. Two-Tower is a feature
/// model too: a user tower over the user's fields and pooled recent history, an item tower over the item id and its fields.</summary>
public enum ModelKind { Bert4Rec, SasRec, Gru4Rec, NeuMf, DeepFm, TwoTower }

public static class ModelKinds
{
    /// <summary>The command-line / manifest name of a kind: bert4rec, sasrec, gru4rec.</summary>
    public static string Name(this ModelKind k) => k switch
    {
        ModelKind.Bert4Rec => "bert4rec", ModelKind.SasRec => "sasrec", ModelKind.Gru4Rec => "gru4rec", ModelKind.NeuMf => "neumf",
        ModelKind.DeepFm => "deepfm", ModelKind.TwoTower => "two-tower",
        _ => throw new ArgumentOutOfRangeException(nameof(k), k, "unknown model kind"),
    };

    public static readonly IReadOnlyList<ModelKind> All = [ModelKind.Bert4Rec, ModelKind.SasRec, ModelKind.Gru4Rec, ModelKind.NeuMf, ModelKind.DeepFm, ModelKind.TwoTower];

    /// <summary>True for the kinds that read a history row (everything but the feature models).</summary>
    public static bool IsSequential(this ModelKind k) => k is not (ModelKind.NeuMf or ModelKind.DeepFm or ModelKind.TwoTower);

    /// <summary>Parses a kind's name (case-insensitive); an empty name is BERT4Rec (manifests and checkpoints written before kinds existed).</summary>
    public static bool TryParse(string? name, out ModelKind kind)
    {
        kind = ModelKind.Bert4Rec;
        if (string.IsNullOrEmpty(name)) return true;
        foreach (var k in All)
            if (string.Equals(k.Name(), name, StringComparison.OrdinalIgnoreCase)) { kind = k; return true; }
        return false;
    }

    public static ModelKind Parse(string? name) =>
        TryParse(name, out var k) ? k : throw new ArgumentException($"'{name}' is not a model kind (one of {string.Join(", ", All.Select(x => x.Name()))})");
}

/// <summary>
/// Hyperparameters that fix the parameter layout and the forward pass (see DESIGN.md, "Sequential models").
/// Vocabulary, every kind: 0 = [PAD], 1..ItemCount = items, ItemCount + 1 = [MASK] (used by BERT4Rec only; the row is
/// kept for every kind so item indices and embedding shapes agree); V = ItemCount + 2.
/// </summary>
public sealed record ModelConfig
{
    public ModelKind Kind { get; init; } = ModelKind.Bert4Rec;
    /// <summary>n: number of real items.</summary>
    public required int ItemCount { get; init; }
    /// <summary>d: hidden size (GRU4Rec: the embedding and the GRU state).</summary>
    public int Hidden { get; init; } = 64;
    public int Heads { get; init; } = 2;
    public int Layers { get; init; } = 2;
    /// <summary>N: maximum sequence length (positions).</summary>
    public int MaxLength { get; init; } = 200;
    public float HiddenDropout { get; init; } = 0.2f;
    public float AttentionDropout { get; init; } = 0.2f;
    public float LayerNormEpsilon { get; init; } = 1e-12f;
    /// <summary>NeuMF: the number of users (rows of the user embeddings; users are the dataset's indices 0..U-1).</summary>
    public int UserCount { get; init; }
    /// <summary>NeuMF and Two-Tower: the user and item feature fields as <see cref="FeatureShape"/> strings ("" = none).</summary>
    public string UserFeatures { get; init; } = "";
    public string ItemFeatures { get; init; } = "";
    /// <summary>NeuMF: the MLP's embedding size per side, Hidden * 2^(Layers-1), so that its layers halve down to Hidden (the
    /// paper's tower: factors 8, 3 layers = 64 -> 32 -> 16 -> 8).</summary>
    public int MlpEmbedding => Hidden << (Layers - 1);

    /// <summary>V = n + 2 (pad and mask included).</summary>
    public int VocabSize => ItemCount + 2;
    public int MaskId => ItemCount + 1;
    public const int PadId = 0;
    /// <summary>Feed-forward inner size: 4d for BERT4Rec, d for SASRec (the original point-wise layers), 0 for GRU4Rec.</summary>
    public int InnerSize => Kind switch { ModelKind.Bert4Rec => 4 * Hidden, ModelKind.SasRec => Hidden, _ => 0 };
    public int HeadSize => Hidden / Heads;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Kind)) throw new ArgumentException($"Kind {(int)Kind} is not a model kind", nameof(Kind));
        if (ItemCount < 1) throw new ArgumentException($"ItemCount must be >= 1, got {ItemCount}", nameof(ItemCount));
        if (Hidden < 1) throw new ArgumentException($"Hidden must be >= 1, got {Hidden}", nameof(Hidden));
        if (Heads < 1 || Hidden % Heads != 0) throw new ArgumentException($"Heads must divide Hidden ({Hidden}), got {Heads}", nameof(Heads));
        if (Layers < 1) throw new ArgumentException($"Layers must be >= 1, got {Layers}", nameof(Layers));
        if (Kind == ModelKind.Gru4Rec && Layers != 1) throw new ArgumentException($"Layers must be 1 for gru4rec (one GRU layer), got {Layers}", nameof(Layers));
        if (MaxLength < 2) throw new ArgumentException($"MaxLength must be >= 2, got {MaxLength}", nameof(MaxLength));
        if (HiddenDropout is < 0 or >= 1) throw new ArgumentException($"HiddenDropout must be in [0,1), got {HiddenDropout}", nameof(HiddenDropout));
        if (AttentionDropout is < 0 or >= 1) throw new ArgumentException($"AttentionDropout must be in [0,1), got {AttentionDropout}", nameof(AttentionDropout));
        if (Kind is ModelKind.NeuMf or ModelKind.DeepFm)
        {
            if (UserCount < 1) throw new ArgumentException($"UserCount must be >= 1 for {Kind.Name()}, got {UserCount}", nameof(UserCount));
            if (Layers > 8) throw new ArgumentException($"Layers must be <= 8 for {Kind.Name()} (the tower doubles per layer), got {Layers}", nameof(Layers));
            FeatureShape.Parse(UserFeatures);
            FeatureShape.Parse(ItemFeatures);
        }
        else if (Kind == ModelKind.TwoTower)
        {
            // the user tower reads the user's fields and history, never a user id: UserCount has no role
            if (UserCount != 0) throw new ArgumentException($"UserCount belongs to neumf, not two-tower (its user tower has no user id), got {UserCount}", nameof(UserCount));
            FeatureShape.Parse(UserFeatures);
            FeatureShape.Parse(ItemFeatures);
        }
        else if (UserCount != 0 || UserFeatures.Length > 0 || ItemFeatures.Length > 0)
            throw new ArgumentException($"UserCount and features belong to the feature models (neumf, deepfm, two-tower), not {Kind.Name()}", nameof(UserCount));
        if (!(LayerNormEpsilon > 0)) throw new ArgumentException($"LayerNormEpsilon must be > 0, got {LayerNormEpsilon}", nameof(LayerNormEpsilon));
    }
}

/// <summary>
/// The one rule that turns a history of item indices (oldest first) into a model's input row of length N, used by the
/// trainer's evaluation, the exporter's parity tests and the server. BERT4Rec: the most recent N-1 items, left-padded
/// with [PAD], then [MASK] at the last position (the position it predicts). SASRec and GRU4Rec: the most recent N items,
/// left-padded; they predict from the last item's state.
/// </summary>
public static class ModelInput
{
    public static void Fill(ReadOnlySpan<int> history, ModelConfig cfg, Span<int> row)
    {
        int N = cfg.MaxLength;
        if (row.Length != N) throw new ArgumentException($"row has length {row.Length}, expected N = {N}");
        row.Clear();
        bool mask = cfg.Kind == ModelKind.Bert4Rec;
        int room = mask ? N - 1 : N, keep = Math.Min(history.Length, room);
        history[^keep..].CopyTo(row.Slice(room - keep, keep));
        if (mask) row[N - 1] = cfg.MaskId;
    }

    /// <summary>The row as int64, the ONNX input's element type.</summary>
    public static long[] Row(IReadOnlyList<int> history, ModelConfig cfg)
    {
        var h = history as int[] ?? history.ToArray();
        Span<int> row = cfg.MaxLength <= 1024 ? stackalloc int[cfg.MaxLength] : new int[cfg.MaxLength];
        Fill(h, cfg, row);
        var r = new long[row.Length];
        for (int i = 0; i < row.Length; i++) r[i] = row[i];
        return r;
    }
}
