// The leave-one-out split as views over a dataset's sequences (no copies): it reads exactly what the copying split read,
// a dataset loaded through the memory map trains to the same weights as the same data in arrays, and a damaged
// sequences.bin is refused naming the file.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Data;

public class SequenceViewTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-view-");
    public void Dispose() => _dir.Delete(true);

    /// <summary>Generated sequences plus users with 1 and 2 items (which are not evaluated and train on everything).</summary>
    private static SequenceDataset Generated(int users = 300)
    {
        var g = SyntheticDataset.Generate(new SyntheticOptions { Users = users, Items = 60, MinLength = 3, MaxLength = 25, Seed = 11 });
        var seqs = g.Sequences.ToArrays().Concat([[5], [7, 9], [2, 2]]).ToArray();
        return new SequenceDataset(g.Items, [.. g.UserIds, "short1", "short2", "short3"], seqs);
    }

    /// <summary>The split as it was made before the views: every part copied out of the arrays.</summary>
    private static (int[][] Train, List<EvaluationCase> Validation, List<EvaluationCase> Test) CopiedSplit(int[][] all)
    {
        var train = new int[all.Length][];
        var val = new List<EvaluationCase>();
        var test = new List<EvaluationCase>();
        for (int u = 0; u < all.Length; u++)
        {
            var s = all[u];
            if (s.Length < 3) { train[u] = s; continue; }
            train[u] = s[..^2];
            val.Add(new EvaluationCase(u, s[..^2], s[^2]));
            test.Add(new EvaluationCase(u, s[..^1], s[^1]));
        }
        return (train, val, test);
    }

    private static void SameCases(List<EvaluationCase> expected, IReadOnlyList<EvaluationCase> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].User, actual[i].User);
            Assert.Equal(expected[i].Target, actual[i].Target);
            Assert.Equal(expected[i].History, actual[i].History);
        }
        Assert.Equal(expected.Select(c => c.User), actual.Select(c => c.User));   // enumeration reads the same cases
    }

    [Fact]
    public void The_split_views_read_what_the_copied_split_held()
    {
        var d = Generated();
        var all = d.Sequences.ToArrays();
        var (train, val, test) = CopiedSplit(all);
        var split = LeaveOneOut.Split(d);
        Assert.Equal(train, split.TrainSequences.ToArrays());
        for (int u = 0; u < all.Length; u++) Assert.Equal(train[u].Length, split.TrainSequences.Length(u));
        Assert.Equal(train.Sum(s => (long)s.Length), split.TrainSequences.Interactions);
        SameCases(val, split.Validation);
        SameCases(test, split.Test);

        // the refit's train part: each test user's test history, everything for the short users
        var refitTrain = (int[][])train.Clone();
        foreach (var c in test) refitTrain[c.User] = c.History;
        var refit = LeaveOneOut.WithValidationItems(split);
        Assert.Equal(refitTrain, refit.TrainSequences.ToArrays());
        Assert.Empty(refit.Validation);
        Assert.Throws<ArgumentException>(() => LeaveOneOut.WithValidationItems(refit));
    }

    [Fact]
    public void A_loaded_dataset_reads_its_sequences_from_the_map()
    {
        var d = Generated();
        string dir = Path.Combine(_dir.FullName, "ds");
        d.Save(dir);
        var back = SequenceDataset.Load(dir);
        Assert.IsType<SequenceStore>(back.Sequences);
        Assert.Equal(d.Sequences.ToArrays(), back.Sequences.ToArrays());
        Assert.Equal(d.Statistics, back.Statistics);
        var a = LeaveOneOut.Split(d);
        var b = LeaveOneOut.Split(back);
        Assert.Equal(a.TrainSequences.ToArrays(), b.TrainSequences.ToArrays());
        SameCases([.. a.Test], b.Test);
    }

    [Theory]
    [InlineData("bert4rec", "sampled-ce")]
    [InlineData("sasrec", "ce")]
    [InlineData("neumf", "bce")]
    public void Training_from_the_map_gives_the_weights_of_training_from_arrays(string model, string loss)
    {
        var d = Generated(200);
        string dir = Path.Combine(_dir.FullName, "ds");
        d.Save(dir);
        var mapped = LeaveOneOut.Split(SequenceDataset.Load(dir));
        // the in-memory reference: the copied split's arrays (as training read them before the views)
        var (train, val, test) = CopiedSplit(d.Sequences.ToArrays());
        var copied = new LeaveOneOutSplit { ItemCount = d.Items.Count, TrainSequences = train, Validation = val, Test = test };
        var cfg = TrainingConfig.FromPreset("synthetic") with
        {
            Model = model, Loss = loss, Negatives = 8, Epochs = 2, MaxLength = 12, Hidden = 16, Threads = 1, Patience = 0,
            EvalEvery = 1, ValidationUsers = 40, BatchSize = 32,
        };
        var fromMap = new Trainer(cfg, mapped, null, _ => { }).Run();
        var fromArrays = new Trainer(cfg, copied, null, _ => { }).Run();
        Assert.True(fromMap.GlobalStep > 0);
        Assert.Equal(fromArrays.GlobalStep, fromMap.GlobalStep);
        Assert.Equal(fromArrays.BestMetric, fromMap.BestMetric);
        Assert.Equal(fromArrays.Parameters, fromMap.Parameters);   // bitwise: same samples, masks and negatives
    }

    [Fact]
    public void A_truncated_or_corrupt_sequences_file_is_refused_naming_it()
    {
        string dir = Path.Combine(_dir.FullName, "ds");
        Generated(50).Save(dir);
        string file = Path.Combine(dir, SequenceDataset.DataFile);
        var bytes = File.ReadAllBytes(file);

        File.WriteAllBytes(file, bytes[..^40]);   // cut inside the items: the checksum no longer matches
        var e = Assert.Throws<InvalidDataException>(() => SequenceDataset.Load(dir));
        Assert.Contains(file, e.Message);
        Assert.Contains("truncated", e.Message);

        File.WriteAllBytes(file, bytes[..10]);     // shorter than a header
        e = Assert.Throws<InvalidDataException>(() => SequenceDataset.Load(dir));
        Assert.Contains(file, e.Message);

        var flipped = (byte[])bytes.Clone();
        flipped[^60] ^= 0x01;                      // one item's bit
        File.WriteAllBytes(file, flipped);
        e = Assert.Throws<InvalidDataException>(() => SequenceDataset.Load(dir));
        Assert.Contains(file, e.Message);
        Assert.Contains("checksum", e.Message);

        File.WriteAllBytes(file, bytes);           // the intact file still loads
        Assert.Equal(53, SequenceDataset.Load(dir).Sequences.Count);
    }
}
