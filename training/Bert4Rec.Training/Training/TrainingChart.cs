// The run folder's loss.png (training loss and validation NDCG@10 per epoch) and what every PNG chart of the project
// shares: ScottPlot over SkiaSharp, one sans-serif font, written atomically.
using Bert4Rec.Contracts;
using ScottPlot;

namespace Bert4Rec.Training.Training;

/// <summary>PNG charts through ScottPlot: a plot with the project's font, rendered and written atomically.</summary>
public static class PngChart
{
    public const int Width = 800, Height = 450;
    /// <summary>Ten distinct line colors (matplotlib's tab10), so the same model keeps its color across charts.</summary>
    public static readonly string[] Palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    private static readonly Lazy<string> FontName = new(() =>
    {
        // SkiaSharp's dependency-free Linux build reads fonts from /usr/share/fonts; with none there ScottPlot draws every
        // line and not one letter, so that is refused here with the fix (scripts/setup.sh installs fonts-dejavu-core)
        // (Skia then lists one family with an empty name whose typeface has no glyphs)
        var families = SkiaSharp.SKFontManager.Default.FontFamilies.Where(f => !string.IsNullOrWhiteSpace(f)).ToList();
        string? name = families.FirstOrDefault(f => f == "DejaVu Sans") ?? families.FirstOrDefault(f => f.Contains("Sans", StringComparison.Ordinal)) ?? families.FirstOrDefault();
        using var typeface = name == null ? null : SkiaSharp.SKTypeface.FromFamilyName(name);
        if (typeface == null || typeface.GlyphCount == 0)
            throw new InvalidOperationException("no font found under /usr/share/fonts for chart text: install fonts-dejavu-core (scripts/setup.sh does)");
        return name!;
    });

    /// <summary>An empty plot with the project's font on every label.</summary>
    public static Plot Create()
    {
        var plot = new Plot();
        plot.Font.Set(FontName.Value);
        return plot;
    }

    public static Color Color(int i) => ScottPlot.Color.FromHex(Palette[i % Palette.Length]);

    /// <summary>Renders <paramref name="plot"/> as a PNG of <paramref name="width"/> x <paramref name="height"/> into <paramref name="path"/>
    /// (a temporary file renamed into place: the old chart or the new one, never half of one).</summary>
    public static void Save(Plot plot, string path, int width = Width, int height = Height) =>
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));
}

/// <summary>loss.png: mean training loss (left axis) and validation NDCG@10 (right axis) per epoch.</summary>
public static class TrainingChart
{
    public const string LossLabel = "training loss", NdcgLabel = "validation NDCG@10";

    /// <summary>The chart's plot: one line per series that has points (loss where finite; NDCG@10 where validated).</summary>
    public static Plot Build(IReadOnlyList<EpochRecord> history)
    {
        var plot = PngChart.Create();
        plot.Title("training loss and validation NDCG@10 per epoch");
        plot.XLabel("epoch");
        plot.YLabel(LossLabel);
        plot.Axes.Right.Label.Text = NdcgLabel;
        var loss = history.Where(h => double.IsFinite(h.Loss)).ToList();
        if (loss.Count > 0)
        {
            var s = plot.Add.Scatter(loss.Select(h => (double)h.Epoch).ToArray(), loss.Select(h => h.Loss).ToArray(), PngChart.Color(0));
            s.LegendText = LossLabel;
            s.LineWidth = 2;
        }
        var validated = history.Where(h => h.Validation != null).ToList();
        if (validated.Count > 0)
        {
            var s = plot.Add.Scatter(validated.Select(h => (double)h.Epoch).ToArray(), validated.Select(h => h.Validation!.Ndcg10).ToArray(), PngChart.Color(1));
            s.LegendText = NdcgLabel;
            s.LineWidth = 2;
            s.Axes.YAxis = plot.Axes.Right;
        }
        if (history.Count > 0) plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    public static void Write(string path, IReadOnlyList<EpochRecord> history) => PngChart.Save(Build(history), path);
}
