// What `compare` found, and its three files: report.md (the table and the significance lines), report.json (the same,
// for programs) and chart.png (validation NDCG@10 against training wall-clock seconds, one line per model).
using System.Globalization;
using System.Text;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Training;
using ScottPlot;

namespace Bert4Rec.Training.Pipeline;

/// <summary>One validation of a training run, as the chart draws it.</summary>
public sealed record CurvePoint(double Seconds, int Epoch, long Step, double Ndcg10);

/// <summary>
/// One model's result on the test split. Baselines have no curve; their <see cref="ValidationNdcg10"/> is drawn as a flat
/// reference line. <see cref="BestValidationSeconds"/>: training seconds until the validation that gave the kept weights.
/// </summary>
public sealed record ComparedModel
{
    public required string Name { get; init; }
    /// <summary>The preset the model trained with (null for baselines).</summary>
    public string? Preset { get; init; }
    public required RankingMetrics Full { get; init; }
    public required RankingMetrics Pop100 { get; init; }
    /// <summary>Full ranking: the share of test users whose test item ranks in the top <see cref="RankingMetrics.StageOneK"/>
    /// (the recall of a stage one that hands that many candidates on).</summary>
    public double? Recall200 { get; init; }
    public double TrainSeconds { get; init; }
    public double? BestValidationSeconds { get; init; }
    public int? BestEpoch { get; init; }
    /// <summary>Best validation NDCG@10 (full ranking) of a trained model; a baseline's validation NDCG@10.</summary>
    public double? ValidationNdcg10 { get; init; }
    /// <summary>Why training ended: budget, early stop, epochs; null for baselines.</summary>
    public string? Stop { get; init; }
    /// <summary>True when the tested model was refit on the validation items too (trained models: for the best validation's
    /// step count; baselines: counted over them).</summary>
    public bool Refit { get; init; }
    public IReadOnlyList<CurvePoint> Curve { get; init; } = [];
}

/// <summary><see cref="Model"/> against <see cref="Against"/> (the best other model) on per-user NDCG@10 under <see cref="Protocol"/>.</summary>
public sealed record SignificanceLine(string Model, string Against, string Protocol, PairedDifference Result)
{
    public override string ToString() => $"{Model} - {Against} ({Protocol} NDCG@10): {Result}";
}

public sealed record ComparisonReport
{
    public const string MarkdownFile = "report.md", JsonFile = "report.json", ChartFile = "chart.png";
    public const int ChartWidth = 900, ChartHeight = 480;

    public required string Data { get; init; }
    public required DatasetStatistics Statistics { get; init; }
    /// <summary>Wall-clock budget per trained model, seconds (null = none).</summary>
    public double? BudgetSeconds { get; init; }
    public int Seed { get; init; }
    public int TestUsers { get; init; }
    public required IReadOnlyList<ComparedModel> Models { get; init; }
    public required IReadOnlyList<SignificanceLine> Significance { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Writes report.md, report.json and chart.png into <paramref name="dir"/> (each atomically).</summary>
    public void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllBytes(Path.Combine(dir, MarkdownFile), Encoding.UTF8.GetBytes(Markdown()));
        AtomicFile.WriteAllBytes(Path.Combine(dir, JsonFile), JsonSerializer.SerializeToUtf8Bytes(this, JsonOptions));
        PngChart.Save(Chart(), Path.Combine(dir, ChartFile), ChartWidth, ChartHeight);
    }

    public static ComparisonReport Read(string dir)
    {
        string p = Path.Combine(dir, JsonFile);
        try { return JsonSerializer.Deserialize<ComparisonReport>(File.ReadAllBytes(p), JsonOptions) ?? throw new JsonException("null report"); }
        catch (JsonException e) { throw new InvalidDataException($"{p}: not a comparison report ({e.Message})"); }
    }

    /// <summary>The RESULT line's object: per model both protocols' metrics and the training times, then the significance lines.</summary>
    public string ResultJson(string? outDir)
    {
        static double R(double v) => Math.Round(v, 5);
        var result = new Dictionary<string, object?>
        {
            ["data"] = Data, ["test_users"] = TestUsers, ["budget_s"] = BudgetSeconds, ["seed"] = Seed,
            ["models"] = Models.ToDictionary(m => m.Name, m => (object)new Dictionary<string, object?>
            {
                ["full"] = m.Full.ToDictionary().ToDictionary(kv => kv.Key, kv => R(kv.Value)),
                ["pop100"] = m.Pop100.ToDictionary().ToDictionary(kv => kv.Key, kv => R(kv.Value)),
                ["full_recall@200"] = m.Recall200 is { } r200 ? R(r200) : null,
                ["train_s"] = Math.Round(m.TrainSeconds, 1), ["best_validation_s"] = m.BestValidationSeconds is { } b ? Math.Round(b, 1) : null,
                ["refit"] = m.Refit,
            }),
            ["significance"] = Significance.Select(s => new Dictionary<string, object>
            {
                ["model"] = s.Model, ["against"] = s.Against, ["protocol"] = s.Protocol, ["metric"] = "ndcg@10",
                ["difference"] = R(s.Result.Difference), ["ci95"] = new[] { R(s.Result.Low), R(s.Result.High) }, ["p"] = R(s.Result.PValue),
            }).ToList(),
            ["out"] = outDir,
        };
        return JsonSerializer.Serialize(result);
    }

