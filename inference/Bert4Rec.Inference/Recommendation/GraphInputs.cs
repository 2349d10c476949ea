// The inputs of a bundle's graphs, checked and fed by name: a feature model's graph (a Two-Tower stage one, a NeuMF or
// DeepFM stage two) reads the inputs its manifest entry declares, a sequential stage one item_ids and candidate_ids. Both
// stages build their feeds here, so a name means the same tensor in either.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Inference.OnnxRuntime;

namespace Bert4Rec.Inference.Recommendation;

internal static class GraphInputs
{
    private static readonly HashSet<string> Feedable = [ModelIo.UserIndex, ModelIo.UserFeatures, ModelIo.ItemIds, ModelIo.CandidateIds];

    /// <summary>What a graph of this config reads, in order: the manifest's declaration for a feature model; item_ids and
    /// candidate_ids for a sequential one (its contract is fixed, so the manifest declares nothing).</summary>
    public static IReadOnlyList<GraphInput> Of(ModelConfig cfg, ModelShape shape) => cfg.Kind.IsSequential()
        ? [new() { Name = ModelIo.ItemIds, ElementType = "int64", Dims = { "batch", cfg.MaxLength.ToString(System.Globalization.CultureInfo.InvariantCulture) } },
           new() { Name = ModelIo.CandidateIds, ElementType = "int64", Dims = { "batch", "candidates" } }]
        : shape.Inputs.ToList();

    /// <summary>The graph's inputs must be the declared ones, in order, each one this service can feed; a mismatch is a
    /// <see cref="BundleException"/> naming <paramref name="name"/>.</summary>
    public static void Check(InferenceSession s, IReadOnlyList<GraphInput> declared, string name, ModelConfig cfg)
    {
        var names = declared.Select(i => i.Name).ToList();
        if (!names.SequenceEqual(s.Inputs.Select(i => i.Name)))
            throw new BundleException(name, "the graph's inputs differ from the manifest's", $"{s.ModelPath}: inputs [{string.Join(", ", s.Inputs.Select(i => i.Name))}], the manifest declares [{string.Join(", ", names)}]");
        foreach (var i in declared)
        {
            if (!Feedable.Contains(i.Name))
                throw new BundleException(name, $"the graph reads an input this service cannot feed ('{i.Name}')", $"{s.ModelPath}: input '{i.Name}' is not one of {string.Join(", ", Feedable)}");
            if (i.ElementType != "int64") throw new BundleException(name, $"input '{i.Name}' is not int64", $"{s.ModelPath}: input '{i.Name}' is {i.ElementType}");
            if (s.Inputs.First(x => x.Name == i.Name).ElementType != TensorElementType.Int64)
                throw new BundleException(name, $"the graph's {i.Name} is not int64", $"{s.ModelPath}: the graph's {i.Name} is {s.Inputs.First(x => x.Name == i.Name).ElementType}");
        }
        if (!names.Contains(ModelIo.CandidateIds)) throw new BundleException(name, "the graph reads no candidate_ids", $"{s.ModelPath}: no candidate_ids input");
        var item = declared.FirstOrDefault(i => i.Name == ModelIo.ItemIds);
        if (item != null && (item.Dims.Count != 2 || item.Dims[1] != cfg.MaxLength.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            throw new BundleException(name, "item_ids is not [batch, N]", $"{s.ModelPath}: item_ids dims [{string.Join(",", item.Dims)}], expected [batch, {cfg.MaxLength}]");
        var output = s.Outputs.FirstOrDefault(o => o.Name == ModelIo.Scores)
            ?? throw new BundleException(name, "the model has no output 'scores'", $"{s.ModelPath}: no output 'scores'");
        if (output.ElementType != TensorElementType.Float) throw new BundleException(name, "scores is not float", $"{s.ModelPath}: scores is {output.ElementType}");
    }

    /// <summary>
    /// The feeds of one run over B rows: user_index (every row's user must be known), user_features ((B, width) value ids),
    /// item_ids (each history's row by <see cref="ModelInput"/>) and candidate_ids ((B, C), C the longest list; shorter lists
    /// padded with item 1, whose scores the caller drops). <paramref name="users"/> may be null when the graph reads no user.
    /// </summary>
    public static NamedTensor[] Feed(IReadOnlyList<GraphInput> inputs, ModelConfig cfg, IReadOnlyList<EncodedUser>? users,
                                     IReadOnlyList<IReadOnlyList<int>> histories, IReadOnlyList<IReadOnlyList<int>> candidates, int C)
    {
        int B = histories.Count, N = cfg.MaxLength;
        var feeds = new NamedTensor[inputs.Count];
        for (int x = 0; x < inputs.Count; x++)
        {
            string name = inputs[x].Name;
            switch (name)
            {
                case ModelIo.UserIndex:
                    feeds[x] = NamedTensor.Int64(name, users!.Select(u => (long)(u.Index >= 0 ? u.Index : throw new ArgumentException("this graph needs a known user"))).ToArray(), B);
                    break;
                case ModelIo.UserFeatures:
                    int width = users!.Count > 0 ? users[0].Features.Length : 0;
                    feeds[x] = NamedTensor.Int64(name, users.SelectMany(u => u.Features).ToArray(), B, width);
                    break;
                case ModelIo.ItemIds:
                    var rows = new long[B * N];
                    for (int b = 0; b < B; b++) ModelInput.Row(histories[b], cfg).CopyTo(rows, b * N);
                    feeds[x] = NamedTensor.Int64(name, rows, B, N);
                    break;
                default:
                    var cands = new long[B * C];
                    for (int b = 0; b < B; b++)
                        for (int j = 0; j < C; j++) cands[b * C + j] = j < candidates[b].Count ? candidates[b][j] : 1;
                    feeds[x] = NamedTensor.Int64(name, cands, B, C);
                    break;
            }
        }
        return feeds;
    }
}
