// compare: the report's three files are written and read back, and the whole comparison runs end to end on tiny synthetic
// data within a tiny budget, every model on the same test users.
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;
using Bert4Rec.Training.Tests.Training;

namespace Bert4Rec.Training.Tests.Pipeline;

public class ComparisonTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-compare-");
    public void Dispose() => _dir.Delete(true);

    private static RankingMetrics Metrics(string protocol, double ndcg10) => new(protocol, 50, 0.1, 0.2, 0.3, ndcg10 * 0.8, ndcg10, 0.15);

    private static ComparisonReport HandMade()
    {
        var models = new List<ComparedModel>
        {
            new() { Name = "pop", Full = Metrics("full", 0.02), Pop100 = Metrics("pop100", 0.1), TrainSeconds = 0.01, ValidationNdcg10 = 0.021 },
            new()
            {
                Name = "bert4rec", Preset = "beauty", Full = Metrics("full", 0.05), Pop100 = Metrics("pop100", 0.2), TrainSeconds = 30, BestValidationSeconds = 20,
                BestEpoch = 2, ValidationNdcg10 = 0.055, Stop = "budget", Curve = [new(10, 1, 5, 0.04), new(20, 2, 10, 0.055), new(30, 3, 15, 0.05)],
            },
            new()
            {
                Name = "sasrec", Preset = "beauty", Full = Metrics("full", 0.06), Pop100 = Metrics("pop100", 0.25), TrainSeconds = 25, BestValidationSeconds = 25,
                BestEpoch = 4, ValidationNdcg10 = 0.06, Stop = "epochs", Curve = [new(6, 1, 4, 0.03), new(25, 4, 16, 0.06)],
            },
        };
        var diff = new PairedDifference(50, 0.06, 0.05, 0.01, -0.002, 0.021, 0.12, 0.95, 1000);
        return new ComparisonReport
        {
            Data = "toy", Statistics = new DatasetStatistics(60, 40, 600, 10, 20, 5, 0.25), BudgetSeconds = 30, Seed = 3, TestUsers = 50,
            Models = models, Significance = [new SignificanceLine("sasrec", "bert4rec", "full", diff), new SignificanceLine("bert4rec", "sasrec", "full", diff with { Difference = -0.01 })],
        };
    }

    [Fact]
    public void Report_files_are_written_and_read_back()
    {
        var report = HandMade();
        report.Write(_dir.FullName);
        var back = ComparisonReport.Read(_dir.FullName);
        Assert.Equal(report.Statistics, back.Statistics);
        Assert.Equal((report.Data, report.BudgetSeconds, report.Seed, report.TestUsers), (back.Data, back.BudgetSeconds, back.Seed, back.TestUsers));
        Assert.Equal(report.Models.Count, back.Models.Count);
        for (int i = 0; i < report.Models.Count; i++)
        {
            Assert.Equal(report.Models[i] with { Curve = [] }, back.Models[i] with { Curve = [] });
            Assert.Equal(report.Models[i].Curve, back.Models[i].Curve);
        }
        Assert.Equal(report.Significance, back.Significance);

        string md = File.ReadAllText(Path.Combine(_dir.FullName, ComparisonReport.MarkdownFile));
        Assert.Contains("| model", md);
        Assert.Contains("| bert4rec", md);
        Assert.Contains("sasrec - bert4rec (full NDCG@10): +0.0100 [-0.0020, +0.0210] (95 % CI), p 0.120", md.Replace("95%", "95 %"));
        Assert.Contains(ComparisonReport.ChartFile, md);

        var chart = report.Chart();
        var lines = chart.GetPlottables<ScottPlot.Plottables.Scatter>().ToList();
        Assert.Equal(["bert4rec", "sasrec"], lines.Select(l => l.LegendText));              // one line per trained model
        Assert.Equal([10.0, 20, 30], lines[0].Data.GetScatterPoints().Select(p => p.X));     // one vertex per validation
        var rings = chart.GetPlottables<ScottPlot.Plottables.Marker>().ToList();            // a ring at each best validation
        Assert.Equal([(20.0, 0.055), (25.0, 0.06)], rings.Select(r => (r.Location.X, r.Location.Y)));
        var flat = Assert.Single(chart.GetPlottables<ScottPlot.Plottables.HorizontalLine>());
        Assert.Equal(("pop", 0.021, ScottPlot.LinePattern.Dashed), (flat.LegendText, flat.Y, flat.LinePattern));
        using (var png = Png.Read(Path.Combine(_dir.FullName, ComparisonReport.ChartFile), ComparisonReport.ChartWidth, ComparisonReport.ChartHeight))
            foreach (var color in PngChart.Palette.Take(3)) Assert.True(Png.Count(png, color) > 50, color);

        using var result = JsonDocument.Parse(report.ResultJson(_dir.FullName));
        Assert.Equal(0.06, result.RootElement.GetProperty("models").GetProperty("sasrec").GetProperty("full").GetProperty("ndcg@10").GetDouble());
        Assert.Equal(2, result.RootElement.GetProperty("significance").GetArrayLength());
    }

    [Fact]
    public void Compare_trains_within_the_budget_and_scores_every_model_on_the_same_test_users()
    {
        var data = SyntheticDataset.Generate(new SyntheticOptions { Users = 240, Items = 60, MinLength = 5, MaxLength = 20, Clusters = 4, Seed = 5 });
        var tiny = (string kind) => TrainingConfig.FromPreset("synthetic", kind) with
        {
            Hidden = 16, Heads = 1, Layers = 1, MaxLength = 20, MaxPredictions = 6, BatchSize = 64, Patience = 0, Threads = 1,
            Epochs = 100_000,   // the budget must end every run, however fast the machine (200 epochs of GRU4Rec fitted in 1.5 s on a quiet one)
        };
        var budget = TimeSpan.FromSeconds(1.5);
        var logged = new List<string>();
        string outDir = Path.Combine(_dir.FullName, "cmp");
        var report = ModelComparison.Run(data, new ComparisonOptions
        {
            Models = ["pop", "markov", "bert4rec", "sasrec", "gru4rec"], Budget = budget, Seed = 7, Configs = [tiny("bert4rec"), tiny("sasrec"), tiny("gru4rec")],
            OutDir = outDir, Resamples = 500, Log = logged.Add,
        });

        int testUsers = LeaveOneOut.Split(data).Test.Count;
        Assert.Equal(testUsers, report.TestUsers);
        Assert.Equal(["pop", "markov", "bert4rec", "sasrec", "gru4rec"], report.Models.Select(m => m.Name));
        foreach (var m in report.Models)
        {
            Assert.Equal((testUsers, testUsers), (m.Full.Users, m.Pop100.Users));
            Assert.Equal(("full", "pop100"), (m.Full.Protocol, m.Pop100.Protocol));
            Assert.NotNull(m.ValidationNdcg10);
        }
        foreach (var m in report.Models.Skip(2))
        {
            Assert.Equal("synthetic", m.Preset);
            Assert.Equal("budget", m.Stop);
            Assert.InRange(m.TrainSeconds, budget.TotalSeconds, budget.TotalSeconds + 10);
            Assert.NotEmpty(m.Curve);
            Assert.Equal(m.Curve.Max(p => p.Ndcg10), m.ValidationNdcg10);
            Assert.Contains(m.Curve, p => p.Seconds == m.BestValidationSeconds);
            Assert.True(File.Exists(Path.Combine(outDir, ModelComparison.RunsFolder, m.Name, Trainer.BestFile)));
        }
        // each model against the best other one: the best model against the runner-up, the rest against the best
        var best = report.Models.MaxBy(m => m.Full.Ndcg10)!;
        Assert.Equal(report.Models.Count, report.Significance.Count);
        foreach (var s in report.Significance)
        {
            Assert.NotEqual(s.Model, s.Against);
            Assert.Equal(s.Model == best.Name ? report.Models.Where(m => m != best).MaxBy(m => m.Full.Ndcg10)!.Name : best.Name, s.Against);
            Assert.Equal(testUsers, s.Result.Users);
            var (a, b) = (report.Models.Single(m => m.Name == s.Model), report.Models.Single(m => m.Name == s.Against));
            Assert.Equal(a.Full.Ndcg10 - b.Full.Ndcg10, s.Result.Difference, 9);
            Assert.InRange(s.Result.Difference, s.Result.Low, s.Result.High);
        }
        // Markov's planted first-order structure puts it well above popularity on this data
        Assert.True(report.Significance.Single(s => s.Model == "pop").Result.High < 0);
        foreach (var f in new[] { ComparisonReport.MarkdownFile, ComparisonReport.JsonFile, ComparisonReport.ChartFile })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.Equal(report.Models.Select(m => m.Full), ComparisonReport.Read(outDir).Models.Select(m => m.Full));
        Assert.Contains(logged, l => l.StartsWith("[bert4rec] time budget", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("pop,knn", "--models")]
    [InlineData("pop,pop", "--models")]
    [InlineData("", "--models")]
    public void Bad_model_lists_are_refused_naming_the_flag(string models, string flag)
    {
        var data = SyntheticDataset.Generate(new SyntheticOptions { Users = 30, Items = 20, Clusters = 2 });
        var e = Assert.Throws<UsageException>(() => ModelComparison.Run(data, new ComparisonOptions { Models = models.Split(',', StringSplitOptions.RemoveEmptyEntries) }));
        Assert.Contains(flag, e.Message);
    }

    [Fact]
    public void The_preset_follows_the_sequence_length_and_preset_files_take_precedence()
    {
        var shortSeqs = new DatasetStatistics(1000, 500, 9000, 9, 50, 5, 0.01);
        var longSeqs = shortSeqs with { AverageLength = 160 };
        Assert.Equal("beauty", TrainingConfig.PresetFor(ModelKind.SasRec, shortSeqs));
        Assert.Equal("ml-1m", TrainingConfig.PresetFor(ModelKind.Bert4Rec, longSeqs));
        var o = new ComparisonOptions { Models = ["sasrec"], Seed = 9, Configs = [TrainingConfig.FromPreset("steam", "sasrec")] };
        Assert.Equal(TrainingConfig.FromPreset("steam", "sasrec") with { Seed = 9 }, ModelComparison.ConfigFor(ModelKind.SasRec, shortSeqs, o));
        Assert.Equal(TrainingConfig.FromPreset("beauty", "bert4rec") with { Seed = 9 }, ModelComparison.ConfigFor(ModelKind.Bert4Rec, shortSeqs, o));
        Assert.Equal("ml-20m", ModelComparison.ConfigFor(ModelKind.Bert4Rec, shortSeqs, o with { Preset = "ml-20m" }).Preset);
    }
}
