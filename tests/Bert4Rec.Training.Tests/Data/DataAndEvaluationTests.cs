// Readers, k-core, split, dataset files, metrics against hand-computed cases, pop100 sampling, baselines.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;

namespace Bert4Rec.Training.Tests.Data;

public class ReaderTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-data-");
    public void Dispose() => _dir.Delete(true);
    private string Write(string name, string text) { var p = Path.Combine(_dir.FullName, name); File.WriteAllText(p, text); return p; }

    [Fact]
    public void MovieLens_is_sorted_by_timestamp_with_ties_in_file_order()
    {
        var p = Write("ratings.dat", "1::10::5::300\n1::20::3::100\n2::10::4::50\n1::30::4::100\n");
        var d = InteractionLog.Read(p, new LogReadOptions { Format = LogFormat.MovieLens }).ToDataset(0, 0, false);
        Assert.Equal(new[] { "1", "2" }, d.UserIds);
        // user 1: t=100 (20), t=100 (30, later in file), t=300 (10)
        Assert.Equal(new[] { "20", "30", "10" }, d.Sequences[0].ToArray().Select(i => d.Items.RawId(i)));
        Assert.Equal(new[] { "10" }, d.Sequences[1].ToArray().Select(i => d.Items.RawId(i)));
    }

    [Fact]
    public void Ml100k_csv_tsv_and_pairs_read_the_chosen_columns()
    {
        var a = InteractionLog.Read(Write("u.data", "1\t5\t3\t20\n1\t6\t3\t10\n"), new LogReadOptions { Format = LogFormat.Ml100k }).ToDataset(0, 0, false);
        Assert.Equal(new[] { "6", "5" }, a.Sequences[0].ToArray().Select(i => a.Items.RawId(i)));
        var b = InteractionLog.Read(Write("x.csv", "ts,rating,uid,iid\n5,1,u1,A\n1,1,u1,B\n"),
            new LogReadOptions { Format = LogFormat.Csv, UserColumn = "uid", ItemColumn = "iid", TimeColumn = "ts" }).ToDataset(0, 0, false);
        Assert.Equal(new[] { "B", "A" }, b.Sequences[0].ToArray().Select(i => b.Items.RawId(i)));
        var c = InteractionLog.Read(Write("x.tsv", "user_id\titem_id\nu\tz\nu\ty\n"), new LogReadOptions { Format = LogFormat.Tsv }).ToDataset(0, 0, false);
        Assert.Equal(new[] { "z", "y" }, c.Sequences[0].ToArray().Select(i => c.Items.RawId(i)));
        var e = InteractionLog.Read(Write("p.txt", "1 1\n1 2\n2 2\n2 3\n"), new LogReadOptions()).ToDataset(0, 0, false);
        Assert.Equal(2, e.Sequences.Count);
        Assert.Equal(3, e.Items.Count);
    }

    /// <summary>Malformed logs: file name, text, format, and what the error must say (beside the path).</summary>
    public static TheoryData<string, string, LogFormat, string> MalformedLogs() => new()
    {
        { "ratings.dat", "1::10::5::300\n1::20\n", LogFormat.MovieLens, ":2:" },
        { "r.dat", "1::10::5::300\n1::20::5::noon\n", LogFormat.MovieLens, "timestamp" },
        { "x.csv", "user_id,item_id\n1,\n", LogFormat.Csv, "'item'" },
        { "y.csv", "a,b\n1,2\n", LogFormat.Csv, "no column 'user_id'" },
        { "e.txt", "", LogFormat.Pairs, "no interactions" },
    };

    [Theory]
    [MemberData(nameof(MalformedLogs))]
    public void Malformed_files_name_the_file_line_and_field(string name, string text, LogFormat format, string expected)
    {
        var p = Write(name, text);
        var e = Assert.Throws<InvalidDataException>(() => InteractionLog.Read(p, new LogReadOptions { Format = format }));
        Assert.Contains(p, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Kcore_one_pass_differs_from_the_fixed_point()
    {
        // item C has 1 interaction; removing it leaves user 3 with 1 item, whose removal leaves item B with 1 interaction
        var text = "1 A\n1 B\n2 A\n2 D\n3 B\n3 C\n4 A\n4 D\n";
        var log = InteractionLog.Read(Write("k.txt", text), new LogReadOptions());
        var once = log.ToDataset(minUser: 2, minItem: 2, fixedPoint: false);
        var fixedPoint = log.ToDataset(minUser: 2, minItem: 2, fixedPoint: true);
        Assert.True(fixedPoint.Statistics.Interactions < once.Statistics.Interactions);
        foreach (var s in fixedPoint.Sequences.ToArrays()) Assert.True(s.Length >= 2);
        var counts = SequenceDataset.Popularity(fixedPoint.Sequences, fixedPoint.Items.Count);
        Assert.All(counts.Skip(1), c => Assert.True(c >= 2));
    }

    [Fact]
    public void Dataset_files_round_trip_and_corruption_is_refused()
    {
        var d = SyntheticDataset.Generate(new SyntheticOptions { Users = 50, Items = 30, Seed = 1 });
        string dir = Path.Combine(_dir.FullName, "ds");
        d.Save(dir);
        var back = SequenceDataset.Load(dir);
        Assert.Equal(d.Sequences.ToArrays(), back.Sequences.ToArrays());
        Assert.Equal(d.Statistics, back.Statistics);
        var f = Path.Combine(dir, SequenceDataset.DataFile);
        var bytes = File.ReadAllBytes(f);
        bytes[20] ^= 0x40;
        File.WriteAllBytes(f, bytes);
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => SequenceDataset.Load(dir)).Message);
        Assert.Throws<FileNotFoundException>(() => SequenceDataset.Load(Path.Combine(_dir.FullName, "none")));
    }

    [Fact]
    public void Leave_one_out_holds_out_the_last_two_items()
    {
        var d = new SequenceDataset(new Vocabulary(new[] { "a", "b", "c", "d" }), new[] { "u1", "u2" }, new[] { new[] { 1, 2, 3, 4 }, new[] { 2, 3 } });
        var s = LeaveOneOut.Split(d);
        Assert.Equal(new[] { 1, 2 }, s.TrainSequences[0]);
        Assert.Equal(new[] { 2, 3 }, s.TrainSequences[1]);                // too short to evaluate: all train
        Assert.Equal(new EvaluationCase(0, new[] { 1, 2 }, 3).Target, s.Validation.Single().Target);
        Assert.Equal(new[] { 1, 2 }, s.Validation.Single().History);
        Assert.Equal(new[] { 1, 2, 3 }, s.Test.Single().History);         // includes the validation item
        Assert.Equal(4, s.Test.Single().Target);
    }
}

