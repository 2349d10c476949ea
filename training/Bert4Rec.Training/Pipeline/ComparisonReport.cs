// What `compare` found, and its three files: report.md (the table and the significance lines), report.json (the same,
// for programs) and chart.svg (validation NDCG@10 against training wall-clock seconds, one line per model).
using System.Globalization;
using System.Text;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;

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
    public const string MarkdownFile = "report.md", JsonFile = "report.json", ChartFile = "chart.svg";

    public required string Data { get; init; }
    public required DatasetStatistics Statistics { get; init; }
    /// <summary>Wall-clock budget per trained model, seconds (null = none).</summary>
    public double? BudgetSeconds { get; init; }
    public int Seed { get; init; }
    public int TestUsers { get; init; }
    public required IReadOnlyList<ComparedModel> Models { get; init; }
    public required IReadOnlyList<SignificanceLine> Significance { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Writes report.md, report.json and chart.svg into <paramref name="dir"/> (each atomically).</summary>
    public void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllBytes(Path.Combine(dir, MarkdownFile), Encoding.UTF8.GetBytes(Markdown()));
        AtomicFile.WriteAllBytes(Path.Combine(dir, JsonFile), JsonSerializer.SerializeToUtf8Bytes(this, JsonOptions));
        AtomicFile.WriteAllBytes(Path.Combine(dir, ChartFile), Encoding.UTF8.GetBytes(ChartSvg()));
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

    /// <summary>One row per model and protocol: the six ranking metrics, training wall time, time to the best validation.</summary>
    public string Table()
    {
        var rows = new List<string[]> { new[] { "model", "protocol", "HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR", "train s", "best val at s" } };
        foreach (var m in Models)
            foreach (var (r, first) in new[] { (m.Full, true), (m.Pop100, false) })
                rows.Add([
                    first ? m.Name : "", r.Protocol, F4(r.Hr1), F4(r.Hr5), F4(r.Hr10), F4(r.Ndcg5), F4(r.Ndcg10), F4(r.Mrr),
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
        sb.Append("sampled by popularity from items the user never touched. Training chose its weights on the validation split only; ");
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

    private static readonly string[] Colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

    /// <summary>Validation NDCG@10 (full ranking) against training wall-clock seconds: a line per trained model with a ring at
    /// its best validation, a dashed flat line per baseline.</summary>
    public string ChartSvg()
    {
        const int W = 720, H = 400, L = 60, R = 150, T = 30, B = 45;
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        sb.Append(inv, $"<text x=\"{(W - R + L) / 2}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">validation NDCG@10 (full ranking) against training time</text>\n");
        double xmax = Math.Max(1, Models.SelectMany(m => m.Curve).Select(p => p.Seconds).Append(BudgetSeconds ?? 0).DefaultIfEmpty(1).Max());
        double ymax = Models.SelectMany(m => m.Curve.Select(p => p.Ndcg10).Append(m.ValidationNdcg10 ?? 0)).DefaultIfEmpty(0).Max();
        ymax = ymax <= 0 ? 0.01 : NiceCeiling(ymax * 1.05);
        xmax = NiceCeiling(xmax);
        double X(double s) => L + s / xmax * (W - L - R);
        double Y(double v) => H - B - v / ymax * (H - T - B);
        // axes and ticks
        sb.Append(inv, $"<line x1=\"{L}\" y1=\"{H - B}\" x2=\"{W - R}\" y2=\"{H - B}\" stroke=\"black\"/><line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{H - B}\" stroke=\"black\"/>\n");
        for (int i = 0; i <= 5; i++)
        {
            double xv = xmax * i / 5, yv = ymax * i / 5;
            sb.Append(inv, $"<line x1=\"{X(xv):F1}\" y1=\"{H - B}\" x2=\"{X(xv):F1}\" y2=\"{H - B + 4}\" stroke=\"black\"/><text x=\"{X(xv):F1}\" y=\"{H - B + 16}\" text-anchor=\"middle\">{xv:0.##}</text>\n");
            sb.Append(inv, $"<line x1=\"{L - 4}\" y1=\"{Y(yv):F1}\" x2=\"{W - R}\" y2=\"{Y(yv):F1}\" stroke=\"{(i == 0 ? "black" : "#e0e0e0")}\"/><text x=\"{L - 6}\" y=\"{Y(yv) + 4:F1}\" text-anchor=\"end\">{yv:0.####}</text>\n");
        }
        sb.Append(inv, $"<text x=\"{(W - R + L) / 2}\" y=\"{H - 8}\" text-anchor=\"middle\">training wall-clock seconds</text>\n");
        sb.Append(inv, $"<text transform=\"translate(14,{(H - B + T) / 2}) rotate(-90)\" text-anchor=\"middle\">validation NDCG@10</text>\n");
        for (int i = 0; i < Models.Count; i++)
        {
            var m = Models[i];
            string color = Colors[i % Colors.Length];
            double ly = T + 10 + 18 * i;
            if (m.Curve.Count > 0)
            {
                var pts = string.Join(" ", m.Curve.Select(p => string.Format(inv, "{0:F1},{1:F1}", X(p.Seconds), Y(p.Ndcg10))));
                sb.Append(inv, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{pts}\"><title>{Escape(m.Name)}</title></polyline>\n");
                foreach (var p in m.Curve) sb.Append(inv, $"<circle cx=\"{X(p.Seconds):F1}\" cy=\"{Y(p.Ndcg10):F1}\" r=\"2\" fill=\"{color}\"/>\n");
                var best = m.Curve.MaxBy(p => p.Ndcg10)!;
                sb.Append(inv, $"<circle cx=\"{X(best.Seconds):F1}\" cy=\"{Y(best.Ndcg10):F1}\" r=\"5\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>\n");
                sb.Append(inv, $"<line x1=\"{W - R + 10}\" y1=\"{ly}\" x2=\"{W - R + 30}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/>\n");
            }
            else if (m.ValidationNdcg10 is { } v)
            {
                sb.Append(inv, $"<line x1=\"{L}\" y1=\"{Y(v):F1}\" x2=\"{W - R}\" y2=\"{Y(v):F1}\" stroke=\"{color}\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"><title>{Escape(m.Name)}</title></line>\n");
                sb.Append(inv, $"<line x1=\"{W - R + 10}\" y1=\"{ly}\" x2=\"{W - R + 30}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n");
            }
            else continue;
            sb.Append(inv, $"<text x=\"{W - R + 35}\" y=\"{ly + 4}\">{Escape(m.Name)}</text>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>The smallest 1, 2, 2.5 or 5 times a power of ten at or above <paramref name="v"/> (v > 0).</summary>
    private static double NiceCeiling(double v)
    {
        double p = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (double m in new[] { 1, 2, 2.5, 5, 10 }) if (m * p >= v * (1 - 1e-12)) return m * p;
        return 10 * p;
    }

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
