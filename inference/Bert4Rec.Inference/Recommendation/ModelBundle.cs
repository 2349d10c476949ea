// A loaded, verified artifact bundle: manifest hashes, vocabulary, ONNX session (inputs/outputs checked), FAISS index,
// the users and user features its models read, and canary runs whose outputs must be finite (NaN or Inf weights are
// refused before a bundle is served). Stage one is a sequential model (user_vector [batch, d+1] over w_v = [E[v], b_O[v]])
// or a Two-Tower user tower (user_vector [batch, d] over the item tower's vectors), its inputs fed by name (GraphInputs).
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
    /// <summary>The item vectors for v = 1..n, (n, <see cref="Dimension"/>): exact candidate scores are user_vector . w_v
    /// (a sequential model's w_v = [E[v], b_O[v]], a Two-Tower's item tower output).</summary>
    public float[] ItemVectors { get; }
    /// <summary>The dimension of stage one's user_vector and item vectors: d+1 for a sequential model, d for a Two-Tower.</summary>
    public int Dimension { get; }
    /// <summary>Stage one's graph inputs, in order (a feature model's as its manifest declares them).</summary>
    public IReadOnlyList<GraphInput> Inputs { get; }
    /// <summary>The request's user for the bundle's models (users.txt, user_features.pb); null when no model reads a user.</summary>
    public UserEncoder? Users { get; private init; }
    /// <summary>True when stage one's graph reads the user (a Two-Tower's user_features).</summary>
    public bool StageOneReadsUser => Inputs.Any(i => i.Name is ModelIo.UserIndex or ModelIo.UserFeatures);
    public string Version { get; }

    /// <summary>The longest raw item id a bundle's vocabulary may average per line (bounds vocab.txt before it is read).</summary>
    public const int MaxBytesPerVocabularyLine = 1024;

    private ModelBundle(string path, BundleManifest m, ModelConfig cfg, Vocabulary v, InferenceSession s, ItemIndex? index, float[] w, string version,
                        int dim, IReadOnlyList<GraphInput> inputs)
    {
        Path = path; Manifest = m; Config = cfg; Vocabulary = v; Session = s; Index = index; ItemVectors = w; Version = version;
        Dimension = dim; Inputs = inputs;
    }

    /// <summary>The dimension of a stage one's user and item vectors: d+1 for a sequential model (the bias column), d for a Two-Tower.</summary>
    public static int DimensionOf(ModelConfig cfg) => cfg.Kind.IsSequential() ? cfg.Hidden + 1 : cfg.Hidden;

    /// <summary>
    /// Loads and verifies everything before returning; any mismatch is a <see cref="BundleException"/> naming the file.
    /// Each file is a regular file inside the bundle whose size is bounded by the model's shape before a byte is read.
    /// </summary>
    public static ModelBundle Load(string dir, SessionOptions? options = null, bool requireIndex = true)
    {
        var m = BundleManifests.Read(dir);
        var cfg = BundleManifests.ToConfig(m.Model);
        try { cfg.Validate(); } catch (ArgumentException e) { throw new BundleException(BundleLayout.Manifest, "model config invalid", $"{dir}: manifest model config invalid: {e.Message}"); }
        if (!cfg.Kind.IsSequential() && cfg.Kind != ModelKind.TwoTower)
            throw new BundleException(BundleLayout.Manifest, "stage one must find candidates (a sequential model or two-tower)",
                $"{dir}: stage one is a {cfg.Kind.Name()}, which ranks candidates but cannot find them; it belongs in stage_two");
        int dim = DimensionOf(cfg);
        var inputs = GraphInputs.Of(cfg, m.Model);
        BundleFile Entry(string role) => BundleManifests.FileOfRole(m, role)
            ?? throw new BundleException(BundleLayout.Manifest, $"lists no {role} file", $"{dir}: manifest lists no {role} file");
        var vocabFile = Entry(BundleLayout.RoleVocabulary);
        var modelFile = Entry(BundleLayout.RoleModel);
        long paramBytes = 4 * new ParameterLayout(cfg).TotalSize;
        // a Two-Tower graph also holds the item tower's vectors, (n+1, d)
        long maxModel = paramBytes + paramBytes / 4 + (cfg.Kind == ModelKind.TwoTower ? 4L * (cfg.ItemCount + 1) * cfg.Hidden : 0) + (16 << 20);
        long maxVocab = (long)cfg.ItemCount * MaxBytesPerVocabularyLine;
        long maxIndex = 8 * (long)cfg.ItemCount * dim + (long)cfg.ItemCount * 1024 + (16 << 20);
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
        // the index is verified by its loader, which hashes the same open file FAISS then reads; the users' files and stage two's
        // by their own loaders, bounded by the models that read them
        bool readsUser = inputs.Any(i => i.Name is ModelIo.UserIndex or ModelIo.UserFeatures) || m.StageTwo != null;
        string[] userRoles = [BundleLayout.RoleUsers, BundleLayout.RoleUserFeatures], ownRoles = [BundleLayout.RoleStageTwo, .. userRoles];
        if (m.StageTwo == null && BundleManifests.FileOfRole(m, BundleLayout.RoleStageTwo) is { } strayModel)
            throw new BundleException(strayModel.Name, "a stage-two file without a stage_two model in the manifest", $"{dir}: {strayModel.Name} ({strayModel.Role}) is listed but the manifest has no stage_two");
        if (!readsUser && m.Files.FirstOrDefault(f => userRoles.Contains(f.Role)) is { } stray)
            throw new BundleException(stray.Name, "a user file without a model that reads users (no stage_two, and stage one reads no user)",
                $"{dir}: {stray.Name} ({stray.Role}) is listed but the manifest has no stage_two and stage one reads no user");
        BundleManifests.VerifyFiles(dir, new BundleManifest { Files = { m.Files.Where(f => f != vocabFile && f != modelFile && f != indexFile && !ownRoles.Contains(f.Role)) } }, MaxBytes);
        string modelPath = System.IO.Path.Combine(dir, modelFile.Name);
        float[] w;
        int n, vectorDim;
        try { (w, n, vectorDim) = OnnxWeights.ItemVectors(OnnxWeights.ParseModel(modelBytes, modelPath), modelPath); }
        catch (InvalidDataException e) { throw new BundleException(modelFile.Name, "not a valid model", e.Message, e); }
        if (n != cfg.ItemCount || vectorDim != dim)
            throw new BundleException(modelFile.Name, "item vectors differ from the manifest's shape", $"{modelPath}: item vectors {n} x {vectorDim}, manifest says {cfg.ItemCount} x {dim}");
        if (!AllFinite(w)) throw new BundleException(modelFile.Name, "weights are not finite (NaN or Inf)", $"{modelPath}: the item vectors hold NaN or Inf");
        InferenceSession? session = null;
        ItemIndex? index = null;
        StageTwoRanker? stageTwo = null;
        var sessionOptions = options ?? new SessionOptions { IntraOpThreads = 1 };
        try
        {
            // the users first (small, and both stages' canaries read them): one encoder for the fields both models read
            ModelConfig? twoCfg = m.StageTwo != null ? StageTwoRanker.ConfigOf(dir, m, cfg.ItemCount) : null;
            UserEncoder? users = null;
            if (readsUser)
            {
                string[] shapes = new[] { cfg.UserFeatures, twoCfg?.UserFeatures ?? "" }.Where(x => x.Length > 0).Distinct().ToArray();
                if (shapes.Length > 1)
                    throw new BundleException(BundleLayout.Manifest, "the two stages read different user fields",
                        $"{dir}: stage one's user fields [{shapes[0]}] differ from stage two's [{shapes[1]}]: both models must have trained on the same dataset");
                users = UserEncoder.Load(dir, m, twoCfg?.UserCount, shapes.FirstOrDefault() ?? "");
            }
            try { session = new InferenceSession(modelBytes, modelPath, sessionOptions); }
            catch (OnnxRuntimeException e) { throw new BundleException(modelFile.Name, "ONNX Runtime cannot load the model", e.Message, e); }
            GraphInputs.Check(session, inputs, modelFile.Name, cfg);
            Expect(session, modelFile.Name, ModelIo.ItemIds, TensorElementType.Int64, [-1, cfg.MaxLength], input: true);
            Expect(session, modelFile.Name, ModelIo.CandidateIds, TensorElementType.Int64, [-1, -1], input: true);
            if (inputs.Any(i => i.Name == ModelIo.UserFeatures))
                Expect(session, modelFile.Name, ModelIo.UserFeatures, TensorElementType.Int64, [-1, FeatureShape.Parse(cfg.UserFeatures).Sum(f => f.Width)], input: true);
            Expect(session, modelFile.Name, ModelIo.Scores, TensorElementType.Float, [-1, -1], input: false);
            Expect(session, modelFile.Name, ModelIo.UserVector, TensorElementType.Float, [-1, dim], input: false);
            if (indexFile != null) index = BundleIndexer.Open(dir, m, indexFile, dim, cfg.ItemCount, maxIndex);
            else if (requireIndex) throw new BundleException(BundleLayout.Manifest, "no index in the bundle", $"{dir}: no index in the bundle (run `bert4rec index --bundle {dir}`)");
            Canary(session, cfg, inputs, dim, users, modelFile.Name);
            if (twoCfg != null) stageTwo = StageTwoRanker.Load(dir, m, twoCfg, users!, sessionOptions);
            string version = $"{m.CreatedAt}/{modelFile.Sha256[..Math.Min(12, modelFile.Sha256.Length)]}";
            return new ModelBundle(System.IO.Path.GetFullPath(dir), m, cfg, vocab, session, index, w, version, dim, inputs) { StageTwo = stageTwo, Users = users };
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

    /// <summary>The smoke test before a bundle is served: a short history, the first known user (an anonymous one when the
    /// bundle has no users) and a few candidates must give finite outputs.</summary>
    private static void Canary(InferenceSession s, ModelConfig cfg, IReadOnlyList<GraphInput> inputs, int dim, UserEncoder? users, string name)
    {
        var history = Enumerable.Range(1, Math.Min(3, cfg.ItemCount)).ToList();
        var cands = Enumerable.Range(1, Math.Min(4, cfg.ItemCount)).ToList();
        EncodedUser[]? user = users != null ? [users.Encode(new UserContext(users.FirstUserId))] : null;
        var scores = new float[cands.Count];
        var vector = new float[dim];
        try
        {
            s.Run(GraphInputs.Feed(inputs, cfg, user, [history], [cands], cands.Count),
                  new[] { NamedTensor.Float(ModelIo.Scores, scores, 1, cands.Count), NamedTensor.Float(ModelIo.UserVector, vector, 1, dim) });
        }
        catch (Exception e) when (e is OnnxRuntimeException or ArgumentException) { throw new BundleException(name, "the canary request failed", $"{name}: the canary request failed: {e.Message}", e); }
        if (!AllFinite(scores) || !AllFinite(vector))
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
