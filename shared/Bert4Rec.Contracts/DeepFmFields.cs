// DeepFM's fields, in the one order the layout, the trainer's model and the ONNX graph share: the user-side fields (known
// before the candidate: user id, user features, the history fields) first, then the item-side fields.
namespace Bert4Rec.Contracts;

/// <summary>
/// One DeepFM field: an embedding table {Name}.emb (Vocab, k) and first-order weights {Name}.w (Vocab). Each example holds
/// <see cref="Width"/> ids of the field. A pooled field takes the mean of its non-zero ids (0 = pad; none = a zero vector
/// and weight); an id field looks its one id up, 0 included (the user index 0, or "no history" for the last item).
/// </summary>
public readonly record struct DeepFmField(string Name, int Vocab, int Width, bool Pooled, bool UserSide);

public static class DeepFmFields
{
    public const string User = "user", Item = "item", LastItem = "last", RecentItems = "recent";

    /// <summary>user | user_feat.k ... | last (the latest history item; 0 = none) | recent (mean of the latest MaxLength history
    /// items) | item | item_feat.j ...</summary>
    public static IReadOnlyList<DeepFmField> Of(ModelConfig c)
    {
        int rows = c.ItemCount + 1;
        var list = new List<DeepFmField> { new(User, c.UserCount, 1, false, true) };
        var uf = FeatureShape.Parse(c.UserFeatures);
        for (int k = 0; k < uf.Length; k++) list.Add(new($"user_feat.{k}", uf[k].Vocab, uf[k].Width, true, true));
        list.Add(new(LastItem, rows, 1, false, true));
        list.Add(new(RecentItems, rows, c.MaxLength, true, true));
        list.Add(new(Item, rows, 1, false, false));
        var itf = FeatureShape.Parse(c.ItemFeatures);
        for (int k = 0; k < itf.Length; k++) list.Add(new($"item_feat.{k}", itf[k].Vocab, itf[k].Width, true, false));
        return list;
    }
}