public class MetricTests
{
    [Fact]
    public void Metrics_from_ranks_match_hand_computation()
    {
        var m = RankingMetrics.FromRanks("full", new[] { 1, 3, 11 });
        Assert.Equal(1.0 / 3, m.Hr1, 10);
        Assert.Equal(2.0 / 3, m.Hr5, 10);
        Assert.Equal(2.0 / 3, m.Hr10, 10);
        Assert.Equal((1 + 1 / Math.Log2(4)) / 3, m.Ndcg10, 10);
        Assert.Equal((1 + 1.0 / 3 + 1.0 / 11) / 3, m.Mrr, 10);
    }

    [Fact]
    public void Full_rank_counts_ties_against_the_target_and_excludes_seen_items_once()
    {
        // items 1..5; target 3 scores 0.5; item 1 scores higher (seen twice in history), item 4 ties
        var row = new float[] { 99, 0.9f, 0.1f, 0.5f, 0.5f, 0.2f };
        var c = new EvaluationCase(0, new[] { 1, 1, 2 }, 3);
        Assert.Equal(3, Evaluator.FullRank(row, c, excludeSeen: false));   // 1 and 4 are >= target
        Assert.Equal(2, Evaluator.FullRank(row, c, excludeSeen: true));    // 1 is seen; 4 ties
        var first = new float[] { 0, 0.1f, 0.2f, 0.9f, 0.3f, 0.3f };
        Assert.Equal(1, Evaluator.FullRank(first, c, true));
    }

    [Fact]
    public void Pop100_never_samples_the_users_items_and_is_reproducible()
    {
        int n = 300;
        var pop = new int[n + 1];
        for (int i = 1; i <= n; i++) pop[i] = 1000 / i + 1;
        var cum = new double[n + 1];
        for (int i = 1; i <= n; i++) cum[i] = cum[i - 1] + pop[i];
        var c = new EvaluationCase(7, Enumerable.Range(1, 50).ToArray(), 60);
        var a = Evaluator.SampleNegatives(c, cum, 100, 42);
        var b = Evaluator.SampleNegatives(c, cum, 100, 42);
        Assert.Equal(a, b);
        Assert.Equal(100, a.Distinct().Count());
        Assert.DoesNotContain(60, a);
        Assert.All(a, x => Assert.True(x > 50 && x <= n));
        Assert.NotEqual(a, Evaluator.SampleNegatives(c, cum, 100, 43));
    }

    [Fact]
    public void Markov_beats_popularity_on_synthetic_data_and_popularity_is_far_from_perfect()
    {
        var split = LeaveOneOut.Split(SyntheticDataset.Generate(new SyntheticOptions { Users = 1000, Items = 300, Seed = 3 }));
        var opts = new EvaluationOptions { Protocol = EvaluationProtocol.Full };
        var pop = Evaluator.Evaluate(new PopularityScorer(split.TrainSequences, split.ItemCount), split.Test, opts);
        var markov = Evaluator.Evaluate(new MarkovScorer(split.TrainSequences, split.ItemCount), split.Test, opts);
        Assert.True(pop.Hr10 < 0.4, $"popularity HR@10 {pop.Hr10}");
        Assert.True(markov.Ndcg10 > 2 * pop.Ndcg10, $"markov {markov.Ndcg10} vs pop {pop.Ndcg10}");
        var popProbs = SequenceDataset.Popularity(split.TrainSequences, split.ItemCount);
        var p100 = Evaluator.Evaluate(new PopularityScorer(split.TrainSequences, split.ItemCount), split.Test,
            new EvaluationOptions { Protocol = EvaluationProtocol.Pop100, ItemPopularity = popProbs });
        Assert.Equal("pop100", p100.Protocol);
        Assert.Equal(split.Test.Count, p100.Users);
    }
}
