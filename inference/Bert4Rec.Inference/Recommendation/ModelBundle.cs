// A loaded, verified artifact bundle: manifest hashes, vocabulary, ONNX session (inputs/outputs checked) and FAISS index.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Contracts.Onnx;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Inference.Recommendation;

public sealed class ModelBundle : IDisposable
{
    public string Path { get; }
    public BundleManifest Manifest { get; }
    public ModelConfig Config { get; }
    public Vocabulary Vocabulary { get; }
    public InferenceSession Session { get; }
    public ItemIndex? Index { get; }
    /// <summary>w_v = [E[v], b_O[v]] for v = 1..n, (n, d+1): exact candidate scores are user_vector . w_v.</summary>
    public float[] ItemVectors { get; }
    public string Version { get; }

    private ModelBundle(string path, BundleManifest m, ModelConfig cfg, Vocabulary v, InferenceSession s, ItemIndex? index, float[] w, string version)
    {
        Path = path; Manifest = m; Config = cfg; Vocabulary = v; Session = s; Index = index; ItemVectors = w; Version = version;
    }

    /// <summary>Loads and verifies everything before returning; any mismatch is a <see cref="BundleException"/> naming the file.</summary>
    public static ModelBundle Load(string dir, SessionOptions? options = null, bool requireIndex = true)
    {
        var m = BundleManifests.Read(dir);
        BundleManifests.VerifyFiles(dir, m);
        var cfg = BundleManifests.ToConfig(m.Model);
        try { cfg.Validate(); } catch (ArgumentException e) { throw new BundleException($"{dir}: manifest model config invalid: {e.Message}"); }
        string File(string role) => System.IO.Path.Combine(dir, (BundleManifests.FileOfRole(m, role) ?? throw new BundleException($"{dir}: manifest lists no {role} file")).Name);
        var vocab = Vocabulary.Load(File(BundleLayout.RoleVocabulary));
        if (vocab.Count != cfg.ItemCount) throw new BundleException($"{File(BundleLayout.RoleVocabulary)}: {vocab.Count} items, the model has {cfg.ItemCount}");
        string modelPath = File(BundleLayout.RoleModel);
        var (w, n, dim) = OnnxWeights.ReadItemVectors(modelPath);
        if (n != cfg.ItemCount || dim != cfg.Hidden + 1) throw new BundleException($"{modelPath}: item vectors {n} x {dim}, manifest says {cfg.ItemCount} x {cfg.Hidden + 1}");
        InferenceSession? session = null;
        ItemIndex? index = null;
        try
        {
            session = new InferenceSession(modelPath, options ?? new SessionOptions { IntraOpThreads = 1 });
            Expect(session, ModelIo.ItemIds, TensorElementType.Int64, [-1, cfg.MaxLength], input: true);
            Expect(session, ModelIo.CandidateIds, TensorElementType.Int64, [-1, -1], input: true);
            Expect(session, ModelIo.Scores, TensorElementType.Float, [-1, -1], input: false);
            Expect(session, ModelIo.UserVector, TensorElementType.Float, [-1, cfg.Hidden + 1], input: false);
            var idx = BundleManifests.FileOfRole(m, BundleLayout.RoleIndex);
            if (idx != null)
            {
                try { index = ItemIndex.Load(System.IO.Path.Combine(dir, idx.Name), expectedDimension: cfg.Hidden + 1); }
                catch (IndexFileException e) { throw new BundleException(e.Message, e); }
                if (index.Count != cfg.ItemCount) throw new BundleException($"{idx.Name}: index holds {index.Count} items, the model {cfg.ItemCount}");
            }
            else if (requireIndex) throw new BundleException($"{dir}: no index in the bundle (run `bert4rec index --bundle {dir}`)");
            var modelFile = BundleManifests.FileOfRole(m, BundleLayout.RoleModel)!;
            string version = $"{m.CreatedAt}/{modelFile.Sha256[..12]}";
            return new ModelBundle(System.IO.Path.GetFullPath(dir), m, cfg, vocab, session, index, w, version);
        }
        catch
        {
            session?.Dispose();
            index?.Dispose();
            throw;
        }
    }

    private static void Expect(InferenceSession s, string name, TensorElementType type, long[] dims, bool input)
    {
        var meta = (input ? s.Inputs : s.Outputs).FirstOrDefault(x => x.Name == name)
            ?? throw new BundleException($"{s.ModelPath}: the model has no {(input ? "input" : "output")} '{name}'");
        if (meta.ElementType != type || !meta.Dimensions.SequenceEqual(dims))
            throw new BundleException($"{s.ModelPath}: {name} is {meta.ElementType} [{string.Join(",", meta.Dimensions)}], expected {type} [{string.Join(",", dims)}]");
    }

    public void Dispose()
    {
        Session.Dispose();
        Index?.Dispose();
    }
}
