// A loaded, verified artifact bundle: manifest hashes, vocabulary, ONNX session (inputs/outputs checked), FAISS index,
// and a canary run whose outputs must be finite (NaN or Inf weights are refused before a bundle is served).
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
    /// <summary>The stage-two ranker of a two-model bundle; null in a one-model bundle.</summary>
    public StageTwoRanker? StageTwo { get; private init; }
    /// <summary>w_v = [E[v], b_O[v]] for v = 1..n, (n, d+1): exact candidate scores are user_vector . w_v.</summary>
    public float[] ItemVectors { get; }
    public string Version { get; }

    /// <summary>The longest raw item id a bundle's vocabulary may average per line (bounds vocab.txt before it is read).</summary>
    public const int MaxBytesPerVocabularyLine = 1024;

    private ModelBundle(string path, BundleManifest m, ModelConfig cfg, Vocabulary v, InferenceSession s, ItemIndex? index, float[] w, string version)
    {
        Path = path; Manifest = m; Config = cfg; Vocabulary = v; Session = s; Index = index; ItemVectors = w; Version = version;
    }

    /// <summary>
    /// Loads and verifies everything before returning; any mismatch is a <see cref="BundleException"/> naming the file.
    /// Each file is a regular file inside the bundle whose size is bounded by the model's shape before a byte is read.
    /// </summary>
    public static ModelBundle Load(string dir, SessionOptions? options = null, bool requireIndex = true)
    {
        var m = BundleManifests.Read(dir);
        var cfg = BundleManifests.ToConfig(m.Model);
        try { cfg.Validate(); } catch (ArgumentException e) { throw new BundleException(BundleLayout.Manifest, "model config invalid", $"{dir}: manifest model config invalid: {e.Message}"); }
        if (!cfg.Kind.IsSequential())
            throw new BundleException(BundleLayout.Manifest, "feature-model bundles are not served yet",
                $"{dir}: a {cfg.Kind.Name()} bundle (its graph takes user features); this version serves the sequential models' bundles only");
        BundleFile Entry(string role) => BundleManifests.FileOfRole(m, role)
            ?? throw new BundleException(BundleLayout.Manifest, $"lists no {role} file", $"{dir}: manifest lists no {role} file");
        var vocabFile = Entry(BundleLayout.RoleVocabulary);
        var modelFile = Entry(BundleLayout.RoleModel);
        long paramBytes = 4 * new ParameterLayout(cfg).TotalSize;
        long maxModel = paramBytes + paramBytes / 4 + (16 << 20);
        long maxVocab = (long)cfg.ItemCount * MaxBytesPerVocabularyLine;
        long maxIndex = 8 * (long)cfg.ItemCount * (cfg.Hidden + 1) + (long)cfg.ItemCount * 1024 + (16 << 20);
        long MaxBytes(BundleFile f) => f.Role switch
        {
            BundleLayout.RoleModel => maxModel, BundleLayout.RoleVocabulary => maxVocab, BundleLayout.RoleIndex => maxIndex, _ => maxModel,
        };
        // the vocabulary first: it is small, and its item count must match before the model's bound is trusted
        Vocabulary vocab;
        try { vocab = Vocabulary.Parse(BundleManifests.ReadVerified(dir, vocabFile, maxVocab), vocabFile.Name); }
        catch (InvalidDataException e) { throw new BundleException(vocabFile.Name, "not a valid vocabulary", $"{System.IO.Path.Combine(dir, vocabFile.Name)}: {e.Message}", e); }
        if (vocab.Count != cfg.ItemCount)
            throw new BundleException(vocabFile.Name, "item count differs from the model's", $"{System.IO.Path.Combine(dir, vocabFile.Name)}: {vocab.Count} items, the model has {cfg.ItemCount}");
        byte[] modelBytes = BundleManifests.ReadVerified(dir, modelFile, maxModel);
        var indexFile = BundleManifests.FileOfRole(m, BundleLayout.RoleIndex);
        // the index is verified by its loader, which hashes the same open file FAISS then reads; stage two's files by its own
        string[] stageTwoRoles = [BundleLayout.RoleStageTwo, BundleLayout.RoleUsers, BundleLayout.RoleUserFeatures];
        if (m.StageTwo == null && m.Files.FirstOrDefault(f => stageTwoRoles.Contains(f.Role)) is { } stray)
            throw new BundleException(stray.Name, "a stage-two file without a stage_two model in the manifest", $"{dir}: {stray.Name} ({stray.Role}) is listed but the manifest has no stage_two");
        BundleManifests.VerifyFiles(dir, new BundleManifest { Files = { m.Files.Where(f => f != vocabFile && f != modelFile && f != indexFile && !stageTwoRoles.Contains(f.Role)) } }, MaxBytes);
        string modelPath = System.IO.Path.Combine(dir, modelFile.Name);
        float[] w;
        int n, dim;
        try { (w, n, dim) = OnnxWeights.ItemVectors(OnnxWeights.ParseModel(modelBytes, modelPath), modelPath); }
        catch (InvalidDataException e) { throw new BundleException(modelFile.Name, "not a valid model", e.Message, e); }
        if (n != cfg.ItemCount || dim != cfg.Hidden + 1)
            throw new BundleException(modelFile.Name, "item vectors differ from the manifest's shape", $"{modelPath}: item vectors {n} x {dim}, manifest says {cfg.ItemCount} x {cfg.Hidden + 1}");
        if (!AllFinite(w)) throw new BundleException(modelFile.Name, "weights are not finite (NaN or Inf)", $"{modelPath}: the item vectors hold NaN or Inf");
        InferenceSession? session = null;
        ItemIndex? index = null;
        StageTwoRanker? stageTwo = null;
        try
        {
            try { session = new InferenceSession(modelBytes, modelPath, options ?? new SessionOptions { IntraOpThreads = 1 }); }
            catch (OnnxRuntimeException e) { throw new BundleException(modelFile.Name, "ONNX Runtime cannot load the model", e.Message, e); }
            Expect(session, modelFile.Name, ModelIo.ItemIds, TensorElementType.Int64, [-1, cfg.MaxLength], input: true);
            Expect(session, modelFile.Name, ModelIo.CandidateIds, TensorElementType.Int64, [-1, -1], input: true);
            Expect(session, modelFile.Name, ModelIo.Scores, TensorElementType.Float, [-1, -1], input: false);
            Expect(session, modelFile.Name, ModelIo.UserVector, TensorElementType.Float, [-1, cfg.Hidden + 1], input: false);
            if (indexFile != null) index = BundleIndexer.Open(dir, m, indexFile, cfg.Hidden + 1, cfg.ItemCount, maxIndex);
            else if (requireIndex) throw new BundleException(BundleLayout.Manifest, "no index in the bundle", $"{dir}: no index in the bundle (run `bert4rec index --bundle {dir}`)");
            Canary(session, cfg, modelFile.Name);
            if (m.StageTwo != null) stageTwo = StageTwoRanker.Load(dir, m, cfg.ItemCount, options ?? new SessionOptions { IntraOpThreads = 1 });
            string version = $"{m.CreatedAt}/{modelFile.Sha256[..Math.Min(12, modelFile.Sha256.Length)]}";
            return new ModelBundle(System.IO.Path.GetFullPath(dir), m, cfg, vocab, session, index, w, version) { StageTwo = stageTwo };
        }
        catch
        {
            session?.Dispose();
            index?.Dispose();
            stageTwo?.Dispose();
            throw;
        }
    }

    private static bool AllFinite(ReadOnlySpan<float> x)
    {
        foreach (float v in x) if (!float.IsFinite(v)) return false;
        return true;
    }

    /// <summary>The smoke test before a bundle is served: a short history and a few candidates must give finite outputs.</summary>
    private static void Canary(InferenceSession s, ModelConfig cfg, string name)
    {
        var history = Enumerable.Range(1, Math.Min(3, cfg.ItemCount)).ToList();
        var row = ModelInput.Row(history, cfg);
        long[] cands = Enumerable.Range(1, Math.Min(4, cfg.ItemCount)).Select(i => (long)i).ToArray();
        var scores = new float[cands.Length];
        var user = new float[cfg.Hidden + 1];
        try
        {
            s.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, row, 1, cfg.MaxLength), NamedTensor.Int64(ModelIo.CandidateIds, cands, 1, cands.Length) },
                  new[] { NamedTensor.Float(ModelIo.Scores, scores, 1, cands.Length), NamedTensor.Float(ModelIo.UserVector, user, 1, cfg.Hidden + 1) });
        }
        catch (OnnxRuntimeException e) { throw new BundleException(name, "the canary request failed", $"{name}: the canary request failed: {e.Message}", e); }
        if (!AllFinite(scores) || !AllFinite(user))
            throw new BundleException(name, "the canary request gave non-finite outputs (NaN or Inf weights)", $"{name}: the canary request gave NaN or Inf outputs");
    }

    private static void Expect(InferenceSession s, string name, string tensor, TensorElementType type, long[] dims, bool input)
    {
        var meta = (input ? s.Inputs : s.Outputs).FirstOrDefault(x => x.Name == tensor)
            ?? throw new BundleException(name, $"the model has no {(input ? "input" : "output")} '{tensor}'", $"{s.ModelPath}: the model has no {(input ? "input" : "output")} '{tensor}'");
        if (meta.ElementType != type || !meta.Dimensions.SequenceEqual(dims))
            throw new BundleException(name, $"the model's {tensor} has the wrong type or shape",
                $"{s.ModelPath}: {tensor} is {meta.ElementType} [{string.Join(",", meta.Dimensions)}], expected {type} [{string.Join(",", dims)}]");
    }

    public void Dispose()
    {
        Session.Dispose();
        Index?.Dispose();
        StageTwo?.Dispose();
    }
}