    /// <summary>One row per model and protocol: the six ranking metrics, recall@200 (full ranking), training wall time, time to
    /// the best validation.</summary>
    public string Table()
    {
        var rows = new List<string[]> { new[] { "model", "protocol", "HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR", "R@200", "train s", "best val at s" } };
        foreach (var m in Models)
            foreach (var (r, first) in new[] { (m.Full, true), (m.Pop100, false) })
                rows.Add([
                    first ? m.Name : "", r.Protocol, F4(r.Hr1), F4(r.Hr5), F4(r.Hr10), F4(r.Ndcg5), F4(r.Ndcg10), F4(r.Mrr),
                    first && m.Recall200 is { } r200 ? F4(r200) : "",
                    first ? m.TrainSeconds.ToString("F1", CultureInfo.InvariantCulture) : "",
                    first && m.BestValidationSeconds is { } b ? b.ToString("F1", CultureInfo.InvariantCulture) : "",
                ]);
        var width = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var sb = new StringBuilder();
        for (int i = 0; i < rows.Count; i++)
        {
            sb.Append("| ").AppendJoin(" | ", rows[i].Select((cell, c) => c < 2 ? cell.PadRight(width[c]) : cell.PadLeft(width[c]))).Append(" |\n");
            if (i == 0) sb.Append('|').AppendJoin('|', width.Select((w, c) => c < 2 ? new string('-', w + 2) : new string('-', w + 1) + ":")).Append("|\n");
        }
        return sb.ToString();
    }

    public string Markdown()
    {
        var sb = new StringBuilder();
        sb.Append($"# Model comparison on {Data}\n\n");
        sb.Append($"Dataset: {Statistics}.  \n");
        sb.Append(CultureInfo.InvariantCulture, $"Test users: {TestUsers:N0}, the same for every model; seed {Seed}; ");
        sb.Append(BudgetSeconds is { } b ? string.Create(CultureInfo.InvariantCulture, $"training budget {b:F0} s per model.\n\n") : "no training budget.\n\n");
        sb.Append("Protocols: `full` ranks the target among all items (the user's own items excluded); `pop100` among 100 negatives ");
        sb.Append("sampled by popularity from items the user never touched; R@200 is the share of test items in the full ranking's top 200 ");
        sb.Append("(what a stage one handing on 200 candidates would keep). Training chose its weights on the validation split only; ");
        sb.Append("the test split was read once, after every model had trained.");
        if (Models.Any(m => m.Refit))
            sb.Append(" Models marked refit were tested after training again on the validation items too (for the step count ")
              .Append("validation chose; baselines counted them), so every refit model saw the same items before the test item.");
        sb.Append("\n\n");
        sb.Append(Table()).Append('\n');
        foreach (var m in Models.Where(m => m.Preset != null))
            sb.Append(CultureInfo.InvariantCulture, $"- {m.Name}: preset `{m.Preset}`, best validation NDCG@10 {m.ValidationNdcg10:F4} at epoch {m.BestEpoch}, stopped by {m.Stop}{(m.Refit ? ", then refit" : "")}\n");
        if (Significance.Count > 0)
        {
            sb.Append("\n## Paired differences in NDCG@10 against the best other model\n\n");
            sb.Append("Mean per-user difference on the same test users; 95 % interval from a percentile bootstrap over users; ");
            sb.Append("two-sided p-value from a paired sign-flip randomization test (both seeded, ");
            sb.Append(CultureInfo.InvariantCulture, $"{Significance[0].Result.Resamples:N0} resamples).\n\n");
            foreach (var s in Significance) sb.Append("- ").Append(s).Append('\n');
        }
        sb.Append($"\n![validation NDCG@10 against training time]({ChartFile})\n");
        return sb.ToString();
    }

    private static string F4(double v) => v.ToString("F4", CultureInfo.InvariantCulture);

    /// <summary>The y-axis label of chart.png, and the legend text of each model is its name.</summary>
    public const string ChartYLabel = "validation NDCG@10 (full ranking)";

    /// <summary>chart.png's plot: validation NDCG@10 against training wall-clock seconds, a line per trained model with an
    /// open ring at its best validation, a dashed flat line per baseline (its validation NDCG@10); legend in model order.</summary>
    public Plot Chart()
    {
        var plot = PngChart.Create();
        plot.Title("validation NDCG@10 against training time");
        plot.XLabel("training wall-clock seconds");
        plot.YLabel(ChartYLabel);
        for (int i = 0; i < Models.Count; i++)
        {
            var m = Models[i];
            var color = PngChart.Color(i);
            if (m.Curve.Count > 0)
            {
                var line = plot.Add.Scatter(m.Curve.Select(p => p.Seconds).ToArray(), m.Curve.Select(p => p.Ndcg10).ToArray(), color);
                line.LegendText = m.Name;
                line.LineWidth = 2;
                var best = m.Curve.MaxBy(p => p.Ndcg10)!;
                var ring = plot.Add.Marker(best.Seconds, best.Ndcg10, MarkerShape.OpenCircle, 12, color);
                ring.MarkerLineWidth = 1.5f;
            }
            else if (m.ValidationNdcg10 is { } v)
            {
                var flat = plot.Add.HorizontalLine(v, 1.5f, color, LinePattern.Dashed);
                flat.LegendText = m.Name;
            }
        }
        // the budget sets the x range, so runs that stopped early show how much of it they left
        plot.Axes.SetLimitsX(0, Math.Max(1, Models.SelectMany(m => m.Curve).Select(p => p.Seconds).Append(BudgetSeconds ?? 0).DefaultIfEmpty(1).Max()) * 1.02);
        plot.Axes.SetLimitsY(0, Math.Max(0.01, Models.SelectMany(m => m.Curve.Select(p => p.Ndcg10).Append(m.ValidationNdcg10 ?? 0)).DefaultIfEmpty(0).Max() * 1.1));
        plot.ShowLegend(Edge.Right);
        return plot;
    }
}
